"""The canvas: palette drops, port-to-port wiring, refusals with reasons, selection, moving,
clipboard between windows, zoom, live validation with one-click fixes, locking and badges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gui_helpers import build_chain, drag, port_view_pos, settle, view_pos
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gui.canvas.style import BLOCK_H, BLOCK_MIME, BLOCK_W, key_settings

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def drop_block(w, type_name: str, at: QPoint) -> None:
    md = w.palette_panel.tree.mimeData([w.palette_panel.items[type_name]])
    assert md.hasFormat(BLOCK_MIME)
    send_drop(w.canvas.viewport(), md, at)


def send_drop(target, md, at: QPoint) -> None:
    """Drag-enter then drop (Qt delivers a drop only to the widget that accepted the enter)."""
    args = (
        at,
        Qt.DropAction.CopyAction,
        md,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, QDragEnterEvent(*args))
    QApplication.sendEvent(target, QDragMoveEvent(*args))
    QApplication.sendEvent(target, QDropEvent(QPointF(at), *args[1:]))
    QApplication.processEvents()


def test_palette_groups_every_family_in_order_and_searches(window):
    p = window.palette_panel
    fams = list(p.groups)
    expected = [
        "Input",
        "Convolution",
        "Pooling",
        "Dense",
        "Recurrent",
        "Normalisation and regularisation",
        "Merge",
        "Activation",
        "Reshape",
    ]
    assert [f for f in fams if f in expected] == expected
    p.search.setText("lstm")
    assert p.visible_types() == ["LSTM"]
    p.search.setText("pool")
    assert set(p.visible_types()) >= {"MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"}
    assert "Dense" not in p.visible_types()
    p.search.setText("")
    assert len(p.visible_types()) == len(p.items)


def test_drop_from_palette_adds_block_under_cursor(window):
    at = QPoint(300, 200)
    drop_block(window, "Conv2D", at)
    g = window.graph
    assert g.nodes() == ["conv2d_1"]
    assert g.type_of("conv2d_1") == "Conv2D"
    sp = window.canvas.mapToScene(at)
    x, y = g.pos_of("conv2d_1")
    assert abs(x + BLOCK_W / 2 - sp.x()) <= 10 and abs(y + BLOCK_H / 2 - sp.y()) <= 10
    assert window.selected_blocks() == ["conv2d_1"]
    assert "conv2d_1" in window.scene.blocks
    assert window.undo_stack.undoText() == "Add Conv2D"
    window.undo_stack.undo()
    assert len(g) == 0 and not window.scene.blocks


def test_palette_activation_adds_after_selected_block_and_wires_it(window):
    """Double-click or Enter on a palette entry (item activation) adds the block."""
    tree = window.palette_panel.tree

    def dclick(type_name):
        tree.setCurrentItem(window.palette_panel.items[type_name])
        tree.setFocus()
        QTest.keyClick(tree, Qt.Key.Key_Return)
        QApplication.processEvents()

    dclick("Input")
    assert window.graph.nodes() == ["input_1"]
    assert window.selected_blocks() == ["input_1"]
    dclick("Conv2D")
    g = window.graph
    assert g.edges() == [("input_1", "conv2d_1", 0)]
    assert g.pos_of("conv2d_1")[0] > g.pos_of("input_1")[0] + BLOCK_W
    assert window.selected_blocks() == ["conv2d_1"]
    # one undo step removes the block and its wire
    window.undo_stack.undo()
    assert g.nodes() == ["input_1"] and g.edges() == []


def test_block_shows_key_settings_shape_and_params(window):
    build_chain(
        window,
        [
            ("in", "Input", {"shape": [1, 32, 32]}),
            ("c1", "Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}),
            ("f", "Flatten", {}),
            ("d", "Dense", {"units": 120}),
            ("r", "Reshape", {"shape": [12, 10]}),
            ("l", "LSTM", {"hidden_size": 128, "return_sequences": True, "bidirectional": True}),
        ],
    )
    item = window.scene.blocks["c1"]
    assert f"{item.type_name} {item.settings}" == "Conv2D 6@5x5 s1 p2"
    assert item.shape_text == "6×32×32" and item.params_text == "156 params"
    assert window.scene.blocks["d"].settings == "120"
    assert f"LSTM {window.scene.blocks['l'].settings}" == "LSTM 128 seq bi"
    assert window.scene.wires[("in", "c1")].label == "1×32×32"
    assert key_settings("MaxPool2D", {"kernel_size": 2, "stride": None, "padding": 0}) == "2x2"


def test_drag_from_output_port_to_input_port_adds_edge(window):
    build_chain(window, [("in", "Input", {"shape": [1, 28, 28]})])
    build_chain(window, [("c", "Conv2D", {"filters": 4, "kernel_size": 3})], x0=300, y0=80)
    window.canvas.fit_all()
    start = port_view_pos(window, "in", "out")
    end = port_view_pos(window, "c", "in") + QPoint(8, 9)  # near the port is enough: it snaps
    drag(window, start, end)
    assert window.graph.edges() == [("in", "c", 0)]
    settle(window)
    assert window.scene.wires[("in", "c")].label == "1×28×28"
    assert window.scene.blocks["c"].shape_text == "4×26×26"
    assert window.undo_stack.undoText() == "Connect in → c"
    # and backwards: from an input port to an output port
    build_chain(window, [("d", "Flatten", {})], x0=600, y0=-80)
    window.canvas.fit_all()
    drag(window, port_view_pos(window, "d", "in"), port_view_pos(window, "c", "out"))
    assert ("c", "d", 0) in window.graph.edges()


@pytest.mark.parametrize("case", ["input_target", "taken", "cycle", "shape"])
def test_bad_connection_is_refused_with_the_reason(window, case):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 28, 28]}),
            ("c", "Conv2D", {"filters": 8, "kernel_size": 3}),
        ],
    )
    build_chain(w, [("add", "Add", {}), ("d", "Flatten", {})], x0=0, y0=200)
    w.undo_stack.push(__import__("gui.commands").commands.Connect(w.graph, "in", "add", 0))
    settle(w)
    w.canvas.fit_all()
    before = w.graph.to_dict()
    if case == "input_target":
        start, end = (
            port_view_pos(w, "c", "out"),
            view_pos(w, w.scene.blocks["in"].sceneBoundingRect().center()),
        )
        expect = "takes no input"
    elif case == "taken":
        start, end = port_view_pos(w, "d", "out"), port_view_pos(w, "c", "in")
        expect = "already fed by 'in'"
    elif case == "cycle":
        start, end = port_view_pos(w, "d", "out"), port_view_pos(w, "add", "in", 1)
        expect = "loop"
    else:
        start, end = port_view_pos(w, "c", "out"), port_view_pos(w, "add", "in", 1)
        expect = "equal shape"
    drag(w, start, end)
    assert w.graph.to_dict() == before
    assert w.canvas.feedback.isVisible() and w.canvas.feedback.kind == "error"
    assert expect in w.canvas.feedback.text()
    assert expect in w.statusBar().currentMessage()


def test_dense_after_conv_is_accepted_with_a_one_click_flatten_fix(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 28, 28]}),
            ("c", "Conv2D", {"filters": 8, "kernel_size": 3}),
        ],
    )
    build_chain(w, [("d", "Dense", {"units": 10})], x0=500, y0=0)
    w.canvas.fit_all()
    before = w.graph.to_dict()
    drag(w, port_view_pos(w, "c", "out"), port_view_pos(w, "d", "in"))
    settle(w)
    assert ("c", "d", 0) in w.graph.edges()
    item = w.scene.blocks["d"]
    assert item.problems and "Flatten" in item.toolTip()
    buttons = w.problems.fix_buttons()
    assert len(buttons) == 1
    buttons[0].click()
    settle(w)
    g = w.graph
    assert g.type_of("flatten_1") == "Flatten"
    assert ("c", "flatten_1", 0) in g.edges() and ("flatten_1", "d", 0) in g.edges()
    assert ("c", "d", 0) not in g.edges()
    assert w.analysis.ok
    assert w.undo_stack.undoText() == "Insert Flatten"
    w.undo_stack.undo()
    w.undo_stack.undo()  # the wire
    assert g.to_dict() == before


def test_padding_fix_sets_same_in_one_step(window):
    w = window
    build_chain(
        w,
        [("in", "Input", {"shape": [1, 4, 4]}), ("c", "Conv2D", {"filters": 2, "kernel_size": 3})],
    )
    w.controller.set_option("c", "kernel_size", 5)
    settle(w)
    fixes = [p.fix for p in w.analysis.problems if p.fix]
    assert fixes == [{"kind": "set", "block": "c", "key": "padding", "value": "same"}]
    w.problems.fix_buttons()[0].click()
    settle(w)
    assert w.graph.config_of("c")["padding"] == "same" and w.analysis.ok
    w.undo_stack.undo()
    assert "padding" not in w.graph.config_of("c")


def test_problems_panel_click_selects_and_centres_block(window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [1, 8, 8]})])
    build_chain(w, [("lost", "Dense", {"units": 3})], x0=3000, y0=2000)
    w.canvas.fit_all()
    w.canvas.zoom_by(3.0)
    rows = w.problems.row_blocks()
    assert "lost" in rows
    w.problems.table.cellClicked.emit(rows.index("lost"), 1)
    assert w.selected_blocks() == ["lost"]
    centre = w.canvas.mapToScene(w.canvas.viewport().rect().center())
    assert w.scene.blocks["lost"].sceneBoundingRect().adjusted(-60, -60, 60, 60).contains(centre)
    assert w.scene.blocks["lost"].problems  # outlined red, reason in its tooltip
    assert "not connected" in w.scene.blocks["lost"].toolTip()


def test_moving_blocks_is_one_undo_command_on_release(window):
    w = window
    build_chain(w, [("a", "Input", {"shape": [4]}), ("b", "Dense", {"units": 2})])
    w.canvas.fit_all()
    count = w.undo_stack.count()
    start = view_pos(w, w.scene.blocks["b"].sceneBoundingRect().center() + QPointF(0, 5))
    drag(w, start, start + QPoint(90, 60), steps=12)
    assert w.undo_stack.count() == count + 1
    assert w.undo_stack.undoText() == "Move Dense"
    x, y = w.graph.pos_of("b")
    assert (x, y) != (250, 0) and x % 10 == 0 and y % 10 == 0
    wire = w.scene.wires[("a", "b")]
    assert wire.path.pointAtPercent(1.0) == w.scene.blocks["b"].in_ports[0].scenePos()
    w.undo_stack.undo()
    assert w.graph.pos_of("b") == (250, 0)
    assert w.scene.blocks["b"].pos() == QPointF(250, 0)


def test_select_click_shift_click_rubber_band_and_select_all(window):
    w = window
    build_chain(
        w,
        [
            ("a", "Input", {"shape": [4]}),
            ("b", "Dense", {"units": 2}),
            ("c", "Dense", {"units": 2}),
        ],
    )
    w.canvas.fit_all()
    vp = w.canvas.viewport()

    def centre(n):
        return view_pos(w, w.scene.blocks[n].sceneBoundingRect().center() + QPointF(0, 8))

    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre("a"))
    assert w.selected_blocks() == ["a"]
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, centre("c"))
    assert w.selected_blocks() == ["a", "c"]
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(5, 5))
    assert w.selected_blocks() == []
    r = w.scene.blocks_rect(["a", "b"]).adjusted(-30, -40, 30, 40)
    drag(w, view_pos(w, r.topLeft()), view_pos(w, r.bottomRight()))
    assert w.selected_blocks() == ["a", "b"]
    w.actions.select_all.trigger()
    assert w.selected_blocks() == ["a", "b", "c"]
    w.actions.delete.trigger()
    assert len(w.graph) == 0
    w.undo_stack.undo()
    assert w.graph.edges() == [("a", "b", 0), ("b", "c", 0)]


def test_delete_selected_wire_and_duplicate(window):
    w = window
    build_chain(w, [("a", "Input", {"shape": [4]}), ("b", "Dense", {"units": 2})])
    w.scene.wires[("a", "b")].setSelected(True)
    w.actions.delete.trigger()
    assert w.graph.edges() == []
    w.undo_stack.undo()
    w.scene.select_ids(["a", "b"])
    new = w.actions.duplicate_selection()
    assert len(new) == 2 and len(w.graph) == 4
    assert (new[0], new[1], 0) in w.graph.edges()
    assert w.selected_blocks() == new
    assert w.undo_stack.undoText() == "Duplicate 2 blocks"


def test_copy_and_paste_between_two_windows(make_window):
    w1, w2 = make_window(), make_window()
    build_chain(
        w1,
        [
            ("in", "Input", {"shape": [1, 28, 28]}),
            ("c1", "Conv2D", {"filters": 6, "kernel_size": 5}),
            ("d", "Dense", {"units": 3}),
        ],
    )
    w1.scene.select_ids(["in", "c1"])
    w1.actions.copy.trigger()
    md = QApplication.clipboard().mimeData()
    assert md.hasFormat("application/x-blockprop-fragment+json") and md.hasText()
    assert '"Conv2D"' in md.text()
    w2.actions.paste.trigger()
    settle(w2)
    g2 = w2.graph
    assert sorted(g2.type_of(n) for n in g2.nodes()) == ["Conv2D", "Input"]
    assert g2.config_of("c1") == {"filters": 6, "kernel_size": 5}
    assert g2.edges() == [("in", "c1", 0)]
    assert w2.scene.blocks["c1"].shape_text == "6×24×24"
    # pasting again in the first window gives fresh ids
    w1.actions.paste.trigger()
    assert len(w1.graph) == 5 and len(set(w1.graph.nodes())) == 5
    # cut removes and puts on the clipboard
    w1.scene.select_ids(["d"])
    w1.actions.cut.trigger()
    assert "d" not in w1.graph and '"Dense"' in QApplication.clipboard().text()


def test_zoom_keys_and_fit_to_view(window):
    w = window
    build_chain(
        w,
        [
            (f"b{i}", "Input" if i == 0 else "Dense", {"shape": [4]} if i == 0 else {"units": 4})
            for i in range(12)
        ],
    )
    w.canvas.fit_all()
    vis = w.canvas.mapToScene(w.canvas.viewport().rect()).boundingRect()
    assert vis.contains(w.scene.blocks_rect())
    z = w.canvas.zoom()
    w.actions.zoom_in.trigger()
    assert w.canvas.zoom() == pytest.approx(z * 1.25)
    w.actions.zoom_out.trigger()
    assert w.canvas.zoom() == pytest.approx(z)
    assert w.zoom_label.text() == f"{z * 100:.0f}%"


def test_analysis_runs_once_per_burst(window):
    w = window
    build_chain(
        w, [("in", "Input", {"shape": [4]})] + [(f"d{i}", "Dense", {"units": 4}) for i in range(10)]
    )
    w.scene.select_ids(w.graph.nodes())
    runs = w.live.runs
    new = w.actions.duplicate_selection()  # 11 blocks + 10 wires: 21 graph events
    assert len(new) == 11
    QApplication.processEvents()
    QApplication.processEvents()
    assert w.live.runs == runs + 1


def test_auto_layout_orders_by_depth_in_one_command(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [4]}),
            ("a", "Dense", {"units": 4}),
            ("b", "Dense", {"units": 4}),
        ],
        x0=500,
        y0=300,
        dx=-200,
    )
    w.undo_stack.push(
        __import__("gui.commands").commands.AddBlock(w.graph, "Dense", {"units": 4}, (0, 0), "side")
    )
    w.undo_stack.push(__import__("gui.commands").commands.Connect(w.graph, "in", "side", 0))
    before = w.graph.to_dict()
    w.actions.layout.trigger()
    g = w.graph
    xs = {n: g.pos_of(n)[0] for n in g.nodes()}
    assert xs["in"] < xs["a"] == xs["side"] < xs["b"]
    assert g.pos_of("a")[1] != g.pos_of("side")[1]
    assert w.undo_stack.undoText() == "Auto-layout"
    w.undo_stack.undo()
    assert g.to_dict() == before


def test_locked_canvas_refuses_edits_but_keeps_selection(window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 2})])
    w.scene.select_ids(["d"])
    w.set_locked(True)
    assert w.canvas.banner.isVisible() and w.lock_label.isVisible()
    assert not w.actions.delete.isEnabled() and not w.actions.undo.isEnabled()
    before = w.graph.to_dict()
    drop_block(w, "Dense", QPoint(200, 200))
    w.actions.delete_selection()
    w.controller.set_option("d", "units", 7)
    assert w.graph.to_dict() == before
    w.canvas.fit_all()
    vp = w.canvas.viewport()
    QTest.mouseClick(
        vp,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view_pos(w, w.scene.blocks["in"].sceneBoundingRect().center()),
    )
    assert w.selected_blocks() == ["in"]
    assert w.inspector.block == "in"
    assert all(not e.isEnabled() for e in w.inspector.editors.values())
    w.set_locked(False)
    assert not w.canvas.banner.isVisible() and w.actions.delete.isEnabled()


def test_gradient_badges_tint_blocks_and_show_the_scale(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [4]}),
            ("d", "Dense", {"units": 2}),
            ("e", "Dense", {"units": 2}),
        ],
    )
    w.canvas.set_block_badges({"d": 1e-6, "e": 0.05})
    assert w.scene.blocks["d"].badge == 1e-6 and w.scene.blocks["in"].badge is None
    assert w.canvas.legend.isVisible()
    assert "gradient RMS" in w.scene.blocks["e"].toolTip()
    w.canvas.clear_block_badges()
    assert all(b.badge is None for b in w.scene.blocks.values())
    assert not w.canvas.legend.isVisible()


def test_screenshot_of_a_graph(tmp_path):
    out = tmp_path / "shot.png"
    r = subprocess.run(
        [sys.executable, "app.py", "presets/lenet5.json", "--screenshot", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **__import__("os").environ,
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_CONFIG_HOME": str(tmp_path),
            "HOME": str(tmp_path),
        },
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = subprocess.run(
        [sys.executable, "app.py", str(bad), "--screenshot", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **__import__("os").environ,
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_CONFIG_HOME": str(tmp_path),
            "HOME": str(tmp_path),
        },
    )
    assert r.returncode == 2 and "bad.json" in r.stderr and "not valid JSON" in r.stderr


def test_mime_of_palette_is_the_type_name(window):
    md: QMimeData = window.palette_panel.tree.mimeData([window.palette_panel.items["GRU"]])
    assert bytes(md.data(BLOCK_MIME)).decode() == "GRU"


def test_middle_drag_and_space_drag_pan_without_editing(window):
    w = window
    build_chain(w, [("a", "Input", {"shape": [4]}), ("b", "Dense", {"units": 2})])
    w.canvas.zoom_by(2.0)
    vp = w.canvas.viewport()
    h, v = w.canvas.horizontalScrollBar(), w.canvas.verticalScrollBar()
    before = w.graph.to_dict()
    start = (h.value(), v.value())
    p0 = view_pos(w, w.scene.blocks["b"].sceneBoundingRect().center())
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, p0)
    QTest.mouseMove(vp, p0 + QPoint(-60, -40))
    QTest.mouseRelease(
        vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, p0 + QPoint(-60, -40)
    )
    assert (h.value(), v.value()) == (start[0] + 60, start[1] + 40)
    w.canvas.setFocus()
    QTest.keyPress(w.canvas, Qt.Key.Key_Space)
    assert not w.canvas.isInteractive()
    mid = (h.value(), v.value())
    drag(w, p0, p0 + QPoint(50, 30))
    QTest.keyRelease(w.canvas, Qt.Key.Key_Space)
    assert w.canvas.isInteractive()
    assert (h.value(), v.value()) == (mid[0] - 50, mid[1] - 30)
    assert w.graph.to_dict() == before  # the block under the cursor did not move
