"""The flat graph a graph with module instances stands for, and its analysis folded back.

``flatten(graph)`` replaces every instance by its definition's blocks, recursively, with ids
``instance/inner`` (``stage1/block2/conv1`` when nested) and each parameter's value written into
the inner settings it targets. A wire into an instance's input port k becomes wires into the
inner blocks that port feeds; a wire out of an instance leaves from its definition's output
block. Analysis, the Model (training, gradients per inner block) and the NumPy export run on
this flat graph, so they are the plain-block code paths.

``analyze_modular`` folds the flat analysis back: an instance's shape is its output block's,
its parameter count the sum of its blocks', and a problem inside it stays on the instance with
its ``instance/inner`` path in the message. ``Analysis.flat`` keeps the flat analysis (shapes
and parameter counts per inner block) and ``Analysis.members`` each instance's inner blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import BlockPropError, GraphError
from engine.modules.definition import MODULE_KEY, MODULE_TYPE, inner_config

if TYPE_CHECKING:
    from engine.analysis import Analysis
    from engine.graph import Graph

Targets = list[tuple[str, int]]  # (flat block, input port) an input port feeds


@dataclass
class Flat:
    """A flattened graph and how its blocks relate to the original's."""

    graph: Graph
    top: dict[str, str] = field(default_factory=dict)  # flat id -> top-level block
    members: dict[str, list[str]] = field(default_factory=dict)  # instance -> flat ids
    exits: dict[str, str] = field(default_factory=dict)  # instance -> flat output block
    # every instance at any depth (flat path like "stage/res_1") -> its definition's name
    instances: dict[str, str] = field(default_factory=dict)


class _Scope:
    """One graph level being expanded: the top-level graph, or a definition with values."""

    def __init__(self, nodes: list[dict], edges: list[tuple[str, str, int]], prefix: str):
        self.nodes, self.edges, self.prefix = nodes, edges, prefix
        self.entry: dict[str, list[Targets]] = {}  # instance -> its ports' flat targets
        self.exit: dict[str, str] = {}  # block -> the flat block its output comes from


def _expand(
    flat: Graph, defs: dict, scope: _Scope, offset: tuple[float, float], seen: dict[str, str]
) -> None:
    """Add ``scope``'s blocks and wires to ``flat`` (recursing into instances)."""
    ox, oy = offset
    for nd in scope.nodes:
        fid = scope.prefix + nd["id"]
        pos = (nd["pos"][0] + ox, nd["pos"][1] + oy)
        if nd["type"] != MODULE_TYPE:
            if fid in flat:
                raise GraphError(f"block id '{fid}' is taken twice once modules are expanded")
            flat.add_node(nd["type"], nd["config"], pos, node_id=fid)
            scope.exit[nd["id"]] = fid
            continue
        d = defs[nd["config"][MODULE_KEY]]
        seen[fid] = nd["config"][MODULE_KEY]
        values = {k: v for k, v in nd["config"].items() if k != MODULE_KEY}
        inner = _Scope(
            [{**n, "config": inner_config(d, n["id"], values)} for n in d["nodes"]],
            [(e["source"], e["target"], e["target_port"]) for e in d["edges"]],
            fid + "/",
        )
        ax = min(n["pos"][0] for n in d["nodes"])
        ay = min(n["pos"][1] for n in d["nodes"])
        _expand(flat, defs, inner, (pos[0] - ax, pos[1] - ay), seen)
        scope.exit[nd["id"]] = inner.exit[d["output"]]
        scope.entry[nd["id"]] = [
            [tp for t in port for tp in _targets(inner, t["block"], t["port"])]
            for port in d["inputs"]
        ]
    for s, t, p in scope.edges:
        for ft, fp in _targets(scope, t, p):
            flat.add_edge(scope.exit[s], ft, fp)


def _targets(scope: _Scope, block: str, port: int) -> Targets:
    if block not in scope.entry:
        return [(scope.prefix + block, port)]
    ports = scope.entry[block]
    if port >= len(ports):
        raise GraphError(
            f"a wire goes into input port {port}, but the module has {len(ports)} input"
            f"{'s' * (len(ports) != 1)}",
            block=scope.prefix + block,
        )
    return ports[port]


