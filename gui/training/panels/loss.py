"""Loss panel: the loss of every step (raw and EMA-smoothed), train/val loss and accuracy per
epoch, a log-scale toggle, and the data set's trivial baseline when it has one."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox

from gui.training.panels.base import (
    Panel,
    add_plot,
    colour,
    integer_ticks,
    keyed_title,
    line_plot,
    make_legend,
    reset_sticky,
    set_title,
    step_axis_end,
    sticky_range,
    style_plot,
)
from gui.training.run_data import RunData


class LossPanel(Panel):
    title = "Loss"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.log_box = QCheckBox("log scale")
        self.log_box.setChecked(False)
        self.log_box.toggled.connect(self._set_log)
        self.controls.addWidget(self.log_box)
        self.finish_controls()

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.p_step = line_plot(
            style_plot(
                add_plot(self.view.ci, row=0, col=0, rowspan=2),
                "Training loss per step",
                "step",
                "loss",
            )
        )
        self.p_epoch = style_plot(add_plot(self.view.ci, row=0, col=1), y="loss")
        self.p_acc = style_plot(add_plot(self.view.ci, row=1, col=1), x="epoch", y="accuracy")
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.legend = make_legend(self.p_step)
        # the epoch plots are short: their titles carry the key (a legend box covered the
        # last epochs' points)
        self._epoch_keys = [("train", colour(0)), ("validation", colour(1))]
        keyed_title(self.p_epoch, "Loss per epoch", self._epoch_keys)
        keyed_title(self.p_acc, "Accuracy per epoch", self._epoch_keys)
        self.raw = self.p_step.plot(pen=pg.mkPen(160, 190, 230, 255, width=1), name="loss")
        self.smooth = self.p_step.plot(pen=pg.mkPen(colour(0), width=2.5), name="EMA (alpha 0.1)")
        dash = pg.mkPen("#888", width=1.5, style=Qt.PenStyle.DashLine)
        self.baseline = pg.InfiniteLine(angle=0, movable=False, pen=dash)
        self.p_step.addItem(self.baseline)
        self.baseline.hide()
        # the baseline's value is a legend entry: a label on the line sat under the legend box
        self.baseline_key = pg.PlotDataItem(pen=dash)
        sym = {"symbol": "o", "symbolSize": 6, "connect": "finite"}
        self.tr_loss = self.p_epoch.plot(
            pen=pg.mkPen(colour(0), width=2),
            name="train",
            symbolBrush=colour(0),
            symbolPen=None,
            **sym,
        )
        self.va_loss = self.p_epoch.plot(
            pen=pg.mkPen(colour(1), width=2),
            name="validation",
            symbolBrush=colour(1),
            symbolPen=None,
            **sym,
        )
        self.tr_acc = self.p_acc.plot(
            pen=pg.mkPen(colour(0), width=2),
            name="train",
            symbolBrush=colour(0),
            symbolPen=None,
            **sym,
        )
        self.va_acc = self.p_acc.plot(
            pen=pg.mkPen(colour(1), width=2),
            name="validation",
            symbolBrush=colour(1),
            symbolPen=None,
            **sym,
        )
        self.p_acc.setYRange(0, 1.02, padding=0)
        self._acc_shown = True
        self._framed_run = None
        self._epochs_drawn = None
        self._run: RunData | None = None
        # A graph with extra outputs (engine.heads): a curve per output, step and epoch plots.
        self.head_curves: dict[str, pg.PlotDataItem] = {}
        self.head_val_curves: dict[str, pg.PlotDataItem] = {}

    def _draw_heads(self, run: RunData | None) -> None:
        """Each output's own loss (EMA per step; validation per epoch, dashed), for a graph
        with extra heads; nothing otherwise."""
        heads = run.heads if run is not None and run.head_loss is not None else []
        if list(self.head_curves) != heads:
            for item in (*self.head_curves.values(), *self.head_val_curves.values()):
                if item in self.p_step.listDataItems():
                    self.p_step.removeItem(item)
                    self.p_step.legend.removeItem(item)
                elif item in self.p_epoch.listDataItems():
                    self.p_epoch.removeItem(item)
            self.head_curves, self.head_val_curves = {}, {}
            for i, h in enumerate(heads, start=2):
                c = colour(i)
                self.head_curves[h] = self.p_step.plot(
                    pen=pg.mkPen(c, width=1.5), name=f"{h} (EMA)"
                )
                self.head_val_curves[h] = self.p_epoch.plot(
                    pen=pg.mkPen(c, width=1.5, style=Qt.PenStyle.DashLine),
                    name=f"val {h}",
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=c,
                    symbolPen=None,
                    connect="finite",
                )
            val_keys = [(f"val {h}", colour(i)) for i, h in enumerate(heads, start=2)]
            keyed_title(self.p_epoch, "Loss per epoch", self._epoch_keys + val_keys)
        if not heads:
            return
        d = run.head_loss.data()
        for i, h in enumerate(heads, start=1):
            self.head_curves[h].setData(d[:, 0], d[:, i])
            ep = np.array([_f(e.get("epoch")) for e in run.epochs])
            val = np.array([_f((e.get("val_heads") or {}).get(h)) for e in run.epochs])
            ok = np.isfinite(val)
            self.head_val_curves[h].setData(ep[ok], val[ok])

    def _show_baseline(self, base: float | None) -> None:
        """The data set's trivial baseline as a dashed line, its value in the legend."""
        self.legend.removeItem(self.baseline_key)
        if base is None:
            self.baseline.hide()
            return
        self.baseline.setValue(math.log10(base) if self.log_box.isChecked() else base)
        self.baseline.show()
        self.legend.addItem(self.baseline_key, f"baseline {base:.3g}")

    def _show_accuracy(self, show: bool) -> None:
        """The accuracy plot only for classifiers (regression has none)."""
        if show == self._acc_shown:
            return
        self._acc_shown = show
        # the accuracy plot below says "epoch" for both (room for the short loss plot)
        self.p_epoch.setLabel("bottom", "" if show else "epoch", color="#222")
        if show:
            self.view.ci.removeItem(self.p_epoch)
            self.view.ci.addItem(self.p_epoch, row=0, col=1)
            self.view.ci.addItem(self.p_acc, row=1, col=1)
        else:
            self.view.ci.removeItem(self.p_acc)
            self.view.ci.removeItem(self.p_epoch)
            self.view.ci.addItem(self.p_epoch, row=0, col=1, rowspan=2)

    def _set_log(self, on: bool) -> None:
        reset_sticky(self.p_step)
        self.p_step.setLogMode(y=on)
        self.p_epoch.setLogMode(y=on)
        self.invalidate()
        self.refresh(self._run, force=True)

    def _state(self):
        return self.log_box.isChecked()

    def draw(self, run: RunData | None) -> None:
        self._run = run
        if run is None or len(run.steps) == 0:
            for item in (
                self.raw,
                self.smooth,
                self.tr_loss,
                self.va_loss,
                self.tr_acc,
                self.va_acc,
            ):
                item.setData([], [])
            self._show_baseline(None)
            self._show_accuracy(True)
            self._draw_heads(None)
            set_title(self.p_step, "Training loss per step (no run yet)")
            return
        d = run.steps.data()
        self.raw.setData(d[:, 0], d[:, 2])
        self.smooth.setData(d[:, 0], d[:, 4])
        if self._framed_run is not run:
            self._framed_run = run
            reset_sticky(self.p_step)
        sticky_range(
            self.p_step,
            d[:, 0],
            d[:, 2],
            log_y=self.log_box.isChecked(),
            x_unit=run.info.get("steps_per_epoch", 0),
            x_max=step_axis_end(run, self.ctrl),
        )
        set_title(self.p_step, f"{run.name}: training loss per step{_total_text(run)}")
        self._draw_heads(run)
        base = run.info.get("meta", {}).get("baseline_mse")
        if base is None:
            base = run.info.get("meta", {}).get("baseline_cross_entropy")
        self._show_baseline(base if isinstance(base, (int, float)) and base > 0 else None)
        if self._epochs_drawn == (id(run), len(run.epochs), self.log_box.isChecked()):
            return  # the per-epoch plots change once an epoch
        self._epochs_drawn = (id(run), len(run.epochs), self.log_box.isChecked())
        ep = epoch_columns(run)
        for item, key in (
            (self.tr_loss, "train_loss"),
            (self.va_loss, "val_loss"),
            (self.tr_acc, "train_acc"),
            (self.va_acc, "val_acc"),
        ):
            ok = np.isfinite(ep[key])
            item.setData(ep["epoch"][ok], ep[key][ok])
        has_acc = np.isfinite(ep["train_acc"]).any() or np.isfinite(ep["val_acc"]).any()
        last_epoch = float(ep["epoch"][-1]) if len(ep["epoch"]) else 1.0
        integer_ticks(self.p_epoch.getAxis("bottom"), last_epoch)
        integer_ticks(self.p_acc.getAxis("bottom"), last_epoch)
        self._show_accuracy(has_acc or not run.epochs)

    # --- the numbers shown, one row per step (epoch metrics on the epoch's last step) --------
    def table(self):
        run = self._run or self.ctrl.current
        header = [
            "step",
            "epoch",
            "loss",
            "loss_ema",
            "lr",
            "train_loss",
            "val_loss",
            "train_acc",
            "val_acc",
        ]
        if run is None:
            return header, []
        d = run.steps.data()
        by_step = {e.get("step"): e for e in run.epochs}
        rows = []
        for r in d:
            e = by_step.get(int(r[0]), {})
            rows.append(
                [
                    int(r[0]),
                    int(r[1]),
                    float(r[2]),
                    float(r[4]),
                    float(r[3]),
                    *(_f(e.get(k)) for k in ("train_loss", "val_loss", "train_acc", "val_acc")),
                ]
            )
        return header, rows


def _total_text(run: RunData) -> str:
    """ " (total: out + 0.3 x aux)" for a graph with extra heads (engine.heads), else ""."""
    if not run.heads:
        return ""
    given = run.settings.get("heads") if isinstance(run.settings, dict) else None
    weights = {
        h.get("block"): h.get("weight", 1.0)
        for h in (given if isinstance(given, list) else [])
        if isinstance(h, dict) and isinstance(h.get("block"), str)
    }
    terms = [run.heads[0]]
    for h in run.heads[1:]:
        w = weights.get(h, weights.get(h.split("/")[0]))
        terms.append(f"{w:g} x {h}" if isinstance(w, (int, float)) else h)
    return f" (total: {' + '.join(terms)})"


def _f(v) -> float:
    return float(v) if isinstance(v, (int, float)) else float("nan")


def epoch_columns(run: RunData) -> dict[str, np.ndarray]:
    """The epoch events as columns (NaN where a metric is missing, e.g. accuracy)."""
    keys = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
    return {k: np.array([_f(e.get(k)) for e in run.epochs]) for k in keys}
