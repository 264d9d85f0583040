"""Widgets drawn over the canvas (children of the view, so they stay put while it scrolls):
the cursor feedback label, the training lock banner and the gradient colour-scale legend."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QLabel, QWidget

from gui.canvas.style import LOG_HI, LOG_LO, font, scale_colour

STYLES = {
    "error": "background:#fff4f4; color:#b71c1c; border:1px solid #e57373;",
    "warn": "background:#fff8e1; color:#6d4c00; border:1px solid #ffb300;",
    "info": "background:#f1f8e9; color:#1b5e20; border:1px solid #81c784;",
}


class FeedbackLabel(QLabel):
    """A short message next to the cursor (why a wire was refused, what a drop did)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setMaximumWidth(380)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.kind = "error"
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_at(self, text: str, pos: QPoint, kind: str = "error", ms: int = 4500) -> None:
        self.kind = kind
        self.setStyleSheet(f"QLabel {{{STYLES[kind]} border-radius:4px; padding:4px 8px;}}")
        self.setText(text)
        width = min(self.sizeHint().width(), self.maximumWidth())
        self.resize(width, self.heightForWidth(width))
        area = self.parentWidget().viewport().geometry()  # the canvas without scroll bars
        x = min(max(pos.x() + 18, area.left() + 4), area.right() - self.width() - 4)
        y = pos.y() + 18
        if y + self.height() > area.bottom() - 4:  # no room below the cursor: go above it
            y = pos.y() - 12 - self.height()
        self.move(x, max(y, area.top() + 4))
        self.show()
        self.raise_()
        self._timer.start(ms) if ms else self._timer.stop()


class EmptyHint(QLabel):
    """What to do first, in the middle of an empty canvas."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(
            "<p style='font-size:15px'><b>Start here</b></p>"
            "<p>Drag blocks from the palette onto the canvas, or double-click one "
            "(it goes after the selected block, already wired).</p>"
            "<p>Wire a block by dragging from its output port (right) to another "
            "block's input port (left).</p>"
            "<p>Or open a classic network: File ▸ Open Preset…</p>",
            parent,
        )
        self.setWordWrap(True)
        self.setFixedWidth(380)
        self.setStyleSheet(
            "QLabel { color:#546e7a; background:rgba(255,255,255,200); "
            "border:1px dashed #b0bec5; border-radius:8px; padding:10px 16px; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def place(self) -> None:
        self.resize(self.width(), self.heightForWidth(self.width()))
        area = self.parentWidget().viewport().geometry()
        self.move(area.center().x() - self.width() // 2, area.center().y() - self.height() // 2)


class LockBanner(QLabel):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(
            "Training: editing is locked (you can still select, inspect and zoom)", parent
        )
        self.setStyleSheet(
            "QLabel { background:#ffca28; color:#3e2723; font-weight:bold; "
            "border:1px solid #ff8f00; border-radius:5px; padding:5px 14px; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def place(self) -> None:
        self.adjustSize()
        self.move((self.parentWidget().width() - self.width()) // 2, 10)


class BadgeLegend(QWidget):
    """The colour scale of the gradient badges: log10 of each block's gradient RMS."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFixedSize(250, 58)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor("#90a4ae")))
        p.setBrush(QColor(255, 255, 255, 235))
        p.drawRoundedRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1), 5, 5)
        p.setFont(font(8.0, True))
        p.setPen(QColor("#263238"))
        p.drawText(
            QRectF(8, 3, self.width() - 16, 16),
            Qt.AlignmentFlag.AlignLeft,
            "Gradient RMS per block (log scale)",
        )
        bar = QRectF(18, 21, self.width() - 36, 12)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(11):
            grad.setColorAt(i / 10, scale_colour(i / 10))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(grad)
        p.drawRect(bar)
        p.setFont(font(7.0))
        p.setPen(QColor("#37474f"))
        lo, hi = int(LOG_LO), int(LOG_HI)
        for e in range(lo, hi + 1, 2):
            x = bar.left() + bar.width() * (e - LOG_LO) / (LOG_HI - LOG_LO)
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            p.drawText(
                QRectF(x - 20, bar.bottom() + 3, 40, 14), Qt.AlignmentFlag.AlignCenter, f"1e{e}"
            )
        p.end()
