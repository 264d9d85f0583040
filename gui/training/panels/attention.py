"""Attention panel: the alignment matrix of an Attention block for one validation sample
(rows: output steps, labelled with the target tokens; columns: memory steps, labelled with the
source tokens), live during training and from the final weights afterwards.

The weights a_ts are the block's softmax over the memory steps (engine/layers/attention.py);
each row sums to 1. For date translation it becomes the familiar near-diagonal with jumps: the
year's digits read the year, the month's the month name, the day's the day. The training
process computes them on its own model for the chosen sample (``attention_of``), at most
``SNAPSHOT_HZ`` times a second and only while this panel is on screen.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QGraphicsRectItem, QLabel, QSpinBox

from engine.layers import LAYER_TYPES
from gui.training.panels.base import AXIS_ORDER, Panel, set_label
from gui.training.panels.confusion import TextMarks
from gui.training.run_data import RunData

SEQUENTIAL_LUT = pg.colormap.get("viridis").getLookupTable(nPts=256)
MAX_TICKS = 60  # label every step up to this many; beyond, every k-th
MAX_TEXT_CELLS = 400  # write the weights in the cells up to this many cells


def token_labels(run: RunData | None, x, y, n_query: int, n_memory: int):
    """(output-step labels, memory-step labels) for a sample: the target's tokens and the
    source's (from the data set's vocabulary and seq2seq layout), else the step numbers."""
    info = run.info if run is not None else {}
    vocab = info.get("vocab")
    layout = info.get("seq2seq")
    rows = [str(t) for t in range(n_query)]
    cols = [str(s) for s in range(n_memory)]

    def word(i: int) -> str:
        return str(vocab[i]) if vocab and 0 <= i < len(vocab) else str(i)

    y = None if y is None else np.asarray(y)
    if vocab and y is not None and y.ndim == 1 and y.dtype.kind in "iu" and len(y) == n_query:
        rows = [word(int(i)) for i in y]
    if vocab and layout and x is not None and not layout.get("flat"):
        a, b = layout["source"]
        src = np.asarray(x)[a:b]
        if b - a == n_memory:
            ids = src.argmax(-1) if src.ndim == 2 else src.astype(np.int64)
            cols = [word(int(i)) for i in ids]
    return rows, cols


def shown_text(token: str) -> str:
    """A token as an axis label: a space as a visible mark."""
    return "␣" if token == " " else token


class AttentionPanel(Panel):
    title = "Attention"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.block = QComboBox()
        self.block.setMinimumContentsLength(8)
        self.block.currentIndexChanged.connect(lambda: self.ctrl.request_redraw())
        self.sample = QSpinBox()
        self.sample.setPrefix("validation sample ")
        self.sample.valueChanged.connect(self._sample_changed)
        self.numbers = QCheckBox("numbers")
        self.numbers.setToolTip("write each weight in its cell (small matrices)")
        self.numbers.toggled.connect(lambda: self.ctrl.request_redraw())
        self.controls.addWidget(QLabel("block"))
        self.controls.addWidget(self.block)
        self.controls.addWidget(self.sample)
        self.controls.addWidget(self.numbers)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.title_label = self.view.addLabel("", row=0, col=0, color="#222", size="10pt")
        self.plot = self.view.addPlot(row=1, col=0)
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        for ax in ("left", "bottom", "top"):
            a = self.plot.getAxis(ax)
            a.setPen(pg.mkPen("#333"))
            a.setTextPen(pg.mkPen("#333"))
        self.plot.showAxis("top")
        self.plot.hideAxis("bottom")
        self.plot.setLabel("left", "output step (target token)", color="#222")
        self.plot.setLabel("top", "source step (memory)", color="#222")
        self.image = pg.ImageItem(axisOrder=AXIS_ORDER)
        self.image.setLookupTable(SEQUENTIAL_LUT)
        self.plot.addItem(self.image)
        self.marks = TextMarks(7)
        self.plot.addItem(self.marks)
        self.matrix: np.ndarray | None = None  # (output steps, memory steps) shown
        self.rows: list[str] = []
        self.cols: list[str] = []
        self.shown_block: str | None = None
        self.mask_items: list[QGraphicsRectItem] = []
        self.masked = np.zeros(0, np.int64)  # the source steps hatched as masked

    def follow(self, block: str) -> None:
        i = self.block.findText(block)
        if i >= 0:
            self.block.setCurrentIndex(i)

    def _sample_changed(self) -> None:
        self.ctrl.watch_changed()
        self.ctrl.request_redraw()

    def redraw_key(self, run):
        att = getattr(run, "attention", None) or {}
        return (
            id(run),
            getattr(run, "snapshots", None),
            att.get("step"),
            getattr(run, "status", None),
            len(getattr(run, "info", {}) or {}),
            self.ctrl.weights_version,
            self.block.currentText(),
            self.sample.value(),
            self.numbers.isChecked(),
        )

    def _sync(self, run: RunData | None) -> list[str]:
        types = run.block_types if run is not None else {}
        names = [
            b
            for b in (run.info.get("all_blocks", []) if run else [])
            if _has_alignment(types.get(b))
        ]
        have = [self.block.itemText(i) for i in range(self.block.count())]
        if names != have:
            cur = self.block.currentText()
            self.block.blockSignals(True)
            self.block.clear()
            self.block.addItems(names)
            if cur in names:
                self.block.setCurrentIndex(names.index(cur))
            self.block.blockSignals(False)
        n_val = int(run.info.get("n_val_shown", 0)) if run is not None else 0
        self.sample.blockSignals(True)
        self.sample.setRange(0, max(0, n_val - 1))
        self.sample.setEnabled(n_val > 0)
        self.sample.blockSignals(False)
        return names

    def _clear(self, text: str) -> None:
        self.show_message(text)
        self.view.hide()
        self.matrix, self.shown_block, self.rows, self.cols = None, None, [], []

    def draw(self, run: RunData | None) -> None:
        names = self._sync(run)
        if run is not None and run.info and not names:
            self._clear("This network has no Attention block: add one to see its alignment.")
            return
        if run is not None and run.info and not run.info.get("n_val"):
            self._clear(
                "This run has no validation samples (val_split is 0): the alignment is shown "
                "for a validation sample."
            )
            return
        b = self.block.currentText()
        data = self.ctrl.runlist.current_attention(run, self.sample.value()) if b else None
        if data is None or b not in data.get("weights", {}):
            self._clear(
                "Start a run of a network with an Attention block: the alignment of a "
                "validation sample (output steps x source steps) appears here, live."
            )
            return
        self.show_message("")
        self.view.show()
        a = np.asarray(data["weights"][b], dtype=np.float64)
        nq, nm = a.shape
        self.rows, self.cols = token_labels(run, data.get("x"), data.get("y"), nq, nm)
        self.matrix, self.shown_block = a, b
        self.image.setImage(a, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(0, 0, nm, nq))
        for ax, labels in (("left", self.rows), ("top", self.cols)):
            k = max(1, -(-len(labels) // MAX_TICKS))
            ticks = [(i + 0.5, shown_text(t)) for i, t in enumerate(labels)][::k]
            self.plot.getAxis(ax).setTicks([ticks, []])
        self.plot.setRange(xRange=(0, nm), yRange=(0, nq), padding=0.01)
        marks = []
        if self.numbers.isChecked() and a.size <= MAX_TEXT_CELLS:
            marks = [
                (j + 0.5, i + 0.5, f"{a[i, j]:.2f}", "#222222" if a[i, j] > 0.6 else "#ffffff")
                for i in range(nq)
                for j in range(nm)
            ]
        self.marks.set_marks(marks, QRectF(0, 0, nm, nq))
        self._shade_masked(a)
        step = f" at step {data['step']}" if data.get("step") is not None else ""
        masked = f"; {len(self.masked)} masked: hatched" if len(self.masked) else ""
        set_label(
            self.title_label,
            f"{b}: alignment of validation sample {data.get('index', '?')}{step} "
            f"({nq} output steps x {nm} source steps; each row sums to 1{masked})",
        )

    def _shade_masked(self, a: np.ndarray) -> None:
        """Hatch the source steps the mask left out: a softmax weight is exactly 0 only there
        (no other weight underflows at these sizes), which the colour alone shows as "not
        looked at", the same as a weight near 0."""
        for item in self.mask_items:
            self.plot.removeItem(item)
        self.mask_items = []
        self.masked = np.flatnonzero(np.all(a == 0, axis=0))
        for j in self.masked:
            rect = QGraphicsRectItem(QRectF(float(j), 0.0, 1.0, float(a.shape[0])))
            rect.setPen(pg.mkPen(None))
            rect.setBrush(QBrush(QColor(200, 200, 200), Qt.BrushStyle.BDiagPattern))
            self.plot.addItem(rect)
            self.mask_items.append(rect)

    def table(self):
        header = ["output step", "output token", "source step", "source token", "weight", "masked"]
        if self.matrix is None:
            return header, []
        masked = set(self.masked.tolist())
        return header, [
            [i, self.rows[i], j, self.cols[j], float(v), j in masked]
            for (i, j), v in np.ndenumerate(self.matrix)
        ]


def _has_alignment(type_name: str | None) -> bool:
    """Whether blocks of this type keep an alignment (the Attention panel lists them)."""
    cls = LAYER_TYPES.get(type_name or "")
    return cls is not None and cls.shows_alignment
