"""Try it: use the trained network.

Image classifiers (digits, MNIST): draw a digit with the mouse; it is prepared exactly as the
training images were (``gui.training.prep``), shown as the network sees it, and the class
probabilities update as you draw (and as the network trains). Character models: type a prompt
and generate text at a chosen temperature, a few characters per timer tick so the window stays
responsive. Sequence-to-sequence models (a data set holding a source and a shifted target: dates,
reversal, sorting, digit strips): type a source, see the greedy output and the beam's candidates
with their log-probabilities (engine/seq2seq_decode.py). Sequence regression (adding problem,
sine, timed spikes): a fresh sequence, its target and the network's output over time
(try_sequence.py).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BlockPropError
from engine.seq2seq_decode import MAX_BEAM, Seq2SeqTask, decode
from gui.training.panels.activations import GREY_LUT
from gui.training.panels.base import Panel, add_plot, colour, image_view, set_title, style_plot
from gui.training.panels.try_sequence import SequencePage, is_sequence_regression
from gui.training.prep import TRY_DATASETS, drawing_input, next_char_probs, sample_char, softmax
from gui.training.run_data import RunData

PAD = 224  # the strokes' coordinates: a 224-unit square, whatever size the pad is shown at
VIEW = 168  # the pad on screen, px (small enough for the panels of a 720 px high window)


class DrawPad(QWidget):
    """A square to draw on; keeps the strokes as polylines (pad pixels)."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setFixedSize(VIEW, VIEW)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.strokes: list[list[tuple[float, float]]] = []
        self.version = 0

    def clear(self) -> None:
        self.strokes = []
        self.version += 1
        self.update()
        self.changed.emit()

    def set_strokes(self, strokes: list[np.ndarray]) -> None:
        self.strokes = [
            [(float(x), float(y)) for x, y in np.asarray(s).reshape(-1, 2)] for s in strokes
        ]
        self.version += 1
        self.update()
        self.changed.emit()

    def arrays(self) -> list[np.ndarray]:
        return [np.array(s, dtype=np.float64) for s in self.strokes if s]

    def _at(self, e) -> tuple[float, float]:
        p = e.position() * (PAD / VIEW)
        return (p.x(), p.y())

    def mousePressEvent(self, e) -> None:  # noqa: N802
        self.strokes.append([self._at(e)])
        self.version += 1
        self.update()
        self.changed.emit()

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self.strokes and e.buttons() & Qt.MouseButton.LeftButton:
            self.strokes[-1].append(self._at(e))
            self.version += 1
            self.update()
            self.changed.emit()

    def paintEvent(self, e) -> None:  # noqa: N802
        qp = QPainter(self)
        qp.fillRect(self.rect(), QColor(255, 255, 255))
        qp.setPen(QPen(QColor(200, 200, 200), 1))
        qp.drawRect(self.rect().adjusted(0, 0, -1, -1))
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        qp.scale(VIEW / PAD, VIEW / PAD)
        pen = QPen(
            QColor(20, 20, 20),
            PAD / 14,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.RoundCap,
            Qt.PenJoinStyle.RoundJoin,
        )
        qp.setPen(pen)
        for s in self.strokes:
            if len(s) == 1:
                qp.drawPoint(QPointF(*s[0]))
                continue
            path = QPainterPath(QPointF(*s[0]))
            for pt in s[1:]:
                path.lineTo(QPointF(*pt))
            qp.drawPath(path)
        qp.end()