def flatten(graph: Graph) -> Flat:
    """The plain graph ``graph`` stands for (see the module docstring); BlockPropError naming
    the top-level block when an instance cannot be expanded."""
    from engine.graph import Graph

    flat = Graph(graph.name, graph.description, graph.training)
    out = Flat(flat)
    entries: dict[str, list[Targets]] = {}  # instance -> its input ports' flat targets
    for n in graph.nodes():
        nd = graph.node(n)
        scope = _Scope([{"id": n, **nd}], [], "")
        try:
            _expand(flat, graph.modules, scope, (0.0, 0.0), out.instances)
        except BlockPropError as e:
            where = f"in '{e.block}': " if e.block and e.block != n else ""
            raise type(e)(where + e.message, block=n) from None
        added = flat.nodes()[len(out.top) :]
        out.top |= dict.fromkeys(added, n)
        if nd["type"] == MODULE_TYPE:
            out.exits[n], out.members[n], entries[n] = scope.exit[n], added, scope.entry[n]
    heads = graph.training.get("heads")  # a head naming an instance: its output block
    if isinstance(heads, list):
        flat.training["heads"] = [
            {**h, "block": out.exits.get(h["block"], h["block"])}
            if isinstance(h, dict) and isinstance(h.get("block"), str)
            else h
            for h in heads
        ]
    heads = flat.training.get("heads") if isinstance(flat.training, dict) else None
    if isinstance(heads, list):  # engine.heads: an instance as a head is its output block
        flat.training = {
            **flat.training,
            "heads": [
                {**h, "block": out.exits[h["block"]]}
                if isinstance(h, dict)
                and isinstance(h.get("block"), str)
                and h["block"] in out.exits
                else h
                for h in heads
            ],
        }
    for s, t, p in graph.edges():
        targets = [(t, p)]
        if t in entries:
            n_in = len(entries[t])
            if p >= n_in:
                raise GraphError(
                    f"'{s}' is wired into input port {p}, but its module has {n_in} input"
                    f"{'s' * (n_in != 1)}",
                    block=t,
                )
            targets = entries[t][p]
        for ft, fp in targets:
            try:
                flat.add_edge(out.exits.get(s, s), ft, fp)
            except BlockPropError as e:
                raise GraphError(f"in '{ft}': {e.message}", block=t) from None
    return out


def analyze_modular(
    graph: Graph, batch_size: int | None, memory_limit: int | None, training: bool
) -> Analysis:
    """``engine.analyze`` of a graph holding instances (see the module docstring)."""
    from engine.analysis import Analysis, Problem, analyze, run_batch_size

    a = Analysis(name=graph.name, training=training)
    a.batch_size = run_batch_size(graph.training, batch_size)
    a.types = {n: graph.type_of(n) for n in graph.nodes()}
    a.module_of = {n: graph.config_of(n)[MODULE_KEY] for n in graph.instances_of_any()}
    order, stuck = graph.topological_order()
    a.order = order + stuck
    try:
        flat = flatten(graph)
    except BlockPropError as e:
        a.problems = [Problem(e.block, e.message)]
        for n in a.order:
            a.shapes[n] = a.in_shapes[n] = None
            a.params[n] = a.buffers[n] = 0
        return a
    fa = analyze(flat.graph, batch_size, memory_limit, training)
    a.flat, a.members = fa, flat.members
    a.memory_limit, a.memory_bytes = fa.memory_limit, fa.memory_bytes
    a.memory_fixed, a.memory_per_sample = fa.memory_fixed, fa.memory_per_sample
    for n in a.order:
        if n in flat.members:
            inner = flat.members[n]
            a.shapes[n] = fa.shapes.get(flat.exits[n])
            preds = [a.shapes.get(s) for s in graph.inputs_of(n)]
            a.in_shapes[n] = preds[0] if len(preds) == 1 else preds
            a.params[n] = sum(fa.params.get(f, 0) for f in inner)
            a.buffers[n] = sum(fa.buffers.get(f, 0) for f in inner)
        else:
            a.shapes[n] = fa.shapes.get(n)
            a.in_shapes[n] = fa.in_shapes.get(n)
            a.params[n], a.buffers[n] = fa.params.get(n, 0), fa.buffers.get(n, 0)
            if n in fa.notes:
                a.notes[n] = fa.notes[n]
    a.heads = {flat.top.get(b, b): w for b, w in fa.heads.items()}
    a.input_id = flat.top.get(fa.input_id) if fa.input_id else None
    a.output_id = flat.top.get(fa.output_id) if fa.output_id else None
    a.heads = {flat.top.get(h, h): w for h, w in fa.heads.items()}
    for p in fa.problems:
        top = flat.top.get(p.block, p.block) if p.block is not None else None
        if top == p.block:
            a.problems.append(p)
        else:
            a.problems.append(Problem(top, f"in '{p.block}': {p.message}"))
    return a
