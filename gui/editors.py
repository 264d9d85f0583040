"""Typed editors for block settings, built from each option's ``Opt`` declaration.

Every editor has ``edited(value)`` (the user changed it: a JSON-ready value), ``invalid(text)``
(what the user typed cannot be read) and ``set_value(value)``, which updates the widget from
the model without emitting anything (QSignalBlocker), so model changes never bounce back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from engine.errors import GraphError
from engine.graph_json import parse_json
from engine.settings import Opt

INT_LO, INT_HI = -(2**31) + 1, 2**31 - 1
AUTO = "auto"


def _bounds(opt: Opt, is_int: bool) -> tuple[float, float]:
    lo = -1e12 if opt.min is None else opt.min
    hi = 1e12 if opt.max is None else opt.max
    if is_int:
        lo = INT_LO if opt.min is None else math.ceil(lo) + (1 if opt.min_exclusive else 0)
        hi = INT_HI if opt.max is None else math.floor(hi) - (1 if opt.max_exclusive else 0)
        return max(lo, INT_LO), min(hi, INT_HI)
    return lo, hi


def parse_ints(text: str) -> list[int]:
    """'1, 32, 32' or '1x32x32' or '1 32 32' -> [1, 32, 32]; ValueError if not integers."""
    parts = [p for p in re.split(r"[\s,x×*()\[\]]+", text.strip()) if p]
    if not parts:
        raise ValueError("empty")
    return [int(p) for p in parts]


def format_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("size", "shape", "padding") and isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if kind == "connections":
        return "; ".join(" ".join(str(i) for i in row) for row in value)
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return str(value)


def parse_value(kind: str, text: str) -> Any:
    """Read what the user typed for a setting of ``kind``; ValueError with a hint if it
    cannot be read (the range and cross-field checks are the engine's, afterwards)."""
    t = text.strip()
    if kind == "size":
        try:
            v = parse_ints(t)
        except ValueError:
            raise ValueError("type a whole number, or two as 'h, w'") from None
        if len(v) not in (1, 2):
            raise ValueError("type one number, or two as 'h, w'")
        return v[0] if len(v) == 1 else v
    if kind == "shape":
        try:
            return parse_ints(t)
        except ValueError:
            raise ValueError("type the sizes separated by commas, e.g. 1, 32, 32") from None
    if kind == "padding":
        if t.lower() in ("same", "valid"):
            return t.lower()
        try:
            v = parse_ints(t)
        except ValueError:
            raise ValueError("type a number, 'h, w', same or valid") from None
        if len(v) not in (1, 2):
            raise ValueError("type a number, 'h, w', same or valid")
        return v[0] if len(v) == 1 else v
    if kind == "block":  # a block id, as typed (a number-like id stays text)
        return t or None
    if kind == "connections":
        if not t:
            return None
        if t.startswith("["):
            try:  # what a graph file may hold: no huge ints, deep nesting, lone surrogates
                return parse_json(t)
            except GraphError:
                raise ValueError("not valid JSON, e.g. [[0, 1, 2], [1, 2, 3]]") from None
        try:
            return [parse_ints(row) for row in re.split(r"[;\n]+", t) if row.strip()]
        except ValueError:
            raise ValueError(
                "one row per output map, separated by ';', e.g. '0 1 2; 1 2 3'"
            ) from None
    if not t:
        return None
    try:
        return parse_json(t)
    except GraphError:
        return t


class IntEditor(QSpinBox):
    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lo, hi = _bounds(opt, True)
        self.nullable = opt.nullable
        if self.nullable:  # the value below the minimum reads "auto" and means None
            lo -= 1
            self.setSpecialValueText(AUTO)
        self.setRange(int(lo), int(hi))
        self.setKeyboardTracking(True)
        self.setAccelerated(True)
        self.valueChanged.connect(lambda _v: self.edited.emit(self.current()))

    def current(self) -> int | None:
        if self.nullable and self.value() == self.minimum():
            return None
        return self.value()

    def set_value(self, v: Any) -> None:
        with QSignalBlocker(self):
            self.setValue(self.minimum() if v is None else int(v))


class FloatEditor(QDoubleSpinBox):
    """A spin box that shows and reads numbers like 0.001 or 1e-05 as written."""

    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lo, hi = _bounds(opt, False)
        self._lo_excl = opt.min_exclusive
        self.setDecimals(12)
        self.setRange(lo, hi)
        self.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.setKeyboardTracking(True)
        self.valueChanged.connect(self._changed)

    def textFromValue(self, v: float) -> str:
        return f"{v:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            v = float(text)
        except ValueError:
            return QValidator.State.Intermediate
        if not (self.minimum() <= v <= self.maximum()):
            return QValidator.State.Intermediate
        return QValidator.State.Acceptable

    def _changed(self, v: float) -> None:
        if self._lo_excl and v <= self.minimum():
            self.invalid.emit(f"must be greater than {self.minimum():g}")
            return
        self.edited.emit(float(v))

    def set_value(self, v: Any) -> None:
        with QSignalBlocker(self):
            self.setValue(float(v) if v is not None else self.minimum())


class BoolEditor(QCheckBox):
    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggled.connect(lambda on: self.edited.emit(bool(on)))

    def set_value(self, v: Any) -> None:
        with QSignalBlocker(self):
            self.setChecked(bool(v))


class ChoiceEditor(QComboBox):
    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if opt.nullable:
            self.addItem("(layer's usual)", None)
        for c in opt.choices:
            self.addItem(str(c), c)
        self.currentIndexChanged.connect(lambda i: self.edited.emit(self.itemData(i)))

    def set_value(self, v: Any) -> None:
        with QSignalBlocker(self):
            i = self.findData(v)
            self.setCurrentIndex(max(i, 0))


class PaddingEditor(QComboBox):
    """Padding: pick 0-3, "same" or "valid", or type a number or 'h, w'."""

    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.addItems(["0", "1", "2", "3", "same", "valid"])
        self._value: Any = None
        self.activated.connect(lambda _i: self._commit())
        self.lineEdit().editingFinished.connect(self._commit)

    def _commit(self) -> None:
        try:
            v = parse_value("padding", self.currentText())
        except ValueError as e:
            self.invalid.emit(str(e))
            return
        if v != self._value:
            self._value = v
            self.edited.emit(v)

    def set_value(self, v: Any) -> None:
        self._value = v
        with QSignalBlocker(self):
            self.setEditText(format_value("padding", v))


class TextEditor(QLineEdit):
    """Shapes ('1, 32, 32'), sizes ('5' or '5, 3'), connection tables ('0 1 2; 1 2 3') and
    any other kind as JSON. Applied on Enter or when focus leaves."""

    edited = Signal(object)
    invalid = Signal(str)

    def __init__(self, opt: Opt, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = opt.kind
        self.nullable = opt.nullable
        self._value: Any = None
        self.editingFinished.connect(self._commit)
        if self.kind == "connections":
            self.setPlaceholderText("none: every map reads every input map")
        elif self.nullable:
            self.setPlaceholderText("auto")

    def _commit(self) -> None:
        try:
            v = (
                None
                if self.nullable and not self.text().strip()
                else parse_value(self.kind, self.text())
            )
        except ValueError as e:
            self.invalid.emit(str(e))
            return
        if v != self._value:
            self.edited.emit(v)

    def set_value(self, v: Any) -> None:
        self._value = v
        text = format_value(self.kind, v)
        if text != self.text():
            with QSignalBlocker(self):
                self.setText(text)
                self.setCursorPosition(0)


class _WheelGuard(QObject):
    """Scrolling a form scrolls it: a spin box or combo box under the mouse takes the wheel
    only when it has the keyboard focus (clicked or tabbed into). Otherwise the wheel goes
    to the scroll area around it; Qt's default silently changed a setting (batch size 32
    became 25 while scrolling the Training dock down to its buttons)."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Type.Wheel or obj.hasFocus():
            return False
        area = obj.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None:
            QCoreApplication.sendEvent(area.verticalScrollBar(), event)
        return True


_GUARD: _WheelGuard | None = None


def guard_wheel(*widgets: QWidget) -> None:
    """Let ``widgets`` (spin boxes, combo boxes) change by the wheel only when focused."""
    global _GUARD
    if _GUARD is None:
        _GUARD = _WheelGuard()
    for w in widgets:
        w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone gives no focus
        w.installEventFilter(_GUARD)


def make_editor(opt: Opt, parent: QWidget | None = None):
    if opt.kind == "int":
        ed = IntEditor(opt, parent)
    elif opt.kind == "float" and not opt.nullable:
        ed = FloatEditor(opt, parent)
    elif opt.kind == "bool":
        return BoolEditor(opt, parent)
    elif opt.kind == "choice":
        ed = ChoiceEditor(opt, parent)
    elif opt.kind == "padding":
        ed = PaddingEditor(opt, parent)
    else:
        return TextEditor(opt, parent)
    guard_wheel(ed)
    return ed
