"""Why?: where the evidence for a class is in one input (engine.explain; lecture 001's CAM).

Pick a validation sample or the digit drawn in Try it, a class (default: the predicted one) and
a method (CAM when the graph ends GlobalAvgPool2D -> Dense, Grad-CAM when it has a convolution,
saliency and SmoothGrad when the input is differentiable, occlusion always). The input is drawn
in grey with the map over it (viridis, legend at the side, opacity slider), and below the maps
of the three highest-scoring classes side by side. While a run trains, the maps follow its
weights at most once a second (MIN_INTERVAL_S), so the evidence is seen to sharpen.

The maps are computed here, on the GUI-side copy of the run's network (``ctrl.runlist.model_for``);
for the slow methods the panel uses fewer noisy copies (SmoothGrad) and non-overlapping patches
(occlusion) than the command line does, so a redraw stays near a tenth of a second on LeNet-5.
On a large network (an imported ResNet) the GUI thread is never held long: the panel measures
one forward pass, refuses (with a message pointing to ``app.py explain``) a method estimated
over BUDGET_S, draws the other top classes only within that budget, and while training keeps
its share of the time under BUSY_SHARE.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QSpinBox

from engine.errors import BlockPropError
from engine.explain import Explanation, conv_blocks, explain, methods_for, top_classes
from engine.explain_files import normalized
from gui.training.panels.activations import GREY_LUT, SEQUENTIAL
from gui.training.panels.base import AXIS_ORDER, Panel, fit_view, image_view, set_label
from gui.training.prep import softmax
from gui.training.run_data import RunData

MIN_INTERVAL_S = 1.0  # while training: at most one recomputation a second, and at most 5 %
BUSY_SHARE = 0.05  # of the time (a large network's maps take longer)
BUDGET_S = 0.5  # the most one redraw may spend in the GUI thread (estimated before it runs)
METHOD_NAMES = {
    "cam": "CAM (class activation map)",
    "gradcam": "Grad-CAM",
    "saliency": "saliency (gradient)",
    "smoothgrad": "SmoothGrad",
    "occlusion": "occlusion",
}
GUI_SETTINGS = {"smoothgrad": {"n": 8}, "occlusion": {}}  # cheaper than the CLI's defaults
VIRIDIS_LUT = SEQUENTIAL.getLookupTable(nPts=256)


def picture(x: np.ndarray) -> np.ndarray:
    """A sample as a grey (H, W) picture (channels averaged; sequences as one row; token ids,
    names rather than amounts, as a blank row)."""
    if not np.issubdtype(np.asarray(x).dtype, np.floating):
        return np.zeros((1, np.asarray(x).shape[-1]))
    a = np.asarray(x, np.float64)
    if a.ndim == 3:
        return a.mean(axis=0)
    if a.ndim == 2:
        return a.mean(axis=0)[None]
    return a[None]


def forward_passes(method: str, shape: tuple, settings: dict) -> float:
    """About how many forward passes ``method`` costs (a backward pass counts as two)."""
    if method == "cam":
        return 1.0
    if method in ("gradcam", "saliency"):
        return 3.0
    if method == "smoothgrad":
        return 1.0 + 3.0 * settings.get("n", 25)
    sizes = shape[1:] if len(shape) >= 2 else shape
    p, st = settings.get("patch", 1), settings.get("stride", 1)
    return 1.0 + float(np.prod([max(0, s - p) // st + 2 for s in sizes]))


class WhyPanel(Panel):
    title = "Why?"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.source = QComboBox()
        self.source.addItems(["validation sample", "drawn digit (Try it)"])
        self.sample = QSpinBox()
        self.sample.setRange(0, 0)
        self.sample.setPrefix("#")
        self.cls = QComboBox()
        self.method = QComboBox()
        self.block = QComboBox()
        self.block.setToolTip("the block whose maps Grad-CAM weighs (default: the last conv)")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("opacity of the map over the input")
        for w in (self.source, self.cls, self.method, self.block):
            w.currentIndexChanged.connect(self._changed)
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.sample.valueChanged.connect(self._changed)
        self.opacity.valueChanged.connect(self._set_opacity)
        for label, w in (
            ("", self.source),
            ("", self.sample),
            ("class", self.cls),
            ("method", self.method),
            ("", self.block),
            ("opacity", self.opacity),
        ):
            if label:
                self.controls.addWidget(QLabel(label))
            self.controls.addWidget(w)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view, 1)
        self.export_widget = self.view
        # one row: the input with the map, its legend, then the top three classes' maps
        self.heading = self.view.addLabel("", row=0, col=0, colspan=5, color="#222", size="10pt")
        self.view.addLabel("input and map", row=1, col=0, color="#555", size="9pt")
        self.main_vb, self.base = image_view(self.view.ci, row=2, col=0)
        self.base.setLookupTable(GREY_LUT)
        self.heat = pg.ImageItem(axisOrder=AXIS_ORDER)
        self.heat.setLookupTable(VIRIDIS_LUT)
        self.main_vb.addItem(self.heat)
        self.legend = pg.ColorBarItem(
            values=(0, 1), colorMap=SEQUENTIAL, interactive=False, width=14, label="evidence"
        )
        self.view.ci.addItem(self.legend, row=2, col=1)
        self.small: list[tuple[pg.LabelItem, pg.ViewBox, pg.ImageItem, pg.ImageItem]] = []
        for i in range(3):
            label = self.view.addLabel("", row=1, col=2 + i, color="#222", size="9pt")
            vb, base = image_view(self.view.ci, row=2, col=2 + i)
            base.setLookupTable(GREY_LUT)
            heat = pg.ImageItem(axisOrder=AXIS_ORDER)
            heat.setLookupTable(VIRIDIS_LUT)
            vb.addItem(heat)
            self.small.append((label, vb, base, heat))
        layout = self.view.ci.layout
        layout.setColumnStretchFactor(0, 3)
        for i in range(3):
            layout.setColumnStretchFactor(2 + i, 2)
        self.result: Explanation | None = None
        self.top: list[Explanation] = []
        self.seconds = 0.0  # the last computation's time
        self.pass_s: dict[int, float] = {}  # id(model) -> seconds of one forward pass, measured
        self._weights_seen = -1
        self._model_key = None
        self._set_opacity()

    # --- controls ------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.block.setVisible(self.method.currentData() == "gradcam")
        self.sample.setVisible(self.source.currentIndex() == 0)
        self.ctrl.request_redraw()

    def _set_opacity(self) -> None:
        a = self.opacity.value() / 100.0
        self.heat.setOpacity(a)
        for *_, heat in self.small:
            heat.setOpacity(a)

    def _state(self):
        return (
            self.source.currentIndex(),
            self.sample.value(),
            self.cls.currentData(),
            self.method.currentData(),
            self.block.currentData(),
            self.ctrl.panels["try_it"].pad.version if self.source.currentIndex() else None,
        )

    def redraw_key(self, run: RunData | None):
        # new weights count only once a second while the run trains (the maps cost a forward
        # and backward pass each); after the run, at once
        wv = self.ctrl.weights_version
        live = run is not None and run is self.ctrl.active
        if wv != self._weights_seen and (
            not live
            or time.perf_counter() - self.drawn_at >= max(MIN_INTERVAL_S, self.seconds / BUSY_SHARE)
        ):
            self._weights_seen = wv
        return (id(run), self._weights_seen, self._state())

    def _fill_choices(self, model, info: dict) -> None:
        """The class, method and block menus for this run's network (kept when they fit)."""
        key = (id(model), tuple(info.get("class_names") or ()))
        if key == self._model_key:
            return
        self._model_key = key
        n = int(model.output_shape[0])
        names = info.get("class_names") or [str(i) for i in range(n)]
        for combo, items in (
            (self.cls, [("predicted", None)] + [(f"{i}: {names[i]}", i) for i in range(n)]),
            (self.method, [(METHOD_NAMES[m], m) for m in methods_for(model)]),
            (self.block, [(f"block {b}", b) for b in reversed(conv_blocks(model))]),
        ):
            was = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
            i = combo.findData(was)
            combo.setCurrentIndex(max(0, i))
            combo.blockSignals(False)
        self.block.setVisible(self.method.currentData() == "gradcam")

    # --- drawing -------------------------------------------------------------------------------
    def _input(self, run: RunData) -> np.ndarray | None:
        if self.source.currentIndex() == 1:
            x = self.ctrl.panels["try_it"].input
            return None if x is None else np.asarray(x, np.float32)
        X = run.info.get("val_X")
        if X is None or not len(X):
            return None
        self.sample.setRange(0, len(X) - 1)
        return np.asarray(X[min(self.sample.value(), len(X) - 1)])

    def draw(self, run: RunData | None) -> None:
        info = run.info if run is not None else {}
        model = self.ctrl.runlist.model_for(run) if run is not None and info else None
        if model is None:
            self.result = None
            return self.show_message("Train a classifier: this panel then maps what it looks at.")
        if len(model.output_shape) != 1 or info.get("task") not in (
            "classification",
            "sequence_classification",
        ):
            self.result = None
            return self.show_message("Why? explains classifiers; this run is not one.")
        self._fill_choices(model, info)
        x = self._input(run)
        if x is None:
            self.result = None
            return self.show_message(
                "Draw a digit in Try it first." if self.source.currentIndex() else "No samples."
            )
        method = self.method.currentData() or "occlusion"
        block = self.block.currentData() if method == "gradcam" else None
        settings = dict(GUI_SETTINGS.get(method, {}))
        if method == "occlusion":
            size = min(np.shape(x)[1:] or np.shape(x))
            settings["patch"] = settings["stride"] = max(1, round(size / 8))
        # the GUI never waits long: a map whose estimated time (passes x the measured time
        # of one pass on this network) is over the budget is left to the command line, and
        # the other top classes' maps are drawn only when they fit in it too
        passes = forward_passes(method, np.shape(x), settings)
        one = self.pass_s.get(id(model))
        if one is not None and passes * one > BUDGET_S:
            self.result = None
            return self.show_message(
                f"{METHOD_NAMES[method]} would take about {passes * one:.0f} s on this network, "
                "too long for the panel: choose Grad-CAM or CAM here, or run python app.py "
                "explain GRAPH.json --method " + method
            )
        t0 = time.perf_counter()
        try:
            self.result = explain(model, x, method, self.cls.currentData(), block, **settings)
            took = time.perf_counter() - t0
            self.pass_s[id(model)] = took / passes
            top = []
            for k in top_classes(self.result.scores, 3):
                if k == self.result.cls:
                    top.append(self.result)
                elif time.perf_counter() - t0 + took <= BUDGET_S:
                    top.append(explain(model, x, method, k, block, **settings))
                else:
                    top.append(None)
        except BlockPropError as e:
            self.result = None
            return self.show_message(str(e))
        self.seconds = time.perf_counter() - t0
        self.top = top
        self.show_message("")
        self._show(run, x)

    def _show(self, run: RunData, x: np.ndarray) -> None:
        e = self.result
        names = run.info.get("class_names") or [str(i) for i in range(len(e.scores))]
        probs = softmax(np.asarray(e.scores, np.float64))
        pic = picture(x)
        on = f" of {e.block}" if e.block else ""
        when = f", step {run.steps.last()[0]:.0f}" if run.steps.last() is not None else ""
        set_label(
            self.heading,
            f"{METHOD_NAMES[e.method]}{on} for class {names[e.cls]} (p = {probs[e.cls]:.2f})"
            f"{when} &middot; {self.seconds * 1000:.0f} ms",
        )
        m = e.map if e.map.ndim == 2 else e.map[None]
        _, lo, hi = normalized(m)
        self.base.setImage(pic, autoLevels=True)
        self.heat.setImage(m, autoLevels=False, levels=(lo, hi if hi > lo else lo + 1))
        self.legend.setLevels((lo, hi if hi > lo else lo + 1))
        fit_view(self.main_vb, pic.shape)
        for (label, vb, base, heat), t in zip(self.small, self.top + [None] * 3, strict=False):
            if t is None:
                label.setText("(too slow here)" if len(self.top) == 3 else "")
                base.clear()
                heat.clear()
                continue
            tm = t.map if t.map.ndim == 2 else t.map[None]
            _, tlo, thi = normalized(tm)
            set_label(label, f"{names[t.cls]}: p = {probs[t.cls]:.2f}")
            base.setImage(pic, autoLevels=True)
            heat.setImage(tm, autoLevels=False, levels=(tlo, thi if thi > tlo else tlo + 1))
            fit_view(vb, pic.shape)

    def table(self):
        e = self.result
        if e is None:
            return ["row", "column", "value"], []
        m = e.map if e.map.ndim == 2 else e.map[None]
        return ["row", "column", "value"], [
            [i, j, float(m[i, j])] for i in range(m.shape[0]) for j in range(m.shape[1])
        ]
