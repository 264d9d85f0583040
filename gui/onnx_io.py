"""File > Import ONNX… and File > Export > ONNX model…

Import reads the model in a background thread (an ONNX file can be large), then puts the graph
on the canvas as a new, untitled graph (after the unsaved-changes prompt) and offers to save
its weights as a .npz next to it. A model that cannot be imported shows the one-line reason and
leaves the canvas as it was. Export writes the graph with the weights of the run shown in the
training panels when they fit, else the weights of the last import when they fit, else the
graph's initial weights, and says which.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from engine.atomic import write_atomic
from gui.window_api import OnnxWindow


class _Job(QObject):
    """Runs ``work`` in a thread; ``finished`` (result, error) arrives in the GUI thread."""

    finished = Signal(object, object)

    def __init__(
        self, window: OnnxWindow, work: Callable[[], Any], done: Callable[[Any, Any], None]
    ):
        super().__init__(window)
        self.finished.connect(done)
        self.finished.connect(lambda *_: self.deleteLater())
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work) -> None:
        try:
            result, error = work(), None
        except Exception as e:  # shown to the user as one line, never a traceback
            result, error = None, e
        self.finished.emit(result, error)


def _message(e: BaseException) -> str:
    from engine.errors import BlockPropError

    if isinstance(e, BlockPropError):
        return str(e)
    if isinstance(e, MemoryError):
        return "not enough memory for this model"
    return f"{type(e).__name__}: {e}"


# Dialogs (tests replace these).
def ask_onnx_to_open(window: OnnxWindow) -> str | None:
    path, _ = QFileDialog.getOpenFileName(
        window, "Import ONNX model", window.files.start_dir(), "ONNX models (*.onnx);;All (*)"
    )
    return path or None


def ask_save(window, title: str, suggested: str, filter_: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(window, title, suggested, filter_)
    return path or None


def import_model(window: OnnxWindow, path: str | None = None) -> _Job | None:
    """Ask for an ONNX file and import it (in the background); returns the job, or None."""
    if window.locked or not window.files.maybe_save():
        return None
    path = path or ask_onnx_to_open(window)
    if not path:
        return None
    from engine.export.onnx import import_onnx

    window.statusBar().showMessage(f"Importing {path}…")

    def done(result, error) -> None:
        if error is not None:
            window.statusBar().clearMessage()
            window.files.show_error("Cannot import ONNX model", _message(error))
            return
        graph, arrays = result
        window.tidy_layout(graph)
        window.files.take_new(graph)
        window.imported_weights = arrays
        window.canvas.fit_all()
        n = sum(
            int(v.size)
            for k, v in arrays.items()
            if not k.endswith(("running_mean", "running_var"))
        )
        note = f"Imported {Path(path).name}: {len(graph)} blocks, {n:,} parameters"
        suggested = str(Path(path).with_suffix(".npz"))
        target = ask_save(window, "Save the model's weights as", suggested, "Weights (*.npz)")
        if target:
            import numpy as np

            try:
                write_atomic(target, lambda f: np.savez(f, **arrays))
                note += f"; weights saved to {Path(target).name}"
            except OSError as e:
                window.files.show_error("Cannot save the weights", f"{target}: {e.strerror or e}")
        window.statusBar().showMessage(note, 10000)

    return _Job(window, lambda: import_onnx(path), done)


def _weights(window: OnnxWindow) -> tuple[dict | None, str]:
    """(arrays or None, which weights) for an export of the window's graph."""
    from gui.code_view import trained_weights, weights_for_graph

    for source, arrays in (
        ("trained", trained_weights(window)),
        ("imported", window.imported_weights),
    ):
        if arrays:
            fitted, _ = weights_for_graph(window.graph, arrays)
            if fitted is not None:
                return fitted, source
    return None, "initial"


def export_model(window: OnnxWindow, path: str | None = None) -> _Job | None:
    """Ask where, then write the graph as an ONNX model (in the background)."""
    name = window.graph.name or "model"
    path = path or ask_save(
        window,
        "Export ONNX model",
        str(Path(window.files._start_dir()) / f"{name}.onnx"),
        "ONNX models (*.onnx)",
    )
    if not path:
        return None
    from engine.export.onnx import export_onnx

    graph = window.graph.copy()
    arrays, source = _weights(window)

    def work() -> int:
        data = export_onnx(graph, arrays=arrays)
        write_atomic(path, lambda f: f.write(data))
        return len(data)

    def done(size, error) -> None:
        if error is not None:
            window.files.show_error("Cannot export to ONNX", _message(error))
            return
        window.statusBar().showMessage(
            f"Exported {Path(path).name} ({size:,} bytes, {source} weights)", 10000
        )

    return _Job(window, work, done)


def install(window: OnnxWindow) -> dict[str, QAction]:
    """File > Import ONNX… (after Open Preset) and File > Export > ONNX model… (the Export
    submenu gui.code_view.install made, else a new one). Calling it again changes nothing."""
    if window.onnx_actions:
        return window.onnx_actions
    actions = {
        "import": QAction("Import &ONNX…", window),
        "export": QAction("&ONNX model…", window),
    }
    actions["import"].setToolTip("Bring an ONNX model (e.g. from PyTorch) onto the canvas")
    actions["import"].triggered.connect(lambda _c=False: import_model(window))
    actions["export"].triggered.connect(lambda _c=False: export_model(window))
    file_menu = window.menu("File")
    recent = next((a for a in file_menu.actions() if a.menu() is not None), None)
    if recent is not None:  # Open Recent: Import goes with the other ways to open
        file_menu.insertAction(recent, actions["import"])
    else:
        file_menu.addAction(actions["import"])
    export = window.code_view_actions.get("menu")
    if export is not None:
        export.menu().addAction(actions["export"])
    else:
        submenu = QMenu("&Export", file_menu)
        submenu.addAction(actions["export"])
        file_menu.addMenu(submenu)
    window.onnx_actions = actions
    return actions
