"""Module definitions: what a graph file's ``"modules"`` part may hold, checked field by field.

A definition is a small graph of its own, stored once per graph file::

    {"nodes":   [{"id": "c1", "type": "Conv2D", "config": {...}, "pos": [x, y]}, ...],
     "edges":   [{"source": "c1", "target": "r1", "target_port": 0}, ...],
     "inputs":  [[{"block": "c1", "port": 0}, {"block": "add", "port": 1}]],  # per input port
     "output":  "add",                                  # the inner block whose output it gives
     "params":  {"filters": {"default": 64, "targets": [["c1", "filters"], ["c2", "filters"]]}},
     "description": ""}

An instance is a block of type ``MODULE_TYPE`` whose config names the definition (``"module"``)
and gives values of its parameters; a parameter's value is written into every inner setting it
targets. Inner blocks may be instances themselves (a ResNet stage holding residual blocks).

A definition is untrusted input: every field is checked, sizes are capped, a module that
contains itself (directly or through others) is refused naming the loop, nesting is at most
``MAX_NESTING`` deep and the fully expanded graph at most ``MAX_EXPANDED`` blocks, so a small
file cannot expand into millions of blocks.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from engine.errors import BlockPropError, ConfigError, GraphError
from engine.escaping import escape
from engine.graph_json import check_id, check_pos

MODULE_TYPE = "Module"  # the "type" of an instance block
MODULE_KEY = "module"  # the config key naming an instance's definition
MAX_DEFINITIONS = 500
MAX_INNER_BLOCKS = 5_000
MAX_INNER_EDGES = 20_000
MAX_PORTS = 64
MAX_PARAMS = 64
MAX_TARGETS = 256
MAX_NESTING = 8
MAX_EXPANDED = 200_000
MAX_DESCRIPTION = 10_000
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DEF_FIELDS = ("nodes", "edges", "inputs", "output", "params", "description")


def _err(name: str, message: str) -> GraphError:
    return GraphError(f"module '{escape(name, ascii_only=False)}': {message}")


def check_name(name: Any) -> str:
    """A definition's name: an id-like string without '/' (flat paths use it)."""
    name = check_id(name, "a module's name")
    if len(name) > 100 or "/" in name:
        raise GraphError(f"a module's name has at most 100 characters and no '/', got {name!r}")
    return name


def _list(value: Any, what: str, cap: int, name: str) -> list:
    if not isinstance(value, list):
        raise _err(name, f'"{what}" must be a list')
    if len(value) > cap:
        raise _err(name, f'"{what}" holds {len(value):,} entries; at most {cap:,} are allowed')
    return value


