"""Living in the app (issue 19): a graph that does not fit its data is a problem with a fix and
Start stays off while problems stand; stale state after Open and Undo; a finished run's
metrics; the room the canvas gets; small things (paste, Save As names, presets listing)."""

from __future__ import annotations

from gui_helpers import build_chain, settle

pytest_plugins = ["gui_support"]

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
