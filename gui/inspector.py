"""The inspector: typed editors for every setting of the selected block, its id (renameable),
output shape, parameter count and problems (with one-click fixes). With nothing selected it
edits the graph's name and description.

Each edit is one undo command (spin-box typing merges); a refused value is not applied, the
editor goes back to the Graph's value and the reason is shown under the form.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.analysis import count
from engine.graph_events import ConfigChanged, GraphEvent, MetaChanged, NodeRemoved, Reset
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_TYPE
from gui.canvas.style import count_text, family_colour, family_of, shape_text
from gui.editors import make_editor
from gui.module_inspector import build_instance_form


def pretty(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _range_hint(opt) -> str:
    parts = []
    if opt.min is not None:
        parts.append(f"{'>' if opt.min_exclusive else '≥'} {opt.min:g}")
    if opt.max is not None:
        parts.append(f"{'<' if opt.max_exclusive else '≤'} {opt.max:g}")
    return " and ".join(parts)


class Inspector(QWidget):
    def __init__(self, graph, controller, live, parent=None) -> None:
        super().__init__(parent)
        self.graph, self.controller, self.live = graph, controller, live
        self.block: str | None = None
        self.ids: list[str] = []
        self.editors: dict[str, object] = {}
        self.locked = False
        self.module_actions = None  # gui.modules_ui.ModulesUI: the instance form's buttons
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("The block's id (press Enter to rename it)")
        self.id_edit.editingFinished.connect(self._rename)
        self.info = QLabel()
        self.info.setWordWrap(True)
        # two lines, always: the editors below must not move when the text grows
        self.info.setFixedHeight(self.info.fontMetrics().lineSpacing() * 2 + 4)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems_box = QVBoxLayout()
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color:#c62828;")
        self.error.hide()
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(self.title)
        self.id_row = QWidget()
        idl = QHBoxLayout(self.id_row)
        idl.setContentsMargins(0, 0, 0, 0)
        idl.addWidget(QLabel("Id"))
        idl.addWidget(self.id_edit)
        lay.addWidget(self.id_row)
        lay.addWidget(self.info)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        lay.addWidget(line)
        lay.addLayout(self.form)
        lay.addWidget(self.error)
        # Problems come after the form, so the editors do not jump when one appears or goes.
        lay.addLayout(self.problems_box)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._follow = {
            ConfigChanged: self._config_changed,
            NodeRemoved: self._node_removed,
            MetaChanged: self._graph_changed,
            Reset: self._graph_changed,
        }
        graph.subscribe(self._on_graph_event)
        live.changed.connect(self._on_analysis)
        self.show_selection([])

    def detach(self) -> None:
        self.graph.unsubscribe(self._on_graph_event)

    # --- what is shown -------------------------------------------------------------------------
    def show_selection(self, ids: list[str]) -> None:
        self.ids = list(ids)
        block = ids[0] if len(ids) == 1 else None
        if block == self.block and block is not None:
            return
        self.block = block
        self.error.hide()
        self._clear_form()
        if block is not None:
            self._build_block_form(block)
        elif ids:
            self.title.setText(f"<b>{len(ids)} blocks selected</b>")
            self.id_row.hide()
            self.info.setText(", ".join(ids[:30]) + (" …" if len(ids) > 30 else ""))
        else:
            self._build_graph_form()
        self._on_analysis(self.live.analysis)

    def _clear_form(self) -> None:
        self.editors.clear()
        while self.form.rowCount():
            self.form.removeRow(0)

    def _build_graph_form(self) -> None:
        self.title.setText("<b>Graph</b>")
        self.id_row.hide()
        for key in ("name", "description"):
            edit = QLineEdit(getattr(self.graph, key))
            edit.setCursorPosition(0)
            edit.setToolTip(getattr(self.graph, key))
            edit.setEnabled(not self.locked)
            edit.editingFinished.connect(
                lambda k=key, e=edit: self.controller.set_meta(k, e.text())
            )
            self.form.addRow(pretty(key), edit)
            self.editors[f"meta:{key}"] = edit

    def _build_block_form(self, n: str) -> None:
        type_name = self.graph.type_of(n)
        if type_name == MODULE_TYPE:
            self.id_row.show()
            with QSignalBlocker(self.id_edit):
                self.id_edit.setText(n)
            self.id_edit.setReadOnly(self.locked)
            return build_instance_form(self, n)
        cls = LAYER_TYPES.get(type_name)
        fam = family_of(cls)
        colour = family_colour(fam).name()
        self.title.setText(
            f"<span style='color:{colour}; font-size:15px'>■</span> "
            f"<b style='font-size:14px'>{type_name}</b> "
            f"<span style='color:#607d8b'>{fam}</span>"
        )
        self.id_row.show()
        with QSignalBlocker(self.id_edit):
            self.id_edit.setText(n)
        self.id_edit.setReadOnly(self.locked)
        if cls is None:
            return
        cfg = self.graph.full_config(n)
        options = cls.all_options()
        for key, opt in options.items():
            if key == "init":
                sep = QLabel("<b>Weight initialisation</b>")
                self.form.addRow(sep)
            editor = make_editor(opt)
            editor.set_value(cfg.get(key))
            editor.setEnabled(not self.locked)
            editor.edited.connect(lambda v, k=key: self._edited(k, v))
            editor.invalid.connect(lambda msg, k=key: self._refused(k, f"'{k}': {msg}"))
            hint = _range_hint(opt)
            tip = opt.doc + (f" ({hint})" if hint else "")
            editor.setToolTip(tip)
            label = QLabel(pretty(key) + ("" if not opt.required else " *"))
            label.setToolTip(tip)
            self.form.addRow(label, editor)
            self.editors[key] = editor

    # --- edits ---------------------------------------------------------------------------------
    def _edited(self, key: str, value) -> None:
        if self.block is None:
            return
        reason = self.controller.set_option(self.block, key, value)
        if reason:
            self._refused(key, reason)
        else:
            self.error.hide()

    def _refused(self, key: str, reason: str) -> None:
        """Show why and put the editor back to the Graph's value."""
        self.error.setText(f"Not applied: {reason}")
        self.error.show()
        self.controller.message.emit(f"Not applied: {reason}", True)
        if self.block is not None and key in self.editors:
            self.editors[key].set_value(self.graph.full_config(self.block).get(key))

    def _rename(self) -> None:
        if self.block is None or self.locked:
            return
        new = self.id_edit.text().strip()
        if new == self.block:
            return
        old = self.block
        reason = self.controller.rename(old, new)
        if reason:
            self.error.setText(f"Not renamed: {reason}")
            self.error.show()
            with QSignalBlocker(self.id_edit):
                self.id_edit.setText(old)

    def set_locked(self, locked: bool) -> None:
        self.locked = locked
        for ed in self.editors.values():
            ed.setEnabled(not locked)
        self.id_edit.setReadOnly(locked)

    # --- following the model -------------------------------------------------------------------
    def _on_graph_event(self, event: GraphEvent) -> None:
        handler = self._follow.get(type(event))
        if handler is not None:
            handler(event)

    def _config_changed(self, e: ConfigChanged) -> None:
        if e.block == self.block:
            cfg = self.graph.full_config(self.block)
            for key, ed in self.editors.items():
                ed.set_value(cfg.get(key))

    def _node_removed(self, e: NodeRemoved) -> None:
        if e.block in self.ids:  # deleted, or renamed by the Graph's remove+add
            self.ids = [n for n in self.ids if n in self.graph]
            self.block = None
            self.show_selection(self.ids)

    def _graph_changed(self, _e: MetaChanged | Reset) -> None:
        if self.block is None and not self.ids:
            self.block = "\0"  # force a rebuild
            self.show_selection([])

    def _on_analysis(self, a) -> None:
        while self.problems_box.count():
            w = self.problems_box.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        if self.block is None or self.block not in self.graph:
            if not self.ids:
                self.info.setText(
                    f"{count(len(self.graph), 'block')}, {count(a.total_params, 'parameter')}"
                    + ("" if a.ok else f", {count(len(a.problems), 'problem')}")
                )
            return
        n = self.block
        shape = a.shapes.get(n)
        ins = a.in_shapes.get(n)
        lines = []
        if ins is not None and self.graph.type_of(n) != "Input":
            lines.append(f"Input: {shape_text(ins)}")
        out = f"Output: {shape_text(shape)}"
        if shape is not None:
            out += f"   {count_text(a.params.get(n, 0))}"
        lines.append(out)
        self.info.setText("\n".join(lines))
        for p in a.problems:
            if p.block != n:
                continue
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 2, 0, 2)
            msg = QLabel(f"⚠ {p.message}")
            msg.setWordWrap(True)
            msg.setStyleSheet("color:#c62828;")
            h.addWidget(msg, 1)
            if p.fix:
                b = QPushButton("Fix")
                b.setToolTip(fix_text(p.fix))
                b.setEnabled(not self.locked)
                b.clicked.connect(lambda _=False, f=p.fix: self.controller.apply_fix(f))
                h.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
            self.problems_box.addWidget(row)


def fix_text(fix: dict) -> str:
    """What a fix does, for its button and menu entry."""
    if fix.get("kind") == "insert":
        return f"Insert {fix['type']} between '{fix['source']}' and '{fix['target']}'"
    if fix.get("kind") == "set":
        return f"Set {fix['key']} of '{fix['block']}' to {fix['value']!r}"
    if fix.get("kind") == "training":
        from engine.data_fit import fix_words

        return fix_words(fix)
    return "Apply the fix"