def _shallow(name: str, d: Any) -> dict:
    """Check the structure of one definition (types, sizes, ids); returns a normalised copy."""
    if not isinstance(d, dict):
        raise _err(name, "a definition must be an object")
    extra = sorted(set(d) - set(DEF_FIELDS), key=str)
    if extra:
        raise _err(name, f"unknown field {extra[0]!r} (a definition holds {', '.join(DEF_FIELDS)})")
    nodes = []
    ids: set[str] = set()
    for i, nd in enumerate(_list(d.get("nodes", []), "nodes", MAX_INNER_BLOCKS, name)):
        if not isinstance(nd, dict) or set(nd) - {"id", "type", "config", "pos"}:
            raise _err(name, f"node #{i + 1} must be an object with id, type, config, pos")
        nid = check_id(nd.get("id"), f"module '{name}' node #{i + 1}'s id")
        if "/" in nid:
            raise _err(name, f"inner block id {nid!r} must not hold '/' (it separates paths)")
        if nid in ids:
            raise _err(name, f"two inner blocks have the id {nid!r}")
        ids.add(nid)
        if not isinstance(nd.get("type"), str) or not isinstance(nd.get("config", {}), dict):
            raise _err(name, f"inner block {nid!r} needs a type name and a config object")
        if nd["type"] == MODULE_TYPE and not isinstance(nd.get("config", {}).get(MODULE_KEY), str):
            raise _err(name, f"inner block {nid!r} is a module instance: 'module' names one")
        nodes.append(
            {
                "id": nid,
                "type": nd["type"],
                "config": copy.deepcopy(nd.get("config", {})),
                "pos": list(check_pos(nd.get("pos", [0, 0]), nid)),
            }
        )
    if not nodes:
        raise _err(name, "a module holds at least one block")
    edges = []
    for i, e in enumerate(_list(d.get("edges", []), "edges", MAX_INNER_EDGES, name)):
        if not isinstance(e, dict) or set(e) != {"source", "target", "target_port"}:
            raise _err(name, f"edge #{i + 1} must be an object with source, target, target_port")
        p = e["target_port"]
        if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < 64:
            raise _err(name, f"edge #{i + 1}: target_port is an integer 0-63, got {p!r}")
        edges.append(dict(e))
    inputs = []
    for k, port in enumerate(_list(d.get("inputs", []), "inputs", MAX_PORTS, name)):
        targets = _list(port, f"inputs[{k}]", MAX_TARGETS, name)
        if not targets:
            raise _err(name, f"input port {k} feeds no block")
        norm = []
        for t in targets:
            if not isinstance(t, dict) or set(t) != {"block", "port"}:
                raise _err(name, f"input port {k}: each target is {{'block': id, 'port': n}}")
            if not isinstance(t["block"], str) or t["block"] not in ids:
                raise _err(name, f"input port {k} feeds {t['block']!r}, which it does not hold")
            p = t["port"]
            if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < 64:
                raise _err(name, f"input port {k}: a target port is an integer 0-63, got {p!r}")
            norm.append({"block": t["block"], "port": p})
        inputs.append(norm)
    output = d.get("output")
    if not isinstance(output, str) or output not in ids:
        raise _err(name, f'"output" must name one of its blocks, got {output!r}')
    params = {}
    raw_params = d.get("params", {})
    if not isinstance(raw_params, dict) or len(raw_params) > MAX_PARAMS:
        raise _err(name, f'"params" must be an object of at most {MAX_PARAMS} parameters')
    for pname, spec in raw_params.items():
        if not isinstance(pname, str) or not _PARAM_NAME.fullmatch(pname) or pname == MODULE_KEY:
            raise _err(name, f"parameter name {pname!r} must be an identifier (not 'module')")
        if not isinstance(spec, dict) or set(spec) != {"default", "targets"}:
            raise _err(name, f"parameter {pname!r} must be an object with default and targets")
        targets = _list(spec["targets"], f"params.{pname}.targets", MAX_TARGETS, name)
        if not targets:
            raise _err(name, f"parameter {pname!r} sets no inner setting")
        norm_t = []
        for t in targets:
            if (
                not isinstance(t, list)
                or len(t) != 2
                or not isinstance(t[0], str)
                or t[0] not in ids
                or not isinstance(t[1], str)
                or t[1] == MODULE_KEY
            ):
                raise _err(name, f"parameter {pname!r}: a target is [inner block id, setting]")
            norm_t.append([t[0], t[1]])
        params[pname] = {"default": copy.deepcopy(spec["default"]), "targets": norm_t}
    desc = d.get("description", "")
    if not isinstance(desc, str) or len(desc) > MAX_DESCRIPTION:
        raise _err(name, f'"description" must be a string of at most {MAX_DESCRIPTION} characters')
    return {
        "nodes": nodes,
        "edges": edges,
        "inputs": inputs,
        "output": output,
        "params": params,
        "description": desc,
    }


def uses(definition: dict) -> list[str]:
    """The names of the definitions ``definition``'s inner instances refer to."""
    return [nd["config"].get(MODULE_KEY) for nd in definition["nodes"] if nd["type"] == MODULE_TYPE]


def dependency_order(defs: dict[str, dict]) -> list[str]:
    """The definitions, each after those it holds instances of; refuses an unknown name, a
    module that contains itself (naming the loop), nesting deeper than MAX_NESTING and an
    expansion larger than MAX_EXPANDED blocks."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    order: list[str] = []
    size: dict[str, int] = {}
    depth: dict[str, int] = {}
    for root in defs:
        if state.get(root):
            continue
        # An explicit stack (a hostile file cannot exhaust Python's recursion).
        stack: list[tuple[str, list[str]]] = [(root, list(dict.fromkeys(uses(defs[root]))))]
        path = [root]
        state[root] = 1
        while stack:
            name, todo = stack[-1]
            if todo:
                child = todo.pop()
                if not isinstance(child, str) or child not in defs:
                    raise _err(name, f"holds an instance of {child!r}, which is not defined")
                if state.get(child) == 1:
                    loop = " -> ".join(path[path.index(child) :] + [child])
                    raise _err(child, f"contains itself ({loop}); a module cannot hold itself")
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, list(dict.fromkeys(uses(defs[child])))))
                continue
            stack.pop()
            path.pop()
            state[name] = 2
            kids = uses(defs[name])
            depth[name] = 1 + max((depth[c] for c in kids), default=0)
            size[name] = sum(size[c] for c in kids) + len(defs[name]["nodes"]) - len(kids)
            if depth[name] > MAX_NESTING:
                raise _err(name, f"nests modules {depth[name]} deep; at most {MAX_NESTING}")
            if size[name] > MAX_EXPANDED:
                raise _err(
                    name, f"expands to {size[name]:,} blocks; at most {MAX_EXPANDED:,} are allowed"
                )
            order.append(name)
    return order


def inner_config(definition: dict, node_id: str, values: dict) -> dict:
    """The config of inner block ``node_id`` with the instance's parameter ``values`` (the
    definition's defaults where it gives none) written into the settings they target."""
    cfg = copy.deepcopy(next(nd for nd in definition["nodes"] if nd["id"] == node_id)["config"])
    for pname, spec in definition["params"].items():
        for block, key in spec["targets"]:
            if block == node_id:
                cfg[key] = copy.deepcopy(values.get(pname, spec["default"]))
    return cfg


