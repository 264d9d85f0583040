"""A wire from a block's output port to another block's input port, labelled with the shape of
the tensor it carries."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from gui.canvas.style import PORT_R, READABLE_PX, SELECT_COLOUR, WIRE_COLOUR, font

F_LABEL = font(7.5)
M_LABEL = QFontMetricsF(F_LABEL)
LABEL_LOD = READABLE_PX / M_LABEL.height()


def wire_path(p0: QPointF, p1: QPointF) -> QPainterPath:
    """A horizontal-tangent cubic from ``p0`` to ``p1`` (loops round when going backwards)."""
    dx = max(40.0, abs(p1.x() - p0.x()) * 0.5)
    path = QPainterPath(p0)
    path.cubicTo(QPointF(p0.x() + dx, p0.y()), QPointF(p1.x() - dx, p1.y()), p1)
    return path


def back_path(p0: QPointF, p1: QPointF, mid_y: float) -> QPainterPath:
    """A wire going backwards (to a block left of its source, e.g. the next row of a wrapped
    layout): out to the right, along ``mid_y`` between the blocks, in from the left."""
    r = 28.0
    path = QPainterPath(p0)
    path.cubicTo(
        QPointF(p0.x() + 2 * r, p0.y()), QPointF(p0.x() + 2 * r, mid_y), QPointF(p0.x(), mid_y)
    )
    path.lineTo(QPointF(p1.x(), mid_y))
    path.cubicTo(QPointF(p1.x() - 2 * r, mid_y), QPointF(p1.x() - 2 * r, p1.y()), p1)
    return path


class WireItem(QGraphicsItem):
    """Edge ``source -> target`` into input slot ``port``."""

    def __init__(self, source, target, port: int) -> None:
        super().__init__()
        self.source, self.target, self.port = source, target, port
        self.label = ""
        self.path = QPainterPath()
        self.label_rect = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        # No cache: a wire is one path to stroke, cheaper to redraw than to re-cache on zoom
        # (measured in benchmarks/canvas_scale.py).
        self.setZValue(0)
        self._shape: QPainterPath | None = None
        self.label_shown = False  # whether the last paint showed the shape label
        self.update_path()

    @property
    def key(self) -> tuple[str, str]:
        return (self.source.block_id, self.target.block_id)

    def end_points(self) -> tuple[QPointF, QPointF]:
        p0 = self.source.out_port.scene_anchor()
        port = self.target.in_port(self.port)
        p1 = port.scene_anchor() if port is not None else self.target.scenePos()
        return p0, p1

    def update_path(self) -> None:
        self.prepareGeometryChange()
        p0, p1 = self.end_points()
        if p1.x() < p0.x() - 30:
            s_top, s_bot = self.source.y(), self.source.y() + self.source.h
            t_top, t_bot = self.target.y(), self.target.y() + self.target.h
            if t_top > s_bot + 10:
                mid = (s_bot + t_top) / 2
            elif s_top > t_bot + 10:
                mid = (t_bot + s_top) / 2
            else:
                mid = max(s_bot, t_bot) + 30
            self.path = back_path(p0, p1, mid)
        else:
            self.path = wire_path(p0, p1)
        self._place_label()
        self._shape = None
        self.update()

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.prepareGeometryChange()
            self.label = text
            self._place_label()
            self._shape = None
            self.update()

    def _place_label(self) -> None:
        if not self.label:
            self.label_rect = QRectF()
            return
        mid = self.path.pointAtPercent(0.5)
        w = M_LABEL.horizontalAdvance(self.label) + 8
        h = M_LABEL.height() + 2
        self.label_rect = QRectF(mid.x() - w / 2, mid.y() - h / 2, w, h)

    def boundingRect(self) -> QRectF:
        return self.path.boundingRect().adjusted(-6, -6, 6, 6).united(self.label_rect)

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(12.0)
            s = stroker.createStroke(self.path)
            if not self.label_rect.isNull():
                s.addRect(self.label_rect)
            self._shape = s
        return self._shape

    def paint(self, painter, option, widget=None) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        colour = SELECT_COLOUR if self.isSelected() else WIRE_COLOUR
        painter.setPen(QPen(colour, 3.0 if self.isSelected() else 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        self.label_shown = bool(self.label) and lod >= LABEL_LOD
        if lod < 0.2:
            return  # too small for the arrow head
        # arrow head at the target (the direction data flows)
        end = self.path.pointAtPercent(1.0)
        x = end.x() - PORT_R - 1  # the tip stops at the port's rim
        tip = QPolygonF(
            [QPointF(x, end.y()), QPointF(x - 9, end.y() - 5), QPointF(x - 9, end.y() + 5)]
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawPolygon(tip)
        if self.label_shown:
            painter.setPen(QPen(QColor("#b0bec5"), 0.8))
            painter.setBrush(QColor(255, 255, 255, 235))
            painter.drawRoundedRect(self.label_rect, 4, 4)
            painter.setFont(F_LABEL)
            painter.setPen(QColor("#37474f"))
            painter.drawText(self.label_rect, Qt.AlignmentFlag.AlignCenter, self.label)
