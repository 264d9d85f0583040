"""A block on the canvas: type, key settings, output shape, parameter count, ports.

The item never edits the Graph. The scene sets its text and state from the Graph and the
analysis; the view turns the user's drags into intents for the controller.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from gui.canvas.port_item import PortItem, paint_port
from gui.canvas.style import (
    BLOCK_H,
    BLOCK_W,
    HEADER_H,
    PROBLEM_COLOUR,
    READABLE_PX,
    SELECT_COLOUR,
    SUBTLE_TEXT,
    TEXT_COLOUR,
    badge_colour,
    badge_text,
    block_height,
    family_colour,
    font,
)
from gui.layout import input_slots

F_TITLE, F_ID, F_SETTINGS, F_INFO = font(9.0, True), font(7.5), font(9.5, True), font(8.0)
M_TITLE, M_ID, M_SETTINGS, M_INFO = (QFontMetricsF(f) for f in (F_TITLE, F_ID, F_SETTINGS, F_INFO))


def _header_path() -> QPainterPath:
    """The coloured title band: rounded at the top, square at the bottom."""
    header = QPainterPath()
    header.addRoundedRect(QRectF(0.5, 0.5, BLOCK_W - 1, HEADER_H + 6), 5.5, 5.5)
    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, BLOCK_W, HEADER_H))
    return header.intersected(clip)


HEADER_PATH = _header_path()


# Level of detail. Text is readable from READABLE_PX pixels of line height: a block shows
# all its lines (FULL) while its smallest line (the shape and parameter count) is that tall on
# screen, then only its type and key setting in letters as big as the block allows (COMPACT),
# then, when even those would be specks, only its colour (BLOB).
FULL, COMPACT, BLOB = "full", "compact", "blob"
BLOB_LOD = 0.12
PORT_LOD = 0.3  # ports drawn from here (2 px wide; smaller, the wires' ends say enough)


@lru_cache(maxsize=1)
def full_lod() -> float:
    """The lowest zoom at which a block shows all its lines (font metrics need the app)."""
    return READABLE_PX / M_INFO.height()


def detail_mode(lod: float) -> str:
    """What a block shows at zoom ``lod`` (QStyleOptionGraphicsItem.levelOfDetailFromTransform)."""
    return FULL if lod >= full_lod() else COMPACT if lod >= BLOB_LOD else BLOB


@lru_cache(maxsize=4096)
def _far_text(text: str, lod: float, width: float, height: float):
    """``text`` and the bold font that fills ``width`` x ``height`` at zoom ``lod`` (at most
    13 pt on screen); a text that would have to shrink below 6.5 pt on screen is cut instead."""
    m = QFontMetricsF(font(9.0, True))
    size = min(13.0 / max(lod, 0.05), 9.0 * height / max(m.height(), 1.0))
    wide = 9.0 * width / max(m.horizontalAdvance(text), 1.0)
    if wide >= size or wide * lod >= 6.5:
        return text, font(max(min(size, wide), 1.0), True)
    f = font(max(min(size, 6.5 / max(lod, 0.05)), 1.0), True)
    return QFontMetricsF(f).elidedText(text, Qt.TextElideMode.ElideRight, width), f


@lru_cache(maxsize=64)
def _far_header(h: float) -> QPainterPath:
    """The coloured band of a compact block: its top ``FAR_SPLIT`` (the type's line)."""
    band = QPainterPath()
    band.addRoundedRect(QRectF(0.5, 0.5, BLOCK_W - 1, h - 1), 5.5, 5.5)
    clip = QPainterPath()
    clip.addRect(QRectF(0, 0, BLOCK_W, h * FAR_SPLIT))
    return band.intersected(clip)


FAR_SPLIT = 0.48


class BlockItem(QGraphicsItem):
    """One block. ``arity`` is the layer's (min, max) number of inputs."""

    def __init__(
        self, block_id: str, type_name: str, family: str, arity: tuple[int, int | None]
    ) -> None:
        super().__init__()
        self.block_id = block_id
        self.type_name = type_name
        self.family = family
        self.colour = family_colour(family)
        self.arity = arity
        self.settings = ""
        self.shape_text = "?"
        self.params_text = ""
        self.problems: list[str] = []
        self.badge: float | None = None
        self.h = BLOCK_H
        self.wires: set = set()
        self.links: set = set()  # dashed links to/from paired blocks (gui.canvas.link_item)
        self.locked = False
        self.mode = FULL  # what the last paint showed (detail_mode)
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)
        self.out_port = PortItem(self, "out", 0)
        self.in_ports: list[PortItem] = []
        self.out_port.setPos(BLOCK_W, self.h / 2)
        self.set_slots(input_slots(arity, []))

    # --- ports ---------------------------------------------------------------------------------
    @property
    def multi_input(self) -> bool:
        return self.arity[1] is None or self.arity[1] > 1

    def set_slots(self, n: int) -> None:
        """Show ``n`` input ports (multi-input blocks get one free slot more than they use)."""
        if n == len(self.in_ports):
            return
        self.prepareGeometryChange()
        while len(self.in_ports) > n:
            port = self.in_ports.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        while len(self.in_ports) < n:
            self.in_ports.append(PortItem(self, "in", len(self.in_ports)))
        self.h = block_height(n)
        if self.scene() is not None and hasattr(self.scene(), "moved"):
            self.scene().moved()
        for i, port in enumerate(self.in_ports):
            port.setPos(0.0, self.h * (i + 1) / (n + 1))
        self.out_port.setPos(BLOCK_W, self.h / 2)
        self.update()

    def in_port(self, index: int) -> PortItem | None:
        return self.in_ports[index] if 0 <= index < len(self.in_ports) else None

    # --- state set by the scene ----------------------------------------------------------------
    def set_text(self, settings: str) -> None:
        if settings != self.settings:
            self.settings = settings
            self._refresh_tooltip()
            self.update()

    def set_analysis(self, shape_text: str, params_text: str, problems: list[str]) -> None:
        if (shape_text, params_text, problems) != (
            self.shape_text,
            self.params_text,
            self.problems,
        ):
            self.shape_text, self.params_text, self.problems = shape_text, params_text, problems
            self._refresh_tooltip()
            self.update()

    def set_badge(self, value: float | None) -> None:
        if value != self.badge:
            self.badge = value
            self._refresh_tooltip()
            self.update()

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, not locked)

    def _refresh_tooltip(self) -> None:
        lines = [
            f"{self.type_name} '{self.block_id}'  {self.settings}".rstrip(),
            f"output {self.shape_text}" + (f", {self.params_text}" if self.params_text else ""),
        ]
        if self.badge is not None:
            lines.append(f"gradient RMS {self.badge:.3g}")
        lines += [f"⚠ {p}" for p in self.problems]
        self.setToolTip("\n".join(lines))

    # --- geometry and painting ---------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(-10.0, -24.0, BLOCK_W + 20.0, self.h + 34.0)

    def body_rect(self) -> QRectF:
        """The block itself (without its ports and badge) in scene coordinates."""
        return QRectF(self.x(), self.y(), BLOCK_W, self.h)

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addRoundedRect(QRectF(0, 0, BLOCK_W, self.h), 6, 6)
        return p

    def itemChange(self, change, value):
        if (
            change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged
            and self.scene() is not None
        ):
            scene = self.scene()
            busy = getattr(scene, "moved", None) is not None and scene.moved()
            for wire in self.wires:
                wire.update_path(around=not busy)
            for link in self.links:
                link.update_path()
        return super().itemChange(change, value)

    def paint(self, painter, option, widget=None) -> None:
        lod = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        self.mode = mode = detail_mode(lod)
        body = QRectF(0, 0, BLOCK_W, self.h)
        fill = QColor("white")
        if self.badge is not None:
            c = badge_colour(self.badge)
            fill = QColor(
                round(255 * 0.55 + c.red() * 0.45),
                round(255 * 0.55 + c.green() * 0.45),
                round(255 * 0.55 + c.blue() * 0.45),
            )
        if self.isSelected():
            pen = QPen(SELECT_COLOUR, 3.0 if mode == FULL else 3.0 / max(lod, 0.1))
        elif self.problems:
            pen = QPen(PROBLEM_COLOUR, 2.5 if mode == FULL else 2.5 / max(lod, 0.1))
        else:
            pen = QPen(QColor("#9aa7b0"), 1.0)
        painter.setPen(pen)
        painter.setBrush(QBrush(fill))
        painter.drawRoundedRect(body, 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawPath(HEADER_PATH if mode == FULL else _far_header(self.h))
        if self.isSelected() or self.problems:  # redraw the outline over the header
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(body, 6, 6)
        if mode == FULL:
            self._paint_near(painter)
        elif mode == COMPACT:
            self._paint_far(painter, lod)
        if lod >= PORT_LOD:
            for port in (*self.in_ports, self.out_port):
                paint_port(painter, port)
        if self.problems:
            self._paint_problem_mark(painter)
        if self.badge is not None:
            self._paint_badge(painter)

    def _paint_near(self, painter) -> None:
        pad = 8.0
        right = pad + (8.0 if self.problems else 0.0)  # room for the problem mark
        room = BLOCK_W - pad - right - 6
        # the type wins: the id gets what is left (at least a little), elided in the middle
        id_w = min(
            M_ID.horizontalAdvance(self.block_id) + 2,
            max(room - M_TITLE.horizontalAdvance(self.type_name) - 2, 36.0),
        )
        title_w = room - id_w
        title = M_TITLE.elidedText(self.type_name, Qt.TextElideMode.ElideRight, title_w)
        painter.setPen(QColor("white"))
        painter.setFont(F_TITLE)
        painter.drawText(
            QRectF(pad, 0, title_w, HEADER_H),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            title,
        )
        painter.setFont(F_ID)
        painter.setPen(QColor(255, 255, 255, 215))
        painter.drawText(
            QRectF(BLOCK_W - right - id_w, 0, id_w, HEADER_H),
            Qt.AlignmentFlag.AlignRight
            | Qt.AlignmentFlag.AlignVCenter
            | Qt.TextFlag.TextDontClip,  # see the parameter count below
            M_ID.elidedText(self.block_id, Qt.TextElideMode.ElideMiddle, id_w),
        )
        y_mid = HEADER_H + (self.h - HEADER_H) * 0.36
        painter.setFont(F_SETTINGS)
        painter.setPen(TEXT_COLOUR)
        settings = M_SETTINGS.elidedText(
            self.settings, Qt.TextElideMode.ElideRight, BLOCK_W - 2 * pad
        )
        painter.drawText(
            QRectF(pad, y_mid - 10, BLOCK_W - 2 * pad, 20),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            settings,
        )
        painter.setFont(F_INFO)
        painter.setPen(PROBLEM_COLOUR if self.problems and self.shape_text == "?" else SUBTLE_TEXT)
        info_y = self.h - 20.0
        params_w = M_INFO.horizontalAdvance(self.params_text) + 2
        shape_w = BLOCK_W - 2 * pad - params_w - 6
        painter.drawText(
            QRectF(pad, info_y, shape_w, 16),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            M_INFO.elidedText("→ " + self.shape_text, Qt.TextElideMode.ElideRight, shape_w),
        )
        painter.setPen(SUBTLE_TEXT)
        # Not clipped to the measured width: zoomed out, hinted text is relatively wider, and
        # a rect of the exact width cut off the count's first digits (right-aligned, it
        # grows into the gap before the shape instead).
        painter.drawText(
            QRectF(BLOCK_W - pad - params_w, info_y, params_w, 16),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip,
            self.params_text,
        )

    def _paint_far(self, painter, lod: float) -> None:
        """Zoomed out (COMPACT): the type on the coloured top half and the key settings below,
        each as big as the block allows, so a whole network stays readable when it is fitted
        to the window (semantic zoom). Settings too long to read at this zoom shrink to their
        first part ("6@5x5"), or go ("momentum 0.1": no part says enough alone)."""
        split = self.h * FAR_SPLIT
        line_h = BLOCK_H * FAR_SPLIT - 2
        settings = self.settings
        for shorter in (settings.split(" ")[0], ""):
            if (
                not settings
                or _far_text(settings, round(lod, 2), BLOCK_W - 12, line_h)[0] == settings
            ):
                break
            settings = shorter  # too long to read whole: its first part, else nothing
        for text, rect, colour in (
            (self.type_name, QRectF(6, 1, BLOCK_W - 12, split - 2), QColor("white")),
            (settings, QRectF(6, split + 1, BLOCK_W - 12, self.h - split - 2), TEXT_COLOUR),
        ):
            if not text:
                continue
            # a tall block (many inputs) uses letters as big as an ordinary block's
            shown, f = _far_text(text, round(lod, 2), rect.width(), min(rect.height(), line_h))
            painter.setFont(f)
            painter.setPen(colour)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, shown)

    def _paint_problem_mark(self, painter) -> None:
        c = QPointF(BLOCK_W, 0.0)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(PROBLEM_COLOUR)
        painter.drawEllipse(c, 8.0, 8.0)
        painter.setFont(font(8.5, True))
        painter.drawText(QRectF(c.x() - 8, c.y() - 8, 16, 16), Qt.AlignmentFlag.AlignCenter, "!")

    def _paint_badge(self, painter) -> None:
        text = badge_text(self.badge or 0.0)
        f = font(7.5, True)
        w = QFontMetricsF(f).horizontalAdvance(text) + 12
        rect = QRectF(BLOCK_W / 2 - w / 2, -21.0, w, 16.0)
        c = badge_colour(self.badge or 0.0)
        painter.setPen(QPen(QColor("#263238"), 0.8))
        painter.setBrush(c)
        painter.drawRoundedRect(rect, 8, 8)
        painter.setFont(f)
        light = (0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue()) > 140
        painter.setPen(QColor("black") if light else QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