def check_instance(config: Any, defs: dict[str, dict], block: str | None) -> dict:
    """An instance block's config, checked against its definition: ``"module"`` names a
    definition, every other key is one of its parameters, and each value is valid for every
    inner setting it targets (ConfigError naming ``block/inner``)."""
    if not isinstance(config, dict):
        raise ConfigError("settings must be an object", block=block)
    name = config.get(MODULE_KEY)
    if not isinstance(name, str) or name not in defs:
        known = ", ".join(sorted(defs)) or "none defined"
        raise ConfigError(
            f"'module' must name a module of this graph, got {name!r} (its modules: {known})",
            block=block,
        )
    d = defs[name]
    values = {k: v for k, v in config.items() if k != MODULE_KEY}
    unknown = [k for k in values if k not in d["params"]]
    if unknown:
        known = ", ".join(d["params"]) or "none"
        raise ConfigError(
            f"module '{name}' has no parameter {unknown[0]!r} (its parameters: {known})",
            block=block,
        )
    check_targets(d, defs, values, f"{block or name}/")
    return copy.deepcopy(config)


def check_targets(d: dict, defs: dict[str, dict], values: dict, prefix: str) -> None:
    """Check each inner block a parameter targets with ``values`` applied (ConfigError)."""
    from engine.layers import LAYER_TYPES
    from engine.settings import check_spec

    touched = {block for spec in d["params"].values() for block, _ in spec["targets"]}
    for nd in d["nodes"]:
        if nd["id"] not in touched:
            continue
        cfg = inner_config(d, nd["id"], values)
        where = prefix + nd["id"]
        if nd["type"] == MODULE_TYPE:
            check_instance(cfg, defs, where)
            continue
        cls = LAYER_TYPES.get(nd["type"])
        if cls is None:
            raise ConfigError(f"unknown block type {nd['type']!r}", block=where)
        check_spec(cls.type_name, cfg, cls.all_options(), block=where)
        cls(name=where, **cfg)


def check_definitions(raw: Any) -> dict[str, dict]:
    """A graph file's ``"modules"`` object, every definition checked (GraphError/ConfigError
    naming the module); returns normalised copies, in the file's order."""
    if not isinstance(raw, dict):
        raise GraphError('"modules" must be an object of named module definitions')
    if len(raw) > MAX_DEFINITIONS:
        raise GraphError(
            f'"modules" holds {len(raw):,} definitions; at most {MAX_DEFINITIONS} are allowed'
        )
    defs = {check_name(n): _shallow(n, d) for n, d in raw.items()}
    for name in dependency_order(defs):
        check_inner(name, defs)
    return defs


def check_inner(name: str, defs: dict[str, dict]) -> None:
    """Check one definition's blocks, wires, ports and parameters as a graph of its own (the
    definitions it uses must be checked already)."""
    from engine.graph import Graph

    d = defs[name]
    g = Graph(name=name)
    g.modules = defs
    try:
        for nd in d["nodes"]:
            g.add_node(nd["type"], nd["config"], nd["pos"], node_id=nd["id"])
        for e in d["edges"]:
            g.add_edge(e["source"], e["target"], e["target_port"])
    except BlockPropError as e:
        where = f", block '{escape(e.block, ascii_only=False)}'" if e.block else ""
        raise type(e)(f"module '{escape(name, ascii_only=False)}'{where}: {e.message}") from None
    used = {(t, p) for _, t, p in g.edges()}
    for k, port in enumerate(d["inputs"]):
        for t in port:
            key = (t["block"], t["port"])
            if key in used:
                raise _err(name, f"input port {k}: port {t['port']} of {t['block']!r} is taken")
            used.add(key)
    for pname, spec in d["params"].items():
        for block, key in spec["targets"]:
            typ = g.type_of(block)
            if typ == MODULE_TYPE:
                inner = defs[g.config_of(block)[MODULE_KEY]]
                ok = key in inner["params"]
            else:
                from engine.layers import LAYER_TYPES

                ok = key in LAYER_TYPES[typ].all_options()
            if not ok:
                raise _err(name, f"parameter {pname!r} targets {block!r}'s {key!r}, not a setting")
    check_targets(d, defs, {}, f"{name}/")


def parameters_of(defs: dict[str, dict], name: str) -> dict[str, Any]:
    """A definition's parameters and their defaults."""
    return {p: copy.deepcopy(s["default"]) for p, s in defs[name]["params"].items()}


def closure(defs: dict[str, dict], names: list[str] | str) -> dict[str, dict]:
    """Definitions ``names`` and every definition they use, directly or not (copies)."""
    out: dict[str, dict] = {}
    todo = [names] if isinstance(names, str) else list(names)
    while todo:
        n = todo.pop()
        if n in out or n not in defs:
            continue
        out[n] = copy.deepcopy(defs[n])
        todo += uses(defs[n])
    return out
