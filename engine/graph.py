"""engine.Graph: the model the canvas edits, the graph file format, and its change events.

A Graph wraps a networkx DiGraph. Nodes are blocks with stable string ids and the attributes
``type``, ``config`` (only the settings the user gave; defaults are filled in by the layer) and
``pos``; an edge ``source -> target`` carries ``target_port`` (the input slot of the target).
Every change goes through a method here and emits one event (``engine.graph_events``) to the
subscribers (the canvas), so the view follows the model and never the other way round. Code
outside the engine reads and changes a Graph only through its methods, never through ``nx``.

A graph file is data: JSON, read with ``json.load`` and checked field by field. Nothing in it is
executed or unpickled.
"""

from __future__ import annotations

import copy
import heapq
import os
import re
from pathlib import Path
from typing import Any

import networkx as nx

from engine.errors import BlockPropError, ConfigError, GraphError
from engine.escaping import escape
from engine.graph_events import (
    ConfigChanged,
    EdgeAdded,
    EdgeRemoved,
    GraphEvent,
    Listener,
    MetaChanged,
    ModuleChanged,
    NodeAdded,
    NodeMoved,
    NodeRemoved,
    Reset,
)
from engine.graph_json import check_id, check_pos, parse_json, save_json_atomic
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE, check_instance
from engine.safe_io import read_limited
from engine.settings import check_spec

FORMAT = "blockprop-graph"
VERSION = 2  # the newest this build reads; a graph without modules is still saved as 1
MAX_FILE_BYTES = 50 * 1024 * 1024


