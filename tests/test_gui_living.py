"""Living in the app (issue 19): a graph that does not fit its data is a problem with a fix and
Start stays off while problems stand; stale state after Open and Undo; a finished run's
metrics; the room the canvas gets; small things (paste, Save As names, presets listing)."""

from __future__ import annotations

import pytest
from gui_helpers import build_chain, settle

pytest_plugins = ["gui_support", "training_support"]

LENET_BY_HAND = [
    ("in", "Input", {"shape": [1, 32, 32]}),
    ("c1", "Conv2D", {"filters": 6, "kernel_size": 5}),
    ("r1", "Activation", {"fn": "relu"}),
    ("p1", "MaxPool2D", {"kernel_size": 2}),
    ("f", "Flatten", {}),
    ("d", "Dense", {"units": 10}),
]


def wait_data_checked(qtbot, w, predicate) -> None:
    """The data set loads in a worker thread; the Problems list follows when it has."""
    qtbot.waitUntil(lambda: (settle(w), bool(predicate(w.live.analysis)))[1], timeout=20000)


def test_lenet_on_8x8_digits_is_a_problem_with_a_fix_and_start_is_off(qtbot, make_window):
    w = make_window(data_check=True)
    build_chain(w, LENET_BY_HAND)
    dock = w.training.dock
    dock.set_spec({"dataset": {"name": "digits"}, "loss": "cross_entropy"})
    w.training._follow_batch()
    wait_data_checked(qtbot, w, lambda a: a.problems)
    (p,) = w.live.analysis.problems
    assert p.block == "in" and "1x8x8" in p.message and "1x32x32" in p.message
    assert p.fix == {"kind": "training", "dataset": {"resize": [32, 32], "pad": None}}
    # Start is off everywhere, with the reason next to it
    assert not dock.start_button.isEnabled() and not w.training.actions["Start"].isEnabled()
    assert not w.training.actions["Step one batch"].isEnabled()
    assert "problem" in dock.blocked_label.text() and dock.blocked_label.isVisibleTo(dock)
    assert "1x8x8" in w.training.actions["Start"].toolTip()
    assert w.training.start() is False  # F5 or the menu while off: nothing starts
    # one click on the Problems list's Fix: the data set is resized, one undoable step
    (button,) = w.problems.fix_buttons()
    button.click()
    assert w.graph.training["dataset"]["resize"] == [32, 32]
    assert dock.spec()["dataset"]["resize"] == [32, 32]
    wait_data_checked(qtbot, w, lambda a: not a.problems)
    assert dock.start_button.isEnabled() and w.training.actions["Start"].isEnabled()
    assert not dock.blocked_label.isVisibleTo(dock)
    w.undo_stack.undo()
    assert dock.spec()["dataset"].get("resize") is None
    wait_data_checked(qtbot, w, lambda a: a.problems)
    assert not dock.start_button.isEnabled()


def test_mlp_on_images_gets_flatten_and_wrong_class_count_gets_units(qtbot, make_window):
    w = make_window(data_check=True)
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [64]}),
            ("h", "Dense", {"units": 32}),
            ("a", "Activation", {"fn": "relu"}),
            ("out", "Dense", {"units": 3}),
            ("sm", "Activation", {"fn": "softmax"}),
        ],
    )
    w.training.dock.set_spec({"dataset": {"name": "digits"}})
    w.training._follow_batch()
    wait_data_checked(qtbot, w, lambda a: a.problems)
    (p,) = w.live.analysis.problems
    assert p.fix == {"kind": "training", "dataset": {"flatten": True}}
    w.controller.apply_fix(p.fix)
    wait_data_checked(qtbot, w, lambda a: a.problems and a.problems[0].block == "sm")
    (p,) = w.live.analysis.problems
    assert "10 classes" in p.message
    assert p.fix == {"kind": "set", "block": "out", "key": "units", "value": 10}
    w.controller.apply_fix(p.fix)
    wait_data_checked(qtbot, w, lambda a: not a.problems)


def test_an_input_alone_is_not_ready_to_train(qtbot, window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [2]})])
    (p,) = w.live.analysis.problems
    assert p.block == "in" and "alone" in p.message
    assert "ready to train" not in w.problems.header.text()
    assert not w.training.dock.start_button.isEnabled()


def test_open_another_graph_clears_the_run_box(qtbot, window):
    w = window
    dock = w.training.dock
    dock.set_progress(675, 675, "run 1 finished: 675 steps")
    dock.show_result("run 1", "finished", "val acc 97.0%")
    dock.show_error("something failed")
    import engine

    w.graph.replace_with(engine.Graph())
    assert dock.rate.text() == "idle" and dock.progress.value() == 0
    assert dock.result.isHidden() and dock.error.isHidden()


