"""gui.window_api: the real window and the tests' fake implement the protocols the attached
parts use, with the protocols' signatures, and gui/ no longer probes a window with
hasattr/getattr."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMainWindow
from training_support import mlp_xor

from gui.window_api import AppWindow, CodeViewWindow, TrainingWindow

pytest_plugins = ["gui_support", "training_support"]

GUI = Path(__file__).resolve().parent.parent / "gui"


def members(proto: type) -> dict[str, object]:
    """The protocol's members: name -> its declaration (a function, property or annotation)."""
    out: dict[str, object] = {}
    for cls in reversed(proto.__mro__):
        if (
            cls in (object,)
            or not getattr(cls, "_is_protocol", False)
            or cls.__name__ == "Protocol"
        ):
            continue
        out.update(cls.__dict__.get("__annotations__", {}))
        for name, value in vars(cls).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                out[name] = value
    return out


def mismatches(obj: object, proto: type) -> list[str]:
    """Members ``obj`` lacks, and methods whose parameters differ from the protocol's."""
    bad = []
    for name, decl in members(proto).items():
        if not hasattr(obj, name):
            bad.append(f"no {name}")
            continue
        impl = inspect.getattr_static(type(obj), name, None)
        if inspect.isfunction(decl) and inspect.isfunction(impl):
            want = list(inspect.signature(decl).parameters)
            got = list(inspect.signature(impl).parameters)[: len(want)]
            if got != want:
                bad.append(f"{name}{tuple(got)} != {tuple(want)}")
    return bad


def test_protocol_members_are_what_the_parts_use():
    assert {"graph", "canvas", "path", "analysis", "edit_meta", "fileChanged"} <= set(
        members(TrainingWindow)
    )
    assert {"graph", "toolbar", "menu", "training", "code_view"} <= set(members(CodeViewWindow))
    assert set(members(AppWindow)) == set(members(TrainingWindow)) | set(members(CodeViewWindow))


def test_main_window_is_an_app_window(window):
    assert isinstance(window, AppWindow)
    assert mismatches(window, AppWindow) == []
    assert window.training is not None and window.code_view_actions


def test_fake_window_is_a_training_window(train_window):
    w = train_window(mlp_xor())
    assert isinstance(w, TrainingWindow)
    assert mismatches(w, TrainingWindow) == []
    assert w.training is not None and w.path is None


def test_a_window_missing_a_member_or_with_other_parameters_is_caught(qtbot):
    class Partial(QMainWindow):
        selectionChanged = Signal(list)

        def menu(self, title):  # the protocol calls it ``name``
            return self.menuBar().addMenu(title)

    w = Partial()
    qtbot.addWidget(w)
    assert not isinstance(w, TrainingWindow)
    bad = mismatches(w, TrainingWindow)
    assert "no graph" in bad and "no edit_meta" in bad
    assert "menu('self', 'title') != ('self', 'name')" in bad


def _window_probes(path: Path) -> list[str]:
    """hasattr/getattr calls on something named like a window (``window``, ``self.window``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("hasattr", "getattr")
            and node.args
            and "window" in ast.unparse(node.args[0]).lower()
        ):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_gui_does_not_probe_windows_with_hasattr_or_getattr(tmp_path):
    assert [p for f in sorted(GUI.rglob("*.py")) for p in _window_probes(f)] == []
    bad = tmp_path / "bad.py"
    bad.write_text("getattr(self.window, 'canvas', None)\nhasattr(window, 'x')\ngetattr(a, 'b')\n")
    assert _window_probes(bad) == [
        "bad.py:1 getattr(self.window, 'canvas', None)",
        "bad.py:2 hasattr(window, 'x')",
    ]
