"""Editors built from the engine's ``Opt`` declarations (optimizers, schedules, data sets).

One ``OptForm`` shows the settings of one thing; ``values()`` gives back a JSON-ready dict with
only the settings that differ from their defaults (so saved specs stay short, e.g.
``{"name": "digits", "resize": [32, 32]}``); ``set_values`` loads one back without emitting
``changed`` (QSignalBlocker). Checking stays in the engine: the form only converts text.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.settings import Opt
from gui.editors import guard_wheel


class SciSpinBox(QDoubleSpinBox):
    """A spin box for values like 1e-4: shows ``%g``, steps by x10^(1/4) (log scale)."""

    def __init__(self, minimum: float = 0.0, maximum: float = 1e6) -> None:
        super().__init__()
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text, pos):  # noqa: D102
        from PySide6.QtGui import QValidator

        t = text.strip()
        if t in ("", "-", ".", "e", "-."):
            return QValidator.State.Intermediate, text, pos
        try:
            float(t)
        except ValueError:
            if t[-1:] in "eE-+":
                return QValidator.State.Intermediate, text, pos
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        v = self.value()
        if v > 0:
            self.setValue(v * 10 ** (steps / 4))
        else:
            super().stepBy(steps)


def _format_size(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


def _parse_size(text: str) -> Any:
    t = text.strip().replace("x", ",").replace("[", "").replace("]", "")
    if not t:
        return None
    parts = [p for p in t.replace(" ", ",").split(",") if p]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return text  # left for the engine to refuse with its message
    return nums[0] if len(nums) == 1 else nums


class OptForm(QWidget):
    """Editors for ``options`` (name -> Opt). ``changed`` fires on any user edit."""

    changed = Signal()

    def __init__(self, options: dict[str, Opt] | None = None, skip: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.options: dict[str, Opt] = {}
        self.editors: dict[str, QWidget] = {}
        self.skip = skip
        self.set_options(options or {})

    def set_options(self, options: dict[str, Opt]) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.options = {k: o for k, o in options.items() if k not in self.skip}
        self.editors = {}
        for key, opt in self.options.items():
            ed = self._editor(key, opt)
            if isinstance(ed, (QAbstractSpinBox, QComboBox)):
                guard_wheel(ed)
            ed.setToolTip(opt.doc)
            self.editors[key] = ed
            self.layout_.addRow(key.replace("_", " "), ed)
        self.set_values({})

    def _editor(self, key: str, opt: Opt) -> QWidget:
        if opt.kind == "int":
            ed = QSpinBox()
            lo = int(opt.min if opt.min is not None else -(2**31 - 2))
            if opt.nullable:  # one below the range stands for "not set" (the default)
                lo -= 1
                ed.setSpecialValueText("default" if opt.default is None else "none")
            ed.setRange(lo, int(min(opt.max if opt.max is not None else 2**31 - 1, 2**31 - 1)))
            ed.valueChanged.connect(self.changed)
            return ed
        if opt.kind == "float":
            lo = opt.min if opt.min is not None else -1e12
            hi = opt.max if opt.max is not None else 1e12
            ed = SciSpinBox(lo, hi)
            if opt.nullable:  # the lowest value stands for "none" (e.g. no clipping)
                ed.setSpecialValueText("off")
            ed.valueChanged.connect(self.changed)
            return ed
        if opt.kind == "bool":
            ed = QCheckBox()
            ed.toggled.connect(self.changed)
            return ed
        if opt.kind == "choice":
            ed = QComboBox()
            ed.addItems([str(c) for c in opt.choices])
            ed.currentIndexChanged.connect(self.changed)
            return ed
        if opt.kind == "path":
            box = QWidget()
            row = QHBoxLayout(box)
            row.setContentsMargins(0, 0, 0, 0)
            line = QLineEdit()
            line.editingFinished.connect(self.changed)
            browse = QPushButton("...")
            browse.setFixedWidth(28)
            browse.clicked.connect(lambda: self._browse(line))
            row.addWidget(line, 1)
            row.addWidget(browse)
            box.line = line  # type: ignore[attr-defined]
            return box
        ed = QLineEdit()
        if opt.kind == "size":
            ed.setPlaceholderText("none" if opt.nullable else "H, W")
        ed.editingFinished.connect(self.changed)
        return ed

    def _browse(self, line: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", line.text())
        if path:
            line.setText(path)
            self.changed.emit()

    def set_values(self, values: dict) -> None:
        for key, opt in self.options.items():
            ed = self.editors[key]
            v = values.get(key, None if opt.required else opt.default)
            blocker = QSignalBlocker(ed)
            if isinstance(ed, QSpinBox):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool)
                ed.setValue(int(v) if ok else ed.minimum())
            elif isinstance(ed, SciSpinBox):
                ok = isinstance(v, (int, float)) and math.isfinite(v)
                ed.setValue(float(v) if ok else ed.minimum())
            elif isinstance(ed, QCheckBox):
                ed.setChecked(bool(v))
            elif isinstance(ed, QComboBox):
                i = ed.findText(str(v))
                ed.setCurrentIndex(max(i, 0))
            elif hasattr(ed, "line"):
                ed.line.setText("" if v is None else str(v))
            elif isinstance(ed, QLineEdit):
                ed.setText(_format_size(v))
            del blocker

    def values(self, all_values: bool = False) -> dict:
        out: dict[str, Any] = {}
        for key, opt in self.options.items():
            ed = self.editors[key]
            if isinstance(ed, QSpinBox):
                v: Any = ed.value()
                if opt.nullable and v == ed.minimum():
                    v = None
            elif isinstance(ed, SciSpinBox):
                v = ed.value()
                if opt.nullable and v == ed.minimum():
                    v = None
            elif isinstance(ed, QCheckBox):
                v = ed.isChecked()
            elif isinstance(ed, QComboBox):
                v = opt.choices[ed.currentIndex()] if opt.choices else ed.currentText()
            elif hasattr(ed, "line"):
                v = ed.line.text().strip() or None
            else:
                text = ed.text().strip()
                if opt.kind in ("size", "shape"):
                    v = _parse_size(text)
                elif opt.kind == "column":
                    v = int(text) if text.lstrip("-").isdigit() else (text or None)
                else:
                    v = text or None
            if all_values or opt.required or v != opt.default:
                if v is None and opt.required:
                    continue  # missing: the engine's check names it
                out[key] = v
        return out
