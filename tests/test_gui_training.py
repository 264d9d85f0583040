"""Training in the app: short real runs through the worker (a training process relayed by a
QThread) fill every panel with the model's own numbers, checked against the same run replayed
in this process (training is deterministic for a seed); pause/resume/step/stop work; runs are
saved and reopened; closing mid-run does not hang; the event loop stays responsive while
LeNet-5 trains. Helpers and fixtures: training_support.py.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from training_support import (
    lenet5,
    mlp_xor,
    replay,
    run_to_end,
    show_all_panels,
    tiny_cnn,
    tiny_rnn,
)

import engine
from gui.training.images import normalise_symmetric

# fixtures: gui_env (settings files in tmp_path); train_window, main_window
pytest_plugins = ["gui_support", "training_support"]


# --- the tests ----------------------------------------------------------------------------------


def test_short_run_fills_loss_and_gradients(qtbot, train_window):
    w = train_window(mlp_xor())
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    assert w.locks == [True]
    run_to_end(qtbot, ctrl)
    run = ctrl.current
    trainer = replay(run).trainer
    assert run.status == "finished" and w.locks == [True, False]
    n_steps = math.ceil(len(trainer.train_data[0]) / 16) * 3
    # the loss curve has every step's point, with the trainer's losses
    x, y = ctrl.panels["loss"].raw.getData()
    assert list(x) == list(range(1, n_steps + 1))
    assert len(run.epochs) == 3
    assert np.isfinite(y).all()
    ex, ey = ctrl.panels["loss"].va_loss.getData()
    assert list(ex) == [1, 2, 3]
    assert ey[-1] == pytest.approx(trainer.history[-1]["val_loss"])
    # the gradient bars show the Trainer's numbers (last step), also on the canvas
    bars = ctrl.panels["gradients"]
    assert bars.values == pytest.approx(trainer.last_grad_rms, rel=1e-12)
    assert set(bars.values) == {"d1", "d2"}
    opts = bars.bars.opts
    heights = 10 ** (np.asarray(opts["y0"]) + np.asarray(opts["height"]))
    assert heights == pytest.approx([trainer.last_grad_rms[b] for b in ("d1", "d2")], rel=1e-9)
    assert w.canvas.badges == pytest.approx(trainer.last_grad_rms)
    # the history lines hold every step
    hx, _ = bars.lines["d1"].getData()
    assert len(hx) == n_steps
    # settings went into the graph's training part
    assert w.graph.training["optimizer"]["lr"] == 0.01
    # a graph edit clears the badges
    w.graph.add_node("Dense", {"units": 3}, node_id="extra")
    assert w.canvas.badges == {} and w.canvas.cleared >= 1
    # the confusion matrix counts the validation set
    cm = ctrl.panels["confusion"].matrix
    assert cm.shape == (2, 2) and cm.sum() == len(trainer.val_data[0])
    # exports write the numbers shown
    header, rows = ctrl.panels["loss"].table()
    assert header[0] == "step" and len(rows) == n_steps


def test_filters_show_current_weights_live(qtbot, train_window):
    w = train_window(tiny_cnn(epochs=3))
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start(paused=True)
    qtbot.waitUntil(lambda: ctrl.current.status == "running", timeout=10_000)
    ctrl.step()
    qtbot.waitUntil(
        lambda: len(ctrl.current.steps) == 1 and ctrl.current.filters_step == 1, timeout=10_000
    )
    for k in range(2):  # paused: the weights stand still, the picture must equal them
        ctrl.redraw(force=True)
        panel = ctrl.panels["filters"]
        weight = replay(ctrl.current, steps=k + 1).model.params["c1.weight"]
        assert panel.shown_block == "c1"
        img = panel.image.image
        for o, (r, c) in enumerate(panel.corners):
            np.testing.assert_allclose(
                img[r : r + 3, c : c + 3], normalise_symmetric(weight[o, 0]), rtol=1e-6, atol=1e-7
            )
        assert np.isnan(img[3, :]).all()  # the gap between tile rows
        if k == 0:
            ctrl.step()
            qtbot.waitUntil(lambda: ctrl.current.filters_step == 2, timeout=10_000)
    ctrl.resume()
    run_to_end(qtbot, ctrl)
    final_model = replay(ctrl.current).model
    final = final_model.params["c1.weight"]
    np.testing.assert_allclose(ctrl.panels["filters"].weight, final)
    # activations of a validation sample: 4 maps of 6x6 from the model itself
    acts = ctrl.panels["activations"]
    acts.follow("c1")
    ctrl.redraw(force=True)
    assert acts.output.shape == (4, 6, 6)
    x = ctrl.current.info["val_X"][0:1]
    expected = final_model.layers["c1"].forward(x)[0]
    np.testing.assert_allclose(acts.output, expected, rtol=1e-5, atol=1e-6)
    # the confusion panel's samples: the final model's predictions, wrong ones in red
    conf = ctrl.panels["confusion"]
    X, y = ctrl.current.info["val_X"][:12], ctrl.current.info["val_y"][:12]
    pred = final_model.forward(X).argmax(axis=1)
    assert [text.split(" ")[0] for text, _ in conf.sample_labels] == [str(p) for p in pred]
    assert [colour == "#1a7f37" for _, colour in conf.sample_labels] == list(pred == y)
    assert conf.matrix.sum() == len(replay(ctrl.current).trainer.val_data[0])


def test_lstm_gates_and_bptt_profile(qtbot, train_window):
    w = train_window(tiny_rnn("LSTM"))
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    trainer = replay(ctrl.current).trainer
    grads = ctrl.panels["gradients"]
    assert set(grads.profiles) == {"rnn"}
    np.testing.assert_allclose(grads.profiles["rnn"], trainer.last_time_grads["rnn"], rtol=1e-6)
    assert grads.profiles["rnn"].shape == (10,)
    acts = ctrl.panels["activations"]
    acts.follow("rnn")
    acts.sample.setValue(2)
    ctrl.redraw(force=True)
    assert set(acts.gates) >= {"i", "f", "g", "o"}
    layer = trainer.model.layers["rnn"]
    trainer.model.forward(ctrl.current.info["val_X"][2:3])
    for g in "ifgo":
        assert acts.gates[g].shape == (10, 6)
        np.testing.assert_allclose(acts.gates[g], layer.gates[g][0], rtol=1e-5, atol=1e-6)


def test_pause_step_resume_stop(qtbot, train_window):
    w = train_window(mlp_xor(epochs=2000))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 5, timeout=10_000)
    ctrl.pause()
    qtbot.wait(150)
    n = ctrl.current.steps.total
    qtbot.wait(200)
    assert ctrl.current.steps.total == n  # paused: no more steps
    assert ctrl.dock.state == "paused"
    ctrl.step()
    qtbot.waitUntil(lambda: ctrl.current.steps.total == n + 1, timeout=5000)
    qtbot.wait(150)
    assert ctrl.current.steps.total == n + 1  # exactly one
    ctrl.set_lr(0.05)
    ctrl.step()
    qtbot.waitUntil(lambda: ctrl.current.steps.total == n + 2, timeout=5000)
    assert ctrl.current.steps.last()[3] == pytest.approx(0.05)  # the lr column
    ctrl.resume()
    qtbot.waitUntil(lambda: ctrl.current.steps.total > n + 20, timeout=5000)
    ctrl.stop()
    run_to_end(qtbot, ctrl, timeout=5000)
    assert ctrl.current.status == "stopped"
    assert w.locks[-1] is False and ctrl.dock.state == "idle"
    assert not ctrl.thread.running()
    n = ctrl.current.steps.total
    # the end is said once, in the result line (not the last rate, stale, nor a repeat)
    assert ctrl.dock.progress.value() == n and not ctrl.dock.rate.isVisibleTo(ctrl.dock)
    assert ctrl.dock.result.text().startswith("<b>run 1 stopped</b>: val acc ")


def test_step_when_idle_starts_a_paused_run(qtbot, train_window):
    w = train_window(mlp_xor(epochs=50))
    ctrl = w.training
    ctrl.step()
    qtbot.waitUntil(
        lambda: ctrl.current is not None and ctrl.current.steps.total == 1, timeout=10_000
    )
    qtbot.wait(200)
    assert ctrl.current.steps.total == 1 and ctrl.dock.state == "paused"


def test_invalid_settings_do_not_start(qtbot, train_window):
    w = train_window(mlp_xor())
    ctrl = w.training
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.0)
    assert not ctrl.start()
    assert "lr" in ctrl.dock.error.text() and ctrl.dock.error.isVisibleTo(ctrl.dock)
    assert ctrl.thread is None and w.locks == [] and ctrl.runs == []
    # a graph problem is reported too
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.01)
    w.graph.remove_edge("a1", "d2")
    assert not ctrl.start()
    assert "problem" in ctrl.dock.error.text()
    # a data set the model cannot take: refused by the worker, the run is not kept
    w.graph.add_edge("a1", "d2")
    ctrl.dock.set_spec({**w.graph.training, "dataset": {"name": "digits"}})
    assert ctrl.start()
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=10_000)
    assert "expects" in ctrl.dock.error.text() and ctrl.runs == []
    assert w.locks == [True, False]


def test_closing_mid_run_stops_within_a_second(qtbot, train_window):
    w = train_window(tiny_cnn(epochs=500))
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    t = QElapsedTimer()
    t.start()
    assert w.close()
    assert t.elapsed() < 1000
    assert not ctrl.thread.running()


def test_runs_are_saved_next_to_the_graph_and_reopened(qtbot, train_window, tmp_path):
    path = tmp_path / "net.json"
    g = mlp_xor(epochs=2)
    g.save(path)
    w = train_window(g, str(path))
    ctrl = w.training
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.05)
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    saved = tmp_path / "net.runs.json"
    assert saved.exists()
    w2 = train_window(engine.load_graph(path), str(path))
    runs = w2.training.runs
    assert [r.name for r in runs] == ["run 1", "run 2"]
    assert runs[1].settings["optimizer"]["lr"] == 0.05
    a, b = ctrl.runs[1].steps.data(), runs[1].steps.data()
    np.testing.assert_allclose(a[:, [0, 2, 4]], b[:, [0, 2, 4]])
    assert runs[1].epochs[-1]["val_acc"] == pytest.approx(ctrl.runs[1].epochs[-1]["val_acc"])
    # compare: tick both, the overlay has one curve per run with the run's points
    panel = w2.training.panels["runs"]
    panel.check(runs[0].run_id)
    panel.check(runs[1].run_id)
    w2.training.redraw(force=True)
    assert set(panel.curves) == {runs[0].run_id, runs[1].run_id}
    x, y = panel.curves[runs[1].run_id]
    np.testing.assert_allclose(y, b[:, 4])
    assert len(panel.legend.items) == 2


def test_event_loop_stays_responsive_while_lenet5_trains(qtbot, train_window):
    """A 10 ms QTimer in the GUI thread while LeNet-5 trains with its panels on screen: the
    largest gap between its ticks is the longest the event loop stalled."""
    w = train_window(lenet5(batch_size=32))
    ctrl = w.training
    for key, dock in ctrl.panel_docks.items():  # three live panels on screen
        dock.setVisible(key in ("loss", "gradients", "filters"))
    gaps: list[float] = []
    clock = QElapsedTimer()
    last = [0]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    assert ctrl.start()
    qtbot.waitUntil(lambda: ctrl.current.status == "running", timeout=20_000)
    qtbot.waitUntil(lambda: len(ctrl.current.steps) >= 1, timeout=20_000)
    clock.start()
    timer.start()
    deadline = time.perf_counter() + 2.5
    while time.perf_counter() < deadline:
        qtbot.wait(20)
    timer.stop()
    steps = len(ctrl.current.steps)
    ctrl.stop()
    run_to_end(qtbot, ctrl, timeout=10_000)
    assert steps >= 2, "LeNet-5 did not train during the measurement"
    assert len(gaps) > 10  # the timer kept firing (each gap is checked below)
    print(
        f"\nLeNet-5: max event-loop gap {max(gaps):.0f} ms over {len(gaps)} ticks, "
        f"{steps} steps; longest redraw {ctrl.drawing.max_stall_ms:.0f} ms {ctrl.drawing.draw_ms}"
    )
    # The goal is 50 ms. With training in its own process, benchmarks/gui_training_overhead.py
    # (the app's own event loop, these three panels) measured a largest gap of 31-36 ms on a
    # quiet 2-core machine and 50-110 ms while other work shared it; under pytest, with other
    # work on the machine, 70-135 ms; with eight processes on the two cores, one gap of 427 ms
    # (the OS scheduling the test elsewhere, not the app). So the bounds are on the typical gap
    # and on how often the loop stalls: a GUI that waited for training (every step is ~20 ms
    # of work in the other process) or redrew for several hundred milliseconds at 25 Hz would
    # stall on most ticks, and one that waited for an epoch would show a gap of seconds.
    gaps_sorted = sorted(gaps)
    assert gaps_sorted[len(gaps) // 2] <= 60, f"median gap {gaps_sorted[len(gaps) // 2]} ms"
    assert sum(g > 250 for g in gaps) <= max(2, len(gaps) // 20), gaps
    assert max(gaps) <= 1500


def test_real_main_window_trains_and_undoes_the_settings(qtbot, main_window):
    w = main_window
    w.resize(1500, 950)
    w.show()
    ctrl = w.training
    w.graph.replace_with(mlp_xor(epochs=2))
    qtbot.wait(20)
    before = dict(w.graph.training)
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.02)
    assert ctrl.start()
    assert w.locked
    run_to_end(qtbot, ctrl)
    assert not w.locked and ctrl.current.status == "finished"
    assert w.graph.training["optimizer"]["lr"] == 0.02
    assert ctrl.panels["gradients"].values == pytest.approx(
        replay(ctrl.current).trainer.last_grad_rms
    )
    w.undo_stack.undo()  # the settings edit is one undoable command
    assert w.graph.training == before
    assert ctrl.dock.spec()["optimizer"]["lr"] == before["optimizer"]["lr"]


def test_closing_the_real_window_mid_run_stops_training(qtbot, main_window):
    w = main_window
    w.show()
    w.graph.replace_with(tiny_cnn(epochs=500))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    t = QElapsedTimer()
    t.start()
    assert w.close()  # "Save changes?" answered "discard" by the fixture
    assert t.elapsed() < 1000
    assert not ctrl.thread.running()
