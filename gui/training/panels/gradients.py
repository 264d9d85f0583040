"""Gradients panel: where the gradient vanishes.

- Bars: the latest gradient RMS of every block with parameters, input (left) to output (right),
  on a log scale (the log's ``grad_rms``: ||g||_2 / sqrt(n), comparable across layer sizes).
- History: the same numbers over the steps, one line per block, log y.
- BPTT profile (recurrent blocks): RMS of dL/dh_t for every time step t of the last batch
  (``trainer.last_time_grads``). A plain RNN's falls off by decades towards t = 1; an LSTM's
  stays flat. Profiles of the runs ticked in the Runs panel are drawn dashed, for comparison
  (another graph's runs only when chosen there, see ``RunList.overlay_runs``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox

from engine.layers import LAYER_TYPES
from gui.training.panels.base import (
    Panel,
    add_plot,
    colour,
    line_plot,
    make_legend,
    reset_sticky,
    set_title,
    step_axis_end,
    sticky_range,
    style_plot,
)
from gui.training.panels.module_bars import bar_values, entries
from gui.training.run_data import RunData

HISTORY_INTERVAL_S = 1.0


LABEL_PX = 18  # a bar's value label, pixels high
LABEL_MIN_GAP_PX = 46  # bars closer than this: no value labels (they would overlap)


class GradientsPanel(Panel):
    title = "Gradients"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        # Modules: one bar per instance (RMS over its parameters) until expanded by a click on
        # it, or all at once with this box (gui.training.panels.module_bars).
        self.expand_all = QCheckBox("blocks inside modules")
        self.expand_all.setToolTip("Show a bar for every block inside each module instance")
        self.expand_all.toggled.connect(lambda _on: self._regroup())
        self.expanded: set[str] = set()
        self.controls.addWidget(self.expand_all)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.p_bars = style_plot(
            add_plot(self.view.ci, row=0, col=0),
            "Gradient RMS per block (latest step)",
            "",
            "grad RMS",
        )
        self.p_bars.getAxis("left").setLogMode(True)
        self.p_bars.setMouseEnabled(x=False, y=False)
        self.p_bars.getAxis("bottom").setHeight(42)  # two-line labels: block id, type
        self.p_bars.scene().sigMouseClicked.connect(self._clicked)
        # No legend: the lines take the colours of the bars above, which name their blocks (a
        # legend row sat over the newest steps, where the user looks).
        self.p_hist = line_plot(
            style_plot(
                add_plot(self.view.ci, row=1, col=0),
                "Gradient RMS over steps (colours as the bars)",
                "step",
                "grad RMS",
            )
        )
        self.p_hist.setLogMode(y=True)
        self.p_bptt = style_plot(
            add_plot(self.view.ci, row=0, col=1, rowspan=2),
            "BPTT: gradient wrt hidden state per time step",
            "time step t",
            "RMS dL/dh_t",
        )
        self.p_bptt.setLogMode(y=True)
        self._bptt_in_layout = True
        # Profiles rise to the right, steeply where gradients vanish: the top-left stays clear
        # (bottom-right covered the flat middle of the profile).
        self.bptt_legend = make_legend(self.p_bptt, left=True)
        self.bars: pg.BarGraphItem | None = None
        self.bar_labels: list[pg.TextItem] = []
        self.values: dict[str, float] = {}  # what the bars show: block -> grad RMS
        self.lines: dict[str, pg.PlotDataItem] = {}
        self._blocks: list[str] = []
        self._bars: list[tuple[str, list[int]]] = []  # (label, indices into run.blocks)
        self._weights = np.ones(0)  # each block's parameter count (module_bars.combine)
        self._shape = None  # (blocks, their types) the bars were built for
        self._run: RunData | None = None
        self._bptt_items: dict[str, pg.PlotDataItem] = {}
        self._bptt_names: list = []
        self.profiles: dict[str, np.ndarray] = {}  # current run's latest BPTT profiles
        self._framed_run: RunData | None = None
        self._history_at = 0.0

    def _layout(self, has_bptt: bool) -> None:
        """The BPTT plot takes the right column only for recurrent models."""
        if has_bptt == self._bptt_in_layout:
            return
        self._bptt_in_layout = has_bptt
        if has_bptt:
            self.view.ci.addItem(self.p_bptt, row=0, col=1, rowspan=2)
            self.view.ci.layout.setColumnStretchFactor(0, 3)
            self.view.ci.layout.setColumnStretchFactor(1, 2)
        else:
            self.view.ci.removeItem(self.p_bptt)
            self.view.ci.layout.setColumnStretchFactor(1, 0)

    def draw(self, run: RunData | None) -> None:
        self._run = run
        if run is None or not run.blocks:
            self._clear()
            return
        shape = (
            run.blocks,
            [run.block_types.get(b) for b in run.blocks],
            frozenset(self.expanded),
            self.expand_all.isChecked(),
        )
        if shape != self._shape:  # other blocks, or the same ids with other types
            self._rebuild(run)
            self._shape = shape
        # While training, one part per redraw: the history (its curves are the costliest
        # part) once a second, the bars and the BPTT profile at the other redraws; so one
        # redraw of this panel stays short. A finished run draws everything at once.
        live = run is self.ctrl.active
        history_due = time.perf_counter() - self._history_at >= HISTORY_INTERVAL_S
        if not live or history_due:
            self._draw_history(run)
        if not live or not history_due:
            self._draw_bars(run)
            self._draw_bptt(run)

    def _clear(self) -> None:
        if self.bars is not None:
            self.p_bars.removeItem(self.bars)
            self.bars = None
        for item in self.bar_labels:
            self.p_bars.removeItem(item)
        self.bar_labels = []
        for line in self.lines.values():
            self.p_hist.removeItem(line)
        self.lines = {}
        self._blocks = []
        self._bars = []
        self._shape = None
        self.values = {}
        self._clear_bptt()
        self._bptt_names = []
        self._layout(False)

    def _regroup(self) -> None:
        if self._run is not None:
            self.draw(self._run)

    def _clicked(self, event) -> None:
        """A click on a module's bar shows its blocks; on one of its blocks, folds them back."""
        if not self._blocks or not self.p_bars.sceneBoundingRect().contains(event.scenePos()):
            return
        x = self.p_bars.vb.mapSceneToView(event.scenePos()).x()
        i = int(round(x))
        if not 0 <= i < len(self._blocks) or abs(x - i) > 0.4:
            return
        label = self._blocks[i]
        top = label.split("/", 1)[0].removesuffix(" ▸")
        if "/" not in label and not label.endswith(" ▸"):
            return
        self.expanded ^= {top}
        self._regroup()

    def _rebuild(self, run: RunData) -> None:
        self._clear()
        self._bars = entries(list(run.blocks), self.expanded, self.expand_all.isChecked())
        self._blocks = [label for label, _ in self._bars]
        counts = run.info.get("block_params", {}) if isinstance(run.info, dict) else {}
        self._weights = np.array([float(counts.get(b, 1)) for b in run.blocks])
        n = len(self._blocks)
        self._brushes = [pg.mkBrush(colour(i, n)) for i in range(n)]
        self._bar_pen = pg.mkPen(60, 60, 60)
        types = [
            run.block_types.get(run.blocks[cols[0]], "")
            if len(cols) == 1
            else f"{len(cols)} blocks"
            for _, cols in self._bars
        ]
        ticks = [(i, f"{b}\n{types[i]}") for i, b in enumerate(self._blocks)]
        self.p_bars.getAxis("bottom").setTicks([ticks, []])
        self.p_bars.setXRange(-0.6, n - 0.4, padding=0)
        # Until the first step the bars are empty: a fixed 1e-4..1 frame, not an auto-range
        # over zero heights (a range of zero width, which pyqtgraph's log axis cannot draw).
        self._yrange = (-4.0, 0.0)
        self.p_bars.setYRange(*self._yrange, padding=0)
        self._history_at = time.perf_counter()
        # The BPTT plot's column now, not at the first step (a layout change is costly).
        kinds = [LAYER_TYPES.get(run.block_types.get(b, "")) for b in run.blocks]
        self._layout(any(cls is not None and cls.recurrent for cls in kinds))
        for i, b in enumerate(self._blocks):
            self.lines[b] = self.p_hist.plot(
                pen=pg.mkPen(colour(i, n), width=1.5), name=b, connect="finite"
            )
        # The bars and their labels exist before the first step (made while the data
        # loads), so a redraw during training only changes them.
        self.bars = pg.BarGraphItem(
            x=np.arange(n),
            y0=np.zeros(n),
            height=np.zeros(n),
            width=0.7,
            brushes=self._brushes,
            pen=self._bar_pen,
        )
        self.p_bars.addItem(self.bars)
        for _ in range(min(n, 24)):  # one reusable label per bar
            t = pg.TextItem("", color="#222", anchor=(0.5, 1.0))
            self.p_bars.addItem(t)
            self.bar_labels.append(t)

    def _draw_bars(self, run: RunData) -> None:
        last = run.last_grad_rms()
        per_block = np.array([last.get(b, np.nan) for b in run.blocks])
        vals = bar_values(per_block, self._bars, self._weights)
        self.values = {
            b: float(v) for b, v in zip(self._blocks, vals, strict=True) if np.isfinite(v)
        }
        pos = vals[np.isfinite(vals) & (vals > 0)]
        if not len(pos):
            return
        lo = math.floor(np.log10(pos.min())) - 0.5
        top = float(np.log10(pos.max()))
        # room for the value above the highest bar: the text is LABEL_PX high whatever the
        # plot's height, so the share of the range it needs grows as the plot shrinks
        height = self.p_bars.getViewBox().height()
        share = LABEL_PX / height if height > 0 else 0.3
        labelled = share < 0.6
        hi = max(math.ceil(top), top + 0.3)
        if labelled:
            hi = max(hi, (top - share * lo) / (1 - share))
        n = len(self._blocks)
        width = self.p_bars.getViewBox().width()
        labelled = (
            labelled and width / max(n, 1) >= LABEL_MIN_GAP_PX
        )  # no labels on top of each other
        logs = np.where(np.isfinite(vals) & (vals > 0), np.log10(np.maximum(vals, 1e-300)), lo)
        opts = {
            "x": np.arange(n),
            "y0": np.full(n, lo),
            "height": np.maximum(logs - lo, 0),
            "width": 0.7,
            "brushes": self._brushes,
            "pen": self._bar_pen,
        }
        self.bars.setOpts(**opts)
        if getattr(self, "_yrange", None) != (lo, hi):
            self._yrange = (lo, hi)
            self.p_bars.setYRange(lo, hi, padding=0)
        for i, t in enumerate(self.bar_labels):
            v = vals[i] if i < n else float("nan")
            text = f"{v:.2g}" if math.isfinite(v) and labelled else ""
            if t.toPlainText() != text:
                t.setText(text)
            t.setPos(i, logs[i] if i < n else lo)
        set_title(self.p_bars, f"{run.name}: gradient RMS per block, latest step (input -> output)")

    def _draw_history(self, run: RunData) -> None:
        self._history_at = time.perf_counter()
        g = run.grads.data() if run.grads is not None else np.zeros((0, 1))
        if g.shape[1] == len(run.blocks) + 1 and self._bars:
            g = np.concatenate([g[:, :1], bar_values(g[:, 1:], self._bars, self._weights)], axis=1)
        for i, b in enumerate(self._blocks):
            y = g[:, i + 1]
            ok = np.isfinite(y) & (y > 0)
            self.lines[b].setData(g[ok, 0], y[ok])
        if self._framed_run is not run:
            self._framed_run = run
            reset_sticky(self.p_hist)
            reset_sticky(self.p_bptt)
        sticky_range(
            self.p_hist,
            g[:, 0],
            g[:, 1:],
            log_y=True,
            x_unit=run.info.get("steps_per_epoch", 0),
            x_max=step_axis_end(run, self.ctrl),
        )

    def _clear_bptt(self) -> None:
        for item in self._bptt_items.values():
            self.p_bptt.removeItem(item)
        self._bptt_items = {}
        self.bptt_legend.clear()

    def _bptt_series(self, run: RunData) -> list[tuple[str, np.ndarray, dict]]:
        """(legend name, profile, pen options) for the run's profiles, then the ticked runs'."""
        out = []
        k = 0
        for b, v in run.time_grads.items():
            kind, c = run.block_types.get(b, ""), colour(k)
            out.append(
                (
                    f"{_series(run.name, b, kind)}, last step",
                    v,
                    {"color": c, "width": 1, "opacity": 0.45},
                )
            )
            if b in run.time_grads_avg:
                out.append(
                    (
                        f"{_series(run.name, b, kind)}, recent mean",
                        run.time_grads_avg[b],
                        {"color": c, "width": 2.5},
                    )
                )
            k += 1
        for r in self.ctrl.runlist.overlay_runs():
            if r is run:
                continue
            for b, v in r.time_grads_avg.items():
                out.append(
                    (
                        _series(r.name, b, r.block_types.get(b, "")),
                        v,
                        {"color": colour(k), "width": 2.5, "dash": True},
                    )
                )
                k += 1
        return out

    def _draw_bptt(self, run: RunData) -> None:
        self.profiles = {b: np.asarray(v) for b, v in run.time_grads.items()}
        series = self._bptt_series(run)
        self._layout(bool(series))
        names = [(name, len(v)) for name, v, _ in series]
        if names != self._bptt_names:  # new series: rebuild the curves and the legend
            self._bptt_names = names
            self._clear_bptt()
            for name, _v, o in series:
                style = Qt.PenStyle.DashLine if o.get("dash") else Qt.PenStyle.SolidLine
                item = self.p_bptt.plot(
                    pen=pg.mkPen(o["color"], width=o["width"], style=style), name=name
                )
                item.setOpacity(o.get("opacity", 1.0))
                self._bptt_items[name] = item
            if series:
                self.p_bptt.setXRange(1, max(len(v) for _, v, _ in series), padding=0.02)
        for name, v, _ in series:  # otherwise only the data change
            self._bptt_items[name].setData(np.arange(1, len(v) + 1), np.maximum(v, 1e-30))
        if series:
            sticky_range(self.p_bptt, None, np.concatenate([v for _, v, _ in series]), log_y=True)

    def table(self):
        """Long format: one row per (series, step or time step, block)."""
        run = self._run or self.ctrl.current
        header = ["series", "step_or_t", "block", "value"]
        if run is None or run.grads is None:
            return header, []
        rows = []
        g = run.grads.data()
        for r in g:
            for i, b in enumerate(run.blocks):
                if math.isfinite(r[i + 1]):
                    rows.append(["grad_rms", int(r[0]), b, float(r[i + 1])])
        for series, profiles in (
            ("bptt_last_step", run.time_grads),
            ("bptt_mean", run.time_grads_avg),
        ):
            for b, v in profiles.items():
                rows.extend([series, t + 1, b, float(x)] for t, x in enumerate(v))
        return header, rows


def _series(run_name: str, block: str, kind: str) -> str:
    """'LSTM: rnn' when the run is named after the block type, else 'run 2: rnn (LSTM)'."""
    if kind and kind.lower() not in run_name.lower():
        return f"{run_name}: {block} ({kind})"
    return f"{run_name}: {block}"
