"""The module edits the app offers, as plain functions of an engine.Graph (each made of Graph
method calls, so every change sends its events):

- ``group(graph, ids, name)``: the blocks become one instance of a new definition ``name``;
- ``ungroup(graph, instance)``: the instance's blocks come back (its definition is dropped when
  nothing else uses it), so group then ungroup gives back the graph's ``to_dict()``;
- ``make_unique(graph, instance)``: the instance gets a copy of its definition of its own;
- ``definition_graph`` / ``updated_definition``: a definition as a Graph to edit, and back;
- ``expose(graph, name, param, targets)``: an inner setting becomes a module parameter.

A module has any number of input ports (one per outside block feeding the selection) and one
output (the block whose value leaves the selection).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from engine.errors import GraphError
from engine.escaping import escape
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE, check_name, inner_config, uses

if TYPE_CHECKING:
    from engine.graph import Graph


def _q(text: str) -> str:
    return escape(text, ascii_only=False)


def _plan_group(graph: Graph, ids: list[str], name: str) -> tuple[dict, list, list]:
    """(definition, the wires coming in (source, target, port), the wires going out)."""
    chosen = set(ids)
    missing = [n for n in ids if n not in graph]
    if not ids or missing or len(chosen) != len(ids):
        raise GraphError(
            f"cannot group: no such block {missing[0]!r}"
            if missing
            else "cannot group: select some blocks, each once"
        )
    check_name(name)
    if name in graph.modules:
        raise GraphError(f"a module named '{_q(name)}' exists already: choose another name")
    for n in ids:
        t = graph.type_of(n)
        if t != MODULE_TYPE and LAYER_TYPES[t].arity[1] == 0:
            raise GraphError("the graph's Input cannot go into a module: leave it out", block=n)
    edges = graph.edges()
    coming = [e for e in edges if e[0] not in chosen and e[1] in chosen]
    going = [e for e in edges if e[0] in chosen and e[1] not in chosen]
    inside = [e for e in edges if e[0] in chosen and e[1] in chosen]
    leaving = list(dict.fromkeys(s for s, _, _ in going))
    if len(leaving) > 1:
        raise GraphError(
            f"a module has one output, but '{_q(leaving[0])}' and '{_q(leaving[1])}' both feed "
            "blocks outside the selection: select fewer or more blocks"
        )
    ends = [n for n in ids if not graph.outputs_of(n)]
    if leaving and ends:
        raise GraphError(
            f"a module has one output, but '{_q(ends[0])}' ends inside the selection while "
            f"'{_q(leaving[0])}' feeds the rest: leave '{_q(ends[0])}' out"
        )
    if not leaving:
        if len(ends) != 1:
            raise GraphError(
                f"a module has one output, but the selection ends in {len(ends)} blocks "
                f"('{_q(ends[0])}', '{_q(ends[1])}'...): select blocks that end in one"
            )
        leaving = ends
    sources = list(dict.fromkeys(s for s, _, _ in coming))
    order = [n for n in graph.nodes() if n in chosen]
    definition = {
        "nodes": [{"id": n, **graph.node(n)} for n in order],
        "edges": [{"source": s, "target": t, "target_port": p} for s, t, p in inside],
        "inputs": [[{"block": t, "port": p} for s, t, p in coming if s == src] for src in sources],
        "output": leaving[0],
        "params": {},
        "description": "",
    }
    for nd in definition["nodes"]:
        nd["pos"] = list(nd["pos"])
    return definition, coming, going


def group(graph: Graph, ids: list[str], name: str, node_id: str | None = None) -> str:
    """Replace blocks ``ids`` by one instance of a new module ``name`` (GraphError, changing
    nothing, when they cannot form one). Returns the instance's id."""
    definition, coming, going = _plan_group(graph, list(ids), name)
    chosen = set(ids)
    node_order, edge_order = graph.nodes(), graph.edges()
    inst = graph.new_id(name) if node_id is None else node_id
    if inst in graph and inst not in chosen:
        raise GraphError("a block with this id already exists", block=inst)
    sources = list(dict.fromkeys(s for s, _, _ in coming))
    graph.set_module(name, definition)
    for n in [n for n in node_order if n in chosen]:
        graph.remove_node(n)
    anchor = (
        min(nd["pos"][0] for nd in definition["nodes"]),
        min(nd["pos"][1] for nd in definition["nodes"]),
    )
    graph.add_node(MODULE_TYPE, {MODULE_KEY: name}, anchor, node_id=inst)
    new_edges, seen = [], set()
    for s, t, p in edge_order:
        if s not in chosen and t not in chosen:
            new_edges.append((s, t, p))
        elif s not in chosen and s not in seen:
            seen.add(s)
            new_edges.append((s, inst, sources.index(s)))
        elif s in chosen and t not in chosen:
            new_edges.append((inst, t, p))
    for s, t, p in new_edges:
        if inst in (s, t):
            graph.add_edge(s, t, p)
    first = next(i for i, n in enumerate(node_order) if n in chosen)
    nodes = [n for n in node_order[:first] if n not in chosen] + [inst]
    nodes += [n for n in node_order[first:] if n not in chosen]
    graph.reorder(nodes, new_edges)
    return inst


