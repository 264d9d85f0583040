"""Trained models in the panels after a real run: the gradient bars name the run's block
types, Try it classifies a drawing and generates text with the trained weights; every preset's
settings survive the Training dock, and an autoencoder preset trains in the app.
"""

import numpy as np
import pytest
from training_support import (
    ROOT,
    chain,
    replay,
    run_to_end,
    show_all_panels,
    tiny_rnn,
)

import engine

# fixtures: gui_env (settings files in tmp_path); train_window, main_window
pytest_plugins = ["gui_support", "training_support"]


def test_gradient_bars_name_the_types_of_the_run_shown(qtbot, train_window):
    """Same block ids, another type (RNN, then LSTM): the bars' labels follow the run."""
    w = train_window(tiny_rnn("RNN"))
    ctrl = w.training
    show_all_panels(ctrl)
    labels = []
    for kind in ("RNN", "LSTM"):
        w.graph.replace_with(tiny_rnn(kind))
        assert ctrl.start()
        run_to_end(qtbot, ctrl)
        ticks = ctrl.panels["gradients"].p_bars.getAxis("bottom")._tickLevels[0]
        labels.append(ticks[0][1])
    assert labels == ["rnn\nRNN", "rnn\nLSTM"]


def test_try_it_after_a_run_uses_the_trained_weights(qtbot, train_window):
    from test_gui_panels import SEVEN

    from gui.training import prep

    g = chain(
        "digits mlp",
        [("Input", {"shape": [64]}, "in"), ("Dense", {"units": 10}, "out")],
        {
            "dataset": {"name": "digits", "flatten": True},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 64,
            "epochs": 2,
            "seed": 0,
        },
    )
    w = train_window(g)
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    panel = ctrl.panels["try_it"]
    panel.pad.set_strokes(SEVEN)
    ctrl.redraw(force=True)
    model = replay(ctrl.current).model
    x, _ = prep.digits_sample(SEVEN, {"flatten": True})
    np.testing.assert_array_equal(panel.input, x)
    np.testing.assert_allclose(panel.probs, prep.softmax(model.forward(x[None])[0]), rtol=1e-5)


def test_try_it_generates_the_trained_char_models_text(qtbot, train_window):
    from gui.training import prep

    g = engine.load_graph(ROOT / "presets" / "char_lstm.json")
    g.set_meta("training", {**g.training, "epochs": 1})
    w = train_window(g)
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    run_to_end(qtbot, ctrl, timeout=60_000)
    panel = ctrl.panels["try_it"]
    assert panel.stack.currentWidget() is panel.text_page
    panel.prompt.setText("the ")
    panel.temperature.setValue(0.0)  # greedy: the most likely character each time
    panel.length.setValue(30)
    panel.generate()
    qtbot.waitUntil(lambda: panel._gen_left == 0, timeout=20_000)
    text = panel.output.toPlainText()
    # the same text from the model trained again here
    run = ctrl.current
    model = replay(run).model
    vocab, shape = run.info["vocab"], tuple(run.info["input_shape"])
    expected = "the "
    for _ in range(30):
        p = prep.next_char_probs(
            lambda x: model.forward(x, training=False),
            vocab,
            expected,
            shape[0],
            len(shape) == 2,
            0.0,
        )
        expected += vocab[int(np.argmax(p))]
    assert text == expected


@pytest.mark.parametrize("path", sorted((ROOT / "presets").glob("*.json")), ids=lambda p: p.stem)
def test_the_training_dock_keeps_every_presets_settings(qtbot, path):
    """Shown in the dock and read back, a preset's settings train the same way (an option the
    dock had no editor for, such as an autoencoder's "target": "input", was once dropped)."""
    from gui.training.controls import TrainingDock
    from gui.training.training_controller import same_settings

    dock = TrainingDock()
    qtbot.addWidget(dock)
    training = engine.load_graph(path).training
    dock.set_spec(training)
    assert same_settings(dock.spec(), training), (dock.spec(), training)


def test_an_autoencoder_preset_trains_in_the_app_and_starting_edits_nothing(qtbot, main_window):
    g = engine.load_graph(ROOT / "presets" / "autoencoder.json")
    g.set_meta("training", {**g.training, "epochs": 1})
    w = main_window
    w.show()
    w.graph.replace_with(g)
    qtbot.wait(20)
    w.undo_stack.clear()
    w.setWindowModified(False)
    ctrl = w.training
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    assert ctrl.current.status == "finished", ctrl.dock.error.text()
    assert w.graph.training["dataset"]["target"] == "input"
    assert w.undo_stack.count() == 0 and not w.isWindowModified()  # Start changed no setting
    assert ctrl.current.info["task"] == "regression"
