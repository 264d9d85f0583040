"""Confusion panel: the validation set's confusion matrix (rows: true class, columns:
predicted; colour: share of the true class, numbers: counts), computed by the worker at the end
of each epoch, and a few validation samples with their predicted and true labels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from gui.training.buffers import RunData
from gui.training.images import as_display_image
from gui.training.panels.activations import GREY_LUT
from gui.training.panels.base import Panel, image_view, set_label

BLUES = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (8, 69, 148)])
BLUES_LUT = BLUES.getLookupTable(nPts=256)
MAX_TEXT_CLASSES = 20  # write the counts in the cells up to this many classes


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
        self._key = None
        self._texts: list[pg.TextItem] = []

    def _build(self, n: int, n_samples: int, images: bool) -> None:
        v = self.view
        v.clear()
        self._texts = []
        self.title_label = v.addLabel("", row=0, col=0, colspan=2, color="#222", size="10pt")
        self.plot = v.addPlot(row=1, col=0)
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
        self.image = pg.ImageItem()
        self.image.setLookupTable(BLUES_LUT)
        self.plot.addItem(self.image)
        self.samples = v.addLayout(row=1, col=1)
        self.sample_items = []
        if n_samples:
            cols = 4
            for k in range(n_samples):
                r, c = divmod(k, cols)
                label = self.samples.addLabel("", row=2 * r, col=c, size="8pt")
                if images:
                    vb, img = image_view(self.samples, row=2 * r + 1, col=c)
                    img.setLookupTable(GREY_LUT)
                else:
                    vb, img = None, None
                self.sample_items.append((label, vb, img))
        v.ci.layout.setColumnStretchFactor(0, 3)
        v.ci.layout.setColumnStretchFactor(1, 2)

    def redraw_key(self, run):
        return (id(run), getattr(run, "epoch_version", None), getattr(run, "status", None))

    def draw(self, run: RunData | None) -> None:
        if run is None or run.confusion is None:
            msg = ("The confusion matrix appears after the first epoch of a classifier's run."
                   if run is None or run.info.get("task") != "regression"
                   else "Not a classifier: no confusion matrix (the loss panel shows the fit).")
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
        images = xs is not None and len(xs) and as_display_image(xs[0]) is not None \
            and run.info.get("task") == "classification"
        n_samples = (min(len(xs), len(preds)) if xs is not None and preds is not None
                     and run.info.get("task") == "classification" else 0)
        key = (n, n_samples, bool(images))
        if key != self._key:
            self._build(n, n_samples, bool(images))
            self._key = key
        self.matrix = cm
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        self.image.setImage(share, autoLevels=False, levels=(0, 1))
        ticks = [(i + 0.5, self.class_names[i]) for i in range(n)]
        for ax in ("left", "bottom"):
            self.plot.getAxis(ax).setTicks([ticks if n <= 30 else ticks[::max(1, n // 15)], []])
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        if n <= MAX_TEXT_CLASSES:  # the counts, in one reusable text item per cell
            if not self._texts:
                for i in range(n):
                    for j in range(n):
                        t = pg.TextItem("", anchor=(0.5, 0.5))
                        t._bp_shown = ("", None)
                        t.setPos(j + 0.5, i + 0.5)
                        self.plot.addItem(t)
                        self._texts.append(t)
            for k, t in enumerate(self._texts):  # only the cells that changed: each
                i, j = divmod(k, n)               # change re-lays out its text item
                shown = (str(int(cm[i, j])) if cm[i, j] else "",
                         "w" if share[i, j] > 0.55 else "#222")
                if getattr(t, "_bp_shown", None) != shown:
                    t._bp_shown = shown
                    t.setText(shown[0])
                    t.setColor(shown[1])
        acc = np.trace(cm) / max(cm.sum(), 1)
        ep = run.epochs[-1].get("epoch") if run.epochs else "?"
        set_label(self.title_label, f"{run.name}: validation confusion after epoch {ep} "
                                 f"(accuracy {acc:.1%}, {int(cm.sum())} samples)")
        self._draw_samples(run, xs, preds, n_samples)

    def _draw_samples(self, run: RunData, xs, preds, n: int) -> None:
        ys = run.info.get("val_y")
        for k in range(n):
            label, vb, img = self.sample_items[k]
            p, t = int(preds[k]), int(ys[k])
            ok = p == t
            colour = "#1a7f37" if ok else "#c62828"
            set_label(label, f"pred {self._name(p)} / true {self._name(t)}", color=colour,
                      size="8pt")
            if img is not None and getattr(img, "_bp_source", None) is not xs:
                img._bp_source = xs  # the same validation samples all run: drawn once
                pic = as_display_image(xs[k])
                if pic.ndim == 3:
                    img.setLookupTable(None)
                    img.setImage(pic, autoLevels=False, levels=(0, 1))
                else:
                    lo, hi = float(np.min(pic)), float(np.max(pic))
                    img.setImage(pic, autoLevels=False, levels=(lo, hi if hi > lo else lo + 1))
                vb.autoRange(padding=0.02)

    def _name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def table(self):
        if self.matrix is None:
            return ["true \\ predicted"], []
        header = ["true \\ predicted", *self.class_names]
        rows = [[self.class_names[i], *(int(v) for v in row)]
                for i, row in enumerate(self.matrix)]
        return header, rows
