"""CanvasView: zoom, pan, rubber-band selection, dropping blocks from the palette, drawing
wires from port to port, moving blocks (one undo step per drag, on release)."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QEvent, QLineF, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsView

from gui.canvas.block_item import BlockItem
from gui.canvas.minimap import Minimap
from gui.canvas.overlays import BadgeLegend, EmptyHint, FeedbackLabel, LockBanner
from gui.canvas.port_item import BAD_COLOUR, OK_COLOUR, PortItem
from gui.canvas.routing import wire_path
from gui.canvas.scene import GraphScene
from gui.canvas.style import (
    BLOCK_H,
    BLOCK_MIME,
    BLOCK_W,
    CANVAS_BG,
    GRID,
    GRID_DOT,
    PORT_HIT_R,
)

MIN_ZOOM, MAX_ZOOM = 0.06, 4.0
SNAP_PX = 42.0  # a dragged wire snaps to a compatible port this close (screen pixels)


class WireDrag:
    """State of a wire being drawn from ``origin`` (an output or an input port)."""

    def __init__(self, origin: PortItem, item: QGraphicsPathItem) -> None:
        self.origin = origin
        self.item = item
        self.verdicts: dict = {}
        self.target: PortItem | None = None
        self.marked: PortItem | None = None


class CanvasView(QGraphicsView):
    fileDropped = Signal(str)
    contextMenuWanted = Signal(QPoint, QPointF)  # global position, scene position
    zoomChanged = Signal(float)
    blockDropped = Signal(str)  # id of a block added by a drop

    def __init__(self, scene: GraphScene, controller, parent=None) -> None:
        super().__init__(scene, parent)
        self.gscene = scene
        self.controller = controller
        self.locked = False
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.feedback = FeedbackLabel(self)
        self.banner = LockBanner(self)
        self.legend = BadgeLegend(self)
        self.hint = EmptyHint(self)
        self.minimap = Minimap(self)
        self._wire: WireDrag | None = None
        self._pan_from: QPointF | None = None
        self._space = False
        self._press_pos: dict[str, QPointF] = {}

    # --- zoom ----------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor_mouse: bool = False) -> None:
        z = self.zoom()
        factor = min(max(z * factor, MIN_ZOOM), MAX_ZOOM) / z
        if abs(factor - 1.0) < 1e-6:
            return
        old = self.transformationAnchor()
        if not anchor_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.scale(factor, factor)
        self.setTransformationAnchor(old)
        self.zoomChanged.emit(self.zoom())

    def zoom_in(self) -> None:
        self.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.zoom_by(0.8)

    def fit_all(self, ids=None) -> None:
        """Fit the blocks (all, or ``ids``) in the window; never zoom in past 110%."""
        rect = self.gscene.blocks_rect(ids)
        if rect.isNull():
            self.resetTransform()
            self.centerOn(0, 0)
        else:
            self.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.AspectRatioMode.KeepAspectRatio)
            if self.zoom() > 1.1:
                self.zoom_by(1.1 / self.zoom())
            self.centerOn(rect.center())
        self.zoomChanged.emit(self.zoom())

    def centre_on(self, node_id: str) -> None:
        item = self.gscene.blocks.get(node_id)
        if item is not None:
            if self.zoom() < 0.5:
                self.zoom_by(0.8 / self.zoom())
            self.centerOn(item.sceneBoundingRect().center())

    def wheelEvent(self, event) -> None:
        dy = event.angleDelta().y() or event.angleDelta().x()
        if dy:
            self.zoom_by(math.pow(1.0015, dy), anchor_mouse=True)
        event.accept()

    # --- overlays, lock, badges ----------------------------------------------------------------
    def show_feedback(self, text: str, view_pos: QPoint | None = None, kind: str = "error") -> None:
        if view_pos is None:
            view_pos = self.viewport().mapFromGlobal(self.cursor().pos())
        self.feedback.show_at(text, self.viewport().mapTo(self, view_pos), kind)

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        self.gscene.set_locked(locked)
        self.banner.setVisible(locked)
        self.banner.place()
        if locked:
            self._cancel_wire()

    def set_block_badges(self, badges: dict[str, float]) -> None:
        """Tint each block by log10 of its gradient RMS and show the colour scale."""
        self.gscene.set_badges(badges)
        self.legend.setVisible(bool(badges))
        self._place_overlays()

    def clear_block_badges(self) -> None:
        self.gscene.clear_badges()
        self.legend.hide()

    def set_empty(self, empty: bool) -> None:
        """Show the how-to-start hint while the graph has no blocks."""
        self.hint.setVisible(empty)
        if empty:
            self.hint.place()

    def _place_overlays(self) -> None:
        self.banner.place()
        if self.hint.isVisible():
            self.hint.place()
        self._place_legend()

    def _place_legend(self) -> None:
        """The gradient legend goes to the first corner where it covers no block: bottom right
        (left-to-right graphs end higher up), top right, top left, bottom left (unless the
        minimap is there); bottom right when every corner has one."""
        if not self.legend.isVisible():
            return
        area = self.viewport().geometry()
        w, h, m = self.legend.width(), self.legend.height(), 10
        corners = [
            (area.right() - w - m, area.bottom() - h - m),
            (area.right() - w - m, area.top() + m),
            (area.left() + m, area.top() + m),
        ]
        if not self.minimap.isVisible():
            corners.append((area.left() + m, area.bottom() - h - m))
        for x, y in corners:
            seen = QRect(x - area.left(), y - area.top(), w, h)
            if self.gscene.is_free(self.mapToScene(seen).boundingRect()):
                self.legend.move(x, y)
                return
        self.legend.move(*corners[0])

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 (Qt override)
        super().scrollContentsBy(dx, dy)  # moves the viewport's children (the minimap) too
        if self.minimap.isVisible():
            self.minimap.place()
        self._place_legend()  # panning or zooming may have moved a block under it

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_overlays()
        self.minimap.refresh()

    # --- background ----------------------------------------------------------------------------
    def drawBackground(self, painter, rect: QRectF) -> None:
        """A faint square grid (a few dozen lines: cheap at any zoom)."""
        painter.fillRect(rect, CANVAS_BG)
        step = GRID * 5
        while step * self.zoom() < 24:
            step *= 4
        painter.setPen(QPen(GRID_DOT, 0))  # cosmetic: one pixel at any zoom
        x = math.floor(rect.left() / step) * step
        lines = []
        while x <= rect.right():
            lines.append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = math.floor(rect.top() / step) * step
        while y <= rect.bottom():
            lines.append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        painter.drawLines(lines)

    # --- hit testing ---------------------------------------------------------------------------
    def _ports_near(
        self, sp: QPointF, radius: float, kind: str | None = None, exclude=None
    ) -> list[PortItem]:
        rect = QRectF(sp.x() - radius, sp.y() - radius, 2 * radius, 2 * radius)
        ports = [
            i
            for i in self.gscene.items(rect)
            if isinstance(i, PortItem)
            and (kind is None or i.kind == kind)
            and i.block is not exclude
        ]
        return sorted(ports, key=lambda p: QPointF.dotProduct(p.scenePos() - sp, p.scenePos() - sp))

    def port_at(self, view_pos: QPoint) -> PortItem | None:
        sp = self.mapToScene(view_pos)
        near = self._ports_near(sp, max(PORT_HIT_R, 9.0 / self.zoom()))
        return near[0] if near else None

    def block_at(self, sp: QPointF) -> BlockItem | None:
        for item in self.gscene.items(sp):
            if isinstance(item, PortItem):
                return item.block
            if isinstance(item, BlockItem):
                return item
        return None

    # --- wires ---------------------------------------------------------------------------------
    def _start_wire(self, port: PortItem) -> None:
        item = QGraphicsPathItem()
        item.setPen(QPen(QColor("#455a64"), 2.0, Qt.PenStyle.DashLine))
        item.setZValue(10)
        self.gscene.addItem(item)
        self._wire = WireDrag(port, item)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def _endpoints(self, d: WireDrag, a: QPointF, b: QPointF) -> tuple[QPointF, QPointF]:
        return (a, b) if d.origin.kind == "out" else (b, a)

    def _candidate(self, sp: QPointF) -> PortItem | None:
        d = self._wire
        want = "in" if d.origin.kind == "out" else "out"
        near = self._ports_near(sp, SNAP_PX / self.zoom(), want, exclude=d.origin.block)
        if near:
            port = near[0]
        else:
            block = self.block_at(sp)
            if block is None or block is d.origin.block:
                return None
            if want == "out":
                return block.out_port
            if not block.in_ports:
                return block.out_port  # an Input: the verdict explains why not
            port = block.in_ports[0]
        if port.kind == "in" and port.block.multi_input and port.connected:
            free = [p for p in port.block.in_ports if not p.connected]
            port = free[0] if free else port
        return port

    def _verdict(self, d: WireDrag, port: PortItem):
        if port not in d.verdicts:
            if d.origin.kind == "out":
                src, tgt, idx = d.origin.block_id, port.block_id, port.index
            else:
                src, tgt, idx = port.block_id, d.origin.block_id, d.origin.index
            if port.kind == d.origin.kind:  # dropped on an Input while drawing from an output
                d.verdicts[port] = self.controller.check_connection(src, tgt, None)
            else:
                d.verdicts[port] = self.controller.check_connection(src, tgt, idx)
        return d.verdicts[port]

    def _update_wire(self, view_pos: QPoint) -> None:
        d = self._wire
        sp = self.mapToScene(view_pos)
        port = self._candidate(sp)
        end = sp
        d.target = None
        if d.marked is not None and d.marked is not port:
            d.marked.set_mark(None)
            d.marked = None
        pen = d.item.pen()
        if port is not None:
            v = self._verdict(d, port)
            port.set_mark("ok" if v.ok else "bad")
            d.marked = port
            if v.ok:
                end = port.scene_anchor()
                d.target = port
                pen.setColor(OK_COLOUR)
                if v.note:
                    self.show_feedback(
                        v.note + " (a one-click fix will be offered)", view_pos, "warn"
                    )
                else:
                    self.feedback.hide()
            else:
                pen.setColor(BAD_COLOUR)
                self.show_feedback(v.reason, view_pos, "error")
        else:
            pen.setColor(QColor("#455a64"))
            self.feedback.hide()
        d.item.setPen(pen)
        a, b = self._endpoints(d, d.origin.scene_anchor(), end)
        d.item.setPath(wire_path(a, b))

    def _finish_wire(self, view_pos: QPoint) -> None:
        d = self._wire
        self._update_wire(view_pos)
        port = d.marked
        self._cancel_wire()
        if port is None:
            return
        v = self._verdict(d, port)
        if not v.ok:
            self.show_feedback(v.reason, view_pos, "error")
            self.controller.message.emit(v.reason, True)
            return
        if d.origin.kind == "out":
            src, tgt, idx = d.origin.block_id, port.block_id, port.index
        else:
            src, tgt, idx = port.block_id, d.origin.block_id, d.origin.index
        result = self.controller.connect(src, tgt, idx)
        if not result.ok:
            self.show_feedback(result.reason, view_pos, "error")
        elif result.note:
            self.show_feedback(
                result.note + " — use the fix in the Problems panel or the block's context menu.",
                view_pos,
                "warn",
            )

    def _cancel_wire(self) -> None:
        d = self._wire
        if d is None:
            return
        if d.marked is not None:
            d.marked.set_mark(None)
        d.origin.hovered = False  # the view held the mouse: no hover-leave came
        d.origin.block.update()
        self.gscene.removeItem(d.item)
        self._wire = None
        self.viewport().unsetCursor()

    # --- mouse ---------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and not self._space:
            port = self.port_at(pos)
            if port is not None:
                if self.locked:
                    self.controller.message.emit(
                        "Editing is locked while the network trains.", True
                    )
                    self.show_feedback("Editing is locked while the network trains.", pos)
                else:
                    self._start_wire(port)
                    self._update_wire(pos)
                event.accept()
                return
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                block = self.block_at(self.mapToScene(pos))
                if block is not None:
                    block.setSelected(not block.isSelected())
                    event.accept()
                    return
                event = QMouseEvent(
                    event.type(),
                    event.position(),
                    event.globalPosition(),
                    event.button(),
                    event.buttons(),
                    event.modifiers() | Qt.KeyboardModifier.ControlModifier,
                )
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._press_pos = {
                i.block_id: i.pos() for i in self.gscene.selectedItems() if isinstance(i, BlockItem)
            }

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(
                self.horizontalScrollBar().value() - round(delta.x())
            )
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            event.accept()
            return
        if self._wire is not None:
            self._update_wire(event.position().toPoint())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._pan_from is not None:
            self._pan_from = None
            self.viewport().unsetCursor()
            event.accept()
            return
        if self._wire is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_wire(event.position().toPoint())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press_pos:
            moved = {}
            for n, old in self._press_pos.items():
                item = self.gscene.blocks.get(n)
                if item is not None and item.pos() != old:
                    moved[n] = (
                        round(item.pos().x() / GRID) * GRID,
                        round(item.pos().y() / GRID) * GRID,
                    )
            self._press_pos = {}
            if moved:
                self.controller.move(moved)
                self.gscene.update_scene_rect()

    def contextMenuEvent(self, event) -> None:
        sp = self.mapToScene(event.pos())
        block = self.block_at(sp)
        if block is not None and not block.isSelected():
            self.gscene.select_ids([block.block_id])
        elif block is None:
            for item in self.gscene.items(sp):
                if item.flags() & item.GraphicsItemFlag.ItemIsSelectable:
                    if not item.isSelected():
                        self.gscene.clearSelection()
                        item.setSelected(True)
                    break
        self.contextMenuWanted.emit(event.globalPos(), sp)
        event.accept()

    # --- keyboard: space-drag panning, Escape --------------------------------------------------
    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setInteractive(False)
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape:
            if self._wire is not None:
                self._cancel_wire()
                self.feedback.hide()
            else:
                self.gscene.clearSelection()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.setInteractive(True)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        if self._space:
            self._space = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            self.setInteractive(True)
        super().focusOutEvent(event)

    # --- drops: blocks from the palette, graph files from the desktop -------------------------
    @staticmethod
    def _json_urls(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [
            u.toLocalFile()
            for u in mime.urls()
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() == ".json"
        ]

    def dragEnterEvent(self, event) -> None:
        md = event.mimeData()
        if (md.hasFormat(BLOCK_MIME) and not self.locked) or self._json_urls(md):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:
        event.accept()

    def dropEvent(self, event) -> None:
        md = event.mimeData()
        view_pos = event.position().toPoint()
        if md.hasFormat(BLOCK_MIME):
            if self.locked:
                self.show_feedback("Editing is locked while the network trains.", view_pos)
                event.ignore()
                return
            type_name = bytes(md.data(BLOCK_MIME)).decode("utf-8")
            sp = self.mapToScene(view_pos)
            pos = (
                round((sp.x() - BLOCK_W / 2) / GRID) * GRID,
                round((sp.y() - BLOCK_H / 2) / GRID) * GRID,
            )
            new = self.controller.add_block(type_name, pos)
            if new is not None:
                self.gscene.select_ids([new])
                self.gscene.update_scene_rect()
                self.setFocus()
                self.blockDropped.emit(new)
            event.acceptProposedAction()
            return
        files = self._json_urls(md)
        if files:
            event.acceptProposedAction()
            self.fileDropped.emit(files[0])
            return
        event.ignore()

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and e.key() == Qt.Key.Key_Space:
            e.accept()  # space pans the canvas; it is no one's shortcut here
            return True
        return super().event(e)
