"""The "Open Preset…" dialog: every graph in presets/ (then presets/zoo/) with its name and
description."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from engine.errors import GraphError
from engine.graph import MAX_FILE_BYTES, preset_files
from engine.safe_io import read_limited

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
PATH_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class PresetInfo:
    path: Path
    name: str
    description: str
    blocks: int
    error: str = ""


def list_presets(folder: Path = PRESETS_DIR) -> list[PresetInfo]:
    """The presets in ``folder``, by name, then those of its zoo sub-folder (the ImageNet-sized
    architectures), by name. Unreadable files are listed with their problem."""
    out = []
    for p in preset_files(folder):
        try:
            d = json.loads(read_limited(p, MAX_FILE_BYTES, GraphError).decode("utf-8"))
            if not isinstance(d, dict) or d.get("format") != "blockprop-graph":
                raise ValueError("not a BlockProp graph")
            nodes = d.get("nodes", [])
            out.append(
                PresetInfo(
                    p,
                    str(d.get("name") or p.stem),
                    str(d.get("description", "")),
                    len(nodes) if isinstance(nodes, list) else 0,
                )
            )
        except (GraphError, UnicodeDecodeError, ValueError, RecursionError) as e:
            out.append(PresetInfo(p, p.stem, "", 0, error=str(e)))
    return sorted(out, key=lambda i: (i.path.parent != Path(folder), i.name.lower()))


class PresetDialog(QDialog):
    def __init__(self, folder: Path = PRESETS_DIR, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open Preset")
        self.resize(720, 420)
        self.presets = list_presets(folder)
        self.list = QListWidget()
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail.setMinimumWidth(300)
        for info in self.presets:
            item = QListWidgetItem(info.name + ("  (unreadable)" if info.error else ""))
            item.setData(PATH_ROLE, str(info.path))
            item.setToolTip(info.description or info.error)
            if info.error:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.list.currentRowChanged.connect(self._show)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addWidget(self.detail, 1)
        lay = QVBoxLayout(self)
        if not self.presets:
            lay.addWidget(QLabel(f"No presets found in {folder}."))
        lay.addLayout(row)
        lay.addWidget(self.buttons)
        first = next((i for i, p in enumerate(self.presets) if not p.error), -1)
        self.list.setCurrentRow(first)
        self._show(first)

    def _show(self, row: int) -> None:
        ok = 0 <= row < len(self.presets) and not self.presets[row].error
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(ok)
        if not 0 <= row < len(self.presets):
            self.detail.setText("")
            return
        info = self.presets[row]
        if info.error:
            self.detail.setText(f"<b>{info.name}</b><br>Cannot read {info.path.name}: {info.error}")
            return
        desc = info.description.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        self.detail.setText(
            f"<h3>{info.name}</h3><p>{desc}</p>"
            f"<p style='color:#607d8b'>{info.blocks} blocks · {info.path.name}</p>"
        )

    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        if item is None or not (item.flags() & Qt.ItemFlag.ItemIsEnabled):
            return None
        return item.data(PATH_ROLE)
