"""Try it for sequence regression (adding problem, sine, timed spikes): a fresh sequence from
the run's own data set, its input channels over time, and the target beside the network's
output. The output follows the weights as the network trains, on the same sequence, until
"New sequence" draws another.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.data import BUILTIN_DATASETS, SCORES, load_dataset
from engine.errors import BlockPropError
from gui.training.panels.base import add_plot, colour, keyed_title, set_title, style_plot
from gui.training.run_data import RunData

MAX_STEPS = 100_000  # a longer sequence is not drawn (T is a user setting)
# Data seeds of the sequences shown: far from the small seeds runs draw their data with (the
# same seed and generator would repeat the first training sequence's values); a run whose own
# seed is one of these skips it.
FIRST_SEED = 1_000_003


def is_sequence_regression(run: RunData | None) -> bool:
    """Whether ``run`` learned a built-in sequence regression task this page can sample."""
    if run is None or not run.info:
        return False
    spec = run.settings.get("dataset")
    name = spec.get("name") if isinstance(spec, dict) else spec
    shape = run.info.get("input_shape") or ()
    return (
        name in BUILTIN_DATASETS
        and run.info.get("task") == "regression"
        and len(shape) == 2
        and not run.info.get("vocab")
    )


def sequence_seed(number: int, run_seed: object) -> int:
    """The data seed of sequence ``number`` (1, 2, ...), never the run's own data seed."""
    seed = FIRST_SEED + number - 1
    if isinstance(run_seed, int) and FIRST_SEED <= run_seed <= seed:
        seed += 1
    return seed


