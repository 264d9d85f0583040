"""The inspector's form for a module instance: its definition's name and size, an editor per
parameter (typed like the inner setting it targets, so "filters" gets the same spin box a
Conv2D's has), and buttons to open the definition, make the instance unique, or ungroup it."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE
from engine.settings import Opt
from gui.canvas.module_item import MODULE_COLOUR, MODULE_FAMILY
from gui.editors import make_editor


def param_opt(modules: dict, name: str, param: str, depth: int = 0) -> Opt:
    """The setting a module parameter stands for (its first target's), for its editor."""
    block, key = modules[name]["params"][param]["targets"][0]
    nd = next(x for x in modules[name]["nodes"] if x["id"] == block)
    if nd["type"] == MODULE_TYPE and depth < 16:
        return param_opt(modules, nd["config"][MODULE_KEY], key, depth + 1)
    return LAYER_TYPES[nd["type"]].all_options()[key]


def build_instance_form(inspector, n: str) -> None:
    g = inspector.graph
    name = g.config_of(n)[MODULE_KEY]
    d = g.modules[name]
    inspector.title.setText(
        f"<span style='color:{MODULE_COLOUR.name()}; font-size:15px'>■</span> "
        f"<b style='font-size:14px'>{_html(name)}</b> "
        f"<span style='color:#607d8b'>{MODULE_FAMILY}: {len(d['nodes'])} blocks, "
        f"{len(g.instances_of(name))} instance(s)</span>"
    )
    cfg = g.full_config(n)
    for param in d["params"]:
        editor = make_editor(param_opt(g.modules, name, param))
        editor.set_value(cfg.get(param))
        editor.setEnabled(not inspector.locked)
        editor.edited.connect(lambda v, k=param: inspector._edited(k, v))
        editor.invalid.connect(lambda msg, k=param: inspector._refused(k, f"'{k}': {msg}"))
        targets = ", ".join(f"{b}.{k}" for b, k in d["params"][param]["targets"])
        editor.setToolTip(f"Sets {targets} inside the module")
        label = QLabel(param)
        label.setToolTip(editor.toolTip())
        inspector.form.addRow(label, editor)
        inspector.editors[param] = editor
    if not d["params"]:
        note = QLabel("No settings exposed: open the definition to edit its blocks.")
        note.setWordWrap(True)
        inspector.form.addRow(note)
    ui = getattr(inspector, "module_actions", None)
    if ui is None:
        return
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 4, 0, 0)
    for text, slot, tip in (
        ("Open", lambda: ui.editor.open(n), "Edit the definition (every instance follows)"),
        ("Make unique", ui.make_unique, "Give this instance a copy of its own to edit"),
        ("Ungroup", ui.ungroup_selection, "Put its blocks back in its place"),
    ):
        b = QPushButton(text)
        b.setToolTip(tip)
        b.setEnabled(not inspector.locked or text == "Open")
        b.clicked.connect(lambda _=False, s=slot: s())
        h.addWidget(b)
    inspector.form.addRow(row)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
