"""ONNX in and out: any graph as an ONNX model (opened in Netron, run by onnxruntime), and ONNX
models (PyTorch's exporter, the model zoo) brought onto the canvas as blocks with their weights.

    data = export_onnx(graph, weights="w.npz")      # bytes of a ModelProto
    graph, arrays = import_onnx("model.onnx")       # engine.Graph and "<block id>.<name>" arrays

Both need the optional ``onnx`` package (``pip install onnx``); without it they raise
ConfigError saying so. How each block becomes ONNX nodes lives in ``builders`` (one builder per
layer class, registered with ``@onnx_builder``); the way back in ``importer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError

if TYPE_CHECKING:
    import os

    import numpy as np

    from engine.graph import Graph

MISSING = "ONNX export and import need the onnx package: pip install onnx"


def require_onnx() -> Any:
    """The ``onnx`` module, or ConfigError with the one line that says how to get it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError(MISSING) from None
    return onnx


def export_onnx(
    graph: Graph, weights: str | None = None, *, arrays: dict[str, np.ndarray] | None = None
) -> bytes:
    """Bytes of the ONNX model of ``graph`` (see ``exporter.export_model``)."""
    require_onnx()
    from engine.export.onnx.exporter import export_model

    return export_model(graph, weights=weights, arrays=arrays).SerializeToString()


def import_onnx(path: str | os.PathLike) -> tuple[Graph, dict[str, np.ndarray]]:
    """(Graph, weights dict) from the ONNX file ``path`` (see ``importer.import_model``)."""
    require_onnx()
    from engine.export.onnx.importer import import_file

    return import_file(path)


__all__ = ["MISSING", "export_onnx", "import_onnx", "require_onnx"]
