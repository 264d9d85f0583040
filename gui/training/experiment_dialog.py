"""Train > Experiment...: the settings to vary, one per line, as the command line takes them
(``lr=0.1,0.01``, ``d1.units=32,64``; engine/experiment.py), a grid or a seeded random
search, and the epochs of every run. A line that cannot work is refused in the dialog, naming
the block and the key, before anything trains."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
)

from engine import experiment as ex
from engine.errors import BlockPropError


class ExperimentDialog(QDialog):
    def __init__(self, parent, graph: dict, epochs: int) -> None:
        super().__init__(parent)
        self.setWindowTitle("Experiment: vary settings over runs")
        self.graph = graph
        ids = ", ".join(str(n.get("id")) for n in graph.get("nodes", [])[:20])
        help_text = QLabel(
            "One setting per line, NAME=V1,V2: lr, optimizer, batch_size, epochs, seed, l1, l2, "
            "clip_norm, val_split, init (every block's initialiser), dropout (every Dropout's "
            f"rate), or BLOCK.KEY for one block's setting. Blocks: {ids}"
        )
        help_text.setWordWrap(True)
        self.text = QPlainTextEdit("lr=0.1,0.01,0.001")
        self.random = QCheckBox("random search instead of the grid")
        self.count = QSpinBox()
        self.count.setRange(1, ex.MAX_RUNS)
        self.count.setValue(4)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1_000_000)
        self.epochs.setValue(max(1, int(epochs)))
        form = QFormLayout()
        form.addRow(self.random)
        form.addRow("runs drawn", self.count)
        form.addRow("seed", self.seed)
        form.addRow("epochs of each run", self.epochs)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train and compare")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        for w in (help_text, self.text):
            lay.addWidget(w)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.result_args: dict | None = None

    def args(self) -> dict:
        """{"varies", "random", "seed", "epochs"} from the form; ConfigError on a bad line."""
        lines = [x.strip() for x in self.text.toPlainText().splitlines() if x.strip()]
        varies = [ex.parse_vary(x) for x in lines]
        random = self.count.value() if self.random.isChecked() else None
        out = {
            "varies": varies,
            "random": random,
            "seed": self.seed.value(),
            "epochs": self.epochs.value(),
        }
        ex.plan(
            self.graph, varies, random=random, seed=out["seed"], epochs=out["epochs"]
        )  # checks all
        return out

    def _accept(self) -> None:
        try:
            self.result_args = self.args()
        except BlockPropError as e:
            self.error.setText(str(e))
            return
        self.accept()
