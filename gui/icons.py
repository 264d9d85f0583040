"""Icons drawn with QPainter: they render the same on every system (an emoji such as the
padlock needs a colour-emoji font many Linux machines lack, and then shows as a box)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPixmap


def padlock(size: int = 16, colour: str = "#3e2723", ratio: float = 1.0) -> QPixmap:
    """A closed padlock, ``size`` px square (``ratio``: the screen's device pixel ratio)."""
    px = QPixmap(round(size * ratio), round(size * ratio))
    px.setDevicePixelRatio(ratio)
    px.fill(Qt.GlobalColor.transparent)
    p = QPainter(px)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    ink = QColor(colour)
    # the shackle: an arch over the body
    p.setPen(QPen(ink, max(1.5, s * 0.12), Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap))
    p.setBrush(Qt.BrushStyle.NoBrush)
    arch = QPainterPath()
    left, right, top, foot = s * 0.3, s * 0.7, s * 0.1, s * 0.48
    arch.moveTo(left, foot)
    arch.lineTo(left, s * 0.3)
    arch.arcTo(QRectF(left, top, right - left, (right - left)), 180, -180)
    arch.lineTo(right, foot)
    p.drawPath(arch)
    # the body, with a keyhole
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(ink)
    p.drawRoundedRect(QRectF(s * 0.16, s * 0.44, s * 0.68, s * 0.5), s * 0.08, s * 0.08)
    p.setBrush(QColor("#ffca28"))
    p.drawEllipse(QRectF(s * 0.44, s * 0.56, s * 0.12, s * 0.12))
    p.drawRect(QRectF(s * 0.475, s * 0.64, s * 0.05, s * 0.16))
    p.end()
    return px
