"""The problems panel: every problem the analysis found. Clicking one selects and centres its
block; a problem with an obvious fix has a Fix button (one undoable step)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.inspector import fix_text

BLOCK_ROLE = Qt.ItemDataRole.UserRole + 1
MAX_ROWS = 500  # problems listed; the header counts them all


class ProblemsPanel(QWidget):
    blockClicked = Signal(str)
    fixRequested = Signal(dict)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.header = QLabel()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Block", "Problem", ""])
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        # long messages wrap: row heights follow the width of the message column
        h.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.table.cellClicked.connect(self._clicked)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.header)
        lay.addWidget(self.table)
        self.problems: list = []
        self.locked = False

    def set_problems(self, problems) -> None:
        n = len(problems)
        self.problems = list(problems[:MAX_ROWS])  # a table of 100,000 rows would freeze
        t = self.table
        t.setRowCount(0)
        t.setRowCount(len(self.problems))
        self.header.setText(
            "No problems: the network is ready to train."
            if not n
            else f"<b style='color:#c62828'>{n:,} problem{'s' * (n > 1)}</b> "
            + (f"(the first {MAX_ROWS:,} listed; " if n > MAX_ROWS else "(")
            + "click one to show its block)"
        )
        for r, p in enumerate(self.problems):
            block = QTableWidgetItem(p.block or "(graph)")
            block.setData(BLOCK_ROLE, p.block)
            msg = QTableWidgetItem(p.message)
            msg.setToolTip(p.message)
            t.setItem(r, 0, block)
            t.setItem(r, 1, msg)
            if p.fix:
                holder = QWidget()
                lay = QHBoxLayout(holder)
                lay.setContentsMargins(2, 2, 2, 2)
                b = QPushButton("Fix")
                b.setToolTip(fix_text(p.fix))
                b.setEnabled(not self.locked)
                b.clicked.connect(lambda _=False, f=p.fix: self.fixRequested.emit(f))
                lay.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
                t.setCellWidget(r, 2, holder)
        t.resizeRowsToContents()

    def row_blocks(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def fix_buttons(self) -> list[QPushButton]:
        out = []
        for r in range(self.table.rowCount()):
            w = self.table.cellWidget(r, 2)
            if w is not None:
                out += w.findChildren(QPushButton)
        return out

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        for b in self.fix_buttons():
            b.setEnabled(not locked)

    def _clicked(self, row: int, column: int = 0) -> None:
        item = self.table.item(row, 0)
        block = item.data(BLOCK_ROLE) if item is not None else None
        if block:
            self.blockClicked.emit(block)
