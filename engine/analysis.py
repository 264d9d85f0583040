"""Check a graph and infer every shape and parameter count without any data.

``analyze(graph)`` walks the blocks in topological order from the Input, asks each layer class
for its output shape and parameter count, and collects every problem at once (the canvas shows
them all, not just the first). Each ``Problem`` names its block, says what to do and, when one
edit fixes it, carries a ``fix`` dict the GUI can apply:

    {"kind": "insert", "type": "Flatten", "source": a, "target": b}
    {"kind": "set", "block": id, "key": "padding", "value": "same"}

A block fed by a broken block gets shape None without a problem of its own, so one mistake
gives one message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import networkx as nx

from engine.analysis_checks import (
    Problem,
    arity_problem,
    cycle_problems,
    link_problem,
    make_layer,
    named,
    pre_check,
    shape_text,
)
from engine.errors import BlockPropError
from engine.escaping import escape
from engine.heads import head_fix, split_heads
from engine.layers.base import Layer
from engine.memory import (
    Cost,
    alone,
    block_cost,
    default_memory_limit,
    fmt_bytes,
    max_batch,
    run_batch_size,
    total_cost,
)

if TYPE_CHECKING:
    from engine.graph import Graph


class SummaryRow(NamedTuple):
    """One line of the summary table. ``shape`` and ``params`` are None when unknown."""

    id: str
    type: str
    shape: tuple | None
    params: int | None


@dataclass
class Analysis:
    """The result of ``analyze``; see the module docstring."""

    order: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple | None] = field(default_factory=dict)
    in_shapes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    buffers: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # block -> Layer.param_note
    problems: list[Problem] = field(default_factory=list)
    input_id: str | None = None
    output_id: str | None = None
    heads: dict[str, float] = field(default_factory=dict)  # extra outputs: block -> weight
    name: str = ""
    memory_bytes: int = 0  # the estimate at batch_size: memory_fixed + batch * memory_per_sample
    memory_fixed: int = 0
    memory_per_sample: int = 0
    memory_limit: int = 0
    batch_size: int = 32
    training: bool = True  # the estimate is for training (else for inference)
    # A graph with module instances (engine.modules.expand): the analysis of the expanded
    # graph (shapes and parameters per inner block ``instance/inner``), each instance's blocks.
    flat: Analysis | None = None
    members: dict[str, list[str]] = field(default_factory=dict)
    module_of: dict[str, str] = field(default_factory=dict)  # instance -> definition's name

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total_params(self) -> int:
        return sum(self.params.values())

    @property
    def total_buffers(self) -> int:
        return sum(self.buffers.values())

    def problems_of(self, block: str) -> list[Problem]:
        return [p for p in self.problems if p.block == block]

    def rows(self) -> list[SummaryRow]:
        """Summary rows in topological order: block id, type, output shape, params."""
        return [
            SummaryRow(
                n,
                f"module {self.module_of[n]}" if n in self.module_of else self.types[n],
                self.shapes.get(n),
                self.params.get(n) if self.shapes.get(n) is not None else None,
            )
            for n in self.order
        ]


def count(n: int, noun: str) -> str:
    """ "1 block", "2 blocks", "1,200 blocks" (nouns with a plain -s plural)."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def analyze(
    graph: Graph,
    batch_size: int | None = None,
    memory_limit: int | None = None,
    training: bool = True,
) -> Analysis:
    """Validate ``graph`` and infer its shapes; see the module docstring.

    The memory check is for training (or with ``training=False``, inference) at
    ``batch_size``, by default the batch the graph's training settings give (engine.memory);
    ``memory_limit`` (bytes) defaults to half this machine's RAM.
    """
    if graph.has_instances():
        from engine.modules.expand import analyze_modular

        return analyze_modular(graph, batch_size, memory_limit, training)
    g = graph.nx
    a = Analysis(
        name=graph.name, batch_size=run_batch_size(graph.training, batch_size), training=training
    )
    a.memory_limit = default_memory_limit() if memory_limit is None else int(memory_limit)
    a.types = {n: graph.type_of(n) for n in g.nodes}
    order, stuck = graph.topological_order()
    a.order = order + stuck
    problems: list[Problem] = []

    layers: dict[str, Layer | None] = {}
    for n in a.order:
        layers[n], p = make_layer(graph, n)
        if p:
            problems.append(p)
    inputs = [n for n in g.nodes if a.types[n] == "Input"]
    problems += _input_problems(a, inputs)
    problems += cycle_problems(g)
    reached = _reached(g, inputs)
    problems += [
        Problem(n, "not connected to the Input: wire a block into it, or delete it")
        for n in (a.order if inputs else ())
        if n not in reached and g.in_degree(n) == 0
    ]

    # Shapes flow from the Input; a block with an unknown input shape stays unknown, silently.
    for n in a.order:
        a.shapes[n] = a.in_shapes[n] = None
        a.params[n] = a.buffers[n] = 0
    costs: dict[str, Cost] = {}
    for n in order:
        if n in reached and layers[n] is not None:
            problems += _infer_block(graph, a, layers, n, costs)
    problems += _output_problems(graph, a, order, reached, inputs, stuck)

    total = total_cost(costs, a.params)
    a.memory_fixed, a.memory_per_sample = total
    a.memory_bytes = total.at(a.batch_size)
    if a.memory_bytes > a.memory_limit and costs:
        problems.extend(_memory_problems(a, costs, total))

    rank = {n: i for i, n in enumerate(a.order)}
    problems.sort(key=lambda p: -1 if p.block is None else rank.get(p.block, len(rank)))
    a.problems = problems
    return a


