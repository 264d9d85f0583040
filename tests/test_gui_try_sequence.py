"""The Loss panel's baseline and Try it on sequence tasks (adding, timed spikes): a fresh
sequence of the run's own data set, the network's output beside the target, the data seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_gui_panels import Ctrl, _run

import engine
from engine.data import load_dataset
from gui.training.run_data import RunData

PRESETS = Path(__file__).resolve().parent.parent / "presets"


def test_the_baseline_is_a_dashed_line_with_its_value_in_the_legend(qtbot):
    from gui.training.panels.loss import LossPanel

    run = _run(10)
    run.info["meta"] = {"baseline_mse": 1 / 6}
    panel = LossPanel(Ctrl(run))
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()

    def legend_texts():
        return [label.text for _, label in panel.legend.items]

    assert panel.refresh(run)
    assert panel.baseline.isVisible() and panel.baseline.value() == pytest.approx(1 / 6)
    assert legend_texts().count("baseline 0.167") == 1
    panel.log_box.setChecked(True)
    panel.refresh(run)
    assert panel.baseline.value() == pytest.approx(np.log10(1 / 6))
    assert legend_texts().count("baseline 0.167") == 1  # redrawn, not added twice
    plain = _run(10)
    panel.ctrl.current = plain
    panel.refresh(plain)
    assert not panel.baseline.isVisible()
    assert not any(t.startswith("baseline") for t in legend_texts())


@pytest.mark.parametrize("preset", ["peephole_lstm", "adding_lstm"])
def test_try_it_runs_the_network_on_a_fresh_sequence_of_its_data_set(qtbot, preset):
    from engine.model import build_model
    from gui.training.panels.try_it import TryItPanel

    graph = engine.load_graph(PRESETS / f"{preset}.json")
    model = build_model(graph, seed=2)
    spec = graph.training["dataset"]
    run = RunData(1, "run 1", {"dataset": spec})
    T = spec["T"]
    run.info = {"task": "regression", "input_shape": (T, 1 if preset == "peephole_lstm" else 2)}
    ctrl = Ctrl(run)
    ctrl.forward = lambda x: model.forward(x)
    panel = TryItPanel(ctrl)
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()
    panel.refresh(run)
    page = panel.sequence_page
    assert panel.stack.currentWidget() is page
    X, y = page.sample
    fresh = load_dataset({**spec, "n": 1}, seed=page._seed)
    np.testing.assert_array_equal(X, fresh.X[0])
    np.testing.assert_array_equal(y, fresh.y[0])
    expected = model.forward(fresh.X[:1])[0]
    np.testing.assert_allclose(page.pred.ravel(), expected.ravel(), rtol=1e-6)
    x_out, y_out = page.output.getData()
    np.testing.assert_allclose(y_out, expected.ravel(), rtol=1e-6)
    title = page.p_out.titleLabel.text
    if preset == "adding_lstm":  # one answer after the last step
        assert list(x_out) == [T - 1] and f"target {y[0]:.3g}" in title
        assert "value" in page.p_in.titleLabel.text and "marker" in page.p_in.titleLabel.text
    else:
        assert len(x_out) == T and "MSE" in title and "spike" in title
    head, rows = panel.table()
    assert head[-2:] == ["target", "output"] and len(rows) == T
    first = X.copy()
    page.new_sequence()
    assert page.number == 2 and not np.array_equal(page.sample[0], first)
    # a network whose output does not fit the target: a message, not a traceback
    ctrl.forward = lambda x: np.zeros((len(x), 3), np.float32)
    page.new_sequence()
    assert "does not match" in page.p_out.titleLabel.text


def test_try_it_never_draws_with_the_runs_own_data_seed():
    from gui.training.panels.try_sequence import FIRST_SEED, sequence_seed

    seeds = [sequence_seed(k, FIRST_SEED + 2) for k in range(1, 6)]
    assert FIRST_SEED + 2 not in seeds and len(set(seeds)) == 5
    assert [sequence_seed(k, 0) for k in (1, 2)] == [FIRST_SEED, FIRST_SEED + 1]