class TryItPanel(Panel):
    title = "Try it"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.pad = DrawPad()
        self.pad_label = QLabel("Draw a digit on the square, or")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.pad.clear)
        self.controls.addWidget(self.pad_label)
        self.controls.addWidget(self.clear_button)
        self.finish_controls()
        self.stack = QStackedWidget()
        self.body.addWidget(self.stack)
        self.probs: np.ndarray | None = None
        self.input: np.ndarray | None = None
        self._build_image_page()
        self._build_text_page()
        self._build_decode_page()
        self.sequence_page = SequencePage(lambda: self.ctrl.runlist.inference_forward())
        self.stack.addWidget(self.sequence_page)
        self.candidates: list[tuple[str, float]] = []  # the beam's (text, log p), best first
        self._example_for: str | None = None
        self._gen_timer = QTimer(self)
        self._gen_timer.setInterval(15)
        self._gen_timer.timeout.connect(self._generate_some)
        self._gen_left = 0
        self._rng = np.random.default_rng(0)
        self.next_probs: np.ndarray | None = None

    # --- pages ---------------------------------------------------------------------------------
    def _build_image_page(self) -> None:
        page = QWidget()
        row = QHBoxLayout(page)
        left = QVBoxLayout()
        self.pad.changed.connect(self.ctrl.request_redraw)
        left.addWidget(self.pad)
        left.addStretch(1)
        row.addLayout(left)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.addLabel("what the network sees", row=0, col=0, color="#222", size="9pt")
        self.seen_vb, self.seen = image_view(self.view.ci, row=1, col=0)
        self.seen.setLookupTable(GREY_LUT)
        self.p_probs = style_plot(
            add_plot(self.view.ci, row=0, col=1, rowspan=2),
            "Class probabilities",
            "class",
            "probability",
        )
        self.p_probs.setYRange(0, 1, padding=0.02)
        self.p_probs.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.7, brush=colour(0))
        self.p_probs.addItem(self.bars)
        self.view.ci.layout.setColumnStretchFactor(0, 1)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        row.addWidget(self.view, 1)
        self.export_widget = page
        self.stack.addWidget(page)

    def _build_text_page(self) -> None:
        page = QWidget()
        col = QVBoxLayout(page)
        row = QHBoxLayout()
        self.prompt = QLineEdit("the ")
        self.prompt.setPlaceholderText("a prompt")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.temperature.setPrefix("temperature ")
        self.length = QSpinBox()
        self.length.setRange(1, 5000)
        self.length.setValue(200)
        self.length.setSuffix(" characters")
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.generate)
        row.addWidget(self.prompt, 1)
        row.addWidget(self.temperature)
        row.addWidget(self.length)
        row.addWidget(self.generate_button)
        col.addLayout(row)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText(
            "Type a prompt above and press Generate: the model continues it one character at "
            "a time, sampled at the temperature chosen (0: always the likeliest)."
        )
        self.output.setStyleSheet("font-family: monospace; font-size: 12pt;")
        col.addWidget(self.output, 1)
        self.text_page = page
        self.stack.addWidget(page)

    def _build_decode_page(self) -> None:
        page = QWidget()
        col = QVBoxLayout(page)
        row = QHBoxLayout()
        self.source = QLineEdit("6 December 2026")
        self.source.setPlaceholderText("a source sequence")
        self.source.returnPressed.connect(self.decode)
        self.beam_width = QSpinBox()
        self.beam_width.setRange(1, MAX_BEAM)
        self.beam_width.setValue(4)
        self.beam_width.setPrefix("beam width ")
        self.decode_button = QPushButton("Decode")
        self.decode_button.clicked.connect(self.decode)
        row.addWidget(QLabel("Source:"))
        row.addWidget(self.source, 1)
        row.addWidget(self.beam_width)
        row.addWidget(self.decode_button)
        col.addLayout(row)
        self.decoded = QPlainTextEdit()
        self.decoded.setReadOnly(True)
        self.decoded.setPlaceholderText(
            "Type a source above and press Enter or Decode: the greedy output and the beam's "
            "candidates appear here, each with its log-probability."
        )
        self.decoded.setStyleSheet("font-family: monospace; font-size: 12pt;")
        col.addWidget(self.decoded, 1)
        self.decode_page = page
        self.stack.addWidget(page)

    def decode(self) -> None:
        """Greedy decoding and beam search of the typed source with the shown run's model."""
        run = self.ctrl.current
        model = self.ctrl.runlist.model_for(run) if run is not None else None
        if model is None:
            self.decoded.setPlainText("Train a sequence-to-sequence model first.")
            return
        info = run.info
        try:
            task = Seq2SeqTask.of(
                info.get("dataset"), info.get("vocab"), info.get("seq2seq"), info["input_shape"]
            )
            greedy, beams = decode(model, task, self.source.text(), self.beam_width.value())
        except BlockPropError as e:
            self.candidates = []
            self.decoded.setPlainText(str(e))
            return
        self.candidates = [(task.text(c.tokens), c.score) for c in beams]
        lines = [
            f"greedy:  {task.text(greedy.tokens)}   (log p {greedy.score:.3f})",
            "",
            f"beam search, width {self.beam_width.value()}:",
        ]
        lines += [
            f"{k:>3}. {text}   (log p {score:.3f}, p {np.exp(score):.3g})"
            for k, (text, score) in enumerate(self.candidates, 1)
        ]
        self.decoded.setPlainText("\n".join(lines))

    # --- drawing -------------------------------------------------------------------------------
    def redraw_key(self, run):
        info = run.info if run is not None else None
        return (id(run), id(info), bool(info), self.pad.version, self.ctrl.weights_version)

    def draw(self, run: RunData | None) -> None:
        info = run.info if run is not None else {}
        ds = (run.settings.get("dataset") or {}) if run is not None else {}
        name = ds.get("name") if isinstance(ds, dict) else ds
        drawing = run is not None and bool(info) and not info.get("vocab")
        drawing = drawing and name in TRY_DATASETS and info.get("task") == "classification"
        self.pad_label.setVisible(drawing)  # the pad's words only with the pad
        self.clear_button.setVisible(drawing)
        if run is None or not info:
            self.show_message(
                "Train a model first: then draw a digit here (digits, MNIST), generate text "
                "(character models) or try it on new sequences (adding, sine, timed spikes)."
            )
            self.stack.hide()
            return
        if info.get("seq2seq"):
            if self._example_for != info.get("dataset"):  # an example source of this data set
                self._example_for = info.get("dataset")
                self.source.setText(example_source(info))
            self.show_message("")
            self.stack.show()
            self.stack.setCurrentWidget(self.decode_page)
            self.export_widget = self.decode_page
            return
        if info.get("vocab") and info.get("task") == "sequence_classification":
            self.show_message("")
            self.stack.show()
            self.stack.setCurrentWidget(self.text_page)
            self.export_widget = self.text_page
            return
        if is_sequence_regression(run):
            self.show_message("")
            self.stack.show()
            self.stack.setCurrentWidget(self.sequence_page)
            self.export_widget = self.sequence_page
            self.sequence_page.show_run(run)
            return
        if name not in TRY_DATASETS or info.get("task") != "classification":
            self.show_message(
                f"Try it draws digits for models trained on "
                f"{' or '.join(TRY_DATASETS)}, generates text for character "
                f"models and samples built-in sequence tasks; this run used {name!r}."
            )
            self.stack.hide()
            return
        self.show_message("")
        self.stack.show()
        self.stack.setCurrentIndex(0)
        self.export_widget = self.stack.currentWidget()
        self._classify(run, ds)

    def _classify(self, run: RunData, ds: dict) -> None:
        strokes = self.pad.arrays()
        forward = self.ctrl.runlist.inference_forward()
        if not strokes or forward is None:
            self.seen.clear()
            self.bars.setOpts(x=[0], height=[0])
            self.probs = None
            set_title(self.p_probs, "Class probabilities (draw a digit)")
            return
        try:
            x, pic = drawing_input(strokes, ds, tuple(run.info["input_shape"]))
        except ValueError as e:
            set_title(self.p_probs, str(e), color="#b00020")
            return
        self.input = x
        self.seen.setImage(pic, autoLevels=False, levels=(0, max(1e-6, float(pic.max()))))
        self.seen_vb.autoRange(padding=0.02)
        logits = np.asarray(forward(x[None].astype(np.float32)))[0]
        self.probs = softmax(logits)
        names = run.info.get("class_names") or [str(i) for i in range(len(self.probs))]
        k = int(np.argmax(self.probs))
        brushes = [pg.mkBrush(colour(1) if i == k else colour(0)) for i in range(len(self.probs))]
        self.bars.setOpts(
            x=np.arange(len(self.probs)), height=self.probs, width=0.7, brushes=brushes
        )
        self.p_probs.getAxis("bottom").setTicks([[(i, str(n)) for i, n in enumerate(names)], []])
        self.p_probs.setXRange(-0.6, len(self.probs) - 0.4, padding=0)
        set_title(self.p_probs, f"Class probabilities: {names[k]} ({self.probs[k]:.0%})")

    # --- text ----------------------------------------------------------------------------------
    def generate(self) -> None:
        if self._gen_timer.isActive():
            self._gen_timer.stop()
            self.generate_button.setText("Generate")
            return
        if self.ctrl.runlist.inference_forward() is None:
            self.output.setPlainText("Train a character model first.")
            return
        self.output.setPlainText(self.prompt.text())
        self._gen_left = self.length.value()
        self._rng = np.random.default_rng()
        self.generate_button.setText("Stop")
        self._gen_timer.start()

    def _generate_some(self, budget_s: float = 0.012) -> None:
        run = self.ctrl.current
        forward = self.ctrl.runlist.inference_forward()
        if run is None or forward is None or self._gen_left <= 0:
            self._gen_timer.stop()
            self.generate_button.setText("Generate")
            return
        vocab = run.info["vocab"]
        shape = tuple(run.info["input_shape"])
        T, one_hot = shape[0], len(shape) == 2
        t0 = time.perf_counter()
        text = self.output.toPlainText()
        added = ""
        while self._gen_left > 0 and time.perf_counter() - t0 < budget_s:
            temp = self.temperature.value()
            p = next_char_probs(forward, vocab, text + added, T, one_hot, temp)
            self.next_probs = p
            added += vocab[sample_char(p, self._rng, temp)]
            self._gen_left -= 1
        self.output.moveCursor(self.output.textCursor().MoveOperation.End)
        self.output.insertPlainText(added)

    def table(self):
        if self.stack.currentWidget() is self.sequence_page:
            return self.sequence_page.table()
        if self.stack.currentWidget() is self.decode_page and self.candidates:
            return ["candidate", "log probability"], [[t, float(v)] for t, v in self.candidates]
        if self.probs is None:
            return ["class", "probability"], []
        names = (self.ctrl.current.info.get("class_names") if self.ctrl.current else None) or [
            str(i) for i in range(len(self.probs))
        ]
        return ["class", "probability"], [[names[i], float(p)] for i, p in enumerate(self.probs)]


def example_source(info: dict) -> str:
    """A source to start from: a date, digits, or symbols of the sequence's length."""
    name = info.get("dataset")
    if name == "dates":
        return "6 December 2026"
    if name == "digit_strips":
        return "3 7 1"
    a, b = info["seq2seq"]["source"]
    vocab = list(info.get("vocab") or ())
    k = max(1, len(vocab) - 2)
    ids = [1 + (3 * i + 1) % k for i in range(b - a)]
    return " ".join(vocab[i] if i < len(vocab) else str(i) for i in ids)
