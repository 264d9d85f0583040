"""The code view: the current graph as Python (engine code or a standalone PyTorch script).

A non-modal dialog with a read-only, syntax-highlighted text, a target choice (engine / PyTorch),
"with trained weights" when the window holds a trained run whose weights fit the graph, and Copy
and Save buttons. It follows the window's graph: every change regenerates the code (debounced),
and a graph that cannot be exported shows why (the engine's message, naming the block) instead.

``install(window)`` adds a toolbar action and File > Export entries to a
``gui.window_api.CodeViewWindow`` (its graph, File menu, toolbar and training runs).
"""

from __future__ import annotations

import json
import keyword
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRegularExpression, QTimer
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BlockPropError
from engine.export import export_code
from engine.graph_events import GraphEvent, NodeMoved
from gui.window_api import CodeViewWindow

TARGETS = (("numpy", "Engine (NumPy)"), ("pytorch", "PyTorch"))
DEBOUNCE_MS = 250
IGNORED_EVENTS = (NodeMoved,)  # positions are not part of the code

BUILTINS = (
    "print",
    "len",
    "range",
    "enumerate",
    "zip",
    "dict",
    "list",
    "tuple",
    "set",
    "int",
    "float",
    "str",
    "bool",
    "max",
    "min",
    "sum",
    "abs",
    "open",
    "isinstance",
    "getattr",
    "super",
    "sorted",
    "any",
    "all",
    "globals",
    "round",
    "callable",
    "next",
    "iter",
)


