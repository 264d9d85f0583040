"""A wire from a block's output port to another block's input port, labelled with the shape of
the tensor it carries."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainterPath, QPainterPathStroker, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from gui.canvas.routing import Obstacles, route
from gui.canvas.style import PORT_R, READABLE_PX, SELECT_COLOUR, WIRE_COLOUR, font

F_LABEL = font(7.5)
M_LABEL = QFontMetricsF(F_LABEL)


@lru_cache(maxsize=1)
def label_lod() -> float:
    """The lowest zoom at which a wire shows its shape label (font metrics need the app)."""
    return READABLE_PX / M_LABEL.height()


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
        self.label_fits = True
        self.update_path()

    @property
    def key(self) -> tuple[str, str]:
        return (self.source.block_id, self.target.block_id)

    def end_points(self) -> tuple[QPointF, QPointF]:
        p0 = self.source.out_port.scene_anchor()
        port = self.target.in_port(self.port)
        p1 = port.scene_anchor() if port is not None else self.target.scenePos()
        return p0, p1

    def update_path(self, around: bool = True) -> None:
        """Route the wire again; with ``around`` False, as the plain curve (a burst of moves
        is under way: the scene routes every wire once it is over)."""
        self.prepareGeometryChange()
        p0, p1 = self.end_points()
        s_top, s_bot = self.source.y(), self.source.y() + self.source.h
        t_top, t_bot = self.target.y(), self.target.y() + self.target.h
        if t_top > s_bot + 10:  # where a backwards wire would run: between its blocks
            back_y = (s_bot + t_top) / 2
        elif s_top > t_bot + 10:
            back_y = (t_bot + s_top) / 2
        else:
            back_y = max(s_bot, t_bot) + 30
        scene = self.scene()
        obstacles = None
        if around and scene is not None and hasattr(scene, "block_index"):
            obstacles = Obstacles(scene.block_index(), (self.source, self.target))
        self.path = route(p0, p1, obstacles, back_y)
        x = p1.x() - PORT_R - 1  # the arrow head (the direction data flows) stops at the port
        self.tip = QPolygonF(
            [QPointF(x, p1.y()), QPointF(x - 9, p1.y() - 5), QPointF(x - 9, p1.y() + 5)]
        )
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
        # no room between the two blocks (a dense layout): the blocks show the shape anyway
        self.label_fits = not any(
            self.label_rect.intersects(b.body_rect()) for b in (self.source, self.target)
        )

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
        width = 3.0 if self.isSelected() else 2.0
        painter.setPen(QPen(colour, max(width, width * 0.6 / max(lod, 0.01))))  # >= 1 px
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        self.label_shown = bool(self.label) and self.label_fits and lod >= label_lod()
        if lod < 0.3:
            return  # too small for the arrow head (2-3 px)
        tip = self.tip
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
