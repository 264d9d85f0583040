"""The main window: the canvas in the centre, the palette, inspector, problems and summary in
dock widgets the user can rearrange (the layout is remembered), menus, toolbar, status bar.

It wires the parts together; the parts do the work: ``LiveAnalysis`` (validation),
``Controller`` (intents -> undo commands), ``GraphScene``/``CanvasView`` (the canvas),
``FileManager`` (files, autosave, recovery), ``Actions`` (menus and editing gestures).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QToolBar,
    QWidget,
)

from engine.analysis import count
from engine.graph import Graph
from gui.actions import Actions
from gui.canvas.scene import GraphScene
from gui.canvas.style import BLOCK_H, BLOCK_W, LAYOUT_DX, LAYOUT_DY
from gui.canvas.view import CanvasView
from gui.code_view import CodeView
from gui.code_view import install as install_code_view
from gui.edit_controller import Controller
from gui.files import FileManager
from gui.help import install_help
from gui.icons import padlock
from gui.inspector import Inspector
from gui.layout import tidy_if_cramped
from gui.live_analysis import LiveAnalysis
from gui.modules_ui import install as install_modules
from gui.onnx_io import install as install_onnx_io
from gui.palette import Palette
from gui.preset_dialog import PRESETS_DIR, PresetDialog
from gui.problems import ProblemsPanel
from gui.settings import app_settings
from gui.summary import SummaryPanel
from gui.training import attach as attach_training
from gui.training.training_controller import TrainingController

MENU_NAMES = ("File", "Edit", "View", "Train", "Help")

SHORTCUTS = """<table cellpadding=3>
<tr><td><b>Add a block</b></td><td>drag it from the palette, or double-click it there
(it goes after the selected block, wired to it)</td></tr>
<tr><td><b>Wire</b></td><td>drag from an output port (right) to an input port (left);
it snaps to the nearest port that fits and says why one does not</td></tr>
<tr><td><b>Select</b></td><td>click, Shift+click, drag a rubber band, Ctrl+A</td></tr>
<tr><td><b>Move</b></td><td>drag blocks (snaps to a 10-unit grid)</td></tr>
<tr><td><b>Delete</b></td><td>Del or Backspace (blocks or selected wires)</td></tr>
<tr><td><b>Copy, cut, paste</b></td><td>Ctrl+C, Ctrl+X, Ctrl+V (also between windows);
Ctrl+D duplicates</td></tr>
<tr><td><b>Zoom</b></td><td>mouse wheel, Ctrl++ and Ctrl+-, fit with Ctrl+0 or F</td></tr>
<tr><td><b>Pan</b></td><td>middle-drag, or hold Space and drag</td></tr>
<tr><td><b>Auto-layout</b></td><td>Ctrl+L</td></tr>
<tr><td><b>Rename</b></td><td>F2 (edits the id in the inspector)</td></tr>
<tr><td><b>Undo, redo</b></td><td>Ctrl+Z, Ctrl+Shift+Z or Ctrl+Y</td></tr>
<tr><td><b>Help</b></td><td>F1: the page of the block selected (palette or canvas) or of
the panel in use (formula, shapes, reference code); or a panel's "?" button</td></tr>
</table>"""


class MainWindow(QMainWindow):
    """See the module docstring. A ``gui.window_api.AppWindow``: training and the code view
    attach to it through that protocol."""

    selectionChanged = Signal(list)
    fileChanged = Signal()  # the graph's file name or modified state changed

    def __init__(
        self,
        parent: QWidget | None = None,
        restore_layout: bool = True,
        windows: list[MainWindow] | None = None,
    ) -> None:
        """``windows``: the list of the app's open windows this one joins (File > New Window
        passes its own; it keeps them alive and Quit closes them all); a new list if None."""
        super().__init__(parent)
        self.resize(1400, 860)
        self.locked = False
        self.graph = Graph()
        self.undo_stack = QUndoStack(self)
        self.live = LiveAnalysis(self.graph, self)
        self.controller = Controller(self.graph, self.undo_stack, self.live)
        self.controller.setParent(self)
        self.scene = GraphScene(self.graph, self)
        self.controller.scene = self.scene
        self.canvas = CanvasView(self.scene, self.controller, self)
        self.setCentralWidget(self.canvas)
        self.setDockNestingEnabled(True)
        self._menus: dict[str, QMenu] = {n: self.menuBar().addMenu(f"&{n}") for n in MENU_NAMES}
        self.toolbar = QToolBar("Main toolbar", self)
        self.toolbar.setObjectName("main_toolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(self.toolbar)
        self.files = FileManager(self)
        self.palette_panel = Palette()
        self.inspector = Inspector(self.graph, self.controller, self.live)
        self.problems = ProblemsPanel()
        self.summary = SummaryPanel()
        self.actions = Actions(self)
        self._docks: dict[str, QDockWidget] = {}
        self._shown = False
        self._pending_tabs: list[tuple[QDockWidget, QDockWidget]] = []
        self._default_state = QByteArray()
        self._add_dock(
            "palette", "Blocks", self.palette_panel, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self._add_dock(
            "inspector", "Inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._add_dock(
            "problems", "Problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self._add_dock("summary", "Summary", self.summary, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(
            self._docks["problems"], self._docks["summary"], Qt.Orientation.Horizontal
        )
        self._had_problems: bool | None = None  # the Problems list shown follows changes of it
        self._status()
        self._connect()
        self._on_analysis(self.live.analysis)
        self.update_title()
        self.training: TrainingController | None = None
        attach_training(self)
        self.training.set_problems(self.live.analysis.problems)
        self.code_view: CodeView | None = None
        self.code_view_actions: dict = {}
        install_code_view(self)  # File > Export (export code)
        self.onnx_actions: dict = {}
        self.imported_weights: dict | None = None  # the last ONNX import's, for File > Export
        install_onnx_io(self)  # File > Import ONNX, File > Export > ONNX model
        install_help(self)  # F1 and the docks' "?" (gui.help)
        install_modules(self)  # Edit > Group into Module..., the palette's Modules
        self._restore_layout = restore_layout
        if restore_layout:
            geo = app_settings().value("window/geometry")
            if isinstance(geo, QByteArray) and not geo.isEmpty():
                self.restoreGeometry(geo)
        self.windows = windows if windows is not None else []
        self.windows.append(self)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._shown:
            return
        self._shown = True
        for first, dock in self._pending_tabs:
            self.tabifyDockWidget(first, dock)
            dock.show()
        for first, _dock in self._pending_tabs:
            first.raise_()
        self._pending_tabs.clear()
        self._arrange_docks()
        self._docks["problems"].setVisible(bool(self._had_problems))
        self._default_state = self.saveState()
        if self._restore_layout:
            state = app_settings().value("window/state")
            if isinstance(state, QByteArray) and not state.isEmpty():
                default_need = self.minimumSizeHint()
                self.restoreState(state)
                if not self._fits_screen(default_need):  # e.g. saved on a larger screen
                    self.restoreState(self._default_state)

    # --- what attached parts use (gui.window_api.AppWindow) -------------------------------------
    @property
    def analysis(self):
        """The latest engine Analysis (fresh: pending changes are analysed first)."""
        return self.live.flush()

    def set_batch_size(self, batch_size: int | None) -> None:
        self.live.set_batch_size(batch_size)  # the Problems list follows on the next turn

    def set_training(self, spec: dict | None, dataset: dict | None = None) -> None:
        self.live.set_training(spec, dataset)

    @property
    def path(self) -> str | None:
        return self.files.path

    def selected_blocks(self) -> list[str]:
        return self.scene.selected_ids()

    def menu(self, name: str) -> QMenu:
        if name not in self._menus:
            self._menus[name] = self.menuBar().addMenu(f"&{name}")
        return self._menus[name]

    def add_panel_dock(
        self, dock: QDockWidget, area=Qt.DockWidgetArea.BottomDockWidgetArea
    ) -> None:
        """Add a panel; it joins the View > Panels menu and the remembered layout. A bottom
        panel is tabbed with the summary so the canvas keeps its room."""
        if not dock.objectName():
            dock.setObjectName(f"dock_{dock.windowTitle().lower().replace(' ', '_')}")
        # Tab it with the panel already there, so the canvas keeps its room; the first tab
        # (the summary, the inspector) stays in front. Before the window is first shown the
        # tabbing waits for showEvent (Qt 6.11 leaves a stray tab bar otherwise).
        first = {
            Qt.DockWidgetArea.BottomDockWidgetArea: "summary",
            Qt.DockWidgetArea.RightDockWidgetArea: "inspector",
            Qt.DockWidgetArea.LeftDockWidgetArea: "palette",
        }.get(area)
        self.addDockWidget(area, dock)
        if first in self._docks:
            if self._shown:
                self.tabifyDockWidget(self._docks[first], dock)
                self._docks[first].raise_()
            else:
                dock.hide()  # takes no room until it is tabbed in showEvent
                self._pending_tabs.append((self._docks[first], dock))
        self.actions.panels_menu.addAction(dock.toggleViewAction())

    def edit_meta(self, key: str, value) -> None:
        """Set the graph's name, description or training settings as one undoable edit."""
        self.controller.set_meta(key, value)

    def edit_settings(self, configs: dict[str, dict], training: dict | None, text: str) -> str:
        """Blocks' settings and the training settings as one undo step (see window_api)."""
        reason = ""
        self.undo_stack.beginMacro(text)
        try:
            for node_id, cfg in configs.items():
                for key, value in cfg.items():
                    reason = reason or self.controller.set_option(node_id, key, value) or ""
                    if reason:
                        reason = f"{node_id}: {reason}"
            if training is not None and not reason:
                self.controller.set_meta("training", training)
        finally:
            self.undo_stack.endMacro()
        if reason:  # nothing half-done: the part already applied is taken back
            self.undo_stack.undo()
        return reason

    def set_locked(self, locked: bool) -> None:
        """No edits while training; selection, inspection and zoom still work."""
        self.locked = bool(locked)
        self.controller.locked = self.locked
        self.canvas.set_locked(self.locked)
        self.inspector.set_locked(self.locked)
        self.problems.set_locked(self.locked)
        self.palette_panel.setEnabled(not self.locked)
        self.actions.set_locked(self.locked)
        self.lock_label.setVisible(self.locked)
        self.statusBar().showMessage(
            "Training: editing is locked." if self.locked else "Editing unlocked.", 5000
        )

    # --- building ------------------------------------------------------------------------------
    def _add_dock(self, key: str, title: str, widget: QWidget, area) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{key}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self._docks[key] = dock
        self.actions.panels_menu.addAction(dock.toggleViewAction())

    def _arrange_docks(self) -> None:
        """The first layout: the canvas gets most of the window; the panels below it a third of
        the height (36%, at least 190 px: room for a plot); the palette and the inspector what
        their contents need."""
        d = self._docks
        w, h = self.width(), self.height()
        side = [200, min(340, max(300, w // 5))]  # the palette: its longest names
        self.resizeDocks([d["palette"], d["inspector"]], side, Qt.Orientation.Horizontal)
        self.resizeDocks([d["summary"]], [max(190, h * 36 // 100)], Qt.Orientation.Vertical)
        self.resizeDocks([d["problems"], d["summary"]], [w * 3 // 10, w], Qt.Orientation.Horizontal)

    def _status(self) -> None:
        bar = self.statusBar()
        self.lock_label = QWidget()  # a padlock drawn by gui.icons (an emoji may be a box)
        self.lock_label.setObjectName("lock_label")
        self.lock_label.setStyleSheet(
            "#lock_label { background:#ffca28; border-radius:3px; }"
            "QLabel { color:#3e2723; font-weight:bold; }"
        )
        row = QHBoxLayout(self.lock_label)
        row.setContentsMargins(5, 1, 6, 1)
        row.setSpacing(4)
        self.lock_icon = QLabel()
        self.lock_icon.setPixmap(padlock(14, ratio=self.devicePixelRatioF()))
        row.addWidget(self.lock_icon)
        row.addWidget(QLabel("Training: editing locked"))
        self.lock_label.hide()
        self.counts_label = QLabel()
        self.counts_label.setToolTip("Click the problems to list them")
        self.counts_label.linkActivated.connect(lambda _link: self.show_problems())
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(48)
        for w in (self.lock_label, self.counts_label, self.zoom_label):
            bar.addPermanentWidget(w)
        bar.showMessage(
            "Drag blocks from the palette onto the canvas; wire output ports (right) "
            "to input ports (left).",
            10000,
        )

    def _connect(self) -> None:
        self.live.changed.connect(self._on_analysis)
        self.scene.selectionChanged.connect(self._on_selection)
        self.controller.message.connect(self._message)
        self.controller.selectRequested.connect(self.scene.select_ids)
        self.palette_panel.addRequested.connect(self.actions.add_block)
        self.problems.blockClicked.connect(self.select_and_centre)
        self.problems.fixRequested.connect(self.controller.apply_fix)
        self.summary.blockClicked.connect(self.select_and_centre)
        self.canvas.fileDropped.connect(self.files.open)
        self.canvas.contextMenuWanted.connect(self.actions.context_menu)
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.files.changed.connect(self.update_title)
        self.files.changed.connect(self.fileChanged)
        self.undo_stack.indexChanged.connect(self._after_change)

    # --- following the model -------------------------------------------------------------------
    def _on_analysis(self, a) -> None:
        self.scene.apply_analysis(a)
        self.canvas.set_empty(len(self.graph) == 0)
        self.problems.set_problems(a.problems)
        self.summary.set_analysis(a)
        if getattr(self, "training", None) is not None:
            self.training.set_problems(a.problems)
        n = len(a.problems)
        self.counts_label.setText(
            f"{count(len(self.graph), 'block')} · {a.total_params:,} params · "
            + ("✓ no problems" if not n else f"<a href='problems'>⚠ {count(n, 'problem')}</a>")
        )
        self._follow_problems(bool(n))

    def _follow_problems(self, any_problems: bool) -> None:
        """An empty Problems list gives its room to the canvas and the panels (the status bar
        says "no problems"); it comes back when problems do. Only a change of that state shows
        or hides it: the user's View > Panels choice holds meanwhile."""
        if any_problems == self._had_problems:
            return
        self._had_problems = any_problems
        if self._shown:
            self._docks["problems"].setVisible(any_problems)

    def show_problems(self) -> None:
        dock = self._docks["problems"]
        dock.show()
        dock.raise_()

    def _on_selection(self) -> None:
        ids = self.scene.selected_ids()
        self.inspector.show_selection(ids)
        self.selectionChanged.emit(ids)

    def _message(self, text: str, is_error: bool) -> None:
        self.statusBar().showMessage(("⚠ " if is_error else "") + text, 10000 if is_error else 5000)

    def _after_change(self, _index: int = 0) -> None:
        if not shiboken6.isValid(self.undo_stack):
            return  # the window is being destroyed
        self.update_title()
        self.scene.update_scene_rect()

    def select_and_centre(self, node_id: str) -> None:
        if node_id in self.scene.blocks:
            self.scene.select_ids([node_id])
            self.canvas.centre_on(node_id)

    def update_title(self) -> None:
        self.setWindowTitle(
            f"{self.files.display_name()}{'*' if self.files.modified() else ''} — BlockProp"
        )

    def tidy_layout(self, g: Graph) -> bool:
        """Re-lay-out a graph about to be shown (a preset, a screenshot) whose blocks are too
        close together for this canvas's block size."""
        vp = self.canvas.viewport()
        aspect = vp.width() / max(vp.height(), 1)
        return tidy_if_cramped(g, LAYOUT_DX, LAYOUT_DY, BLOCK_W, BLOCK_H, aspect)

    def focus_rename(self) -> None:
        if len(self.scene.selected_ids()) == 1 and not self.locked:
            self._docks["inspector"].show()
            self._docks["inspector"].raise_()
            self.inspector.id_edit.setFocus()
            self.inspector.id_edit.selectAll()

    # --- dialogs -------------------------------------------------------------------------------
    def choose_preset(self) -> str | None:
        """The preset file the user picks (replaced in tests)."""
        dlg = PresetDialog(PRESETS_DIR, self)
        return dlg.selected_path() if dlg.exec() else None

    def open_preset(self) -> bool:
        if self.locked or not self.files.maybe_save():
            return False
        path = self.choose_preset()
        return bool(path) and self.files.load(path, as_preset=True)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About BlockProp",
            "<h3>BlockProp</h3><p>Build convolutional and recurrent networks from "
            "blocks, see every shape and parameter count as you wire them, train "
            "them with a NumPy engine written by hand, and look inside while they "
            "learn.</p>",
        )

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard and mouse", SHORTCUTS)

    # --- windows, settings, closing ------------------------------------------------------------
    def spawn(self) -> MainWindow:
        w = MainWindow(windows=self.windows)
        w.resize(self.size())
        w.move(self.pos().x() + 40, self.pos().y() + 40)
        w.show()
        return w

    def quit_all(self) -> None:
        for w in list(self.windows):
            if not w.close():
                return
        QApplication.quit()

    def reset_panels(self) -> None:
        self.restoreState(self._default_state)
        self._docks["problems"].setVisible(bool(self._had_problems))
        for dock in self.findChildren(QDockWidget):
            if dock.objectName() not in {d.objectName() for d in self._docks.values()}:
                dock.show()

    def _fits_screen(self, default_need) -> bool:
        """Does the window, with its docks as they are, fit on its screen (or need no more
        room than the default layout, ``default_need``, which is all a small screen gets)?"""
        screen = self.screen()
        if screen is None:
            return True
        room = screen.availableGeometry()
        need = self.minimumSizeHint()
        return need.width() <= max(room.width(), default_need.width()) and need.height() <= max(
            room.height(), default_need.height()
        )

    def save_settings(self) -> None:
        if not self._restore_layout:  # a window that does not restore a layout keeps none
            return
        s = app_settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())

    def closeEvent(self, event) -> None:
        if not self.files.maybe_save():
            event.ignore()
            return
        self.save_settings()
        self.undo_stack.blockSignals(True)  # it is cleared when destroyed: nobody listens
        self.files.close()
        self.live.detach()
        self.scene.detach()
        self.inspector.detach()
        if self in self.windows:
            self.windows.remove(self)
        event.accept()
