"""A dashed link between two blocks paired by a setting (a MaxUnpool2D and the MaxPool2D whose
maxima's positions it uses: ``Layer.links``). It carries no tensor, so it is not a wire: it
runs under the blocks, from the bottom of the block named to the bottom of the one naming it,
labelled with what passes (the positions of the maxima)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem

from gui.canvas.style import font

LINK_COLOUR = QColor("#00838f")  # the Pooling family's colour
F_LABEL = font(7.0)
M_LABEL = QFontMetricsF(F_LABEL)


class LinkItem(QGraphicsItem):
    """``source`` (e.g. the pool) -> ``target`` (the unpool that names it in ``key``)."""

    def __init__(self, source, target, key: str, label: str = "max positions") -> None:
        super().__init__()
        self.source, self.target, self.key, self.label = source, target, key, label
        self.path = QPainterPath()
        self.setZValue(-1)  # under wires and blocks
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.update_path()

    def update_path(self) -> None:
        self.prepareGeometryChange()
        s, t = self.source, self.target
        p0 = QPointF(s.x() + s.boundingRect().width() / 2 - 10, s.y() + s.h)
        p1 = QPointF(t.x() + t.boundingRect().width() / 2 - 10, t.y() + t.h)
        dip = max(p0.y(), p1.y()) + 40.0
        path = QPainterPath(p0)
        path.cubicTo(QPointF(p0.x(), dip), QPointF(p1.x(), dip), p1)
        self.path = path
        self.update()

    def boundingRect(self) -> QRectF:
        mid = self.path.pointAtPercent(0.5)
        w = M_LABEL.horizontalAdvance(self.label) + 8
        label = QRectF(mid.x() - w / 2, mid.y(), w, M_LABEL.height() + 4)
        return self.path.boundingRect().adjusted(-4, -4, 4, 4).united(label)

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(QPen(LINK_COLOUR, 1.6, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        mid = self.path.pointAtPercent(0.5)
        painter.setFont(F_LABEL)
        w = M_LABEL.horizontalAdvance(self.label) + 8
        painter.drawText(
            QRectF(mid.x() - w / 2, mid.y() + 2, w, M_LABEL.height() + 2),
            Qt.AlignmentFlag.AlignCenter,
            self.label,
        )