def _input_problems(a: Analysis, inputs: list[str]) -> list[Problem]:
    """No Input, or more than one; sets ``a.input_id`` when there is exactly one."""
    if not inputs:
        return [
            Problem(None, "the graph has no Input block: add one and wire it to the first block")
        ]
    a.input_id = inputs[0] if len(inputs) == 1 else None
    return [
        Problem(
            extra,
            f"a second Input (the graph's Input is '{inputs[0]}'); "
            "a graph has exactly one: delete this one",
        )
        for extra in inputs[1:]
    ]


def _reached(g: nx.DiGraph, inputs: list[str]) -> set[str]:
    """Every block downstream of an Input: one search from all of them, linear however many."""
    reached: set[str] = set(inputs)
    frontier = list(inputs)
    while frontier:
        for s in g.successors(frontier.pop()):
            if s not in reached:
                reached.add(s)
                frontier.append(s)
    return reached


def _infer_block(
    graph: Graph, a: Analysis, layers: dict[str, Layer | None], n: str, costs: dict[str, Cost]
) -> list[Problem]:
    """Block ``n``'s input and output shapes, parameter and buffer counts and memory cost into
    ``a`` and ``costs``, or the problems that leave them unknown."""
    layer = layers[n]
    problems: list[Problem] = []
    preds = graph.inputs_of(n)
    p = arity_problem(type(layer), n, preds)
    if p:
        problems.append(p)
        if a.types[n] != "Input":
            return problems  # an Input with wires into it still has its own shape
    if a.types[n] == "Input":
        in_shape: Any = tuple(layer.config["shape"])
    else:
        if any(a.shapes.get(s) is None for s in preds):
            return problems
        shapes = [a.shapes[s] for s in preds]
        in_shape = shapes if type(layer).takes_list(len(shapes)) else shapes[0]
        p = pre_check(layer, in_shape, preds)
        if p:
            return [*problems, p]
    p, skip = link_problem(layer, n, layers, a.shapes, graph.nx)
    if p or skip:
        return problems + ([p] if p else [])
    try:
        out = tuple(int(d) for d in layer.output_shape(in_shape))
        pcount = int(layer.param_count(in_shape))
        if note := layer.param_note(in_shape):
            a.notes[n] = note
        bcount = sum(math.prod(s) for s in layer.buffer_shapes(in_shape).values())
    except BlockPropError as e:
        return [*problems, Problem(n, e.message)]
    except OverflowError:
        return [
            *problems,
            Problem(
                n,
                f"sizes too large to compute for input "
                f"{shape_text(in_shape)}: use a much smaller input",
            ),
        ]
    if not out or min(out) < 1:
        return [
            *problems,
            Problem(
                n,
                f"its output would be empty {shape_text(out)} for input "
                f"{shape_text(in_shape)}: use padding, a smaller kernel "
                "or a smaller stride",
            ),
        ]
    a.in_shapes[n], a.shapes[n] = in_shape, out
    layer.in_shape, layer.out_shape = in_shape, out  # for blocks linking to it
    a.params[n], a.buffers[n] = pcount, bcount
    kept = layer.kept_scratch_bytes(in_shape, a.training)
    costs[n] = block_cost(layer.config, in_shape, out, pcount, a.buffers[n], a.training, kept)
    return problems


