"""What the parts attached to a window need from it, written down as ``typing.Protocol`` classes.

``gui.training.attach(window)`` needs a ``TrainingWindow``; ``gui.code_view.install(window)``
needs a ``CodeViewWindow``. ``MainWindow`` is both (``AppWindow``); the tests attach the same
parts to small windows of their own (``tests/training_support.py``'s ``FakeWindow``) that
implement the same protocols (tests/test_window_api.py checks all of them). The parts use these
members directly: no ``hasattr``/``getattr`` probing, no fallbacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PySide6.QtCore import QObject, Qt, SignalInstance
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QMenu, QStatusBar, QToolBar

    from engine.analysis import Analysis
    from engine.graph import Graph
    from gui.code_view import CodeView
    from gui.files import FileManager
    from gui.training.training_controller import TrainingController


class BadgeCanvas(Protocol):
    """The canvas as training sees it: a badge per block (its gradient RMS while training)."""

    def set_block_badges(self, badges: dict[str, float]) -> None: ...

    def clear_block_badges(self) -> None: ...


@runtime_checkable
class CodeViewWindow(Protocol):
    """What the code view (File > Export > Python) needs."""

    graph: Graph
    toolbar: QToolBar
    training: TrainingController | None  # its current run's weights can be saved with the code
    code_view: CodeView | None  # the window's code view, made when first shown
    code_view_actions: dict[str, QAction]  # filled by gui.code_view.install, empty before

    def menu(self, name: str) -> QMenu:
        """The menu-bar menu ``name`` ("File", "Train", ...), made if it is not there yet."""
        ...


@runtime_checkable
class TrainingWindow(Protocol):
    """What the Training dock, its panels and its controller need."""

    graph: Graph
    canvas: BadgeCanvas
    toolbar: QToolBar
    training: TrainingController | None  # set by gui.training.attach
    selectionChanged: SignalInstance  # (list[str]) the selected block ids
    fileChanged: SignalInstance  # () the graph's file may have changed: the runs file follows

    @property
    def path(self) -> str | None:
        """The graph's file, None until it is saved."""
        ...

    @property
    def analysis(self) -> Analysis:
        """An up-to-date ``engine.analyze`` of ``graph``."""
        ...

    def set_batch_size(self, batch_size: int | None) -> None:
        """Check memory at ``batch_size`` (the Training dock's; None: the graph's) in
        ``analysis`` and the Problems list from now on."""
        ...

    def set_training(self, spec: dict | None, dataset: dict | None = None) -> None:
        """Check the graph against these training settings (the dock's; ``dataset``: their
        data set with its file paths resolved) in ``analysis`` and the Problems list."""
        ...

    def set_locked(self, locked: bool) -> None:
        """Lock editing while a run trains (selection and inspection still work)."""
        ...

    def add_panel_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea) -> None: ...

    def menu(self, name: str) -> QMenu: ...

    def edit_meta(self, key: str, value: Any) -> None:
        """Set the graph's ``name``, ``description`` or ``training`` as one undoable edit."""
        ...

    def edit_settings(self, configs: dict[str, dict], training: dict | None, text: str) -> str:
        """Set some blocks' settings ({block: {key: value}}) and the training settings as one
        undoable edit named ``text``; the reason it was refused ("" when done)."""
        ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (QMainWindow's)

    def installEventFilter(self, filter_obj: QObject) -> None: ...  # noqa: N802 (QObject's)


@runtime_checkable
class OnnxWindow(CodeViewWindow, Protocol):
    """What File > Import ONNX… and File > Export > ONNX model… need (gui.onnx_io)."""

    files: FileManager  # the unsaved-changes prompt, taking a new graph, error boxes
    canvas: Any  # fit_all() after an import
    locked: bool  # no import while a run trains
    onnx_actions: dict[str, QAction]  # filled by gui.onnx_io.install, empty before
    imported_weights: dict | None  # the last import's weights (File > Export uses them)

    def tidy_layout(self, g: Graph) -> bool: ...

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (QMainWindow's)


@runtime_checkable
class AppWindow(TrainingWindow, CodeViewWindow, Protocol):
    """The main window: everything the attached parts need."""