def test_after_undo_the_status_bar_tells_the_state_now(qtbot, window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 2})])
    w.controller.set_option("d", "units", 3)
    w.statusBar().showMessage("Connected, with a problem you can fix in one click", 5000)
    w.actions.undo.trigger()
    text = w.statusBar().currentMessage()
    assert text.startswith("Undone: ") and "no problems" in text
    w.actions.undo.trigger()  # the Dense's wire
    w.actions.undo.trigger()  # the Dense
    assert "1 problem, the first:" in w.statusBar().currentMessage()
    assert "alone" in w.statusBar().currentMessage()


def test_toolbar_does_not_move_as_the_undo_text_changes(qtbot, window):
    w = window
    button = w.toolbar.widgetForAction(w.actions.undo)
    build_chain(w, [("in", "Input", {"shape": [4]})])
    width = button.width()
    build_chain(w, [("a_block_with_a_long_name", "Dense", {"units": 2})], x0=300)
    assert "a_block_with_a_long_name" in w.actions.undo.text() or "Dense" in w.actions.undo.text()
    assert button.text() == "Undo" and button.width() == width
    assert "Undo " in button.toolTip()


def test_paste_lands_clear_of_the_original_and_is_selected(qtbot, window):
    from gui.canvas.style import BLOCK_H

    w = window
    build_chain(w, [("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 2})])
    w.scene.select_ids(["d"])
    assert w.actions.copy_selection()
    assert w.statusBar().currentMessage() == "Copied 1 block"
    (new,) = w.actions.paste_clipboard()
    assert w.scene.selected_ids() == [new]
    y0, y1 = w.graph.pos_of("d")[1], w.graph.pos_of(new)[1]
    assert y1 - y0 >= BLOCK_H  # clear of it, not 4 px away
    (again,) = w.actions.paste_clipboard()  # and the next one clear of both
    assert w.graph.pos_of(again)[1] - y1 >= BLOCK_H


def test_counts_say_1_block_not_1_blocks(qtbot, window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [4]})])
    assert w.counts_label.text().startswith("1 block ·") and "1 problem" in w.counts_label.text()


def test_a_finished_run_shows_its_final_metrics_and_best_epoch(qtbot, main_window):
    from training_support import mlp_xor, run_to_end

    from gui.training.result import best_epoch

    w = main_window
    w.graph.replace_with(mlp_xor(epochs=4))
    w.show()
    ctrl = w.training
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    run = ctrl.current
    last, best = run.epochs[-1], best_epoch(run.epochs)
    assert best["val_acc"] == max(e["val_acc"] for e in run.epochs)
    text = ctrl.dock.result.text()
    assert ctrl.dock.result.isVisibleTo(ctrl.dock)
    assert f"val acc {100 * last['val_acc']:.1f}%" in text
    assert f"val loss {last['val_loss']:.3g}" in text
    assert f"best epoch {best['epoch']}" in text
    status = w.statusBar().currentMessage()
    assert status.startswith(f"{run.name}: ") and f"val acc {100 * last['val_acc']:.1f}%" in status


@pytest.mark.parametrize("size", [(1280, 720), (1366, 768)])
def test_small_screens_give_the_canvas_its_share(qtbot, make_window, tmp_path, size):
    """1280x720 and 1366x768 are first-class: the canvas gets about half the height and most
    of the width, the empty Problems list makes room, the window can go narrower."""
    from pathlib import Path

    from PySide6.QtWidgets import QApplication

    w = make_window(show=False)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    preset = Path(__file__).parent.parent / "presets" / "lenet5.json"
    assert w.files.load(str(preset), as_preset=True)
    for _ in range(5):
        QApplication.processEvents()
    shot = tmp_path / f"window_{size[0]}x{size[1]}.png"
    assert w.grab().save(str(shot))  # looked at while writing this test
    assert w.size().toTuple() == size
    assert not w._docks["problems"].isVisible()  # "no problems" is in the status bar
    c = w.canvas
    assert c.height() >= 0.45 * size[1] and c.width() >= 0.55 * size[0]
    assert w.minimumSizeHint().width() <= 1024
    # a problem brings the list back; the status bar's count links to it
    w.controller.set_option("c1", "kernel_size", 40)
    settle(w)
    assert w._docks["problems"].isVisible()
    assert "href" in w.counts_label.text()
    w.undo_stack.undo()
    settle(w)
    assert not w._docks["problems"].isVisible()