def _fmt(color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, builtins, numbers, strings (triple-quoted ones across lines), comments,
    decorators and the names after def/class."""

    STYLES = {
        "keyword": _fmt("#0033b3", bold=True),
        "builtin": _fmt("#000080"),
        "number": _fmt("#1750eb"),
        "string": _fmt("#067d17"),
        "comment": _fmt("#8c8c8c", italic=True),
        "decorator": _fmt("#9e880d"),
        "defname": _fmt("#00627a", bold=True),
        "self": _fmt("#94558d"),
    }

    def __init__(self, document) -> None:
        super().__init__(document)
        kw = "|".join(keyword.kwlist)
        self.rules = [
            (QRegularExpression(rf"\b({kw})\b"), "keyword"),
            (QRegularExpression(rf"\b({'|'.join(BUILTINS)})\b"), "builtin"),
            (QRegularExpression(r"\bself\b"), "self"),
            (QRegularExpression(r"\b[0-9][0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9]+)?\b"), "number"),
            (QRegularExpression(r"@[A-Za-z_][\w.]*"), "decorator"),
            (QRegularExpression(r"\b(?:def|class)\s+(\w+)"), "defname"),
        ]
        # one-line strings (with escapes) and comments, matched left to right so a # inside a
        # string is not a comment and quotes inside a comment are not strings
        self.token = QRegularExpression(
            r"""[rRbBuUfF]{0,2}('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|#.*"""
        )
        self.triple = QRegularExpression(r"'''|\"\"\"")

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        for rx, style in self.rules:
            it = rx.globalMatch(text)
            while it.hasNext():
                m = it.next()
                group = 1 if style == "defname" else 0
                self.setFormat(m.capturedStart(group), m.capturedLength(group), self.STYLES[style])
        # strings and comments win over the rules above
        covered = self._triple_strings(text)
        it = self.token.globalMatch(text)
        while it.hasNext():
            m = it.next()
            start = m.capturedStart()
            if any(a <= start < b for a, b in covered):
                continue
            style = "comment" if m.captured().startswith("#") else "string"
            self.setFormat(start, m.capturedLength(), self.STYLES[style])

    def _triple_strings(self, text: str) -> list[tuple[int, int]]:
        """Format triple-quoted strings (state 1: inside ''' , 2: inside \"\"\" at line end)."""
        spans = []
        state = self.previousBlockState()
        start = 0
        quote = {1: "'''", 2: '"""'}.get(state)
        if quote is None:
            m = self.triple.match(text)
            if not m.hasMatch():
                self.setCurrentBlockState(0)
                return spans
            start, quote = m.capturedStart(), m.captured()
            pos = start + 3
        else:
            pos = 0
        while True:
            end = text.find(quote, pos)
            if end < 0:
                self.setFormat(start, len(text) - start, self.STYLES["string"])
                spans.append((start, len(text)))
                self.setCurrentBlockState(1 if quote == "'''" else 2)
                return spans
            self.setFormat(start, end + 3 - start, self.STYLES["string"])
            spans.append((start, end + 3))
            m = self.triple.match(text, end + 3)
            if not m.hasMatch():
                self.setCurrentBlockState(0)
                return spans
            start, quote = m.capturedStart(), m.captured()
            pos = start + 3


def trained_weights(window: CodeViewWindow) -> dict[str, np.ndarray] | None:
    """The latest weights of the run shown in the training panels, if there is one."""
    run = window.training.current if window.training is not None else None
    weights = run.weights if run is not None else None
    return dict(weights) if weights else None


def weights_for_graph(graph, weights: dict[str, np.ndarray]) -> tuple[dict | None, str]:
    """(arrays to save, note): the run's weights completed with the graph's buffers, or None
    with the reason when they do not fit the graph (it changed since training)."""
    from engine.model import build_model

    try:
        model = build_model(graph, seed=int((graph.training or {}).get("seed", 0) or 0))
    except (BlockPropError, TypeError, ValueError) as e:
        return None, f"the graph cannot be built ({e})"
    want = model.params
    bad = [k for k, v in want.items() if k not in weights or weights[k].shape != v.shape]
    if bad or any(k not in want for k in weights if k not in model.buffers):
        return None, "the graph changed since training: its parameters no longer fit the run"
    model.set_state(weights)
    missing = [k for k in model.buffers if k not in weights]
    note = ""
    if missing:
        note = "the run kept no BatchNorm running statistics; they start at mean 0, variance 1"
    return model.state(), note


class CodeView(QDialog):
    """See the module docstring. ``code`` is the text shown (empty when export failed)."""

    def __init__(
        self, window: CodeViewWindow, target: str = "numpy", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent if parent is not None else window)
        self.window = window
        self.setWindowTitle("Export to Python")
        self.resize(860, 720)
        self.code = ""
        self.error: str | None = None
        self._graph = None
        self._weights_cache: tuple | None = None

        self.target_box = QComboBox()
        for key, label in TARGETS:
            self.target_box.addItem(label, key)
        self.weights_box = QCheckBox("with trained weights")
        self.weights_box.setToolTip(
            "Save writes the weights (.npz) beside the script, which loads them in build_model()"
        )
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSize(max(mono.pointSize(), 10))
        self.text.setFont(mono)
        self.highlighter = PythonHighlighter(self.text.document())
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.copy_button = QPushButton("Copy")
        self.save_button = QPushButton("Save...")
        close = QPushButton("Close")

        top = QHBoxLayout()
        top.addWidget(QLabel("Target:"))
        top.addWidget(self.target_box)
        top.addWidget(self.weights_box)
        top.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        for b in (self.copy_button, self.save_button, close):
            bottom.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        layout.addLayout(bottom)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.regenerate)
        self.target_box.currentIndexChanged.connect(lambda _i: self.regenerate())
        self.weights_box.toggled.connect(lambda _on: self.regenerate())
        self.copy_button.clicked.connect(self.copy)
        self.save_button.clicked.connect(lambda: self.save())
        close.clicked.connect(self.close)
        self.set_target(target)
        self._follow()
        self.regenerate()

    # --- state ---------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return self.target_box.currentData()

    def set_target(self, target: str) -> None:
        i = self.target_box.findData(target)
        if i >= 0 and i != self.target_box.currentIndex():
            self.target_box.setCurrentIndex(i)

    def _follow(self) -> None:
        """Subscribe to the window's current graph (it may be replaced by another object)."""
        graph = self.window.graph
        if graph is self._graph:
            return
        if self._graph is not None:
            self._graph.unsubscribe(self._on_graph_event)
        self._graph = graph
        graph.subscribe(self._on_graph_event)

    def _on_graph_event(self, event: GraphEvent) -> None:
        if not isinstance(event, IGNORED_EVENTS):
            self.timer.start()

    def _weights(self) -> tuple[dict | None, str]:
        """(arrays, note) of the trained weights to export, or (None, why not). Checking them
        builds the graph's model, so the answer is kept until the weights or the graph change."""
        weights = trained_weights(self.window)
        if weights is None:
            return None, "no trained run in this window"
        d = self.window.graph.to_dict()
        key = (
            sorted((k, v.shape) for k, v in weights.items()),
            json.dumps([d["nodes"], d["edges"], d["training"]], sort_keys=True, default=str),
        )
        if (
            self._weights_cache is None
            or self._weights_cache[0] != key
            or self._weights_cache[1] is not None
            and any(not np.array_equal(weights[k], self._weights_cache[1][k]) for k in weights)
        ):
            arrays, note = weights_for_graph(self.window.graph, weights)
            self._weights_cache = (key, arrays, note)
        return self._weights_cache[1], self._weights_cache[2]

    def weights_name(self, script_path: str | None = None) -> str:
        stem = Path(script_path).stem if script_path else "model"
        return f"{stem}_weights.npz"

    # --- generating ----------------------------------------------------------------------------
    def regenerate(self, script_path: str | None = None) -> str:
        """Export the current graph again; returns the code ('' when export failed)."""
        self.timer.stop()
        self._follow()
        arrays, note = self._weights()
        self.weights_box.setEnabled(arrays is not None)
        self.weights_box.setToolTip(
            note if arrays is None else "Save writes the weights (.npz) beside the script"
        )
        use = arrays is not None and self.weights_box.isChecked()
        try:
            code = export_code(
                self.window.graph,
                self.target,
                weights=self.weights_name(script_path) if use else None,
                check_weights=False,
            )  # Save writes them with the script
        except BlockPropError as e:
            self.code, self.error = "", str(e)
            self.text.setPlainText(f"# Cannot export this graph yet:\n# {self.error}")
            self.status.setText(f"<span style='color:#b00020'>{_escape(self.error)}</span>")
            self.copy_button.setEnabled(False)
            self.save_button.setEnabled(False)
            return ""
        self.error = None
        if code != self.code:
            bar = self.text.verticalScrollBar().value()
            self.text.setPlainText(code)
            self.text.verticalScrollBar().setValue(bar)
        self.code = code
        lines = code.count("\n") + 1
        msg = f"{lines} lines of {'engine' if self.target == 'numpy' else 'PyTorch'} code"
        if use:
            msg += f"; Save also writes {self.weights_name(script_path)} beside the script"
            if note:
                msg += f" ({note})"
        self.status.setText(_escape(msg))
        self.copy_button.setEnabled(True)
        self.save_button.setEnabled(True)
        return code

    def copy(self) -> None:
        if self.code:
            QApplication.clipboard().setText(self.code)
            self.status.setText("Copied to the clipboard.")

    def save(self, path: str | None = None) -> bool:
        """Write the script (and, with trained weights, the .npz beside it). ``path`` None asks."""
        if path is None:
            suggested = "model.py" if self.target == "numpy" else "model_torch.py"
            path, _ = QFileDialog.getSaveFileName(
                self, "Save the Python code", suggested, "Python files (*.py)"
            )
            if not path:
                return False
        from engine.weights import write_atomic

        arrays, _ = self._weights()
        use = arrays is not None and self.weights_box.isChecked()
        code = self.regenerate(script_path=path)
        if not code:
            return False
        try:
            if use:
                wpath = os.path.join(
                    os.path.dirname(os.path.abspath(path)), self.weights_name(path)
                )
                write_atomic(wpath, lambda f: np.savez(f, **arrays))
            write_atomic(path, lambda f: f.write(code.encode("utf-8")))
        except OSError as e:
            self.status.setText(_escape(f"Cannot write {path}: {e.strerror or e}"))
            return False
        self.status.setText(_escape(f"Saved {path}" + (" and its weights." if use else ".")))
        return True

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.timer.stop()
        if self._graph is not None:
            self._graph.unsubscribe(self._on_graph_event)
            self._graph = None
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._follow()
        self.regenerate()
        super().showEvent(event)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def show_code_view(window: CodeViewWindow, target: str | None = None) -> CodeView:
    """Open (or raise) the window's code view, switched to ``target`` if given."""
    view = window.code_view
    if view is None:
        view = CodeView(window, target or "numpy")
        window.code_view = view
    elif target is not None:
        view.set_target(target)
    view.show()
    view.raise_()
    view.activateWindow()
    return view