def ungroup(graph: Graph, inst: str) -> list[str]:
    """Put an instance's blocks back in its place (its parameter values written into their
    settings); the definition goes when nothing else uses it. Returns the blocks' ids."""
    if inst not in graph or graph.type_of(inst) != MODULE_TYPE:
        raise GraphError("not a module instance: only a module can be ungrouped", block=inst)
    cfg = graph.config_of(inst)
    name = cfg[MODULE_KEY]
    d = copy.deepcopy(graph.modules[name])
    values = {k: v for k, v in cfg.items() if k != MODULE_KEY}
    node_order, edge_order = graph.nodes(), graph.edges()
    taken = set(node_order) - {inst}
    ids: dict[str, str] = {}
    for nd in d["nodes"]:
        new = nd["id"]
        k = 2
        while new in taken:
            new, k = f"{nd['id']}_{k}", k + 1
        taken.add(new)
        ids[nd["id"]] = new
    ix, iy = graph.pos_of(inst)
    ax = min(nd["pos"][0] for nd in d["nodes"])
    ay = min(nd["pos"][1] for nd in d["nodes"])
    region = []
    for s, t, p in edge_order:
        if t == inst:
            region += [(s, ids[x["block"]], x["port"]) for x in d["inputs"][p]]
        elif s == inst:
            region.append((ids[d["output"]], t, p))
    region += [(ids[e["source"]], ids[e["target"]], e["target_port"]) for e in d["edges"]]
    graph.remove_node(inst)
    for nd in d["nodes"]:
        pos = (nd["pos"][0] + (ix - ax), nd["pos"][1] + (iy - ay))
        graph.add_node(nd["type"], inner_config(d, nd["id"], values), pos, node_id=ids[nd["id"]])
    for s, t, p in region:
        graph.add_edge(s, t, p)
    still_used = graph.instances_of(name) or any(name in uses(x) for x in graph.modules.values())
    if not still_used:
        graph.set_module(name, None)
    k = node_order.index(inst)
    nodes = node_order[:k] + list(ids.values()) + node_order[k + 1 :]
    rank = {n: i for i, n in enumerate(nodes)}
    region.sort(key=lambda e: (rank[e[1]], e[2]))  # the region in flow order, as files list it
    first = next((i for i, e in enumerate(edge_order) if inst in e[:2]), len(edge_order))
    edges = [e for e in edge_order[:first] if inst not in e[:2]] + region
    edges += [e for e in edge_order[first:] if inst not in e[:2]]
    graph.reorder(nodes, edges)
    return list(ids.values())


def fresh_name(graph: Graph, base: str) -> str:
    """``base``, or ``base 2``, ``base 3``... whichever no module of ``graph`` has."""
    name, k = base, 2
    while name in graph.modules:
        name, k = f"{base[:90]} {k}", k + 1
    return name


