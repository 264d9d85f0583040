"""The block palette: every layer type, grouped by family, with a search box. Drag a block onto
the canvas, or double-click it (or press Enter) to add it after the selected block."""

from __future__ import annotations

import textwrap

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.layers import LAYER_TYPES
from gui.canvas.style import BLOCK_MIME, FAMILIES, family_colour, family_of
from gui.help import help_button

TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
MODULES_GROUP = "Modules"
MODULE_PREFIX = "Module:"  # gui.edit_controller reads it back


def _swatch(colour: QColor) -> QIcon:
    pm = QPixmap(14, 14)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    p.drawRoundedRect(1, 1, 12, 12, 3, 3)
    p.end()
    return QIcon(pm)


def _doc_line(cls) -> str:
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0] if doc else cls.type_name


def block_mime(type_name: str) -> QMimeData:
    md = QMimeData()
    md.setData(BLOCK_MIME, type_name.encode("utf-8"))
    md.setText(type_name)
    return md


class PaletteTree(QTreeWidget):
    def mimeTypes(self) -> list[str]:
        return [BLOCK_MIME]

    def mimeData(self, items) -> QMimeData:
        types = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        return block_mime(types[0]) if types else QMimeData()


GROUP_CHARS = 18  # a group name longer than this wraps


class Palette(QWidget):
    addRequested = Signal(str)  # a block type to add at a sensible free spot

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search blocks…")
        self.search.setToolTip("Type to filter; Enter adds the first match")
        self.search.setClearButtonEnabled(True)
        self.tree = PaletteTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setIndentation(14)
        self.tree.setUniformRowHeights(False)  # a wrapped group name takes two rows
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.help_button = help_button("Help on the selected block", self.show_help)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.help_button)
        lay.addLayout(top)
        lay.addWidget(self.tree)
        self.groups: dict[str, QTreeWidgetItem] = {}
        self.items: dict[str, QTreeWidgetItem] = {}
        self._populate()
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_match)
        self.tree.itemActivated.connect(self._activated)

    def _populate(self) -> None:
        by_family: dict[str, list] = {}
        for cls in LAYER_TYPES.values():
            by_family.setdefault(family_of(cls), []).append(cls)
        order = [f for f in FAMILIES if f in by_family] + sorted(
            f for f in by_family if f not in FAMILIES
        )
        for fam in order:
            # A long family name wraps (the palette is narrow on a small screen) instead of
            # ending in "..."
            group = QTreeWidgetItem(self.tree, [textwrap.fill(fam, GROUP_CHARS)])
            group.setToolTip(0, fam)
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            f = group.font(0)
            f.setBold(True)
            group.setFont(0, f)
            group.setIcon(0, _swatch(family_colour(fam)))
            self.groups[fam] = group
            for cls in sorted(by_family[fam], key=lambda c: c.type_name):
                item = QTreeWidgetItem(group, [cls.type_name])
                item.setData(0, TYPE_ROLE, cls.type_name)
                item.setToolTip(
                    0,
                    f"{cls.type_name}: {_doc_line(cls)}\n"
                    "Drag onto the canvas, or double-click to add.",
                )
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                self.items[cls.type_name] = item
        self.tree.expandAll()

    def filter(self, text: str) -> None:
        text = text.strip().lower()
        for fam, group in self.groups.items():
            any_shown = False
            for i in range(group.childCount()):
                item = group.child(i)
                type_name = item.data(0, TYPE_ROLE)
                cls = LAYER_TYPES.get(type_name)
                doc = (_doc_line(cls) if cls is not None else item.toolTip(0)).lower()
                show = not text or text in type_name.lower() or text in fam.lower() or text in doc
                item.setHidden(not show)
                any_shown |= show
            group.setHidden(not any_shown)
            group.setExpanded(True)

    def set_modules(self, graph_names: list[str], library_names: list[str]) -> None:
        """The "Modules" group: this graph's module definitions, then the user's library's."""
        group = self.groups.pop(MODULES_GROUP, None)
        if group is not None:
            for i in range(group.childCount()):
                self.items.pop(group.child(i).data(0, TYPE_ROLE), None)
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(group))
        if not graph_names and not library_names:
            return
        group = QTreeWidgetItem([MODULES_GROUP])
        self.tree.insertTopLevelItem(0, group)
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        f = group.font(0)
        f.setBold(True)
        group.setFont(0, f)
        group.setIcon(0, _swatch(QColor("#5d4037")))
        self.groups[MODULES_GROUP] = group
        for name, where in [(n, "this graph") for n in graph_names] + [
            (n, "your library") for n in library_names
        ]:
            item = QTreeWidgetItem(group, [name if where == "this graph" else f"{name} (library)"])
            item.setData(0, TYPE_ROLE, MODULE_PREFIX + name)
            item.setToolTip(
                0, f"Module '{name}' from {where}: drag onto the canvas, or double-click"
            )
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            self.items[MODULE_PREFIX + name] = item
        group.setExpanded(True)
        if self.search.text():
            self.filter(self.search.text())

    def visible_types(self) -> list[str]:
        return [
            t
            for t, item in self.items.items()
            if not item.isHidden() and not item.parent().isHidden()
        ]

    def selected_type(self) -> str | None:
        """The block type selected in the tree (None: a group or nothing)."""
        item = self.tree.currentItem()
        return item.data(0, TYPE_ROLE) if item is not None and item.isSelected() else None

    def show_help(self) -> None:
        """The "?": the selected block type's help page, else the palette's own."""
        from gui.help import help_window
        from gui.help_pages import help_for

        chosen = self.selected_type()
        if chosen in LAYER_TYPES:  # (a module has no block page)
            help_window(self).show_block(chosen)
        else:
            help_window(self).show_panel(help_for(self))

    def _context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        type_name = item.data(0, TYPE_ROLE) if item is not None else None
        if not type_name:
            return
        self.tree.setCurrentItem(item)
        menu = QMenu(self.tree)
        menu.addAction("Add to the graph", lambda: self.addRequested.emit(type_name))
        if type_name in LAYER_TYPES:
            menu.addAction(f"Help on {type_name}\tF1", self.show_help)
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    def _add_first_match(self) -> None:
        for group in self.groups.values():
            if group.isHidden():
                continue
            for i in range(group.childCount()):
                if not group.child(i).isHidden():
                    self.addRequested.emit(group.child(i).data(0, TYPE_ROLE))
                    return

    def _activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.addRequested.emit(type_name)
