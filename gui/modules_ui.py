"""The window's module gestures: Edit > Group into Module (Ctrl+G), Ungroup (Ctrl+Shift+G),
Make Unique, Open Module (or double-click an instance), Add Module to Library; the palette's
"Modules" group; the inspector's form for an instance. Every change is one undo step
(``Controller.module_edit``); the work is engine.modules.edit's.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QInputDialog

from engine.errors import BlockPropError
from engine.graph_events import ModuleChanged, Reset
from engine.layers import LAYER_TYPES
from engine.modules import edit
from engine.modules.definition import MODULE_KEY, MODULE_TYPE
from gui.actions import _act
from gui.canvas.module_item import ModuleItem
from gui.module_editor import DefinitionEditor
from gui.module_library import ModuleLibrary


class ModulesUI(QObject):
    """Installed on a MainWindow as ``window.modules``."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = w = window
        self.editor = DefinitionEditor(window)
        self.library = ModuleLibrary()
        w.controller.library_modules = self.library.needed
        self.group = _act(w, "&Group into Module…", self.group_selection, "Ctrl+G")
        self.ungroup = _act(w, "&Ungroup Module", self.ungroup_selection, "Ctrl+Shift+G")
        self.unique = _act(w, "Make Module &Unique", self.make_unique)
        self.open = _act(w, "&Open Module Definition", self.open_selection)
        self.to_library = _act(w, "Add Module to &Library", self.add_to_library)
        self.expose = _act(w, "&Expose Setting as Module Parameter…", self.expose_setting)
        self.expose.setToolTip(
            "Inside an open module: make a setting of the selected blocks a parameter each "
            "instance sets for itself"
        )
        self.actions = [
            self.group,
            self.ungroup,
            self.unique,
            self.open,
            self.to_library,
            self.expose,
        ]
        menu = w.menu("Edit")
        menu.addSeparator()
        for a in self.actions:
            menu.addAction(a)
        w.actions.editing += [self.group, self.ungroup, self.unique, self.to_library, self.expose]
        w.inspector.module_actions = self
        w.canvas.viewport().installEventFilter(self)
        w.graph.subscribe(self._on_graph_event)
        self.refresh_palette()

    # --- what the user picks -------------------------------------------------------------------
    def ask_name(self, suggestion: str) -> str | None:
        """The new module's name (tests replace this)."""
        text, ok = QInputDialog.getText(
            self.w, "Group into module", "Module name:", text=suggestion
        )
        return text.strip() if ok and text.strip() else None

    def ask_setting(self, choices: list[str]) -> tuple[str, str] | None:
        """(the setting to expose, the parameter's name) (tests replace this)."""
        key, ok = QInputDialog.getItem(
            self.w, "Expose a setting", "Setting of the selected blocks:", choices, 0, False
        )
        if not ok:
            return None
        name, ok = QInputDialog.getText(self.w, "Expose a setting", "Parameter name:", text=key)
        return (key, name.strip()) if ok and name.strip() else None

    def _instance(self) -> str | None:
        ids = self.w.scene.selected_ids()
        g = self.w.scene.graph
        if len(ids) == 1 and g.type_of(ids[0]) == MODULE_TYPE:
            return ids[0]
        self.w._message("Select one module instance first.", True)
        return None

    # --- gestures ------------------------------------------------------------------------------
    def group_selection(self) -> str | None:
        ids = self.w.scene.selected_ids()
        if not ids:
            self.w._message("Select the blocks to group first.", True)
            return None
        g = self.w.scene.graph
        if self.editor.active:  # inside a module: its input ports are no wires to carry along
            d = self.w.graph.modules[self.editor.levels[-1].name]
            fed = [t["block"] for port in d["inputs"] for t in port if t["block"] in ids]
            if fed:
                self.w._message(
                    f"'{fed[0]}' is fed by the module's input: group it from the graph "
                    "(or leave it out of the selection)",
                    True,
                )
                return None
        name = self.ask_name(edit.fresh_name(g, "Module"))
        if name is None:
            return None
        inst = self.w.controller.module_edit(
            f"Group {len(ids)} blocks into {name}", lambda gr: edit.group(gr, ids, name)
        )
        if inst is not None:
            self.w.scene.select_ids([inst])
        return inst

    def ungroup_selection(self) -> list[str]:
        inst = self._instance()
        if inst is None:
            return []
        new = self.w.controller.module_edit(f"Ungroup {inst}", lambda gr: edit.ungroup(gr, inst))
        if new:
            self.w.scene.select_ids(new)
        return new or []

    def make_unique(self) -> str | None:
        inst = self._instance()
        if inst is None:
            return None
        return self.w.controller.module_edit(
            f"Make {inst} unique", lambda gr: edit.make_unique(gr, inst)
        )

    def open_selection(self) -> bool:
        inst = self._instance()
        return inst is not None and self.editor.open(inst)

    def expose_setting(self) -> bool:
        """In an open definition: a setting every selected block has becomes a parameter of
        the module (one undo step; its default is the first block's value)."""
        if not self.editor.active:
            self.w._message("Open a module first (double-click an instance).", True)
            return False
        level = self.editor.levels[-1]
        sub = level.sub
        ids = self.w.scene.selected_ids()
        if not ids:
            self.w._message("Select the blocks whose setting the parameter sets.", True)
            return False
        keys = None
        for n in ids:
            if sub.type_of(n) == MODULE_TYPE:
                have = list(sub.modules[sub.config_of(n)[MODULE_KEY]]["params"])
            else:
                have = list(LAYER_TYPES[sub.type_of(n)].all_options())
            keys = have if keys is None else [k for k in keys if k in have]
        if not keys:
            self.w._message("The selected blocks share no setting.", True)
            return False
        chosen = self.ask_setting(keys)
        if chosen is None:
            return False
        key, param = chosen
        targets = [[n, key] for n in ids]
        stack = self.w.undo_stack
        before = (stack.index(), stack.count())
        self.main_controller().module_edit(
            f"Expose {key} of {level.name} as {param}",
            lambda g: edit.expose(g, level.name, param, targets),
        )
        return (stack.index(), stack.count()) != before

    def main_controller(self):
        """The window's own controller (the open definition's is the canvas's)."""
        return self.editor.main[1]

    def add_to_library(self) -> None:
        inst = self._instance()
        if inst is None:
            return
        g = self.w.scene.graph
        name = g.config_of(inst)[MODULE_KEY]
        try:
            self.library.add(g.modules, name)
        except (BlockPropError, OSError) as e:
            self.w._message(f"Not added to the library: {e}", True)
            return
        self.refresh_palette()
        self.w._message(f"Module '{name}' is in your library: every graph's palette has it.", False)

    # --- following the graph, the canvas -------------------------------------------------------
    def _on_graph_event(self, event) -> None:
        if isinstance(event, (ModuleChanged, Reset)):
            self.refresh_palette()

    def refresh_palette(self) -> None:
        names = list(self.w.graph.modules)
        self.w.palette_panel.set_modules(names, [n for n in self.library.names() if n not in names])

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.MouseButtonDblClick:
            c = self.w.canvas
            for item in c.items(event.position().toPoint()):
                if isinstance(item, ModuleItem):
                    self.editor.open(item.block_id)
                    return True
        return False


def install(window) -> ModulesUI:
    window.modules = ModulesUI(window)
    return window.modules
