"""The GUI's code view of the export: its toolbar and File entries, following the graph and
showing errors, saving code with trained weights, the Python highlighter.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_export import ROOT, graph, load_module

import engine


# --- GUI: the code view ---------------------------------------------------------------------------
@pytest.fixture
def window(qtbot):
    from PySide6.QtWidgets import QMainWindow, QToolBar

    from gui.window_api import CodeViewWindow

    class Window(QMainWindow):  # a gui.window_api.CodeViewWindow without training
        def __init__(self):
            super().__init__()
            self.graph = graph("mlp")
            self.training = None
            self.code_view = None
            self.code_view_actions = {}
            self.toolbar = QToolBar()
            self.addToolBar(self.toolbar)
            self._menus = {}
            file_menu = self.menu("File")
            file_menu.addAction("Open")
            file_menu.addSeparator()
            file_menu.addAction("Quit")

        def menu(self, name):
            if name not in self._menus:
                self._menus[name] = self.menuBar().addMenu(name)
            return self._menus[name]

    w = Window()
    qtbot.addWidget(w)
    assert isinstance(w, CodeViewWindow)
    return w


def test_install_adds_toolbar_and_file_export_entries(window, qtbot):
    from gui import code_view

    actions = code_view.install(window)
    assert code_view.install(window) is actions  # idempotent
    assert actions["toolbar"] in window.toolbar.actions()
    texts = [a.text() for a in actions["menu"].menu().actions()]
    assert texts == ["Python (&engine code)...", "&PyTorch script..."]
    file_actions = window.menu("File").actions()
    assert actions["menu"] in file_actions
    assert file_actions.index(actions["menu"]) < [a.text() for a in file_actions].index("Quit")
    actions["pytorch"].trigger()
    view = window.code_view
    assert view.isVisible() and view.target == "pytorch"
    assert "class Net(nn.Module):" in view.text.toPlainText()
    actions["numpy"].trigger()
    assert window.code_view is view and view.target == "numpy"
    assert "import engine" in view.text.toPlainText()
    view.close()


def test_code_view_follows_the_graph_and_shows_errors(window, qtbot):
    from gui.code_view import CodeView

    view = CodeView(window, "numpy")
    qtbot.addWidget(view)
    assert view.text.isReadOnly()
    assert "units=16" in view.code
    window.graph.set_config("hidden", {"units": 32})
    qtbot.waitUntil(lambda: "units=32" in view.code, timeout=3000)
    window.graph.remove_edge("hidden", "relu")
    qtbot.waitUntil(lambda: view.error is not None, timeout=3000)
    assert "relu" in view.error and not view.save_button.isEnabled()
    assert "Cannot export" in view.text.toPlainText()
    window.graph.add_edge("hidden", "relu")
    qtbot.waitUntil(lambda: view.error is None, timeout=3000)
    assert view.copy_button.isEnabled()
    view.copy()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == view.code
    view.close()


def test_code_view_saves_code_and_trained_weights(window, qtbot, tmp_path):
    from gui.code_view import CodeView

    view = CodeView(window, "numpy")
    qtbot.addWidget(view)
    assert not view.weights_box.isEnabled()  # nothing trained yet

    class Run:  # what the training panels hold for the shown run
        weights = {k: v + 1.0 for k, v in engine.build_model(window.graph).params.items()}

    window.training = type("T", (), {"current": Run()})()
    view.regenerate()
    assert view.weights_box.isEnabled()
    view.weights_box.setChecked(True)
    path = tmp_path / "my model.py"
    assert view.save(str(path))
    weights = tmp_path / "my model_weights.npz"
    assert path.exists() and weights.exists()
    assert "WEIGHTS = 'my model_weights.npz'" in path.read_text(encoding="utf-8")
    os.chdir(tmp_path)
    try:
        model = load_module(path, "saved_by_view").build_model()
    finally:
        os.chdir(ROOT)
    for k, v in Run.weights.items():
        np.testing.assert_array_equal(model.params[k], v)
    window.graph.set_config("hidden", {"units": 8})  # the run no longer fits the graph
    view.regenerate()
    assert not view.weights_box.isEnabled()
    assert "changed since training" in view.weights_box.toolTip()
    view.close()


def test_highlighter_colours_python(qtbot):
    from PySide6.QtWidgets import QPlainTextEdit

    from gui.code_view import PythonHighlighter

    edit = QPlainTextEdit()
    qtbot.addWidget(edit)
    doc = edit.document()
    h = PythonHighlighter(doc)
    edit.setPlainText('def f(x):  # note "q"\n    s = """a\n#b"""\n    return \'#\' + 1\n')
    blocks = [doc.findBlockByNumber(i) for i in range(4)]

    def fmt_at(block, col):
        for r in block.layout().formats():
            if r.start <= col < r.start + r.length:
                return r.format.foreground().color().name()
        return None

    assert fmt_at(blocks[0], 0) == h.STYLES["keyword"].foreground().color().name()
    assert fmt_at(blocks[0], 4) == h.STYLES["defname"].foreground().color().name()
    assert fmt_at(blocks[0], 16) == h.STYLES["comment"].foreground().color().name()
    assert fmt_at(blocks[2], 1) == h.STYLES["string"].foreground().color().name()  # inside """
    assert fmt_at(blocks[3], 12) == h.STYLES["string"].foreground().color().name()  # '#'
