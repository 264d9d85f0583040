"""The undoable changes to an engine.Graph. Each command changes only the Graph (through its
methods); the scene and panels follow the Graph's events. Commands never push other commands;
gestures made of several steps are macros on the undo stack.

Undo restores the Graph exactly, down to the order of blocks and wires in ``to_dict()``, so a
file saved after "delete, undo" is byte-for-byte the file saved before. Re-adding a block or a
wire appends it at the end of the Graph's order; ``Graph.reorder`` puts it back where it was.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtGui import QUndoCommand

from engine.graph import Graph

Pos = tuple[float, float]
MERGE_SECONDS = 2.0  # consecutive edits of one setting within this time are one undo step


class GraphCommand(QUndoCommand):
    def __init__(self, graph: Graph, text: str) -> None:
        super().__init__(text)
        self.graph = graph


class AddBlock(GraphCommand):
    def __init__(self, graph: Graph, type_name: str, config: dict, pos: Pos, node_id: str):
        super().__init__(graph, f"Add {type_name}")
        self.type_name, self.config, self.pos, self.node_id = type_name, config, pos, node_id

    def redo(self) -> None:
        self.graph.add_node(self.type_name, self.config, self.pos, node_id=self.node_id)

    def undo(self) -> None:
        self.graph.remove_node(self.node_id)


class AddBlocks(GraphCommand):
    """Several blocks and the wires among them (paste, duplicate)."""

    def __init__(
        self, graph: Graph, nodes: list[dict], edges: list[tuple[str, str, int]], text: str
    ) -> None:
        super().__init__(graph, text)
        self.nodes, self.edges = nodes, edges

    def redo(self) -> None:
        for nd in self.nodes:
            self.graph.add_node(nd["type"], nd["config"], nd["pos"], node_id=nd["id"])
        for s, t, p in self.edges:
            self.graph.add_edge(s, t, p)

    def undo(self) -> None:
        for nd in reversed(self.nodes):  # their wires go with them
            self.graph.remove_node(nd["id"])


class RemoveBlocks(GraphCommand):
    def __init__(self, graph: Graph, ids: list[str], text: str | None = None) -> None:
        if text is None:
            text = (
                f"Delete {graph.type_of(ids[0])}" if len(ids) == 1 else f"Delete {len(ids)} blocks"
            )
        super().__init__(graph, text)
        self.ids = list(ids)

    def redo(self) -> None:
        g = self.graph
        self.order, self.edge_order = g.nodes(), g.edges()
        self.saved = [(n, g.node(n)) for n in self.ids]
        gone = set(self.ids)
        self.wires = [e for e in self.edge_order if e[0] in gone or e[1] in gone]
        for n in self.ids:
            g.remove_node(n)

    def undo(self) -> None:
        g = self.graph
        for n, nd in self.saved:
            g.add_node(nd["type"], nd["config"], nd["pos"], node_id=n)
        for s, t, p in self.wires:
            g.add_edge(s, t, p)
        g.reorder(self.order, self.edge_order)


class MoveBlocks(GraphCommand):
    """``moves`` maps block id -> (old pos, new pos)."""

    def __init__(self, graph: Graph, moves: dict[str, tuple[Pos, Pos]], text: str) -> None:
        super().__init__(graph, text)
        self.moves = moves

    def redo(self) -> None:
        for n, (_old, new) in self.moves.items():
            self.graph.move_node(n, new)

    def undo(self) -> None:
        for n, (old, _new) in self.moves.items():
            self.graph.move_node(n, old)


class Connect(GraphCommand):
    def __init__(self, graph: Graph, source: str, target: str, port: int) -> None:
        super().__init__(graph, f"Connect {source} → {target}")
        self.source, self.target, self.port = source, target, port

    def redo(self) -> None:
        self.graph.add_edge(self.source, self.target, self.port)

    def undo(self) -> None:
        self.graph.remove_edge(self.source, self.target)


class Disconnect(GraphCommand):
    def __init__(self, graph: Graph, source: str, target: str) -> None:
        super().__init__(graph, f"Disconnect {source} → {target}")
        self.source, self.target = source, target
        self.port = graph.port_of(source, target)

    def redo(self) -> None:
        self.order, self.edge_order = self.graph.nodes(), self.graph.edges()
        self.graph.remove_edge(self.source, self.target)

    def undo(self) -> None:
        self.graph.add_edge(self.source, self.target, self.port)
        self.graph.reorder(self.order, self.edge_order)


class SetConfig(GraphCommand):
    """Replace a block's settings. Consecutive edits of the same setting (typing 1, 12, 120
    into a spin box) merge into one undo step."""

    MERGE_ID = 4201

    def __init__(
        self,
        graph: Graph,
        node_id: str,
        old: dict,
        new: dict,
        key: str | None,
        text: str | None = None,
    ) -> None:
        super().__init__(graph, text or f"Edit {key} of {node_id}")
        self.node_id, self.old, self.new, self.key = node_id, old, new, key
        self.stamp = time.monotonic()

    def id(self) -> int:
        return self.MERGE_ID if self.key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (
            not isinstance(other, SetConfig)
            or other.node_id != self.node_id
            or other.key != self.key
            or other.stamp - self.stamp > MERGE_SECONDS
        ):
            return False
        self.new, self.stamp = other.new, other.stamp
        if self.new == self.old:
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self.graph.set_config(self.node_id, self.new)

    def undo(self) -> None:
        self.graph.set_config(self.node_id, self.old)


class Rename(GraphCommand):
    """Give a block a new id; its wires, settings and place in the file's order stay."""

    def __init__(self, graph: Graph, old_id: str, new_id: str) -> None:
        super().__init__(graph, f"Rename {old_id} to {new_id}")
        self.old_id, self.new_id = old_id, new_id

    def _rename(self, a: str, b: str) -> None:
        g = self.graph
        order, edges = g.nodes(), g.edges()
        nd = g.node(a)
        wires = [e for e in edges if a in e[:2]]
        g.remove_node(a)
        g.add_node(nd["type"], nd["config"], nd["pos"], node_id=b)

        def sub(n: str) -> str:
            return b if n == a else n

        for s, t, p in wires:
            g.add_edge(sub(s), sub(t), p)
        g.reorder([sub(n) for n in order], [(sub(s), sub(t), p) for s, t, p in edges])

    def redo(self) -> None:
        self._rename(self.old_id, self.new_id)

    def undo(self) -> None:
        self._rename(self.new_id, self.old_id)


