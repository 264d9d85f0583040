"""Export any graph to Python: engine code (``"numpy"``) or a standalone PyTorch script.

    code = export_code(graph, "pytorch", weights="w.npz")

Both scripts define ``build_model()`` (the engine Model, or the ``nn.Module`` with the weights
loaded when exported with them) and train with the graph's settings only under
``if __name__ == "__main__":``. Nothing a user typed reaches the code unescaped (see
``naming``). A graph the engine cannot build raises ``GraphError``; bad training settings
``ConfigError``; a block with no PyTorch counterpart ``GraphError`` naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.export.plan import make_plan

if TYPE_CHECKING:
    from engine.graph import Graph

TARGETS = ("numpy", "pytorch")


def export_code(
    graph: Graph, target: str = "numpy", weights: str | None = None, *, check_weights: bool = True
) -> str:
    """Python source for ``graph``; ``target`` is "numpy" (engine code) or "pytorch".

    ``weights``: the path of an engine weights file (.npz) the script loads in build_model()
    (a relative path is looked up from the working directory, then next to the script). With
    ``check_weights`` the file must exist and fit the graph now (WeightsError says what does
    not fit); the GUI turns it off when it writes the file together with the script.
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    if weights is not None and (not isinstance(weights, str) or not weights):
        raise ConfigError(f"the weights path must be a non-empty string, got {weights!r}")
    plan = make_plan(graph)
    if weights is not None and check_weights:
        from engine.model import build_model
        from engine.weights import load_weights

        load_weights(build_model(graph, seed=plan.seed), weights)
    if target == "numpy":
        from engine.export.numpy_export import export_numpy

        code = export_numpy(plan, weights)
    else:
        from engine.export.pytorch_export import export_pytorch

        code = export_pytorch(plan, weights)
    _check_inert(code)
    return code


def _check_inert(code: str) -> None:
    """The promise every export keeps, checked on the result: pure ASCII, and the first two
    lines (where Python looks for ``# coding: X``) are BlockProp's fixed text."""
    first = code.split("\n", 2)[:2]
    if (
        not code.isascii()
        or not first[0].startswith("# Exported from BlockProp (")
        or first[1:] != ["#"]
    ):
        raise RuntimeError(
            "internal error: the exported code is not pure ASCII with a fixed header"
        )


__all__ = ["TARGETS", "export_code"]