def install(window: CodeViewWindow) -> dict[str, QAction]:
    """Add "Export code" to the toolbar and File > Export > Engine code / PyTorch script.
    Calling it again on the same window changes nothing and returns the same actions."""
    if window.code_view_actions:
        return window.code_view_actions
    actions = {
        "toolbar": QAction("Export code", window),
        "numpy": QAction("Python (&engine code)...", window),
        "pytorch": QAction("&PyTorch script...", window),
    }
    actions["toolbar"].setToolTip("Show the graph as Python code (engine or PyTorch)")
    actions["toolbar"].triggered.connect(lambda _c=False: show_code_view(window))
    for key in ("numpy", "pytorch"):
        actions[key].triggered.connect(lambda _c=False, k=key: show_code_view(window, k))
    window.toolbar.addAction(actions["toolbar"])
    file_menu = window.menu("File")
    submenu = QMenu("&Export", file_menu)
    submenu.addAction(actions["numpy"])
    submenu.addAction(actions["pytorch"])
    # before the last group of the File menu (window and quit actions), else at the end
    seps = [a for a in file_menu.actions() if a.isSeparator()]
    if seps:
        file_menu.insertMenu(seps[-1], submenu)
        file_menu.insertSeparator(submenu.menuAction())
    else:
        file_menu.addMenu(submenu)
    actions["menu"] = submenu.menuAction()
    window.code_view_actions = actions
    return actions
