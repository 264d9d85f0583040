"""The summary panel: each block's output shape and parameter count in topological order, and
the totals (a Keras-style summary that updates as you edit). A block whose count differs from
the lectures' formula says why in the Note column (``Layer.param_note``, e.g. PyTorch's second
recurrent bias)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.analysis import count
from gui.canvas.style import shape_text

COLUMNS = ("Block", "Type", "Output shape", "Params", "Note")
PARAMS, NOTE = COLUMNS.index("Params"), COLUMNS.index("Note")
SIZED = NOTE  # the columns before the note are sized to their contents


class SummaryPanel(QWidget):
    blockClicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        h = self.table.horizontalHeader()
        for i in range(SIZED):
            h.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(SIZED, QHeaderView.ResizeMode.Stretch)  # the note takes the rest
        self.table.cellClicked.connect(self._clicked)
        self.totals = QLabel()
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table)
        lay.addWidget(self.totals)

    def set_analysis(self, a) -> None:
        rows = a.rows()
        self.table.setUpdatesEnabled(False)
        # sized to the contents once, not after every cell (which made filling quadratic:
        # seconds for DenseNet-121's 427 rows)
        h = self.table.horizontalHeader()
        for i in range(SIZED):
            h.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
        self.table.setRowCount(len(rows))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(rows):
            cells = (
                row.id,
                row.type,
                shape_text(row.shape),
                "?" if row.params is None else f"{row.params:,}",
                a.notes.get(row.id, ""),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == PARAMS:
                    item.setTextAlignment(right)
                if c == NOTE and text:
                    item.setToolTip(text)  # a long note is cut at the panel's edge
                self.table.setItem(r, c, item)
        for i in range(SIZED):
            h.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setUpdatesEnabled(True)
        text = (
            f"<b>Total: {a.total_params:,} trainable parameters</b> in {count(len(rows), 'block')}"
        )
        if a.total_buffers:
            text += f" (+{a.total_buffers:,} non-trainable)"
        if a.input_id and a.output_id:
            text += (
                f"; {shape_text(a.shapes.get(a.input_id))} → "
                f"{shape_text(a.shapes.get(a.output_id))}"
            )
        if a.memory_bytes:
            text += f"; training memory ≈ {a.memory_bytes / 1e6:,.1f} MB (batch {a.batch_size})"
        self.totals.setText(text)

    def _clicked(self, row: int, col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.blockClicked.emit(item.text())
