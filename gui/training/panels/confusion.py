"""Confusion panel: the validation set's confusion matrix (rows: true class, columns:
predicted; colour: share of the true class, numbers: counts), computed by the worker at the end
of each epoch, and a few validation samples labelled with their predictions (the wrong ones in
red, with the true class)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont

from gui.training.images import as_display_image
from gui.training.panels.base import AXIS_ORDER, Panel, image_view, set_label
from gui.training.run_data import RunData

BLUES = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (8, 69, 148)])
BLUES_LUT = BLUES.getLookupTable(nPts=256)
MAX_TEXT_CLASSES = 20  # write the counts in the cells up to this many classes
N_SAMPLES_SHOWN = 12
SAMPLE_COLS = 4
OK_COLOUR, WRONG_COLOUR = "#1a7f37", "#c62828"


class TextMarks(pg.GraphicsObject):
    """Short texts centred on data points, all drawn in one paint at a fixed font size.

    One item instead of a pg.TextItem per text: a hundred TextItems took about 30 ms to make
    and re-laid themselves out at every change; this paints them in a few milliseconds.
    ``marks``: (x, y, text, colour) in the view's data coordinates.
    """

    def __init__(self, point_size: int = 8) -> None:
        super().__init__()
        self.font = QFont()
        self.font.setPointSize(point_size)
        self.marks: list[tuple[float, float, str, str]] = []
        self._rect = QRectF()

    def set_marks(self, marks: list[tuple[float, float, str, str]], rect: QRectF) -> None:
        if marks == self.marks and rect == self._rect:
            return
        self.prepareGeometryChange()
        self.marks, self._rect = list(marks), QRectF(rect)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, p, *args) -> None:
        to_device = p.transform()
        p.save()
        p.resetTransform()  # text in pixels, not stretched with the view
        p.setFont(self.font)
        for x, y, text, colour in self.marks:
            at = to_device.map(QPointF(x, y))
            p.setPen(QColor(colour))
            p.drawText(
                QRectF(at.x() - 100, at.y() - 12, 200, 24), Qt.AlignmentFlag.AlignCenter, text
            )
        p.restore()


def sample_mosaic(pics: list[np.ndarray], cols: int) -> tuple[np.ndarray, float, float]:
    """The samples as one RGB image in [0, 1], ``cols`` per row, each grey one scaled to its
    own range, on white with a band above each for its label. Returns (image (H, W, 3),
    tile height with its band, tile width with its gap); tile k's label goes at
    ((k % cols + 0.5) * width, (k // cols) * height + band / 2)."""
    h, w = pics[0].shape[:2]
    band, gap = max(3, round(0.45 * h)), max(1, round(0.15 * w))
    rows = -(-len(pics) // cols)
    th, tw = h + band, w + gap
    out = np.ones((rows * th, cols * tw, 3))
    for k, pic in enumerate(pics):
        if pic.ndim == 2:
            lo, hi = float(np.min(pic)), float(np.max(pic))
            pic = np.repeat(((pic - lo) / (hi - lo if hi > lo else 1.0))[..., None], 3, axis=2)
        r, c = divmod(k, cols)
        out[r * th + band : r * th + band + h, c * tw : c * tw + w] = pic[:h, :w]
    return out, float(th), float(tw)


class ConfusionPanel(Panel):
    title = "Confusion"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.matrix: np.ndarray | None = None
        self.class_names: list[str] = []
        self.sample_labels: list[tuple[str, str]] = []  # (text, colour) per sample shown
        self._key = None
        self._mosaic_of = None  # the val_X array the mosaic was made from

    def _build(self, n: int, with_samples: bool) -> None:
        v = self.view
        v.clear()
        self._mosaic_of = None
        self.title_label = v.addLabel("", row=0, col=0, colspan=2, color="#222", size="10pt")
        self.plot = v.addPlot(row=1, col=0, rowspan=2)
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        for ax in ("left", "bottom"):
            a = self.plot.getAxis(ax)
            a.setPen(pg.mkPen("#333"))
            a.setTextPen(pg.mkPen("#333"))
        self.plot.setLabel("left", "true class", color="#222")
        self.plot.setLabel("bottom", "predicted class", color="#222")
        self.image = pg.ImageItem(axisOrder=AXIS_ORDER)
        self.image.setLookupTable(BLUES_LUT)
        self.plot.addItem(self.image)
        self.counts = TextMarks()
        self.plot.addItem(self.counts)
        self.samples_vb = self.samples_img = None
        if with_samples:
            self.samples_label = v.addLabel(
                f"the first {N_SAMPLES_SHOWN} validation samples: the class predicted "
                f"(<span style='color:{WRONG_COLOUR}'>red: wrong</span>, with the true class)",
                row=1,
                col=1,
                color="#444",
                size="9pt",
            )
            self.samples_label.setMaximumHeight(22)
            self.samples_vb, self.samples_img = image_view(v, row=2, col=1)
            v.ci.layout.setRowStretchFactor(1, 0)  # the label's row: one line, not half
            v.ci.layout.setRowStretchFactor(2, 1)
            self.sample_marks = TextMarks()
            self.samples_vb.addItem(self.sample_marks)
        v.ci.layout.setColumnStretchFactor(0, 3)
        v.ci.layout.setColumnStretchFactor(1, 2)

    def redraw_key(self, run):
        return (id(run), getattr(run, "epoch_version", None), getattr(run, "status", None))

    def draw(self, run: RunData | None) -> None:
        if run is None or run.confusion is None:
            msg = (
                "The confusion matrix appears after the first epoch of a classifier's run."
                if run is None or run.info.get("task") != "regression"
                else "Not a classifier: no confusion matrix (the loss panel shows the fit)."
            )
            self.show_message(msg)
            self.view.clear()
            self._key, self.matrix = None, None
            return
        self.show_message("")
        cm = np.asarray(run.confusion)
        n = cm.shape[0]
        names = run.info.get("class_names") or [str(i) for i in range(n)]
        self.class_names = [str(s) for s in names][:n]
        xs = run.info.get("val_X")
        preds = run.samples.get("pred")
        classifier = run.info.get("task") == "classification"
        n_samples = (
            min(len(xs), len(preds), N_SAMPLES_SHOWN)
            if classifier and xs is not None and preds is not None
            else 0
        )
        with_samples = bool(n_samples) and as_display_image(xs[0]) is not None
        key = (n, with_samples)
        if key != self._key:
            self._build(n, with_samples)
            self._key = key
        self.matrix = cm
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        self.image.setImage(share, autoLevels=False, levels=(0, 1))
        ticks = [(i + 0.5, self.class_names[i]) for i in range(n)]
        for ax in ("left", "bottom"):
            self.plot.getAxis(ax).setTicks([ticks if n <= 30 else ticks[:: max(1, n // 15)], []])
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        marks = []
        if n <= MAX_TEXT_CLASSES:  # the counts in the cells
            marks = [
                (
                    j + 0.5,
                    i + 0.5,
                    str(int(cm[i, j])),
                    "#ffffff" if share[i, j] > 0.55 else "#222",
                )  # QColor names, not "w"
                for i in range(n)
                for j in range(n)
                if cm[i, j]
            ]
        self.counts.set_marks(marks, QRectF(0, 0, n, n))
        acc = np.trace(cm) / max(cm.sum(), 1)
        ep = run.epochs[-1].get("epoch") if run.epochs else "?"
        set_label(
            self.title_label,
            f"{run.name}: validation confusion after epoch {ep} "
            f"(accuracy {acc:.1%}, {int(cm.sum())} samples)",
        )
        self.sample_labels = []
        if with_samples:
            self._draw_samples(run, xs, preds, n_samples)

    def _draw_samples(self, run: RunData, xs, preds, n: int) -> None:
        """The first validation samples as one picture, each labelled with its prediction
        (green when right; red, with the true class, when wrong)."""
        if self._mosaic_of is not xs:  # the same samples all run: made once
            pic, self._tile_h, self._tile_w = sample_mosaic(
                [as_display_image(xs[k]) for k in range(n)], SAMPLE_COLS
            )
            self.samples_img.setImage(pic, autoLevels=False, levels=(0, 1))
            self.samples_vb.autoRange(padding=0.02)
            self._mosaic_of = xs
        ys = run.info.get("val_y")
        marks = []
        band = self._tile_h - np.asarray(as_display_image(xs[0])).shape[0]
        for k in range(n):
            p, t = int(preds[k]), int(ys[k])
            text, colour = (
                (self._name(p), OK_COLOUR)
                if p == t
                else (f"{self._name(p)} (true {self._name(t)})", WRONG_COLOUR)
            )
            self.sample_labels.append((text, colour))
            r, c = divmod(k, SAMPLE_COLS)
            marks.append(((c + 0.5) * self._tile_w, r * self._tile_h + band / 2, text, colour))
        rows = -(-n // SAMPLE_COLS)
        self.sample_marks.set_marks(
            marks, QRectF(0, 0, SAMPLE_COLS * self._tile_w, rows * self._tile_h)
        )

    def _name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def table(self):
        if self.matrix is None:
            return ["true \\ predicted"], []
        header = ["true \\ predicted", *self.class_names]
        rows = [[self.class_names[i], *(int(v) for v in row)] for i, row in enumerate(self.matrix)]
        return header, rows
