"""What both exporters need to know about a graph, checked once: blocks in topological order with
their settings, inputs and shapes, safe identifiers, and the normalised training settings.

Export refuses a graph the engine could not build (the same problems ``engine.analyze``
reports, each naming its block) with a ``GraphError``, and bad training settings with a
``ConfigError``: never generated code that fails later.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.analysis import analyze
from engine.errors import ConfigError, GraphError
from engine.export.naming import comment, identifiers
from engine.training_spec import check_training

if TYPE_CHECKING:
    from engine.graph import Graph
    from engine.modules.expand import Flat

# Export is about code, not this machine: a model too big to train here may train elsewhere.
NO_MEMORY_LIMIT = 2**62


@dataclass
class Block:
    """One block, ready to be written as code."""

    id: str
    type: str
    config: dict  # the settings the user gave (what the graph file holds)
    full: dict  # with the layer's defaults filled in
    inputs: list[str]  # source blocks, ordered by input port
    in_shape: Any  # tuple, or a list of tuples for multi-input blocks; None for the Input
    out_shape: tuple
    ident: str  # a safe, unique Python identifier
    params: int = 0  # trainable parameters (as the summary counts them)

    @property
    def note(self) -> str:
        """``conv1 (Conv2D) -> (6, 28, 28), 156 params`` for a comment (id sanitised)."""
        shape = ", ".join(str(d) for d in self.out_shape) + (
            "," if len(self.out_shape) == 1 else ""
        )
        params = f", {self.params:,} params" if self.params else ""
        return f"{comment(self.id, 40)} ({self.type}) -> ({shape}){params}"


@dataclass
class Plan:
    name: str
    description: str
    blocks: list[Block]
    input_id: str
    output_id: str
    training: dict  # check_training's normalised copy; "dataset" may be None
    # A graph with module instances: the graph as drawn and its expansion (the blocks above
    # are the expanded graph's, ids "instance/inner"); the PyTorch export writes a class each.
    modular: Graph | None = None
    flat: Flat | None = None
    heads: dict[str, float] = field(default_factory=dict)  # extra outputs (engine.heads)
    by_id: dict[str, Block] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {b.id: b for b in self.blocks}

    @property
    def seed(self) -> int:
        return int(self.training["seed"])


def make_plan(graph: Graph, reserved: tuple[str, ...] = ()) -> Plan:
    """Check ``graph`` and collect what code generation needs (GraphError / ConfigError)."""
    a = analyze(graph, memory_limit=NO_MEMORY_LIMIT)
    if not a.ok:
        n = len(a.problems)
        listed = "; ".join(str(p) for p in a.problems[:6])
        more = f" (and {n - 6} more)" if n > 6 else ""
        raise GraphError(
            f"cannot export: the graph has {n} problem{'s' * (n != 1)}: {listed}{more}; "
            "fix them on the canvas first",
            block=a.problems[0].block if n == 1 else None,
        )
    modular, flat = None, None
    if a.flat is not None:  # modules: code is written from the expanded graph
        from engine.modules.expand import flatten

        modular, flat = graph, flatten(graph)
        graph, a = flat.graph, a.flat
    try:
        training = check_training(copy.deepcopy(graph.training), need_dataset=False)
    except ConfigError as e:
        raise ConfigError(f"cannot export: {e.message}") from None
    idents = identifiers(a.order, reserved)
    blocks = []
    for n in a.order:
        blocks.append(
            Block(
                id=n,
                type=a.types[n],
                config=graph.config_of(n),
                full=graph.full_config(n),
                inputs=graph.inputs_of(n),
                in_shape=None if a.types[n] == "Input" else a.in_shapes[n],
                out_shape=tuple(a.shapes[n]),
                ident=idents[n],
                params=int(a.params.get(n, 0)),
            )
        )
    return Plan(
        name=graph.name,
        description=graph.description,
        blocks=blocks,
        input_id=a.input_id,
        output_id=a.output_id,
        training=training,
        modular=modular,
        flat=flat,
        heads=dict(a.heads),
    )
