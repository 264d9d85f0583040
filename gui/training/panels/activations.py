"""Activations panel: what one validation sample looks like inside the network.

The chosen block's output for the chosen sample: feature maps as a grid (each map min-max
scaled), sequences as a heat map (units x time), vectors as bars. For LSTM and GRU blocks the
gate activations over time (``layer.gates``: LSTM i, f, g, o; GRU r, z, n) as heat maps, so a
forget gate that stays open (near 1) over the whole sequence is visible. A recurrent block of
at most ``FEW_UNITS`` units (one-row heat maps say little) gets one plot instead: its output h
and every gate over time, a curve each (the peephole_lstm preset's single unit: its output gate
opening when the cell has counted far enough).

During a run the worker computes these on its own model between steps, at most 5 times a
second and only while this panel is on screen; after a run, the GUI computes them on a copy.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox

from engine.layers import LAYER_TYPES
from gui.training.images import as_display_image, map_grid
from gui.training.panels.base import (
    Panel,
    add_plot,
    colour,
    fit_view,
    image_view,
    set_label,
    style_plot,
)
from gui.training.panels.filters import DIVERGING_LUT
from gui.training.run_data import RunData

SEQUENTIAL = pg.colormap.get("viridis")
GREY = pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
SEQUENTIAL_LUT = SEQUENTIAL.getLookupTable(nPts=256)
GREY_LUT = GREY.getLookupTable(nPts=256)
GATE_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "cell candidate g",
    "o": "output gate o",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "new state n",
    "c": "cell state c",
    "h": "hidden state h",
    "a": "attention weights a",
}
# What z = 1 does in each GRU convention (engine/layers/gru.py): they are different cells.
GRU_Z = {
    "pytorch": "update gate z (PyTorch's GRU: 1 keeps h_prev)",
    "lecture": "update gate z (lecture's GRU: 1 takes n)",
}
SIGMOID_GATES = ("i", "f", "o", "r", "z", "a")  # in (0, 1)
AXES = {"a": "memory steps x output steps"}  # Attention's alignment; the gates: units x time
TANH_GATES = ("g", "n")  # in (-1, 1)
FEW_UNITS = 2  # recurrent blocks this narrow: output and gates as curves in one plot
LINE_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine)  # unit 0, unit 1


class ActivationsPanel(Panel):
    title = "Activations"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.block = QComboBox()
        self.block.setMinimumContentsLength(10)
        self.block.currentIndexChanged.connect(self._changed)
        self.sample = QSpinBox()
        self.sample.setPrefix("validation sample ")
        self.sample.valueChanged.connect(self._sample_changed)
        self.controls.addWidget(QLabel("block"))
        self.controls.addWidget(self.block)
        self.controls.addWidget(self.sample)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self._key = None
        self.items: dict[str, object] = {}
        self.output: np.ndarray | None = None  # the shown block's output for the sample
        self.gates: dict[str, np.ndarray] = {}
        self.shown_block: str | None = None

    def _changed(self) -> None:
        self.ctrl.request_redraw()

    def _sample_changed(self) -> None:
        self.ctrl.watch_changed()
        self.ctrl.request_redraw()

    def redraw_key(self, run):
        return (
            id(run),
            getattr(run, "snapshots", None),
            getattr(run, "status", None),
            len(getattr(run, "info", {}) or {}),
            self.ctrl.weights_version,
            self.block.currentText(),
            self.sample.value(),
        )

    def follow(self, block: str) -> None:
        i = self.block.findText(block)
        if i >= 0:
            self.block.setCurrentIndex(i)

    def _sync(self, run: RunData | None) -> None:
        names = list(run.info.get("all_blocks", [])) if run is not None else []
        have = [self.block.itemText(i) for i in range(self.block.count())]
        if names != have:
            cur = self.block.currentText()
            self.block.blockSignals(True)
            self.block.clear()
            self.block.addItems(names)
            default = cur if cur in names else _default_block(run, names)
            if default in names:
                self.block.setCurrentIndex(names.index(default))
            self.block.blockSignals(False)
        n_val = int(run.info.get("n_val_shown", 0)) if run is not None else 0
        self.sample.blockSignals(True)
        self.sample.setRange(0, max(0, n_val - 1))
        self.sample.setEnabled(n_val > 0)
        self.sample.blockSignals(False)

    def draw(self, run: RunData | None) -> None:
        self._sync(run)
        b = self.block.currentText()
        data = self.ctrl.runlist.current_activations(run, self.sample.value()) if b else None
        if run is not None and run.info and not run.info.get("n_val"):
            self.show_message(
                "This run has no validation samples (val_split is 0): the "
                "activations are shown for a validation sample."
            )
            self.view.clear()
            self._key = None
            self.output, self.gates, self.shown_block = None, {}, None
            return
        if data is None or b not in data.get("activations", {}):
            self.show_message(
                "Start a run: the activations of a validation sample appear "
                "here (choose the block and the sample above, or select a block "
                "on the canvas)."
            )
            self.view.clear()
            self._key = None
            self.output, self.gates, self.shown_block = None, {}, None
            return
        self.show_message("")
        out = np.asarray(data["activations"][b])
        gates = data.get("gates", {}).get(b, {})
        sample = data.get("sample", {})
        kind = "maps" if out.ndim == 3 else "seq" if out.ndim == 2 else "vec"
        few = (  # a recurrent block's gates: each (time, units) as its output
            kind == "seq"
            and out.shape[-1] <= FEW_UNITS
            and bool(gates)
            and all(np.shape(a) == out.shape for a in gates.values())
        )
        key = (b, kind, tuple(gates), out.shape, few, self._gru_convention(b))
        if key != self._key:
            if few:
                self._build_curves(list(gates), out.shape[-1], key[-1])
            else:
                self._build(kind, list(gates), key[-1])
            self._key = key
        self.output, self.gates, self.shown_block = out, dict(gates), b
        btype = run.block_types.get(b, "") if run is not None else ""
        set_label(
            self.items["title"],
            f"{b} ({btype}) output {tuple(out.shape)} for validation sample "
            f"{sample.get('index', '?')}" + (f" (step {data['step']})" if "step" in data else ""),
        )
        self._draw_input(run, sample)
        if few:
            for name, a in {"h": out, **gates}.items():
                steps = np.arange(len(a))
                for u, curve in enumerate(self.items["curves"][name]):
                    curve.setData(steps, np.asarray(a, dtype=np.float64)[:, u])
            return
        if kind == "maps":
            grid, _ = map_grid(out)
            self.items["out"].setImage(grid, autoLevels=False, levels=(0, 1))
            fit_view(self.items["out_vb"], grid.shape)
        elif kind == "seq":
            m = float(np.max(np.abs(out))) or 1.0
            self.items["out"].setImage(out.T, autoLevels=False, levels=(-m, m))
            fit_view(self.items["out_vb"], out.T.shape)
        else:
            self.items["out"].setOpts(x=np.arange(out.size), height=out.ravel(), width=0.8)
            self.items["out_plot"].autoRange()
        for g, a in gates.items():
            img = self.items[f"gate_{g}"]
            a = np.asarray(a)
            if g in SIGMOID_GATES:
                levels = (0.0, 1.0)
            elif g in TANH_GATES:
                levels = (-1.0, 1.0)
            else:  # a state: symmetric about 0 around its largest magnitude
                m = float(np.max(np.abs(a))) or 1.0
                levels = (-m, m)
            img.setImage(a.T, autoLevels=False, levels=levels)
            fit_view(self.items[f"gate_vb_{g}"], a.T.shape)

    def _draw_input(self, run: RunData | None, sample: dict) -> None:
        x = sample.get("x")
        label = self.items["in_label"]
        img = self.items["in"]
        if x is None:
            img.clear()
            return
        vocab = run.info.get("vocab") if run is not None else None
        y = sample.get("y")
        names = run.info.get("class_names") if run is not None else None
        target = _label(y, names)
        if np.asarray(x).dtype.kind in "iu" and vocab:
            text = "".join(vocab[int(i)] for i in np.ravel(x) if 0 <= int(i) < len(vocab))
            set_label(label, f"input: {text!r}")
            img.clear()
            return
        pic = as_display_image(x)
        if pic is None:
            set_label(label, f"input {np.array2string(np.asarray(x), precision=3)}  {target}")
            img.clear()
            return
        set_label(label, f"input sample {target}")
        if pic.ndim == 3:
            lut = None
            levels = (0.0, 1.0)
        else:
            lo, hi = float(np.nanmin(pic)), float(np.nanmax(pic))
            lut = GREY_LUT if np.asarray(x).ndim != 2 else SEQUENTIAL_LUT
            levels = (lo, hi if hi > lo else lo + 1)
        if getattr(img, "_bp_lut", 0) is not lut:
            img._bp_lut = lut
            img.setLookupTable(lut)
        img.setImage(pic, autoLevels=False, levels=levels)
        fit_view(self.items["in_vb"], pic.shape)

    def _gru_convention(self, b: str) -> str | None:
        """The gate convention of block ``b`` in the graph (None: its type has no
        ``convention`` setting, or it is not there)."""
        graph = getattr(self.ctrl, "graph", None)
        cls = LAYER_TYPES.get(graph.type_of(b)) if graph is not None and b in graph else None
        if cls is None or "convention" not in cls.options:
            return None
        return graph.full_config(b).get("convention", cls.options["convention"].default)

    def _build(self, kind: str, gates: list[str], convention: str | None = None) -> None:
        """Title; input and output side by side; for LSTM/GRU the gates below, three to a
        row, each a units x time heat map (sigmoid gates 0..1 in viridis, tanh ones and the
        states blue-white-red around 0)."""
        v = self.view
        v.clear()
        self.items = {}
        cols = 3 if gates else 2
        self.items["title"] = v.addLabel("", row=0, col=0, colspan=cols, color="#222", size="10pt")
        self.items["in_label"] = v.addLabel("input", row=1, col=0, color="#222", size="9pt")
        self.items["in_vb"], self.items["in"] = image_view(v.ci, row=2, col=0)
        v.addLabel("output", row=1, col=1, colspan=cols - 1, color="#222", size="9pt")
        if kind == "vec":
            p = style_plot(add_plot(v.ci, row=2, col=1, colspan=cols - 1), "", "unit", "activation")
            bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=colour(0))
            p.addItem(bars)
            self.items["out_plot"], self.items["out"] = p, bars
        else:
            vb, img = image_view(v.ci, row=2, col=1, colspan=cols - 1)
            if kind == "seq":  # units x time: fill the space, as the gates do
                vb.setAspectLocked(False)
            img.setLookupTable(SEQUENTIAL_LUT if kind == "maps" else DIVERGING_LUT)
            vb.setBackgroundColor((90, 90, 90))
            self.items["out_vb"], self.items["out"] = vb, img
        lay = v.ci.layout
        for c in range(cols):
            lay.setColumnStretchFactor(c, 1)
        if not gates:
            lay.setColumnStretchFactor(1, 3)
        lay.setRowStretchFactor(2, 3)
        for k, g in enumerate(gates):
            r, c = 3 + 2 * (k // 3), k % 3
            name = GRU_Z[convention] if g == "z" and convention else GATE_NAMES.get(g, g)
            axes = AXES.get(g, "units x time")
            v.addLabel(f"{name} ({axes})", row=r, col=c, color="#222", size="9pt")
            vb, img = image_view(v.ci, row=r + 1, col=c)
            vb.setAspectLocked(False)
            img.setLookupTable(SEQUENTIAL_LUT if g in SIGMOID_GATES else DIVERGING_LUT)
            lay.setRowStretchFactor(r + 1, 3)
            self.items[f"gate_vb_{g}"], self.items[f"gate_{g}"] = vb, img

    def _build_curves(self, gates: list[str], units: int, convention: str | None) -> None:
        """Title; the input beside one plot of the output h and every gate over time (a
        colour each; unit 1 dashed)."""
        v = self.view
        v.clear()
        self.items = {"curves": {}}
        self.items["title"] = v.addLabel("", row=0, col=0, colspan=3, color="#222", size="10pt")
        self.items["in_label"] = v.addLabel("input", row=1, col=0, color="#222", size="9pt")
        self.items["in_vb"], self.items["in"] = image_view(v.ci, row=2, col=0)
        v.addLabel(
            "output h and gates over time (sigmoid gates in 0..1, g and c around 0)",
            row=1,
            col=1,
            color="#222",
            size="9pt",
        )
        p = style_plot(add_plot(v.ci, row=2, col=1), "", "step", "")
        p.setMouseEnabled(x=False, y=False)
        p.setMenuEnabled(False)
        p.hideButtons()
        legend = pg.LegendItem(labelTextColor="#222")  # beside the plot: never over a curve
        legend.setColumnCount(units)
        v.ci.addItem(legend, row=2, col=2)
        for k, g in enumerate(["h", *gates]):
            name = "output h" if g == "h" else GATE_NAMES.get(g, g)
            if g == "z" and convention:
                name = GRU_Z[convention]
            self.items["curves"][g] = []
            for u in range(units):
                pen = pg.mkPen(colour(k), width=3 if g == "h" else 2, style=LINE_STYLES[u])
                curve = p.plot(pen=pen)
                legend.addItem(curve, name + (f" (unit {u})" if units > 1 else ""))
                self.items["curves"][g].append(curve)
        lay = v.ci.layout
        lay.setColumnStretchFactor(0, 1)
        lay.setColumnStretchFactor(1, 3)
        lay.setRowStretchFactor(2, 3)

    def table(self):
        header = ["series", "index", "value"]
        if self.output is None:
            return header, []
        rows = [["output", str(idx), float(v)] for idx, v in np.ndenumerate(self.output)]
        for g, a in self.gates.items():
            rows.extend([f"gate_{g}", str(idx), float(v)] for idx, v in np.ndenumerate(a))
        return header, rows


def _label(y, names) -> str:
    if y is None:
        return ""
    a = np.asarray(y)
    if a.ndim == 0 and a.dtype.kind in "iu":
        k = int(a)
        return f"(class {names[k] if names and k < len(names) else k})"
    if a.size <= 4:
        return f"(target {np.array2string(a.ravel(), precision=3)})"
    return ""


def _default_block(run: RunData | None, names: list[str]) -> str:
    """The first recurrent or conv block (the interesting ones), else the first hidden one."""
    if run is None or not names:
        return ""
    for b in names:
        cls = LAYER_TYPES.get(run.block_types.get(b, ""))
        if cls is not None and (cls.recurrent or cls.shows_filters):
            return b
    return names[1] if len(names) > 1 else names[0]
