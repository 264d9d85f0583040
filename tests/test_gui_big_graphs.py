"""Big graphs on the canvas: level of detail by zoom, auto-layout that keeps parallel branches
together without wires through blocks, the minimap."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import build_chain, settle
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def paint_at(w, zoom: float) -> None:
    w.canvas.zoom_by(zoom / w.canvas.zoom())
    w.canvas.centerOn(w.scene.blocks_rect().center())
    w.canvas.viewport().repaint()
    QApplication.processEvents()


def test_blocks_and_wire_labels_switch_detail_at_the_readable_threshold(window):
    from gui.canvas.block_item import BLOB, COMPACT, FULL, detail_mode, full_lod
    from gui.canvas.wire_item import label_lod

    full, label = full_lod(), label_lod()
    w = window
    build_chain(w, [("in", "Input", {"shape": [8]}), ("d", "Dense", {"units": 4})])
    settle(w)
    block, wire = w.scene.blocks["d"], w.scene.wires[("in", "d")]
    assert wire.label  # the analysis gave it the shape it carries
    assert detail_mode(1.0) == FULL and detail_mode(0.3) == COMPACT and detail_mode(0.05) == BLOB
    paint_at(w, full * 1.02)
    assert block.mode == FULL and wire.label_shown == (full * 1.02 >= label)
    paint_at(w, full * 0.98)
    assert block.mode == COMPACT
    paint_at(w, min(full, label) * 0.98)
    assert not wire.label_shown
    paint_at(w, 1.0)
    assert block.mode == FULL and wire.label_shown
    paint_at(w, 0.08)
    assert block.mode == BLOB


def laid_out(w, graph):
    """``graph`` shown in ``w`` after Auto-layout (the window's own action), wires routed."""
    w.graph.replace_with(graph)
    w.undo_stack.clear()
    settle(w)
    w.actions.layout.trigger()
    QApplication.processEvents()
    settle(w)


def wires_through_blocks(w) -> list[tuple[str, str, str]]:
    """(source, target, block) for every wire that passes through a block it does not join:
    points every 3 scene units along its path, inside a block's body shrunk by 1."""
    from PySide6.QtCore import QRectF

    bad = []
    index = w.scene.block_index()
    for (s, t), wire in w.scene.wires.items():
        skip = (wire.source, wire.target)
        for poly in wire.path.toSubpathPolygons():
            pts = [poly.at(i) for i in range(poly.size())]
            for a, b in zip(pts, pts[1:], strict=False):
                near = index.bodies(QRectF(a, b).normalized().adjusted(-1, -1, 1, 1), skip)
                n = max(1, int(max(abs(b.x() - a.x()), abs(b.y() - a.y())) / 3))
                for r in near:
                    inner = r.adjusted(1, 1, -1, -1)
                    if any(inner.contains(a + (b - a) * (k / n)) for k in range(n + 1)):
                        bad.append((s, t, next(i for q, i in index.items if q == r).block_id))
    return sorted(set(bad))


def big_graph(name: str):
    """A zoo preset ("zoo/NAME") or a graph of tests/big_graphs.py, with its first block."""
    import big_graphs

    import engine

    if name.startswith("zoo/"):
        g = engine.load_graph(ROOT / "presets" / f"{name}.json")
    else:
        g = getattr(big_graphs, name)()
    return g, g.topological_order()[0][:2]


@pytest.mark.parametrize("name", ["googlenet", "zoo/googlenet", "zoo/resnet18", "zoo/densenet121"])
def test_auto_layout_of_big_graphs_routes_no_wire_through_a_block(window, name):
    w = window
    g, (first, second) = big_graph(name)
    laid_out(w, g)
    assert w.undo_stack.undoText() in ("Auto-layout", "")  # "": a zoo preset is laid out
    assert wires_through_blocks(w) == []
    rects = sorted(i.body_rect().getRect() for i in w.scene.blocks.values())
    for (x, y, bw, bh), (x2, y2, _, _) in zip(rects, rects[1:], strict=False):
        assert not (x2 < x + bw and y <= y2 < y + bh), "blocks overlap"
    # the check can fail: a block put on a wire's path is found
    wire = w.scene.wires[(first, second)]
    mid = wire.path.pointAtPercent(0.5)
    w.scene.blocks["fc"].setPos(mid.x() - 20, mid.y() - 20)
    assert (first, second, "fc") in wires_through_blocks(w)


def test_auto_layout_keeps_an_inception_module_together_with_its_branches_side_by_side(window):
    import big_graphs

    from gui.canvas.style import LAYOUT_DX
    from gui.layout import layered_positions

    w = window
    g = big_graphs.googlenet()
    laid_out(w, g)
    pos = {n: w.graph.pos_of(n) for n in w.graph.nodes()}
    for name, *_ in (r for r in big_graphs.INCEPTIONS if r[0] != "pool"):
        p = f"i{name}"
        cx, cy = pos[f"{p}_cat"]
        starts = [pos[f"{p}_{b}"] for b in ("1x1", "3x3r", "5x5r", "pool")]
        assert len({x for x, _ in starts}) == 1  # one column, four lanes: side by side
        assert [y for _, y in starts] == sorted({y for _, y in starts})  # in port order
        module = [xy for n, xy in pos.items() if n.startswith(p + "_")]
        # the whole module in one row, left of its Concat, nothing wrapped away
        assert all(cx - 5 * LAYOUT_DX <= x <= cx and abs(y - cy) < 400 for x, y in module)
    # deterministic
    again = layered_positions(w.graph, LAYOUT_DX, 110, 2.0)
    assert again == layered_positions(w.graph, LAYOUT_DX, 110, 2.0)


def test_minimap_shows_only_when_the_graph_exceeds_the_view_and_navigates_on_click(window):
    import big_graphs
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    w = window
    mm = w.canvas.minimap
    build_chain(w, [("in", "Input", {"shape": [8]}), ("d", "Dense", {"units": 4})])
    w.canvas.fit_all()
    QApplication.processEvents()
    assert not mm.isVisible()  # everything fits
    laid_out(w, big_graphs.googlenet())
    w.canvas.fit_all()
    QApplication.processEvents()
    assert not mm.isVisible()
    w.canvas.zoom_by(1.0 / w.canvas.zoom())  # 100%: the graph is far larger than the view
    w.canvas.centerOn(w.scene.blocks["input"].sceneBoundingRect().center())
    QApplication.processEvents()
    assert mm.isVisible() and mm.width() <= 240
    # a click near the minimap's bottom-right corner brings the graph's last block into view
    fc = w.scene.blocks["fc"].sceneBoundingRect().center()
    at = mm.to_map(fc).toPoint()
    QTest.mouseClick(mm, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QApplication.processEvents()
    shown = w.canvas.mapToScene(w.canvas.viewport().rect()).boundingRect()
    assert shown.contains(fc)
    assert not shown.contains(w.scene.blocks["input"].sceneBoundingRect().center())
    # a drag moves it on: to the first block
    start = mm.to_map(w.scene.blocks["input"].sceneBoundingRect().center()).toPoint()
    QTest.mousePress(mm, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QTest.mouseMove(mm, (at + start) / 2)
    QTest.mouseMove(mm, start)
    QTest.mouseRelease(mm, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    shown = w.canvas.mapToScene(w.canvas.viewport().rect()).boundingRect()
    assert shown.contains(w.scene.blocks["input"].sceneBoundingRect().center())
    # View > Minimap turns it off (and is remembered)
    w.actions.minimap.trigger()
    assert not mm.isVisible() and not w.actions.minimap.isChecked()
    w.actions.minimap.trigger()
    assert mm.isVisible()


def test_module_instances_are_laid_out_and_drawn_compact_like_blocks(window):
    """GoogLeNet with each inception module grouped into an instance (drawn as one block: the
    issue's "modules collapse"): laid out without overlaps or wires through blocks, and zoomed
    out an instance shows its module's name in big letters like any block."""
    import big_graphs

    from engine.modules.edit import group
    from gui.canvas.block_item import COMPACT
    from gui.canvas.module_item import ModuleItem

    g = big_graphs.googlenet()
    for name, *_ in (r for r in big_graphs.INCEPTIONS if r[0] != "pool"):
        ids = [n for n in g.nodes() if n.startswith(f"i{name}_")]
        group(g, ids, f"Inception{name}", node_id=f"m{name}")
    w = window
    laid_out(w, g)
    inst = w.scene.blocks["m3a"]
    assert isinstance(inst, ModuleItem) and len(inst.in_ports) == 1 and len(w.graph) == 140 - 9 * 13
    assert wires_through_blocks(w) == []
    rects = sorted(i.body_rect().getRect() for i in w.scene.blocks.values())
    for (x, y, bw, bh), (x2, y2, _, _) in zip(rects, rects[1:], strict=False):
        assert not (x2 < x + bw and y <= y2 < y + bh), "blocks overlap"
    w.canvas.fit_all()
    w.canvas.zoom_by(0.3 / w.canvas.zoom())
    w.canvas.viewport().repaint()
    QApplication.processEvents()
    assert inst.mode == COMPACT