def make_unique(graph: Graph, inst: str, name: str | None = None) -> str:
    """Give instance ``inst`` a copy of its definition of its own (so editing it changes no
    other instance). Returns the new definition's name."""
    if inst not in graph or graph.type_of(inst) != MODULE_TYPE:
        raise GraphError("not a module instance", block=inst)
    cfg = graph.config_of(inst)
    new = fresh_name(graph, cfg[MODULE_KEY]) if name is None else check_name(name)
    if new in graph.modules:
        raise GraphError(f"a module named '{_q(new)}' exists already")
    graph.set_module(new, copy.deepcopy(graph.modules[cfg[MODULE_KEY]]))
    graph.set_config(inst, {**cfg, MODULE_KEY: new})
    return new


def definition_graph(graph: Graph, name: str) -> Graph:
    """Definition ``name`` as a Graph of its own (its blocks and inner wires; the graph's other
    definitions available to its instances), for editing. A setting a parameter sets shows
    the parameter's default (what an instance that sets nothing gets)."""
    from engine.graph import Graph

    d = graph.modules[name]
    sub = Graph(name=name, description=d["description"])
    sub.modules = {k: v for k, v in graph.modules.items() if k != name}
    for nd in d["nodes"]:
        sub.add_node(nd["type"], inner_config(d, nd["id"], {}), nd["pos"], node_id=nd["id"])
    for e in d["edges"]:
        sub.add_edge(e["source"], e["target"], e["target_port"])
    return sub


def updated_definition(old: dict, sub: Graph) -> dict:
    """Definition ``old`` with the blocks and wires of ``sub`` (an edited ``definition_graph``):
    input ports and parameters keep the targets whose blocks remain (a port or parameter left
    with none is dropped); a setting a parameter sets, changed in ``sub``, becomes the
    parameter's new default; GraphError when its output block is gone."""
    nodes = [{"id": n, **sub.node(n)} for n in sub.nodes()]
    for nd in nodes:
        nd["pos"] = list(nd["pos"])
    if old["output"] not in sub:
        raise GraphError(
            f"the module's output block '{_q(old['output'])}' was deleted: a module needs one"
        )
    used = {(t, p) for _, t, p in sub.edges()}
    inputs = [
        [x for x in port if x["block"] in sub and (x["block"], x["port"]) not in used]
        for port in old["inputs"]
    ]
    params = {}
    for pname, spec in old["params"].items():
        targets = [t for t in spec["targets"] if t[0] in sub]
        if not targets:
            continue
        default = spec["default"]
        for block, key in targets:  # the setting edited inside the definition
            shown = sub.config_of(block).get(key, default)
            if shown != default:
                default = shown
                break
        params[pname] = {"default": copy.deepcopy(default), "targets": targets}
    return {
        "nodes": nodes,
        "edges": [{"source": s, "target": t, "target_port": p} for s, t, p in sub.edges()],
        "inputs": [port for port in inputs if port],
        "output": old["output"],
        "params": params,
        "description": sub.description,
    }


def expose(graph: Graph, name: str, param: str, targets: list[list[str]], default=None) -> None:
    """Make the inner settings ``targets`` ([[block, key], ...]) parameter ``param`` of module
    ``name`` (default: the first target's current value), so each instance can set them."""
    d = copy.deepcopy(graph.modules[name])
    if default is None:
        block, key = targets[0]
        nd = next((x for x in d["nodes"] if x["id"] == block), None)
        if nd is None:
            raise GraphError(f"module '{_q(name)}' holds no block {block!r}")
        if nd["type"] == MODULE_TYPE:
            from engine.modules.definition import parameters_of

            default = {**parameters_of(graph.modules, nd["config"][MODULE_KEY]), **nd["config"]}
        else:
            default = graph_full(nd)
        if key not in default:
            raise GraphError(f"block {block!r} has no setting {key!r}")
        default = default[key]
    d["params"][param] = {"default": default, "targets": [list(t) for t in targets]}
    graph.set_module(name, d)


def graph_full(nd: dict) -> dict:
    """An inner block's settings with its layer's defaults."""
    from engine.settings import check_spec

    cls = LAYER_TYPES[nd["type"]]
    return check_spec(cls.type_name, nd["config"], cls.all_options(), block=nd["id"])