class SetMeta(GraphCommand):
    """Change the graph's name, description or training settings."""

    def __init__(self, graph: Graph, key: str, value: Any) -> None:
        super().__init__(graph, f"Edit graph {key}")
        self.key, self.new, self.old = key, value, getattr(graph, key)

    def redo(self) -> None:
        self.graph.set_meta(self.key, self.new)

    def undo(self) -> None:
        self.graph.set_meta(self.key, self.old)


class ReplaceGraph(GraphCommand):
    """Swap the whole graph's content (restoring a recovery file keeps it undoable)."""

    def __init__(self, graph: Graph, new: dict, text: str) -> None:
        super().__init__(graph, text)
        self.new = new
        self.old = graph.to_dict()

    def redo(self) -> None:
        self.graph.replace_with(Graph.from_dict(self.new))

    def undo(self) -> None:
        self.graph.replace_with(Graph.from_dict(self.old))


class ModuleEdit(GraphCommand):
    """A module edit (group, ungroup, make unique, a definition's change, definitions brought
    in by a drop or a paste): the first redo runs ``change(graph)`` (its result is kept in
    ``result``); undo, and each redo after, put the whole graph back as it was before, or
    after, through ``Graph.restore``, which sends only the events of what differs."""

    def __init__(self, graph: Graph, text: str, change) -> None:
        super().__init__(graph, text)
        self.change, self.result = change, None
        self.before, self.after = graph.to_dict(), None

    def redo(self) -> None:
        if self.after is None:
            self.result = self.change(self.graph)
            self.after = self.graph.to_dict()
        else:
            self.graph.restore(self.after)

    def undo(self) -> None:
        self.graph.restore(self.before)