def _output_problems(
    graph: Graph,
    a: Analysis,
    order: list[str],
    reached: set[str],
    inputs: list[str],
    stuck: list[str],
) -> list[Problem]:
    """The graph's ends: one output (``a.output_id``) and any extra heads (``a.heads``), or
    the problems with them."""
    g = graph.nx
    sinks = [n for n in order if n in reached and g.out_degree(n) == 0 and n not in inputs[1:]]
    a.heads, problems, sinks = split_heads(graph, sinks)  # engine.heads: extra outputs
    if len(sinks) == 1 and not reached.intersection(stuck):
        a.output_id = sinks[0]
    elif len(sinks) > 1:
        names = named(sinks)  # one short text shared by every problem: linear, not quadratic
        message = (
            f"the graph has {len(sinks):,} ends ({names}), blocks with no successor; a graph "
            "has one output (and any extra heads): wire this block into the rest, delete it, "
            "or make it an extra output (the training setting 'heads')"
        )
        fix = head_fix(graph, a.heads, len(sinks))
        problems = [*problems, *(Problem(s, message, fix and fix(s)) for s in sinks)]
    if a.output_id is not None and a.output_id == a.input_id:
        problems = [
            *problems,
            Problem(
                a.input_id,
                "the Input alone is not a network: add blocks after it (drag them from the "
                "palette, or double-click one there)",
            ),
        ]
    return problems


def _memory_problems(a: Analysis, costs: dict[str, Cost], total: Cost) -> list[Problem]:
    """Too large at this batch: blame the blocks too large on their own, else the total; name
    the batch size that fits, when one does."""
    b, limit = a.batch_size, fmt_bytes(a.memory_limit)
    if a.memory_limit == default_memory_limit():
        limit += ", half this machine's memory"
    what = "training" if a.training else "inference"
    smaller = "use fewer units or filters, a smaller input, or pool earlier"
    fits = max_batch(total, a.memory_limit)
    batch_fix = f"lower the batch size from {b:,} to {fits:,} or less" if fits else ""
    need = f"{what} at batch {b:,} would need about {fmt_bytes(a.memory_bytes)}"
    size = {n: alone(c, a.params[n], b) for n, c in costs.items()}
    big = [n for n in costs if size[n] > a.memory_limit]
    if big:
        return [
            Problem(
                n,
                f"too large for this machine: {need} (this block alone "
                f"{fmt_bytes(size[n])}, {a.params[n]:,} parameters) but the limit is "
                f"{limit}; {smaller}" + (f", or {batch_fix}" if fits else ""),
            )
            for n in big
        ]
    if not fits:
        batch_fix = f"even batch 1 would need {fmt_bytes(total.at(1))}: {smaller}"
    return [
        Problem(
            None,
            f"the network is too large for this machine: {need} "
            f"({fmt_bytes(total.fixed)} for its weights and buffers, "
            f"{fmt_bytes(total.per_sample)} per sample) but the limit is {limit}, and no "
            f"single block is at fault; {batch_fix}",
        )
    ]


def summary_text(graph_or_analysis: Graph | Analysis) -> str:
    """A Keras-like table: block (type), output shape, params; then the totals."""
    a = graph_or_analysis if isinstance(graph_or_analysis, Analysis) else analyze(graph_or_analysis)
    rows = []
    for r in a.rows():
        rows.append(
            (
                f"{r.id} ({r.type})",
                "?" if r.shape is None else shape_text(r.shape),
                "?" if r.params is None else f"{r.params:,}",
            )
        )
        if a.flat is not None and r.id in a.members:  # a module's blocks, indented
            inner = set(a.members[r.id])
            rows += [
                (
                    f"  {f} ({t})",
                    "?" if s is None else shape_text(s),
                    "?" if p is None else f"{p:,}",
                )
                for f, t, s, p in a.flat.rows()
                if f in inner
            ]
    head = ("Block (type)", "Output shape", "Params")
    w0 = max([len(head[0])] + [len(r[0]) for r in rows]) + 2
    w1 = max([len(head[1])] + [len(r[1]) for r in rows]) + 2
    w2 = max([len(head[2])] + [len(r[2]) for r in rows])
    width = w0 + w1 + w2
    lines = [
        f'Model: "{escape(a.name, ascii_only=False, quote=chr(34))}"',
        "-" * width,
        f"{head[0]:<{w0}}{head[1]:<{w1}}{head[2]:>{w2}}",
        "=" * width,
    ]
    lines += [f"{c0:<{w0}}{c1:<{w1}}{c2:>{w2}}" for c0, c1, c2 in rows]
    # Keras's convention: running statistics (BatchNorm buffers) are non-trainable params.
    lines += [
        "=" * width,
        f"Total params: {a.total_params + a.total_buffers:,}",
        f"Trainable params: {a.total_params:,}",
        f"Non-trainable params: {a.total_buffers:,}",
        f"{'Training' if a.training else 'Inference'} memory (batch {a.batch_size}, estimate): "
        f"{fmt_bytes(a.memory_bytes)}",
    ]
    lines += [f"Note: {n} ({a.types[n]}): {note}" for n, note in a.notes.items()]
    return "\n".join(lines)