class Graph:
    """A network of blocks. See the module docstring; events are documented on ``subscribe``."""

    def __init__(
        self, name: str = "untitled", description: str = "", training: dict | None = None
    ) -> None:
        self.nx = nx.DiGraph()
        self.name = name
        self.description = description
        self.training: dict = dict(training or {})
        # Module definitions by name (engine.modules.definition); instances refer to them.
        self.modules: dict[str, dict] = {}
        self._listeners: list[Listener] = []

    # --- events --------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` after every change, with one of ``engine.graph_events``:
        NodeAdded, NodeRemoved, NodeMoved, ConfigChanged, EdgeAdded, EdgeRemoved, MetaChanged,
        ModuleChanged (a definition was added, changed or removed), Reset (the whole graph was
        replaced)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: GraphEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # --- reading -------------------------------------------------------------------------------
    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def nodes(self) -> list[str]:
        return list(self.nx.nodes)

    def node(self, node_id: str) -> dict:
        """A copy of the node's attributes: {"type", "config", "pos"}."""
        if node_id not in self.nx:
            raise GraphError("no such block", block=node_id)
        a = self.nx.nodes[node_id]
        return {"type": a["type"], "config": copy.deepcopy(a["config"]), "pos": a["pos"]}

    def type_of(self, node_id: str) -> str:
        return self.nx.nodes[node_id]["type"]

    def config_of(self, node_id: str) -> dict:
        return copy.deepcopy(self.nx.nodes[node_id]["config"])

    def full_config(self, node_id: str) -> dict:
        """The node's settings with the layer's defaults filled in (an instance: its
        definition's parameter defaults)."""
        if self.type_of(node_id) == MODULE_TYPE:
            cfg = self.nx.nodes[node_id]["config"]
            d = self.modules[cfg[MODULE_KEY]]
            out = {MODULE_KEY: cfg[MODULE_KEY]}
            out |= {p: copy.deepcopy(cfg.get(p, s["default"])) for p, s in d["params"].items()}
            return out
        cls = LAYER_TYPES[self.type_of(node_id)]
        return check_spec(
            cls.type_name, self.nx.nodes[node_id]["config"], cls.all_options(), block=node_id
        )

    def pos_of(self, node_id: str) -> tuple[float, float]:
        return self.nx.nodes[node_id]["pos"]

    def edges(self) -> list[tuple[str, str, int]]:
        """(source, target, target_port) for every wire, in insertion order."""
        return [(s, t, d["target_port"]) for s, t, d in self.nx.edges(data=True)]

    def inputs_of(self, node_id: str) -> list[str]:
        """The sources feeding ``node_id``, ordered by target port."""
        preds = [(d["target_port"], s) for s, _, d in self.nx.in_edges(node_id, data=True)]
        return [s for _, s in sorted(preds)]

    def outputs_of(self, node_id: str) -> list[str]:
        return list(self.nx.successors(node_id))

    def has_edge(self, source: str, target: str) -> bool:
        return self.nx.has_edge(source, target)

    def port_of(self, source: str, target: str) -> int:
        """The input port of ``target`` that the wire from ``source`` feeds."""
        if not self.nx.has_edge(source, target):
            raise GraphError(f"no wire from '{source}' to '{target}'", block=target)
        return self.nx.edges[source, target]["target_port"]

    def in_edges(self, node_id: str) -> list[tuple[str, str, int]]:
        """(source, node_id, target_port) for every wire into ``node_id``, in insertion order."""
        return [(s, t, d["target_port"]) for s, t, d in self.nx.in_edges(node_id, data=True)]

    def descendants(self, node_id: str) -> set[str]:
        """Every block that ``node_id``'s output reaches, through any number of wires."""
        return nx.descendants(self.nx, node_id)

    def topological_order(self) -> tuple[list[str], list[str]]:
        """Kahn's topological sort, ties broken by insertion order, so the order is reproducible.
        Returns (sorted blocks, blocks left over: those in or after a loop, in insertion order).
        """
        g = self.nx
        rank = {n: i for i, n in enumerate(g.nodes)}
        indeg = {n: g.in_degree(n) for n in g.nodes}
        heap = [(rank[n], n) for n, d in indeg.items() if d == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for s in g.successors(n):
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(heap, (rank[s], s))
        done = set(order)
        return order, [n for n in g.nodes if n not in done]

    def without_loops(self) -> Graph:
        """A copy (no subscribers) without the wires that close loops, which a broken file may
        hold: each loop loses the last wire ``networkx.find_cycle`` reports for it."""
        h = Graph(self.name, self.description, self.training)
        h.nx = self.nx.copy()
        h.modules = copy.deepcopy(self.modules)
        while True:
            try:
                s, t = nx.find_cycle(h.nx)[-1][:2]
            except nx.NetworkXNoCycle:
                return h
            h.nx.remove_edge(s, t)

    def summary(self) -> list:
        """Summary rows (block id, type, output shape, params); see ``engine.analysis``."""
        from engine.analysis import analyze  # lazy: no import cycle between the two modules

        return analyze(self).rows()

    def new_id(self, type_name: str) -> str:
        """A fresh id like ``conv2d_3`` (stable, readable, never reused in this graph)."""
        base = re.sub(r"[^a-z0-9]+", "_", type_name.lower()).strip("_") or "block"
        n = 1
        while f"{base}_{n}" in self.nx:
            n += 1
        return f"{base}_{n}"

    # --- changing ------------------------------------------------------------------------------
    def add_node(
        self, type_name: str, config: dict | None = None, pos=(0.0, 0.0), node_id: str | None = None
    ) -> str:
        """Add a block; its settings are checked (ConfigError names it). Returns its id."""
        if type_name == MODULE_TYPE:
            return self._add_instance(config, pos, node_id)
        if type_name not in LAYER_TYPES:
            known = ", ".join(sorted(LAYER_TYPES))
            raise GraphError(f"unknown block type {type_name!r} (known: {known})", block=node_id)
        node_id = self.new_id(type_name) if node_id is None else check_id(node_id, "a block id")
        if node_id in self.nx:
            raise GraphError("a block with this id already exists", block=node_id)
        config = copy.deepcopy(config or {})
        cls = LAYER_TYPES[type_name]
        check_spec(type_name, config, cls.all_options(), block=node_id)
        cls(name=node_id, **config)  # cross-field checks (e.g. kernel vs. connections)
        self.nx.add_node(node_id, type=type_name, config=config, pos=check_pos(pos, node_id))
        self._emit(NodeAdded(node_id))
        return node_id

    def _add_instance(self, config: Any, pos: Any, node_id: str | None) -> str:
        name = config.get(MODULE_KEY) if isinstance(config, dict) else None
        if node_id is None:
            node_id = self.new_id(name if isinstance(name, str) else "module")
        node_id = check_id(node_id, "a block id")
        if "/" in node_id:
            raise GraphError("a module instance's id must not hold '/'", block=node_id)
        if node_id in self.nx:
            raise GraphError("a block with this id already exists", block=node_id)
        config = check_instance(config, self.modules, node_id)
        self.nx.add_node(node_id, type=MODULE_TYPE, config=config, pos=check_pos(pos, node_id))
        self._emit(NodeAdded(node_id))
        return node_id

    def remove_node(self, node_id: str) -> None:
        """Remove a block and its wires (each wire's removal is emitted first)."""
        if node_id not in self.nx:
            raise GraphError("no such block", block=node_id)
        for s, t, _ in [e for e in self.edges() if node_id in e[:2]]:
            self.remove_edge(s, t)
        self.nx.remove_node(node_id)
        self._emit(NodeRemoved(node_id))

    def move_node(self, node_id: str, pos) -> None:
        self.nx.nodes[node_id]["pos"] = check_pos(pos, node_id)
        self._emit(NodeMoved(node_id, self.nx.nodes[node_id]["pos"]))

    def set_config(self, node_id: str, config: dict) -> None:
        """Replace the block's settings after checking them (ConfigError leaves it unchanged)."""
        if node_id not in self.nx:
            raise GraphError("no such block", block=node_id)
        config = copy.deepcopy(config)
        if self.type_of(node_id) == MODULE_TYPE:
            config = check_instance(config, self.modules, node_id)
        else:
            cls = LAYER_TYPES[self.type_of(node_id)]
            check_spec(cls.type_name, config, cls.all_options(), block=node_id)
            cls(name=node_id, **config)
        self.nx.nodes[node_id]["config"] = config
        self._emit(ConfigChanged(node_id, copy.deepcopy(config)))

    def free_port(self, node_id: str) -> int:
        used = {d["target_port"] for _, _, d in self.nx.in_edges(node_id, data=True)}
        p = 0
        while p in used:
            p += 1
        return p

    def check_edge(
        self, source: str, target: str, port: int | None = None, *, strict: bool = False
    ) -> GraphError | None:
        """The GraphError ``add_edge(source, target, port)`` would raise, or None if it would
        make the wire.

        ``strict`` also refuses what a graph file may hold but a working network cannot (so the
        canvas refuses the gesture): more inputs than the target's block type takes, and a wire
        that closes a loop.
        """
        for n in (source, target):
            if n not in self.nx:
                return GraphError("no such block", block=n)
        if source == target:
            return GraphError("a block cannot feed itself", block=source)
        t_type = self.type_of(target)
        if t_type == MODULE_TYPE:
            hi = len(self.modules[self.nx.nodes[target]["config"][MODULE_KEY]]["inputs"])
        else:
            hi = LAYER_TYPES[t_type].arity[1]
        hi = hi if strict else None
        if hi == 0:
            return GraphError(f"'{target}' is an Input block: it takes no input", block=target)
        if self.nx.has_edge(source, target):
            return GraphError(f"'{source}' is already wired to '{target}'", block=target)
        feeders = self.inputs_of(target) if hi is not None else []
        if hi is not None and len(feeders) >= hi:
            if hi == 1:
                return GraphError(
                    f"{self.type_of(target)} '{target}' takes one input and is already fed by "
                    f"'{feeders[0]}': delete that wire first",
                    block=target,
                )
            return GraphError(f"'{target}' takes at most {hi} inputs", block=target)
        port = self.free_port(target) if port is None else port
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 64:
            return GraphError(f"input port must be an integer 0-63, got {port!r}", block=target)
        if any(d["target_port"] == port for _, _, d in self.nx.in_edges(target, data=True)):
            return GraphError(f"input port {port} is already connected", block=target)
        if strict and nx.has_path(self.nx, target, source):
            return GraphError(
                f"that would make a loop: '{target}' already feeds '{source}'. "
                "Networks flow one way",
                block=target,
            )
        return None

    def add_edge(self, source: str, target: str, port: int | None = None) -> int:
        """Wire ``source``'s output to ``target``'s input ``port`` (default: the first free one).

        Refuses unknown blocks, self-loops, duplicate wires and occupied ports (GraphError; see
        ``check_edge``). Shape problems are not refused here; ``engine.analyze`` reports them.
        """
        refused = self.check_edge(source, target, port)
        if refused is not None:
            raise refused
        port = self.free_port(target) if port is None else port
        self.nx.add_edge(source, target, target_port=port)
        self._emit(EdgeAdded(source, target, port))
        return port

    def remove_edge(self, source: str, target: str) -> None:
        port = self.port_of(source, target)
        self.nx.remove_edge(source, target)
        self._emit(EdgeRemoved(source, target, port))

    def set_meta(self, key: str, value: Any) -> None:
        """Set ``name``, ``description`` or ``training``."""
        if key not in ("name", "description", "training"):
            raise GraphError(f"unknown graph field {key!r}")
        setattr(self, key, copy.deepcopy(value))
        self._emit(MetaChanged(key))

    def reorder(self, nodes: list[str], edges: list[tuple[str, str, int]]) -> bool:
        """Put the blocks and wires in this order (the order ``to_dict`` lists them in), without
        changing anything else: no event is emitted, as nothing a view shows changes. Undo uses
        it to put a re-added block or wire back where it was. Returns False, changing nothing,
        when the lists do not hold exactly this graph's blocks and wires."""
        g = self.nx
        if list(g.nodes) == list(nodes) and self.edges() == list(edges):
            return True
        if set(g.nodes) != set(nodes) or {(s, t) for s, t, _ in self.edges()} != {
            (s, t) for s, t, _ in edges
        }:
            return False
        h = nx.DiGraph()
        h.graph.update(g.graph)
        for n in nodes:
            h.add_node(n, **g.nodes[n])
        for s, t, _p in edges:
            h.add_edge(s, t, **g.edges[s, t])
        self.nx = h
        return True

    # --- file format ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        nodes = []
        for n, a in self.nx.nodes(data=True):
            nodes.append(
                {
                    "id": n,
                    "type": a["type"],
                    "config": copy.deepcopy(a["config"]),
                    "pos": list(a["pos"]),
                }
            )
        edges = [{"source": s, "target": t, "target_port": p} for s, t, p in self.edges()]
        d = {
            "format": FORMAT,
            "version": 2 if self.modules else 1,  # version-1 readers open a graph without modules
            "name": self.name,
            "description": self.description,
            "nodes": nodes,
            "edges": edges,
            "training": copy.deepcopy(self.training),
        }
        if self.modules:
            d["modules"] = copy.deepcopy(self.modules)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Graph:
        """Build a Graph from a file's dict; every field is checked (GraphError / ConfigError)."""
        if not isinstance(d, dict):
            raise GraphError("a graph file must hold a JSON object")
        if d.get("format") != FORMAT:
            raise GraphError(f'not a BlockProp graph ("format" must be "{FORMAT}")')
        version = d.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise GraphError(
                f"graph format version {version} was made by a newer BlockProp; this one reads "
                f"versions 1 to {VERSION}: update BlockProp to open it"
            )
        if version not in (1, 2):
            raise GraphError(
                f"unsupported graph version {version!r} (this BlockProp reads 1 to {VERSION})"
            )
        known = {"format", "version", "name", "description", "nodes", "edges", "training"}
        if version >= 2:
            known.add("modules")
        extra = sorted(set(d) - known, key=str)
        if extra:
            raise GraphError(f"unknown field {extra[0]!r} in the graph file")
        name, desc = d.get("name", "untitled"), d.get("description", "")
        if not isinstance(name, str) or not isinstance(desc, str):
            raise GraphError('"name" and "description" must be strings')
        training = d.get("training", {})
        if not isinstance(training, dict):
            raise GraphError('"training" must be an object')
        nodes, edges = d.get("nodes", []), d.get("edges", [])
        if not isinstance(nodes, list) or not isinstance(edges, list):
            raise GraphError('"nodes" and "edges" must be lists')
        g = cls(name=name, description=desc, training=training)
        if "modules" in d:
            from engine.modules.definition import check_definitions

            g.modules = check_definitions(d["modules"])
        for i, nd in enumerate(nodes):
            if not isinstance(nd, dict):
                raise GraphError(f"node #{i + 1} must be an object")
            nid = check_id(nd.get("id"), f'node #{i + 1}\'s "id"')
            extra = sorted(set(nd) - {"id", "type", "config", "pos"}, key=str)
            if extra:
                raise GraphError(f"unknown field {extra[0]!r}", block=nid)
            if not isinstance(nd.get("type"), str):
                raise GraphError('"type" must be a block type name', block=nid)
            config = nd.get("config", {})
            if not isinstance(config, dict):
                raise ConfigError('"config" must be an object', block=nid)
            g.add_node(nd["type"], config, nd.get("pos", [0, 0]), node_id=nid)
        for i, e in enumerate(edges):
            if not isinstance(e, dict) or set(e) - {"source", "target", "target_port"}:
                raise GraphError(
                    f"edge #{i + 1} must be an object with source, target, target_port"
                )
            g.add_edge(
                check_id(e.get("source"), f"edge #{i + 1}'s source"),
                check_id(e.get("target"), f"edge #{i + 1}'s target"),
                e.get("target_port"),
            )
        return g

    def copy(self) -> Graph:
        """An independent copy without subscribers (the trainer's snapshot)."""
        return Graph.from_dict(self.to_dict())

    def replace_with(self, other: Graph) -> None:
        """Take over ``other``'s content in place (subscribers stay), then emit ``reset``."""
        self.nx = other.nx.copy()
        self.modules = copy.deepcopy(other.modules)
        self.name, self.description = other.name, other.description
        self.training = copy.deepcopy(other.training)
        self._emit(Reset())

    # --- modules (engine.modules builds group, ungroup, expansion on these) ------------------
    def instances_of(self, name: str) -> list[str]:
        """The blocks that are instances of module ``name`` (directly, in this graph)."""
        return [
            n
            for n, a in self.nx.nodes(data=True)
            if a["type"] == MODULE_TYPE and a["config"].get(MODULE_KEY) == name
        ]

    def instances_of_any(self) -> list[str]:
        """Every module instance block of this graph."""
        return [n for n, a in self.nx.nodes(data=True) if a["type"] == MODULE_TYPE]

    def has_instances(self) -> bool:
        return any(a["type"] == MODULE_TYPE for _, a in self.nx.nodes(data=True))

    def set_module(self, name: str, definition: dict | None) -> None:
        """Add, replace or (``None``) remove a module definition; every instance follows.
        The definition is checked as a file's would be; removing one still used, or a change
        that drops a parameter an instance sets, is refused (GraphError)."""
        from engine.modules.definition import check_definitions

        if definition is None:
            users = self.instances_of(name) + [
                m for m, d in self.modules.items() if name in _uses(d)
            ]
            if users:
                raise GraphError(f"module '{escape(name)}' is still used by '{users[0]}'")
            if name in self.modules:
                del self.modules[name]
                self._emit(ModuleChanged(name))
            return
        defs = dict(self.modules)
        defs[name] = definition
        defs = check_definitions(defs)
        for n in self.instances_of(name):
            check_instance(self.nx.nodes[n]["config"], defs, n)
        self.modules = defs
        self._emit(ModuleChanged(name))

    def restore(self, d: dict) -> None:
        """Make this graph equal to ``d`` (an earlier ``to_dict()`` of it, trusted) through
        the smallest set of changes, each with its event, down to the order of blocks and
        wires: the undo of a module edit (group, ungroup, a definition's change)."""
        want_nodes = {nd["id"]: nd for nd in d["nodes"]}
        want_edges = {(e["source"], e["target"]): e["target_port"] for e in d["edges"]}
        want_modules = d.get("modules", {})
        for name, df in want_modules.items():  # instances may need them; checked when saved
            if self.modules.get(name) != df:
                self.modules[name] = copy.deepcopy(df)
                self._emit(ModuleChanged(name))
        for s, t, p in self.edges():
            if want_edges.get((s, t)) != p:
                self.remove_edge(s, t)
        for n in self.nodes():
            if n not in want_nodes or want_nodes[n]["type"] != self.type_of(n):
                self.remove_node(n)
        for n, nd in want_nodes.items():
            if n not in self.nx:
                self.add_node(nd["type"], nd["config"], nd["pos"], node_id=n)
                continue
            if self.nx.nodes[n]["config"] != nd["config"]:
                self.nx.nodes[n]["config"] = copy.deepcopy(nd["config"])
                self._emit(ConfigChanged(n, copy.deepcopy(nd["config"])))
            if list(self.pos_of(n)) != list(nd["pos"]):
                self.move_node(n, nd["pos"])
        for (s, t), p in want_edges.items():
            if not self.nx.has_edge(s, t):
                self.add_edge(s, t, p)
        for name in [m for m in self.modules if m not in want_modules]:
            del self.modules[name]
            self._emit(ModuleChanged(name))
        edges = [(e["source"], e["target"], e["target_port"]) for e in d["edges"]]
        self.reorder([nd["id"] for nd in d["nodes"]], edges)
        for key in ("name", "description", "training"):
            if getattr(self, key) != d[key]:
                self.set_meta(key, d[key])

    def save(self, path: str | os.PathLike) -> None:
        """Write the graph file atomically: a temporary file in the same folder, then rename,
        so a crash never leaves half a file and the old file survives a failed save."""
        save_json_atomic(self.to_dict(), path)


def _uses(definition: dict) -> list[str]:
    from engine.modules.definition import uses

    return uses(definition)


def graph_files(folder: str | os.PathLike) -> list[Path]:
    """The graph files in ``folder`` (``*.json``), without the run histories the app keeps
    next to a graph (``NAME.runs.json``), sorted by name."""
    return sorted(p for p in Path(folder).glob("*.json") if not p.name.endswith(".runs.json"))


ZOO_FOLDER = "zoo"  # presets/zoo: the ImageNet-sized architectures (presets/make_zoo.py)


def preset_files(folder: str | os.PathLike) -> list[Path]:
    """The presets: the graph files in ``folder``, then those of its zoo sub-folder."""
    return graph_files(folder) + graph_files(Path(folder) / ZOO_FOLDER)


def load_graph(path: str | os.PathLike) -> Graph:
    """Read a graph file. Any problem raises a BlockPropError naming the file."""
    p = str(path)
    raw = read_limited(p, MAX_FILE_BYTES, GraphError, "graph file")  # regular files only
    try:
        data = parse_json(raw.decode("utf-8-sig"))  # a BOM (Windows editors) is allowed
    except GraphError as e:
        raise GraphError(e.message, file=p) from None
    except UnicodeDecodeError:
        raise GraphError("not a text file (graph files are UTF-8 JSON)", file=p) from None
    try:
        return Graph.from_dict(data)
    except BlockPropError as e:
        e.file = p
        raise type(e)(e.message, block=e.block, file=p) from None
