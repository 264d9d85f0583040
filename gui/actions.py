"""The main window's menus, toolbar and the editing gestures behind them (copy, paste,
duplicate, delete, add from the palette, the canvas context menu)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle

from engine.analysis import count
from engine.errors import BlockPropError
from engine.layers import LAYER_TYPES
from gui.canvas.style import BLOCK_H, BLOCK_W, LAYOUT_DX
from gui.clipboard import copy_fragment, read_fragment
from gui.help import help_window
from gui.inspector import fix_text
from gui.settings import app_settings


def _act(window, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
    a = QAction(text, window)
    if shortcut is not None:
        keys = shortcut if isinstance(shortcut, list) else [shortcut]
        a.setShortcuts([QKeySequence(k) for k in keys])
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    if icon is not None:
        a.setIcon(window.style().standardIcon(icon))
    a.triggered.connect(lambda _checked=False: slot())
    return a


class Actions:
    """Builds the menus and toolbar of ``window`` and implements the editing gestures."""

    def __init__(self, window) -> None:
        self.w = window
        w = window
        SP = QStyle.StandardPixmap
        K = QKeySequence.StandardKey
        f = w.files
        self.new = _act(w, "&New", f.new, K.New, "Start a new, empty graph", SP.SP_FileIcon)
        self.open = _act(w, "&Open…", f.open, K.Open, "Open a graph file", SP.SP_DialogOpenButton)
        self.open_preset = _act(
            w,
            "Open &Preset…",
            w.open_preset,
            "Ctrl+Shift+O",
            "Open one of the classic architectures",
        )
        self.save = _act(w, "&Save", f.save, K.Save, "Save the graph", SP.SP_DialogSaveButton)
        self.save_as = _act(w, "Save &As…", f.save_as, K.SaveAs, "Save under a new name")
        self.new_window = _act(
            w,
            "New &Window",
            w.spawn,
            "Ctrl+Shift+N",
            "Open another window (copy and paste work between them)",
        )
        self.close = _act(w, "&Close Window", w.close, K.Close)
        self.undo = _act(w, "&Undo", self._undo, K.Undo, "", SP.SP_ArrowBack)
        self.redo = _act(
            w, "&Redo", self._redo, [QKeySequence(K.Redo), "Ctrl+Y"], "", SP.SP_ArrowForward
        )
        # The toolbar shows these words (the menu and tooltip name the edit): buttons whose
        # text followed the edit would move the whole toolbar at every change.
        self.undo.setIconText("Undo")
        self.redo.setIconText("Redo")
        self.cut = _act(w, "Cu&t", self.cut_selection, K.Cut)
        self.copy = _act(w, "&Copy", self.copy_selection, K.Copy)
        self.paste = _act(w, "&Paste", self.paste_clipboard, K.Paste)
        self.duplicate = _act(w, "&Duplicate", self.duplicate_selection, "Ctrl+D")
        self.delete = _act(
            w, "De&lete", self.delete_selection, [QKeySequence(K.Delete), "Backspace"]
        )
        self.select_all = _act(w, "Select &All", self.select_all_blocks, K.SelectAll)
        self.rename = _act(w, "Re&name Block", w.focus_rename, "F2")
        self.layout = _act(
            w,
            "Auto-&layout",
            self.auto_layout,
            "Ctrl+L",
            "Arrange the blocks left to right by depth",
        )
        self.zoom_in = _act(
            w, "Zoom &In", w.canvas.zoom_in, [QKeySequence(K.ZoomIn), "Ctrl+="], "Zoom in"
        )
        self.zoom_out = _act(w, "Zoom &Out", w.canvas.zoom_out, K.ZoomOut, "Zoom out")
        self.fit = _act(
            w,
            "&Fit to Window",
            w.canvas.fit_all,
            "Ctrl+0",
            "Show the whole network (F on the canvas)",
        )
        self.minimap = _act(
            w,
            "&Minimap",
            self._toggle_minimap,
            None,
            "The whole graph in small when it does not fit the canvas; click it to go there",
        )
        self.minimap.setCheckable(True)
        self.minimap.setChecked(app_settings().value("canvas/minimap", True, type=bool))
        w.canvas.minimap.set_enabled(self.minimap.isChecked())
        fit_f = _act(w.canvas, "Fit", w.canvas.fit_all, "F")
        fit_f.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        w.canvas.addAction(fit_f)
        self.reset_layout = _act(w, "Reset Panel Layout", w.reset_panels)
        self.about = _act(w, "&About BlockProp", w.show_about)
        self.help_keys = _act(w, "&Keyboard and Mouse", w.show_shortcuts, "Shift+F1")
        self.quit = _act(w, "&Quit", w.quit_all, K.Quit)
        # These change the graph and are off while it trains (set_locked).
        self.editing = [
            self.new,
            self.open,
            self.open_preset,
            self.undo,
            self.redo,
            self.cut,
            self.paste,
            self.duplicate,
            self.delete,
            self.rename,
            self.layout,
        ]
        self._menus()
        self._toolbar()
        stack = w.undo_stack
        for sig in (
            stack.canUndoChanged,
            stack.canRedoChanged,
            stack.undoTextChanged,
            stack.redoTextChanged,
        ):
            sig.connect(lambda *_: self.refresh_undo())
        self.refresh_undo()

    def _menus(self) -> None:
        w = self.w
        m = w.menu("File")
        for a in (self.new, self.open, self.open_preset):
            m.addAction(a)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        for a in (self.save, self.save_as):
            m.addAction(a)
        m.addSeparator()
        for a in (self.new_window, self.close, self.quit):
            m.addAction(a)
        m = w.menu("Edit")
        for a in (
            self.undo,
            self.redo,
            None,
            self.cut,
            self.copy,
            self.paste,
            self.duplicate,
            self.delete,
            None,
            self.select_all,
            self.rename,
            None,
            self.layout,
        ):
            m.addSeparator() if a is None else m.addAction(a)
        m = w.menu("View")
        for a in (self.zoom_in, self.zoom_out, self.fit, self.minimap):
            m.addAction(a)
        m.addSeparator()
        self.panels_menu = m.addMenu("&Panels")
        m.addAction(self.reset_layout)
        w.menu("Train")
        m = w.menu("Help")
        m.addAction(self.help_keys)
        m.addAction(self.about)

    def _toolbar(self) -> None:
        tb = self.w.toolbar
        for a in (
            self.new,
            self.open,
            self.save,
            None,
            self.undo,
            self.redo,
            None,
            self.zoom_out,
            self.zoom_in,
            self.fit,
            self.layout,
        ):
            tb.addSeparator() if a is None else tb.addAction(a)

    def _toggle_minimap(self) -> None:
        on = self.minimap.isChecked()
        app_settings().setValue("canvas/minimap", on)
        self.w.canvas.minimap.set_enabled(on)

    def _fill_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        recent = self.w.files.recent_files()
        for p in recent:
            a = m.addAction(p)
            a.triggered.connect(lambda _c=False, path=p: self.w.files.open(path))
            a.setEnabled(not self.w.locked)
        if not recent:
            m.addAction("(none)").setEnabled(False)
        else:
            m.addSeparator()
            m.addAction("Clear Menu").triggered.connect(self.w.files.clear_recent)

    # --- undo ----------------------------------------------------------------------------------
    def refresh_undo(self) -> None:
        s, locked = self.w.undo_stack, self.w.locked
        if not (shiboken6.isValid(s) and shiboken6.isValid(self.undo)):
            return  # the window is being destroyed
        self.undo.setText(f"&Undo {s.undoText()}".rstrip())
        self.redo.setText(f"&Redo {s.redoText()}".rstrip())
        self.undo.setToolTip(self.undo.text().replace("&", ""))
        self.redo.setToolTip(self.redo.text().replace("&", ""))
        self.undo.setEnabled(s.canUndo() and not locked)
        self.redo.setEnabled(s.canRedo() and not locked)

    def _undo(self) -> None:
        if not self.w.locked and self.w.undo_stack.canUndo():
            text = self.w.undo_stack.undoText()
            self.w.undo_stack.undo()
            self._say_state(f"Undone: {text}")

    def _redo(self) -> None:
        if not self.w.locked and self.w.undo_stack.canRedo():
            text = self.w.undo_stack.redoText()
            self.w.undo_stack.redo()
            self._say_state(f"Redone: {text}")

    def _say_state(self, what: str) -> None:
        """The status bar after an undo or redo: what changed and where the graph now stands
        (not the message of the edit that was undone)."""
        problems = self.w.analysis.problems
        state = (
            "no problems"
            if not problems
            else f"{count(len(problems), 'problem')}, the first: {problems[0]}"
        )
        self.w.statusBar().showMessage(f"{what} · {state}", 8000)

    def set_locked(self, locked: bool) -> None:
        for a in self.editing:
            a.setEnabled(not locked)
        self.refresh_undo()

    # --- editing gestures ----------------------------------------------------------------------
    def copy_selection(self) -> bool:
        ids = self.w.scene.selected_ids()
        if not ids:
            return False
        copy_fragment(self.w.controller.fragment(ids))
        self.w.statusBar().showMessage(f"Copied {len(ids)} block" + "s" * (len(ids) > 1), 4000)
        return True

    def cut_selection(self) -> None:
        if self.w.locked:
            return
        ids = self.w.scene.selected_ids()
        if self.copy_selection():
            self.w.controller.delete(ids, text=f"Cut {len(ids)} block" + "s" * (len(ids) > 1))

    def _paste_anchor(self):
        """Paste under the mouse when it is over the canvas, else offset from the originals."""
        c = self.w.canvas
        vp = c.viewport().mapFromGlobal(c.cursor().pos())
        if c.viewport().rect().contains(vp) and c.underMouse():
            sp = c.mapToScene(vp)
            return (sp.x() - BLOCK_W / 2, sp.y() - BLOCK_H / 2)
        return None

    def paste_clipboard(self) -> list[str]:
        try:
            fragment = read_fragment()
        except BlockPropError as e:
            self.w.statusBar().showMessage(f"Cannot paste: {e}", 8000)
            return []
        if fragment is None:
            self.w.statusBar().showMessage("The clipboard holds no BlockProp blocks.", 4000)
            return []
        new = self.w.controller.paste(fragment, at=self._paste_spot(fragment))
        self.w.scene.select_ids(new)
        self.w.scene.update_scene_rect()
        if new:
            self.w.canvas.ensureVisible(self.w.scene.blocks[new[0]], 40, 40)
        return new

    def _paste_spot(self, fragment) -> tuple[float, float] | None:
        """Where the copy's top-left block goes: under the mouse or at the originals, moved
        down until the whole copy overlaps no block (a copy on top of its original would
        look like nothing happened)."""
        nodes = fragment.get("nodes") if isinstance(fragment, dict) else None
        pos = [
            nd["pos"]
            for nd in (nodes if isinstance(nodes, list) else [])
            if isinstance(nd, dict)
            and isinstance(nd.get("pos"), list)
            and len(nd["pos"]) == 2
            and all(isinstance(v, (int, float)) and abs(v) < 1e8 for v in nd["pos"])
        ]
        anchor = self._paste_anchor()
        if not pos:
            return anchor
        x0, y0 = min(p[0] for p in pos), min(p[1] for p in pos)
        w = max(p[0] for p in pos) - x0 + BLOCK_W
        h = max(p[1] for p in pos) - y0 + BLOCK_H
        x, y = anchor if anchor is not None else (x0, y0)
        for k in range(200):
            yy = y + k * (BLOCK_H + 40)
            if self.w.scene.is_free(QRectF(x - 20, yy - 20, w + 40, h + 40)):
                return (x, yy)
        return (x, y)

    def duplicate_selection(self) -> list[str]:
        ids = self.w.scene.selected_ids()
        if not ids:
            return []
        new = self.w.controller.paste(
            self.w.controller.fragment(ids), offset=(30, 100), text="Duplicate"
        )
        self.w.scene.select_ids(new)
        self.w.scene.update_scene_rect()
        return new

    def delete_selection(self) -> None:
        s = self.w.scene
        self.w.controller.delete(s.selected_ids(), s.selected_wires())

    def select_all_blocks(self) -> None:
        self.w.scene.select_ids(list(self.w.scene.blocks))

    def auto_layout(self) -> None:
        vp = self.w.canvas.viewport()
        self.w.controller.auto_layout(vp.width() / max(vp.height(), 1))
        self.w.scene.update_scene_rect()
        self.w.canvas.fit_all()

    def add_block(self, type_name: str) -> str | None:
        """Palette double-click: at a free spot; after the selected block (and wired to it)
        when exactly one is selected, else in the middle of the visible canvas."""
        w = self.w
        sel = w.scene.selected_ids()
        after = sel[0] if len(sel) == 1 else None
        if after is not None:
            x, y = w.scene.graph.pos_of(after)  # (an open module: its graph)
            near = (x + LAYOUT_DX, y)
        else:
            c = w.canvas.mapToScene(w.canvas.viewport().rect().center())
            near = (c.x() - BLOCK_W / 2, c.y() - BLOCK_H / 2)
        pos = w.controller.free_spot(w.scene, near)
        new = w.controller.add_block(type_name, pos, after=after)
        if new is not None:
            w.scene.select_ids([new])
            w.scene.update_scene_rect()
            w.canvas.ensureVisible(w.scene.blocks[new], 60, 60)
        return new

    # --- context menu --------------------------------------------------------------------------
    def context_menu(self, global_pos, scene_pos: QPointF) -> QMenu:
        w = self.w
        m = QMenu(w)
        ids = w.scene.selected_ids()
        wires = w.scene.selected_wires()
        fixes = [p for p in w.analysis.problems if p.fix and p.block in ids]
        for p in fixes:
            a = m.addAction(f"Fix: {fix_text(p.fix)}")
            a.setEnabled(not w.locked)
            a.triggered.connect(lambda _c=False, fx=p.fix: w.controller.apply_fix(fx))
        if fixes:
            m.addSeparator()
        if ids:
            for a in (self.cut, self.copy, self.duplicate, self.delete, self.rename):
                m.addAction(a)
            m.addSeparator()
            modules = getattr(w, "modules", None)
            if modules is not None:  # gui.modules_ui: Group, Ungroup, Make Unique...
                for a in modules.actions:
                    m.addAction(a)
                m.addSeparator()
        graph = w.scene.graph  # the open module definition's, when one is open
        kinds = [graph.type_of(i) for i in ids if i in graph]
        if kinds and kinds[0] in LAYER_TYPES:  # its "?" page (gui.help)
            a = m.addAction(f"Help on {kinds[0]}\tF1")
            a.triggered.connect(lambda _c=False, t=kinds[0]: help_window(w).show_block(t))
            m.addSeparator()
        if wires:
            a = m.addAction("Delete Wire" + "s" * (len(wires) > 1))
            a.setEnabled(not w.locked)
            a.triggered.connect(self.delete_selection)
            m.addSeparator()
        for a in (self.paste, self.select_all, self.layout, self.fit):
            m.addAction(a)
        m.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        m.popup(global_pos)
        return m
