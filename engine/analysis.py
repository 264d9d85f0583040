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

from engine.errors import BlockPropError
from engine.escaping import escape
from engine.heads import head_fix, split_heads
from engine.layers import LAYER_TYPES
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

# Messages name at most this many blocks and count the rest (a graph of 100,000 loose ends
# gives 100,000 short problems, not 100,000 lists of 100,000 names).
MAX_NAMED = 5


class Problem(NamedTuple):
    """One thing wrong with the graph: the block at fault (None: the graph as a whole), what
    is wrong and what to do, and an optional automatic fix."""

    block: str | None
    message: str
    fix: dict | None = None

    def __str__(self) -> str:
        return f"block '{self.block}': {self.message}" if self.block is not None else self.message


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


def named(ids: list[str], limit: int = MAX_NAMED) -> str:
    """Quoted block ids for a message, at most ``limit`` of them and a count of the rest, so a
    message stays short however many blocks it concerns: 'a', 'b', 'c' and 997 more."""
    shown = ", ".join(f"'{n}'" for n in ids[:limit])
    more = len(ids) - limit
    return shown + (f" and {more:,} more" if more > 0 else "")


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _cycle_problems(g: nx.DiGraph) -> list[Problem]:
    rank = {n: i for i, n in enumerate(g.nodes)}
    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        edges = nx.find_cycle(g.subgraph(comp))
        path = [s for s, _ in edges]
        first = min(comp, key=rank.__getitem__)
        k = path.index(first) if first in path else 0
        path = path[k:] + path[:k]
        loop = " -> ".join(path + [path[0]])
        if len(path) > 2 * MAX_NAMED:  # name both ends of a long loop, count the middle
            loop = (
                " -> ".join(path[:MAX_NAMED])
                + f" -> ... {len(path) - 2 * MAX_NAMED + 1:,} more ... -> "
                + " -> ".join(path[-MAX_NAMED + 1 :] + [path[0]])
            )
        out.append(
            Problem(
                first,
                f"blocks form a loop ({loop}); a network must flow one way: "
                f"remove the wire that goes back ({path[-1]} -> {path[0]})",
            )
        )
    return out


def _make_layer(graph: Graph, n: str) -> tuple[Layer | None, Problem | None]:
    """The block's layer object (its settings re-checked), or the problem with them."""
    type_name = graph.type_of(n)
    cls = LAYER_TYPES.get(type_name)
    if cls is None:
        known = ", ".join(sorted(LAYER_TYPES))
        return None, Problem(
            n, f"unknown block type {type_name!r}; replace it with one of: {known}"
        )
    config = graph.config_of(n)
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        return None, Problem(
            n, "its settings must be an object of named values; reset the block's settings"
        )
    try:
        return cls(name=n, **config), None
    except BlockPropError as e:
        return None, Problem(n, f"{e.message}; correct it in the block's settings")


def _pair(v: Any, n: int) -> tuple[int, ...] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    if isinstance(v, (list, tuple)) and len(v) == n:
        return tuple(int(p) for p in v)
    return None


def _kernel_problem(layer: Layer, in_shape: tuple, source: str) -> Problem | None:
    """A conv/pool kernel larger than its (padded) input: the layer's output would be empty."""
    cfg = layer.config
    if "kernel_size" not in cfg or layer.grows_input or len(in_shape) < 2:
        return None
    spatial = tuple(in_shape[1:])
    pad = cfg.get("padding", 0)
    if pad == "same":
        return None
    k = _pair(cfg["kernel_size"], len(spatial))
    p = _pair(0 if pad in ("valid", None) else pad, len(spatial))
    if k is None or p is None:
        return None  # the layer's own shape check reports mismatched ranks
    if all(s + 2 * q >= kk for s, q, kk in zip(spatial, p, k, strict=True)):
        return None
    padded = "x".join(str(s + 2 * q) for s, q in zip(spatial, p, strict=True))
    kernel = "x".join(map(str, k))
    fix = None
    popt = type(layer).all_options().get("padding")
    if popt is not None and popt.kind == "padding" and _pair(cfg.get("stride", 1), 1) == (1,):
        fix = {"kind": "set", "block": layer.name, "key": "padding", "value": "same"}
    how = 'use padding "same" or a smaller kernel' if fix else "use padding or a smaller kernel"
    return Problem(
        layer.name,
        f"its {kernel} kernel is larger than its input ({padded} after "
        f"padding, from '{source}'): {how}",
        fix,
    )


