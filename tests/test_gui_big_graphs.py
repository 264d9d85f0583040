"""Big graphs on the canvas: level of detail by zoom, auto-layout that keeps parallel branches
together without wires through blocks, the minimap."""

from __future__ import annotations

from gui_helpers import build_chain, settle
from PySide6.QtWidgets import QApplication

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def paint_at(w, zoom: float) -> None:
    w.canvas.zoom_by(zoom / w.canvas.zoom())
    w.canvas.centerOn(w.scene.blocks_rect().center())
    w.canvas.viewport().repaint()
    QApplication.processEvents()


def test_blocks_and_wire_labels_switch_detail_at_the_readable_threshold(window):
    from gui.canvas.block_item import BLOB, COMPACT, FULL, FULL_LOD, detail_mode
    from gui.canvas.wire_item import LABEL_LOD

    w = window
    build_chain(w, [("in", "Input", {"shape": [8]}), ("d", "Dense", {"units": 4})])
    settle(w)
    block, wire = w.scene.blocks["d"], w.scene.wires[("in", "d")]
    assert wire.label  # the analysis gave it the shape it carries
    assert detail_mode(1.0) == FULL and detail_mode(0.3) == COMPACT and detail_mode(0.05) == BLOB
    paint_at(w, FULL_LOD * 1.02)
    assert block.mode == FULL and wire.label_shown == (FULL_LOD * 1.02 >= LABEL_LOD)
    paint_at(w, FULL_LOD * 0.98)
    assert block.mode == COMPACT
    paint_at(w, min(FULL_LOD, LABEL_LOD) * 0.98)
    assert not wire.label_shown
    paint_at(w, 1.0)
    assert block.mode == FULL and wire.label_shown
    paint_at(w, 0.08)
    assert block.mode == BLOB
