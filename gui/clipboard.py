"""Copy and paste of blocks through the system clipboard.

A copied fragment goes on the clipboard twice: as JSON under BlockProp's own MIME type, and as
plain text (the same JSON), so pasting works between two BlockProp windows and a fragment can
be read or mailed. Pasting accepts either, and a whole graph file's JSON as text too.
Clipboard data is untrusted: every block is checked like a graph file's.
"""

from __future__ import annotations

import copy
import json
import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication

from engine.errors import ConfigError, GraphError
from engine.graph import Graph
from engine.graph_json import parse_json, valid_id
from engine.layers import LAYER_TYPES
from engine.modules.definition import (
    MODULE_KEY,
    MODULE_TYPE,
    check_definitions,
    check_instance,
    dependency_order,
)

MIME = "application/x-blockprop-fragment+json"
FORMAT = "blockprop-fragment"
MAX_BLOCKS = 5000


def to_mime(fragment: dict) -> QMimeData:
    text = json.dumps({"format": FORMAT, **fragment}, indent=1)
    data = QMimeData()
    data.setData(MIME, text.encode("utf-8"))
    data.setText(text)
    return data


def copy_fragment(fragment: dict) -> None:
    QGuiApplication.clipboard().setMimeData(to_mime(fragment))


def read_fragment(data: QMimeData | None = None) -> dict | None:
    """The fragment on the clipboard (or in ``data``), or None when there is none; GraphError
    for BlockProp data that cannot be read."""
    if data is None:
        data = QGuiApplication.clipboard().mimeData()
    if data is None:
        return None
    if data.hasFormat(MIME):
        text = bytes(data.data(MIME)).decode("utf-8", "replace")
    elif data.hasText():
        text = data.text()
    else:
        return None
    if len(text) > 20_000_000 or not text.lstrip().startswith("{"):
        return None
    try:  # a graph file's checks: huge numbers, deep nesting, lone surrogates are refused
        d = parse_json(text)
    except GraphError as e:
        if data.hasFormat(MIME) or '"blockprop-' in text:
            raise GraphError(f"the clipboard's blocks cannot be read: {e.message}") from None
        return None  # some other text that is not JSON
    if not isinstance(d, dict) or d.get("format") not in (FORMAT, "blockprop-graph"):
        return None
    out = {"nodes": d.get("nodes", []), "edges": d.get("edges", [])}
    if d.get("modules"):  # the definitions its module instances use
        out["modules"] = d["modules"]
    return out


def fragment_modules(graph: Graph, fragment: Any) -> tuple[dict[str, dict], dict[str, str]]:
    """(the fragment's module definitions the graph lacks, in the order they can be added;
    the names given to those that clash with a different definition of the graph: "Res" ->
    "Res 2"). Checked like a graph file's (GraphError / ConfigError)."""
    raw = fragment.get("modules") if isinstance(fragment, dict) else None
    if not raw:
        return {}, {}
    defs = check_definitions(raw)
    rename: dict[str, str] = {}
    for name, d in defs.items():
        if name in graph.modules and graph.modules[name] != d:
            new, k = name, 2
            while new in graph.modules or new in defs or new in rename.values():
                new, k = f"{name[:90]} {k}", k + 1
            rename[name] = new
    out: dict[str, dict] = {}
    for name in dependency_order(defs):
        d = copy.deepcopy(defs[name])
        for nd in d["nodes"]:
            if nd["type"] == MODULE_TYPE:
                nd["config"][MODULE_KEY] = rename.get(
                    nd["config"][MODULE_KEY], nd["config"][MODULE_KEY]
                )
        new = rename.get(name, name)
        if new not in graph.modules:
            out[new] = d
    return out, rename


def _fresh_id(graph: Graph, wanted: Any, type_name: str, taken: set[str]) -> str:
    if valid_id(wanted) and wanted not in graph and wanted not in taken:
        return wanted
    base = re.sub(r"[^a-z0-9]+", "_", type_name.lower()).strip("_") or "block"
    n = 1
    while f"{base}_{n}" in graph or f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def remap_fragment(
    graph: Graph, fragment: Any, offset=(40.0, 40.0), at=None
) -> tuple[list[dict], list[tuple[str, str, int]]]:
    """Check a fragment and give its blocks ids free in ``graph``. Returns (nodes, edges) ready
    for ``commands.AddBlocks``. Raises GraphError / ConfigError for bad data."""
    if not isinstance(fragment, dict):
        raise GraphError("the clipboard does not hold BlockProp blocks")
    nodes_in, edges_in = fragment.get("nodes", []), fragment.get("edges", [])
    if not isinstance(nodes_in, list) or not isinstance(edges_in, list):
        raise GraphError("the clipboard's blocks are not in BlockProp's format")
    if len(nodes_in) > MAX_BLOCKS:
        raise GraphError(f"too many blocks on the clipboard ({len(nodes_in)})")
    defs, rename = fragment_modules(graph, fragment)
    known = {**graph.modules, **defs}
    checked = []
    for i, nd in enumerate(nodes_in):
        is_module = isinstance(nd, dict) and nd.get("type") == MODULE_TYPE
        if not isinstance(nd, dict) or (nd.get("type") not in LAYER_TYPES and not is_module):
            raise GraphError(f"block #{i + 1} on the clipboard has no known type")
        config = nd.get("config", {})
        if not isinstance(config, dict):
            raise ConfigError('"config" must be an object', block=str(nd.get("id")))
        if is_module:
            config = {
                **config,
                MODULE_KEY: rename.get(config.get(MODULE_KEY), config.get(MODULE_KEY)),
            }
            check_instance(config, known, str(nd.get("id")))
        else:
            LAYER_TYPES[nd["type"]](name=str(nd.get("id")), **config)  # raises ConfigError
        pos = nd.get("pos", [0, 0])
        if (
            not isinstance(pos, list)
            or len(pos) != 2
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e8
                for v in pos
            )
        ):
            pos = [0, 0]
        checked.append((nd.get("id"), nd["type"], config, pos))
    if not checked:
        return [], []
    if at is not None:
        x0 = min(p[0] for *_, p in checked)
        y0 = min(p[1] for *_, p in checked)
        dx, dy = at[0] - x0, at[1] - y0
    else:
        dx, dy = offset
    taken: set[str] = set()
    mapping: dict[Any, str] = {}
    nodes = []
    for old, type_name, config, pos in checked:
        new = _fresh_id(graph, old, type_name, taken)
        taken.add(new)
        if isinstance(old, str):
            mapping[old] = new
        nodes.append(
            {
                "id": new,
                "type": type_name,
                "config": config,
                "pos": (round(pos[0] + dx), round(pos[1] + dy)),
            }
        )
    edges, seen_ports = [], set()
    for e in edges_in:
        if not isinstance(e, dict):
            continue
        s, t, p = mapping.get(e.get("source")), mapping.get(e.get("target")), e.get("target_port")
        if (
            s is None
            or t is None
            or s == t
            or not isinstance(p, int)
            or isinstance(p, bool)
            or not 0 <= p < 64
            or (t, p) in seen_ports
        ):
            continue
        seen_ports.add((t, p))
        edges.append((s, t, p))
    # A pasted fragment never brings a loop (a bad clipboard could hold one).
    order: TopologicalSorter = TopologicalSorter()
    for s, t, _ in edges:
        order.add(t, s)
    try:
        order.prepare()
    except CycleError:
        raise GraphError("the blocks on the clipboard form a loop") from None
    if len({(s, t) for s, t, _ in edges}) != len(edges):
        edges = list({(s, t): (s, t, p) for s, t, p in edges}.values())
    return nodes, edges