class SequencePage(QWidget):
    """One sampled sequence, its target and the network's output over time."""

    def __init__(self, forward_of: Callable[[], Callable | None]) -> None:
        super().__init__()
        self._forward_of = forward_of
        col = QVBoxLayout(self)
        row = QHBoxLayout()
        self.about = QLabel("A sequence the network has not seen, drawn from its data set.")
        self.about.setWordWrap(True)
        self.new_button = QPushButton("New sequence")
        self.new_button.clicked.connect(self.new_sequence)
        row.addWidget(self.about, 1)
        row.addWidget(self.new_button)
        col.addLayout(row)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.p_in = style_plot(add_plot(self.view.ci, row=0, col=0), "Input", y="input")
        self.p_out = style_plot(
            add_plot(self.view.ci, row=1, col=0), "Target and output", "step", "value"
        )
        self.p_out.setXLink(self.p_in)
        self.p_in.getAxis("bottom").setStyle(showValues=False)  # the plot below shows the steps
        # the panel is a short dock: the titles carry the keys (legend boxes covered the curves)
        self.view.ci.layout.setRowStretchFactor(0, 2)
        self.view.ci.layout.setRowStretchFactor(1, 3)
        self._out_keys = [("target", QColor("#666")), ("network", colour(0))]
        dash = pg.mkPen("#666", width=2, style=Qt.PenStyle.DashLine)
        sym = {"symbolSize": 5, "symbolPen": None}
        self.target = self.p_out.plot(pen=dash, symbol="s", symbolBrush="#666", **sym)
        self.output = self.p_out.plot(pen=pg.mkPen(colour(0), width=2), symbol="o", **sym)
        self.output.setSymbolBrush(colour(0))
        self.threshold = pg.InfiniteLine(
            0.5, angle=0, movable=False, pen=pg.mkPen("#bbb", style=Qt.PenStyle.DotLine)
        )
        self.p_out.addItem(self.threshold)
        self.inputs: list[pg.PlotDataItem] = []
        col.addWidget(self.view, 1)
        self.number = 1  # the sequence shown: 1, 2, ... (New sequence counts on)
        self._seed = FIRST_SEED
        self._key: tuple | None = None
        self.sample: tuple[np.ndarray, np.ndarray] | None = None  # X (T, C), y: (T, k) or (k,)
        self.pred: np.ndarray | None = None
        self._meta: dict = {}  # the data set's meta (channel names, score, baseline)
        self._run: RunData | None = None

    def new_sequence(self) -> None:
        self.number += 1
        if self._run is not None:
            self.show_run(self._run)

    def show_run(self, run: RunData) -> None:
        """Draw the current sequence (a new one when the data set changed) with ``run``'s
        network's output."""
        self._run = run
        self._seed = sequence_seed(self.number, run.settings.get("seed"))
        spec = run.settings.get("dataset")
        spec = dict(spec) if isinstance(spec, dict) else {"name": spec}
        key = (repr(sorted(spec.items())), self._seed)
        if key != self._key:
            self._key = key
            self.pred = None
            try:
                self.sample, meta = self._draw_sample(spec)
            except BlockPropError as e:
                self.sample = None
                self._fail(f"cannot draw a sequence from {spec.get('name')!r}: {e}")
                return
            self._meta = meta
            self._draw_input(meta)
        if self.sample is None:
            return
        forward = self._forward_of()
        if forward is None:
            self.output.setData([], [])
            keyed_title(self.p_out, "Target (the network's output: once it has weights)", [])
            return
        X, y = self.sample
        try:
            out = np.asarray(forward(X[None].astype(np.float32)), dtype=np.float64)[0]
        except (BlockPropError, ValueError, TypeError) as e:
            self._fail(f"the network cannot take this sequence: {e}")
            return
        if out.size != y.size:
            self._fail(
                f"the network gives {out.size} value(s) for a target of {y.size}: "
                "its output does not match the data set's target"
            )
            return
        self.pred = out.reshape(y.shape)
        self._draw_output()

    def _draw_sample(self, spec: dict) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
        if "n" in spec:
            spec["n"] = 1
        ds = load_dataset(spec, seed=self._seed)
        X, y = np.asarray(ds.X[0], dtype=np.float64), np.asarray(ds.y[0], dtype=np.float64)
        if X.ndim != 2 or len(X) > MAX_STEPS:
            raise BlockPropError(f"a sample of shape {X.shape} is not a sequence to draw here")
        return (X, y), ds.meta

    def _draw_input(self, meta: dict) -> None:
        X, _ = self.sample
        for item in self.inputs:
            self.p_in.removeItem(item)
        names = list(meta.get("channels") or [])
        names += [f"input {c}" for c in range(len(names), X.shape[1])]
        steps = np.arange(len(X))
        self.inputs = [
            self.p_in.plot(steps, X[:, c], pen=pg.mkPen(colour(2 + c), width=1.5))
            for c in range(X.shape[1])
        ]
        keyed_title(self.p_in, "Input", [(names[c], colour(2 + c)) for c in range(X.shape[1])])
        self.about.setText(
            f"Sequence {self.number} of {meta.get('spec', {}).get('name', 'the data set')}: "
            f"{len(X)} steps, not one the network trained on."
            + (f" Baseline: {meta['baseline']}." if meta.get("baseline") else "")
        )

    def _draw_output(self) -> None:
        X, y = self.sample
        T = len(X)
        per_step = y.ndim == 2 and len(y) == T
        score = self._meta.get("score")
        self.threshold.setVisible(score == "spikes_right")
        for item in (self.target, self.output):
            item.setSymbolSize(5 if per_step else 11)
        if per_step:
            steps = np.arange(T)
            self.target.setData(steps, y[:, 0])
            self.output.setData(steps, self.pred[:, 0])
            self.p_out.enableAutoRange(axis="y")
            mse = float(np.mean((self.pred - y) ** 2))
            text = f"Target and output: MSE {mse:.3g}"
            if score in SCORES:
                right = bool(SCORES[score](y[None], self.pred[None])[0])
                text += ", every spike on time" if right else ", spikes wrong"
        else:  # one answer at the end of the sequence
            self.target.setData([T - 1] * y.size, y.ravel())
            self.output.setData([T - 1] * y.size, self.pred.ravel())
            pairs = ", ".join(
                f"target {a:.3g}, network {b:.3g}"
                for a, b in zip(y.ravel(), self.pred.ravel(), strict=True)
            )
            text = f"Answer after the last step: {pairs}"
            values = np.concatenate([y.ravel(), self.pred.ravel(), [0.0]])
            lo, hi = float(values.min()), float(values.max())
            self.p_out.setYRange(lo, hi, padding=0.15)  # from 0: the error at the answer's scale
        keyed_title(self.p_out, text, self._out_keys)

    def _fail(self, text: str) -> None:
        self.target.setData([], [])
        self.output.setData([], [])
        set_title(self.p_out, text, color="#b00020")

    def table(self) -> tuple[list[str], list[list]]:
        if self.sample is None:
            return ["step"], []
        X, y = self.sample
        head = ["step"] + [f"input_{c}" for c in range(X.shape[1])] + ["target", "output"]
        pred = self.pred
        if y.ndim == 2 and len(y) == len(X):  # a target every step
            return head, [
                [t, *X[t].tolist(), float(y[t, 0]), None if pred is None else float(pred[t, 0])]
                for t in range(len(X))
            ]
        rows = [[t, *X[t].tolist(), None, None] for t in range(len(X))]
        rows[-1][-2] = float(y.ravel()[0])
        rows[-1][-1] = None if pred is None else float(pred.ravel()[0])
        return head, rows
