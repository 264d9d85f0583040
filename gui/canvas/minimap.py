"""The minimap: the whole graph in small, over the canvas's bottom-left corner, with the part
the canvas shows outlined. Click or drag in it to move the canvas there. It shows itself only
while the blocks do not all fit in the canvas (and View > Minimap is on).

Cheap with big graphs: the blocks are drawn into a picture once per change of the graph's
layout (the scene's ``contentChanged``), not per frame; a pan or zoom only redraws the outline.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from gui.canvas.style import SELECT_COLOUR, WIRE_COLOUR

MAX_W, MAX_H = 240, 150  # the minimap's largest size (pixels); its shape is the graph's
MARGIN = 6


class Minimap(QWidget):
    def __init__(self, view) -> None:
        # a child of the viewport: over it as a sibling, it would make every scroll of the
        # canvas repaint the whole viewport (measured: 67 instead of 10 ms a pan step); the
        # view puts it back after each scroll (which moves the viewport's children)
        super().__init__(view.viewport())
        self.view = view
        self.enabled = True
        self._picture: QPixmap | None = None
        self._bounds = QRectF()  # the blocks' rect (scene) the picture shows
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Minimap: click or drag to move the canvas (View ▸ Minimap)")
        self.hide()
        view.gscene.contentChanged.connect(self.content_changed)
        view.zoomChanged.connect(self.refresh)
        view.horizontalScrollBar().valueChanged.connect(self.refresh)
        view.verticalScrollBar().valueChanged.connect(self.refresh)
        self.content_changed()

    # --- state ---------------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        self.refresh()

    def content_changed(self) -> None:
        """The blocks moved, came or went: draw the picture again when next shown."""
        self._picture = None
        self._bounds = self.view.gscene.blocks_rect()
        self.refresh()

    def needed(self) -> bool:
        """The blocks do not all fit in what the canvas shows."""
        if self._bounds.isNull():
            return False
        shown = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        return not shown.contains(self._bounds)

    def refresh(self, *_args) -> None:
        want = self.enabled and self.needed()
        if want != self.isVisible():
            self.setVisible(want)
        if want:
            self._fit()
            self.update()

    def _fit(self) -> None:
        b = self._bounds
        s = min((MAX_W - 2 * MARGIN) / b.width(), (MAX_H - 2 * MARGIN) / b.height())
        w, h = round(b.width() * s) + 2 * MARGIN, round(b.height() * s) + 2 * MARGIN
        if (w, h) != (self.width(), self.height()):
            self.resize(w, h)
            self._picture = None
        self.place()

    def place(self) -> None:
        """In the canvas's bottom-left corner."""
        self.move(10, self.view.viewport().height() - self.height() - 10)

    # --- geometry ------------------------------------------------------------------------------
    def _scale(self) -> float:
        b = self._bounds
        return min(
            (self.width() - 2 * MARGIN) / max(b.width(), 1e-6),
            (self.height() - 2 * MARGIN) / max(b.height(), 1e-6),
        )

    def to_map(self, p: QPointF) -> QPointF:
        s = self._scale()
        return QPointF(
            MARGIN + (p.x() - self._bounds.left()) * s, MARGIN + (p.y() - self._bounds.top()) * s
        )

    def to_scene(self, p: QPointF) -> QPointF:
        s = self._scale()
        return QPointF(
            self._bounds.left() + (p.x() - MARGIN) / s, self._bounds.top() + (p.y() - MARGIN) / s
        )

    # --- painting and mouse --------------------------------------------------------------------
    def _draw_picture(self) -> QPixmap:
        pm = QPixmap(self.size())
        pm.fill(QColor(255, 255, 255, 225))
        p = QPainter(pm)
        s = self._scale()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.save()
        p.translate(MARGIN - self._bounds.left() * s, MARGIN - self._bounds.top() * s)
        p.scale(s, s)
        p.setPen(QPen(WIRE_COLOUR, 0))  # cosmetic: one pixel wide
        for wire in self.view.gscene.wires.values():
            p.drawPath(wire.path)
        p.restore()
        p.setPen(Qt.PenStyle.NoPen)
        for item in self.view.gscene.blocks.values():
            r = item.body_rect()
            p.setBrush(item.colour)
            p.drawRect(QRectF(self.to_map(r.topLeft()), r.size() * s))
        p.end()
        return pm

    def paintEvent(self, event) -> None:
        if self._bounds.isNull():
            return
        if self._picture is None or self._picture.size() != self.size():
            self._picture = self._draw_picture()
        p = QPainter(self)
        p.drawPixmap(0, 0, self._picture)
        shown = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        frame = QRectF(self.to_map(shown.topLeft()), self.to_map(shown.bottomRight()))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(SELECT_COLOUR, 2))
        fill = QColor(SELECT_COLOUR)
        fill.setAlpha(40)
        p.setBrush(fill)
        p.drawRect(frame.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))
        p.setPen(QPen(QColor("#90a4ae"), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        p.end()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
            event.accept()

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
            event.accept()
