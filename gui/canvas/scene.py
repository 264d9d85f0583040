"""GraphScene: the canvas's items, kept in step with engine.Graph's events.

The scene never writes the Graph. It creates, moves and removes items when the Graph says so,
and paints shapes, parameter counts and problems when the live analysis says so.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QTimer, Signal
from PySide6.QtWidgets import QGraphicsScene

from engine.analysis import Analysis
from engine.graph import Graph
from engine.graph_events import (
    ConfigChanged,
    EdgeAdded,
    EdgeRemoved,
    GraphEvent,
    ModuleChanged,
    NodeAdded,
    NodeMoved,
    NodeRemoved,
    Reset,
)
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE
from gui.canvas.block_item import BlockItem
from gui.canvas.link_item import LinkItem
from gui.canvas.module_item import ModuleItem, instance_arity, instance_settings
from gui.canvas.routing import BlockIndex
from gui.canvas.style import count_text, family_of, key_settings, shape_text
from gui.canvas.wire_item import WireItem
from gui.layout import input_slots

SCENE_MARGIN = 1500.0


class GraphScene(QGraphicsScene):
    contentChanged = Signal()  # blocks moved, came or went (once per burst; the minimap)

    def __init__(self, graph: Graph, parent=None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.blocks: dict[str, BlockItem] = {}
        self.wires: dict[tuple[str, str], WireItem] = {}
        self.links: dict[tuple[str, str], LinkItem] = {}  # (named block, naming block)
        self.analysis: Analysis | None = None
        self.badges: dict[str, float] = {}
        self.locked = False
        self._reroute_pending = False
        self._rebuilding = False
        self._index: BlockIndex | None = None
        # What each Graph event does to the items (MetaChanged shows nothing on the canvas).
        self._follow = {
            NodeAdded: lambda e: self._add_block(e.block),
            NodeRemoved: lambda e: self._remove_block(e.block),
            NodeMoved: self._move_block,
            ConfigChanged: lambda e: (self._refresh_text(e.block), self._refresh_links()),
            EdgeAdded: lambda e: self._add_wire(e.source, e.target, e.port),
            EdgeRemoved: lambda e: self._remove_wire(e.source, e.target),
            Reset: lambda e: self.rebuild(),
            ModuleChanged: lambda e: self._refresh_instances(e.name),
        }
        graph.subscribe(self._on_graph_event)
        self.rebuild()

    def detach(self) -> None:
        self.graph.unsubscribe(self._on_graph_event)

    # --- following the Graph -------------------------------------------------------------------
    def _on_graph_event(self, event: GraphEvent) -> None:
        handler = self._follow.get(type(event))
        if handler is not None:
            handler(event)

    def _move_block(self, e: NodeMoved) -> None:
        item = self.blocks[e.block]
        if (item.pos().x(), item.pos().y()) != tuple(e.pos):
            self.reroute_soon()
            item.setPos(QPointF(*e.pos))

    def reroute_soon(self) -> None:
        """Route every wire again once this burst of changes is over: a wire goes around the
        blocks in its way (gui.canvas.routing), and a block that moved or appeared may now be
        in the way of wires that are not its own."""
        self._index = None
        if not self._reroute_pending:
            self._reroute_pending = True
            QTimer.singleShot(0, self, self.reroute)

    def reroute(self) -> None:
        self._reroute_pending = False
        for wire in self.wires.values():
            wire.update_path()
        self.contentChanged.emit()

    def block_index(self) -> BlockIndex:
        """Where the blocks are, for routing wires (made again after any block moved)."""
        if self._index is None:
            self._index = BlockIndex(self.blocks.values())
        return self._index

    def moved(self) -> bool:
        """A block moved or changed size: forget the routing index. True while a burst of
        changes from the Graph is under way (the wires are routed once it is over)."""
        self._index = None
        return self._reroute_pending

    def rebuild(self) -> None:
        """Drop every item and make them again from the Graph (after a file was opened)."""
        self.clear()
        self.blocks.clear()
        self.wires.clear()
        self.links.clear()
        self._rebuilding = True  # links once at the end, not after every block (quadratic)
        try:
            for n in self.graph.nodes():
                self._add_block(n)
        finally:
            self._rebuilding = False
        for s, t, p in self.graph.edges():
            self._add_wire(s, t, p)
        self._refresh_links()
        if self.analysis is not None:
            self.apply_analysis(self.analysis)
        self.update_scene_rect()

    def _add_block(self, n: str) -> None:
        cls = LAYER_TYPES.get(self.graph.type_of(n))
        arity = cls.arity if cls is not None else (1, 1)
        if self.graph.type_of(n) == MODULE_TYPE:
            name = self.graph.config_of(n)[MODULE_KEY]
            item = ModuleItem(n, name, instance_arity(self.graph, n))
        else:
            item = BlockItem(n, self.graph.type_of(n), family_of(cls), arity)
        item.setPos(QPointF(*self.graph.pos_of(n)))
        item.set_locked(self.locked)
        self.addItem(item)
        self.blocks[n] = item
        self.reroute_soon()
        self._refresh_text(n)
        if n in self.badges:
            item.set_badge(self.badges[n])
        if not self._rebuilding:
            self._refresh_links()

    def _refresh_instances(self, name: str) -> None:
        """A module's definition changed: redraw its instances (ports, title, settings)."""
        for n in self.graph.instances_of(name):
            if n in self.blocks:
                wires = [(s, t, p) for s, t, p in self.graph.edges() if n in (s, t)]
                for s, t, _p in wires:
                    if (s, t) in self.wires:
                        self._remove_wire(s, t)
                selected = self.blocks[n].isSelected()
                self._remove_block(n)
                self._add_block(n)
                for s, t, p in wires:
                    self._add_wire(s, t, p)
                self.blocks[n].setSelected(selected)
        if self.analysis is not None:
            self.apply_analysis(self.analysis)

    def _refresh_text(self, n: str) -> None:
        item = self.blocks[n]
        if isinstance(item, ModuleItem):
            name = self.graph.config_of(n)[MODULE_KEY]
            if name != item.module_name:  # made unique: another definition
                self._refresh_instances_of_block(n)
                return
            item.set_text(instance_settings(self.graph, n))
            return
        try:
            cfg = self.graph.full_config(n)
        except Exception:  # a loaded file's config the layer refuses: show what was given
            cfg = self.graph.config_of(n)
        item.set_text(key_settings(item.type_name, cfg))

    def _refresh_instances_of_block(self, n: str) -> None:
        self._refresh_instances(self.graph.config_of(n)[MODULE_KEY])

    def _remove_block(self, n: str) -> None:
        item = self.blocks.pop(n)
        self.removeItem(item)
        self.reroute_soon()
        self._refresh_links()

    def _refresh_links(self) -> None:
        """One dashed link per block setting that names another block (``Layer.links``)."""
        want = set()
        for n in self.blocks:
            cls = LAYER_TYPES.get(self.graph.type_of(n))
            for key in getattr(cls, "links", ()):
                other = self.graph.config_of(n).get(key)
                if isinstance(other, str) and other in self.blocks and other != n:
                    want.add((other, n, key))
        for pair in [p for p in self.links if (*p, self.links[p].key) not in want]:
            link = self.links.pop(pair)
            for b in (link.source, link.target):
                b.links.discard(link)
            self.removeItem(link)
        for s, t, key in want:
            if (s, t) not in self.links:
                link = LinkItem(self.blocks[s], self.blocks[t], key)
                self.blocks[s].links.add(link)
                self.blocks[t].links.add(link)
                self.addItem(link)
                self.links[(s, t)] = link

    def _slots_needed(self, item: BlockItem) -> int:
        if not item.multi_input:
            return len(item.in_ports)
        return input_slots(item.arity, [w.port for w in item.wires if w.target is item])

    def _add_wire(self, s: str, t: str, port: int) -> None:
        src, tgt = self.blocks[s], self.blocks[t]
        wire = WireItem(src, tgt, port)
        src.wires.add(wire)
        tgt.wires.add(wire)
        if tgt.multi_input or port >= len(tgt.in_ports):
            tgt.set_slots(max(self._slots_needed(tgt), port + 1))
        self.addItem(wire)
        self.wires[(s, t)] = wire
        if self.analysis is not None:
            wire.set_label(shape_text(self.analysis.shapes.get(s)))
        self._refresh_ports(tgt)
        self._refresh_ports(src)
        for w in tgt.wires:
            w.update_path(around=not self._reroute_pending)

    def _remove_wire(self, s: str, t: str) -> None:
        wire = self.wires.pop((s, t))
        src, tgt = self.blocks.get(s), self.blocks.get(t)
        for b in (src, tgt):
            if b is not None:
                b.wires.discard(wire)
        self.removeItem(wire)
        if tgt is not None:
            if tgt.multi_input:
                tgt.set_slots(self._slots_needed(tgt))
            self._refresh_ports(tgt)
            for w in tgt.wires:
                w.update_path(around=not self._reroute_pending)
        if src is not None:
            self._refresh_ports(src)

    def _refresh_ports(self, item: BlockItem) -> None:
        used = {w.port for w in item.wires if w.target is item}
        for port in item.in_ports:
            port.set_connected(port.index in used)
        item.out_port.set_connected(any(w.source is item for w in item.wires))

    # --- analysis, badges, lock ---------------------------------------------------------------
    def apply_analysis(self, a: Analysis) -> None:
        self.analysis = a
        problems: dict[str, list[str]] = {}
        for p in a.problems:
            if p.block is not None:
                problems.setdefault(p.block, []).append(p.message)
        for n, item in self.blocks.items():
            shape = a.shapes.get(n)
            params = a.params.get(n) if shape is not None else None
            item.set_analysis(shape_text(shape), count_text(params), problems.get(n, []))
        for (s, _t), wire in self.wires.items():
            wire.set_label(shape_text(a.shapes.get(s)))

    def set_badges(self, badges: dict[str, float]) -> None:
        self.badges = dict(badges)
        for n, item in self.blocks.items():
            item.set_badge(self.badges.get(n))

    def clear_badges(self) -> None:
        self.set_badges({})

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        for item in self.blocks.values():
            item.set_locked(locked)

    # --- selection and geometry ---------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        """Selected blocks, in the Graph's order."""
        chosen = {i.block_id for i in self.selectedItems() if isinstance(i, BlockItem)}
        return [n for n in self.graph.nodes() if n in chosen]

    def selected_wires(self) -> list[tuple[str, str]]:
        return [i.key for i in self.selectedItems() if isinstance(i, WireItem)]

    def select_ids(self, ids) -> None:
        ids = set(ids)
        self.blockSignals(True)
        try:
            self.clearSelection()
            for n in ids:
                if n in self.blocks:
                    self.blocks[n].setSelected(True)
        finally:
            self.blockSignals(False)
        self.selectionChanged.emit()

    def blocks_rect(self, ids=None) -> QRectF:
        items = [
            self.blocks[n] for n in (ids if ids is not None else self.blocks) if n in self.blocks
        ]
        rect = QRectF()
        for item in items:
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def update_scene_rect(self) -> None:
        """Content plus a wide margin, so users can pan past the edges and drop blocks there."""
        rect = self.itemsBoundingRect()
        if rect.isNull():
            rect = QRectF(-400, -300, 800, 600)
        self.setSceneRect(rect.adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN))

    def is_free(self, rect: QRectF, ignore=()) -> bool:
        """No block overlaps ``rect`` (scene coordinates)."""
        for item in self.items(rect):
            if isinstance(item, BlockItem) and item.block_id not in ignore:
                if item.sceneBoundingRect().intersects(rect):
                    return False
        return True
