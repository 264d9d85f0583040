"""A block's input or output port: a small circle with a generous hit area."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem

from gui.canvas.style import PORT_HIT_R, PORT_R

OK_COLOUR = QColor("#43a047")
BAD_COLOUR = QColor("#e53935")


class PortItem(QGraphicsItem):
    """Child of a BlockItem. ``kind`` is "in" or "out"; ``index`` is the input slot
    (the edge's ``target_port``) for inputs and 0 for the output.

    The port only handles hit testing and hover; its block paints it (one paint call per
    block instead of four keeps large graphs fast)."""

    def __init__(self, block, kind: str, index: int = 0) -> None:
        super().__init__(block)
        self.block = block
        self.kind = kind
        self.index = index
        self.connected = False
        self.hovered = False
        self.mark: str | None = None  # "ok" / "bad" while a wire is dragged over it
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.setZValue(2)

    @property
    def block_id(self) -> str:
        return self.block.block_id

    def scene_anchor(self) -> QPointF:
        """Where wires attach (the circle's centre) in scene coordinates."""
        return self.scenePos()

    def boundingRect(self) -> QRectF:
        r = PORT_HIT_R
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addEllipse(self.boundingRect())
        return p

    def set_connected(self, on: bool) -> None:
        if on != self.connected:
            self.connected = on
            self.block.update()

    def set_mark(self, mark: str | None) -> None:
        if mark != self.mark:
            self.mark = mark
            self.block.update()

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.block.update()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.block.update()

    def paint(self, painter, option, widget=None) -> None:
        pass  # painted by the block (see paint_port)


def paint_port(painter, port: PortItem) -> None:
    """Draw ``port`` in its block's coordinates."""
    colour = port.block.colour
    r = PORT_R + (2.5 if (port.hovered or port.mark) else 0.0)
    if port.mark == "ok":
        colour = OK_COLOUR
    elif port.mark == "bad":
        colour = BAD_COLOUR
    painter.setPen(QPen(colour, 2.0))
    fill = colour if (port.connected or port.mark or port.hovered) else QColor("white")
    painter.setBrush(QBrush(fill))
    painter.drawEllipse(port.pos(), r, r)