def _pre_check(layer: Layer, in_shape: Any, preds: list[str]) -> Problem | None:
    """Mistakes worth a specific message (and a fix) before asking the layer for its shape."""
    if len(preds) != 1:
        return None
    said = layer.input_problem(in_shape, preds[0])
    return Problem(layer.name, *said) if said else _kernel_problem(layer, in_shape, preds[0])


def _link_problem(
    layer: Layer, n: str, layers: dict[str, Layer | None], shapes: dict, g: nx.DiGraph
) -> tuple[Problem | None, bool]:
    """(the problem with the blocks ``layer``'s settings link to (MaxUnpool2D's pool), whether
    to leave its shape unknown silently (the linked block is broken: its own problem says so))."""
    for key in type(layer).links:
        other = layer.config.get(key)
        if other is None:
            continue  # output_shape says what to set
        if other not in layers:
            return Problem(
                n, f"'{key}' names block '{other}', which is not in the graph: set it to an id"
            ), False
        if other not in nx.ancestors(g, n):
            return Problem(
                n,
                f"'{key}' names block '{other}', which does not run before it: it must be "
                "upstream of this block (wired into the path leading here)",
            ), False
        partner = layers[other]
        if partner is None or shapes.get(other) is None:
            return None, True
        try:
            layer.bind(key, partner)
        except BlockPropError as e:
            return Problem(n, e.message), False
    return None, False