def test_save_as_proposes_a_clean_file_name_and_recovery_names_the_graph():
    from gui.files import file_stem, recovery_text

    assert file_stem("Optimizers: Adam") == "optimizers_adam"
    assert file_stem("LeNet-5 (1998)") == "lenet_5_1998"
    assert file_stem("Déjà vu / ../etc") == "deja_vu_etc"
    assert file_stem("") == file_stem(None) == file_stem("???") == "graph"
    text = recovery_text(
        {
            "saved_at": 0,
            "path": "/home/s/nets/my net.json",
            "graph": {"name": "My <b>net</b>\nsecond line", "nodes": [{}, {}]},
        }
    )
    assert 'the graph "My <b>net</b> second line" (file my net.json, 2 blocks)' in text
    hostile = recovery_text({"saved_at": "x", "path": 3, "graph": {"name": ["x"], "nodes": 5}})
    assert '"untitled" (never saved)' in hostile
    preset = recovery_text({"preset": "/p/presets/optimizers_adam.json", "graph": {"name": "A"}})
    assert "(from the preset optimizers_adam)" in preset


def test_padlock_is_drawn_and_palette_group_names_fit(qtbot, window):
    from PySide6.QtGui import QFontMetrics

    w = window
    img = w.lock_icon.pixmap().toImage()
    assert not img.isNull() and img.width() >= 14
    inked = sum(img.pixelColor(x, y).alpha() > 0 for x in range(img.width()) for y in range(14))
    assert inked > 40  # a drawn glyph, not an empty box
    tree = w.palette_panel.tree
    for fam, group in w.palette_panel.groups.items():
        assert group.toolTip(0) == fam
        fm = QFontMetrics(group.font(0))
        room = tree.viewport().width() - tree.indentation() - 2 * tree.iconSize().width()
        assert all(fm.horizontalAdvance(line) <= room for line in group.text(0).splitlines())


def test_gradient_legend_goes_where_no_block_is(qtbot, window):
    from PySide6.QtCore import QRect

    w = window
    w.resize(1200, 800)
    # a diagonal: the blocks fill the bottom-right and top-left corners of the fitted view
    build_chain(w, [(f"b{i}", "Dense", {"units": 2}) for i in range(4)], dx=250)
    for i in range(4):
        w.graph.move_node(f"b{i}", (i * 250, i * 160))
    settle(w)
    w.canvas.fit_all()
    w.canvas.set_block_badges({"b0": 1e-3, "b3": 1e-2})
    legend = w.canvas.legend
    assert legend.isVisible()
    area = w.canvas.viewport().geometry()
    seen = QRect(legend.x() - area.left(), legend.y() - area.top(), legend.width(), legend.height())
    assert w.scene.is_free(w.canvas.mapToScene(seen).boundingRect())
    assert legend.x() > area.center().x() and legend.y() < area.center().y()  # top right


def test_plot_ticks_stay_readable_in_short_plots_and_at_the_first_step(qtbot):
    import numpy as np
    import pyqtgraph as pg

    from gui.training.panels.base import MIN_LABEL_PX, LogAxis, sticky_range

    axis = LogAxis("left")
    for size in (40, 80, 300):  # pixels
        for spacing, _ in axis.tickSpacing(0.0, 1.0, size):
            assert spacing * size >= MIN_LABEL_PX
    axis.setLogMode(False, True)
    assert all(s * 60 / 4 >= MIN_LABEL_PX for s, _ in axis.tickSpacing(-4.0, 0.0, 60))
    # the loss plot after one step: a frame of 10% of the value, ticks like 2.3 not 2.3254700
    plot = pg.PlotItem()
    sticky_range(plot, np.array([1.0]), np.array([2.3254700899]))
    lo, hi = plot._bp_y
    assert hi - lo >= 0.1 * 2.3
    ticks = LogAxis("left").tickValues(lo, hi, 200)
    labels = LogAxis("left").tickStrings(ticks[0][1], 1.0, ticks[0][0])
    assert all(len(t) <= 5 for t in labels), labels


def test_empty_runs_plot_says_what_to_do(qtbot, train_window):
    from training_support import mlp_xor

    w = train_window(mlp_xor())
    ctrl = w.training
    panel = ctrl.panels["runs"]
    ctrl.panel_docks["runs"].show()
    ctrl.panel_docks["runs"].raise_()
    ctrl.runs.clear()
    ctrl.runs_version += 1
    ctrl.redraw(force=True)
    panel.draw(None)
    assert "No runs yet" in panel.plot.titleLabel.text
    assert not panel.plot.getAxis("left").isVisible() and not panel.legend.isVisible()
