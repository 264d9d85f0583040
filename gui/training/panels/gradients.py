"""Gradients panel: where the gradient vanishes.

- Bars: the latest gradient RMS of every block with parameters, input (left) to output (right),
  on a log scale (the log's ``grad_rms``: ||g||_2 / sqrt(n), comparable across layer sizes).
- History: the same numbers over the steps, one line per block, log y.
- BPTT profile (recurrent blocks): RMS of dL/dh_t for every time step t of the last batch
  (``trainer.last_time_grads``). A plain RNN's falls off by decades towards t = 1; an LSTM's
  stays flat. Profiles of the runs ticked in the Runs panel are drawn dashed, for comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from gui.training.buffers import RunData
from gui.training.panels.base import (
    Panel,
    add_plot,
    colour,
    line_plot,
    make_legend,
    set_title,
    style_plot,
)


class GradientsPanel(Panel):
    title = "Gradients"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.p_bars = style_plot(add_plot(self.view.ci, row=0, col=0),
                                 "Gradient RMS per block (latest step)", "", "grad RMS")
        self.p_bars.getAxis("left").setLogMode(True)
        self.p_bars.setMouseEnabled(x=False, y=False)
        self.p_bars.getAxis("bottom").setHeight(42)  # two-line labels: block id, type
        self.p_hist = line_plot(style_plot(add_plot(self.view.ci, row=1, col=0),
                                           "Gradient RMS over steps", "step", "grad RMS"))
        self.p_hist.setLogMode(y=True)
        self.hist_legend = make_legend(self.p_hist)
        self.p_bptt = style_plot(add_plot(self.view.ci, row=0, col=1, rowspan=2),
                                 "BPTT: gradient wrt hidden state per time step", "time step t",
                                 "RMS dL/dh_t")
        self.p_bptt.setLogMode(y=True)
        self._bptt_in_layout = True
        self.bptt_legend = make_legend(self.p_bptt)
        self.bars: pg.BarGraphItem | None = None
        self.bar_labels: list[pg.TextItem] = []
        self.values: dict[str, float] = {}  # what the bars show: block -> grad RMS
        self.lines: dict[str, pg.PlotDataItem] = {}
        self._blocks: list[str] = []
        self._run: RunData | None = None
        self._bptt_items: list = []
        self.profiles: dict[str, np.ndarray] = {}  # current run's latest BPTT profiles

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
        if run.blocks != self._blocks:
            self._rebuild(run)
        self._draw_bars(run)
        self._draw_history(run)
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
        self.hist_legend.clear()
        self.lines = {}
        self._blocks = []
        self.values = {}
        self._clear_bptt()
        self._layout(False)

    def _rebuild(self, run: RunData) -> None:
        self._clear()
        self._blocks = list(run.blocks)
        n = len(self._blocks)
        ticks = [(i, f"{b}\n{run.block_types.get(b, '')}") for i, b in enumerate(self._blocks)]
        self.p_bars.getAxis("bottom").setTicks([ticks, []])
        self.p_bars.setXRange(-0.6, n - 0.4, padding=0)
        self.hist_legend.setColumnCount(min(n, 8))  # one row along the top
        for i, b in enumerate(self._blocks):
            self.lines[b] = self.p_hist.plot(pen=pg.mkPen(colour(i, n), width=1.5),
                                             name=b, connect="finite")

    def _draw_bars(self, run: RunData) -> None:
        self.values = run.last_grad_rms()
        vals = np.array([self.values.get(b, np.nan) for b in self._blocks])
        pos = vals[np.isfinite(vals) & (vals > 0)]
        if not len(pos):
            return
        lo = math.floor(np.log10(pos.min())) - 0.5
        hi = math.ceil(np.log10(pos.max())) + 0.3
        logs = np.where(np.isfinite(vals) & (vals > 0), np.log10(np.maximum(vals, 1e-300)), lo)
        n = len(self._blocks)
        brushes = [pg.mkBrush(colour(i, n)) for i in range(n)]
        opts = {"x": np.arange(n), "y0": np.full(n, lo), "height": np.maximum(logs - lo, 0),
                "width": 0.7, "brushes": brushes, "pen": pg.mkPen(60, 60, 60)}
        if self.bars is None:
            self.bars = pg.BarGraphItem(**opts)
            self.p_bars.addItem(self.bars)
        else:
            self.bars.setOpts(**opts)
        if getattr(self, "_yrange", None) != (lo, hi):
            self._yrange = (lo, hi)
            self.p_bars.setYRange(lo, hi, padding=0)
        while len(self.bar_labels) < min(n, 24):  # one reusable label per bar
            t = pg.TextItem("", color="#222", anchor=(0.5, 1.0))
            self.p_bars.addItem(t)
            self.bar_labels.append(t)
        for i, t in enumerate(self.bar_labels):
            v = vals[i] if i < n else float("nan")
            text = f"{v:.2g}" if math.isfinite(v) else ""
            if t.toPlainText() != text:
                t.setText(text)
            t.setPos(i, logs[i] if i < n else lo)
        set_title(self.p_bars, f"{run.name}: gradient RMS per block, latest step "
                  "(input -> output)")

    @staticmethod
    def _last_step(run: RunData) -> int:
        last = run.steps.last()
        return int(last[0]) if last is not None else 0

    def _draw_history(self, run: RunData) -> None:
        g = run.grads.data() if run.grads is not None else np.zeros((0, 1))
        for i, b in enumerate(self._blocks):
            y = g[:, i + 1]
            ok = np.isfinite(y) & (y > 0)
            self.lines[b].setData(g[ok, 0], y[ok])

    def _clear_bptt(self) -> None:
        for item in self._bptt_items:
            self.p_bptt.removeItem(item)
        self._bptt_items = []
        self.bptt_legend.clear()

    def _draw_bptt(self, run: RunData) -> None:
        self._clear_bptt()
        others = [r for r in self.ctrl.compared_runs() if r is not run and r.time_grads_avg]
        self.profiles = {b: np.asarray(v) for b, v in run.time_grads.items()}
        has = bool(self.profiles) or bool(others)
        self._layout(has)
        if not has:
            return
        k = 0
        for b, v in self.profiles.items():
            t = np.arange(1, len(v) + 1)
            kind = run.block_types.get(b, "")
            c = colour(k)
            raw = self.p_bptt.plot(t, np.maximum(v, 1e-30), pen=pg.mkPen(c, width=1),
                                   name=f"{_series(run.name, b, kind)}, last step")
            raw.setOpacity(0.45)
            avg = run.time_grads_avg.get(b)
            self._bptt_items.append(raw)
            if avg is not None:
                self._bptt_items.append(self.p_bptt.plot(
                    t, np.maximum(avg, 1e-30), pen=pg.mkPen(c, width=2.5),
                    name=f"{_series(run.name, b, kind)}, recent mean"))
            k += 1
        for r in others:
            for b, v in r.time_grads_avg.items():
                t = np.arange(1, len(v) + 1)
                kind = r.block_types.get(b, "")
                self._bptt_items.append(self.p_bptt.plot(
                    t, np.maximum(v, 1e-30),
                    pen=pg.mkPen(colour(k), width=2.5, style=Qt.PenStyle.DashLine),
                    name=_series(r.name, b, kind)))
                k += 1

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
        for series, profiles in (("bptt_last_step", run.time_grads),
                                 ("bptt_mean", run.time_grads_avg)):
            for b, v in profiles.items():
                rows.extend([series, t + 1, b, float(x)] for t, x in enumerate(v))
        return header, rows


def _series(run_name: str, block: str, kind: str) -> str:
    """'LSTM: rnn' when the run is named after the block type, else 'run 2: rnn (LSTM)'."""
    if kind and kind.lower() not in run_name.lower():
        return f"{run_name}: {block} ({kind})"
    return f"{run_name}: {block}"