def _arity_problem(cls: type[Layer], n: str, preds: list[str]) -> Problem | None:
    lo, hi = cls.arity
    k = len(preds)
    if lo <= k and (hi is None or k <= hi):
        return None
    t = cls.type_name
    if hi == 0:
        wires = "the wire" if k == 1 else "the wires"
        return Problem(n, f"{t} takes no inputs: remove {wires} from {named(preds)}")
    if hi == 1 and k == 0:
        return Problem(n, f"{t} has no input: wire a block into it")
    if hi == 1:
        return Problem(
            n,
            f"{t} takes exactly one input but gets {k:,} (from {named(preds)}): "
            "remove wires, or join them first with Add or Concat",
        )
    need = f"{lo} or more" if hi is None else f"{lo} to {hi}"
    what = " of equal shape" if t == "Add" else ""
    return Problem(n, f"{t} needs {need} inputs{what} but gets {k}: wire another block into it")


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
        layers[n], p = _make_layer(graph, n)
        if p:
            problems.append(p)

    inputs = [n for n in g.nodes if a.types[n] == "Input"]
    if not inputs:
        problems.append(
            Problem(None, "the graph has no Input block: add one and wire it to the first block")
        )
    for extra in inputs[1:]:
        problems.append(
            Problem(
                extra,
                f"a second Input (the graph's Input is '{inputs[0]}'); "
                "a graph has exactly one: delete this one",
            )
        )
    if len(inputs) == 1:
        a.input_id = inputs[0]
    problems.extend(_cycle_problems(g))

    reached: set[str] = set(inputs)  # one search from every Input: linear however many
    frontier = list(inputs)
    while frontier:
        for s in g.successors(frontier.pop()):
            if s not in reached:
                reached.add(s)
                frontier.append(s)
    for n in a.order if inputs else ():
        if n not in reached and g.in_degree(n) == 0:
            problems.append(
                Problem(n, "not connected to the Input: wire a block into it, or delete it")
            )

    # Shapes flow from the Input; a block with an unknown input shape stays unknown, silently.
    in_cycle_or_after = set(stuck)
    costs: dict[str, Cost] = {}
    for n in order:
        a.shapes[n] = None
        a.in_shapes[n] = None
        a.params[n] = 0
        a.buffers[n] = 0
        layer = layers[n]
        if n not in reached or layer is None:
            continue
        preds = graph.inputs_of(n)
        p = _arity_problem(type(layer), n, preds)
        if p and a.types[n] != "Input":
            problems.append(p)
            continue
        if p:
            problems.append(p)  # an Input with wires into it still has its own shape
        if a.types[n] == "Input":
            in_shape: Any = tuple(layer.config["shape"])
        else:
            if any(a.shapes.get(s) is None for s in preds):
                continue
            shapes = [a.shapes[s] for s in preds]
            in_shape = shapes if type(layer).takes_list(len(shapes)) else shapes[0]
            p = _pre_check(layer, in_shape, preds)
            if p:
                problems.append(p)
                continue
        p, skip = _link_problem(layer, n, layers, a.shapes, g)
        if p or skip:
            problems += [p] if p else []
            continue
        try:
            out = tuple(int(d) for d in layer.output_shape(in_shape))
            pcount = int(layer.param_count(in_shape))
            if note := layer.param_note(in_shape):
                a.notes[n] = note
            bcount = sum(math.prod(s) for s in layer.buffer_shapes(in_shape).values())
        except BlockPropError as e:
            problems.append(Problem(n, e.message))
            continue
        except OverflowError:
            problems.append(
                Problem(
                    n,
                    f"sizes too large to compute for input "
                    f"{_shape_text(in_shape)}: use a much smaller input",
                )
            )
            continue
        if not out or min(out) < 1:
            problems.append(
                Problem(
                    n,
                    f"its output would be empty {_shape_text(out)} for input "
                    f"{_shape_text(in_shape)}: use padding, a smaller kernel "
                    "or a smaller stride",
                )
            )
            continue
        a.in_shapes[n], a.shapes[n] = in_shape, out
        layer.in_shape, layer.out_shape = in_shape, out  # for blocks linking to it
        a.params[n], a.buffers[n] = pcount, bcount
        costs[n] = block_cost(layer.config, in_shape, out, pcount, bcount, training)
    for n in stuck:
        a.shapes[n] = None
        a.in_shapes[n] = None
        a.params[n] = 0
        a.buffers[n] = 0

    sinks = [n for n in order if n in reached and g.out_degree(n) == 0 and n not in inputs[1:]]
    a.heads, head_problems, sinks = split_heads(graph, sinks)  # engine.heads: extra outputs
    problems.extend(head_problems)
    if len(sinks) == 1 and not in_cycle_or_after & reached:
        a.output_id = sinks[0]
    elif len(sinks) > 1:
        names = named(sinks)  # one short text shared by every problem: linear, not quadratic
        message = (
            f"the graph has {len(sinks):,} ends ({names}), blocks with no successor; a graph "
            "has one output (and any extra heads): wire this block into the rest, delete it, "
            "or make it an extra output (the training setting 'heads')"
        )
        fix = head_fix(graph, a.heads, len(sinks))
        problems.extend(Problem(s, message, fix and fix(s)) for s in sinks)

    if a.output_id is not None and a.output_id == a.input_id:
        problems.append(
            Problem(
                a.input_id,
                "the Input alone is not a network: add blocks after it (drag them from the "
                "palette, or double-click one there)",
            )
        )

    total = total_cost(costs, a.params)
    a.memory_fixed, a.memory_per_sample = total
    a.memory_bytes = total.at(a.batch_size)
    if a.memory_bytes > a.memory_limit and costs:
        problems.extend(_memory_problems(a, costs, total))

    rank = {n: i for i, n in enumerate(a.order)}
    problems.sort(key=lambda p: -1 if p.block is None else rank.get(p.block, len(rank)))
    a.problems = problems
    return a


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
                "?" if r.shape is None else _shape_text(r.shape),
                "?" if r.params is None else f"{r.params:,}",
            )
        )
        if a.flat is not None and r.id in a.members:  # a module's blocks, indented
            inner = set(a.members[r.id])
            rows += [
                (
                    f"  {f} ({t})",
                    "?" if s is None else _shape_text(s),
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
