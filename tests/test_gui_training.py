"""Training in the app: short real runs through the worker (a training process relayed by a
QThread) fill every panel with the model's own numbers, checked against the same run replayed
in this process (training is deterministic for a seed); pause/resume/step/stop work; closing
mid-run does not hang, even when the process is frozen; a crashed process fails only its run;
the event loop stays responsive while LeNet-5 trains.

Every window lives in a fixture that stops training and deletes the window at teardown
(pytest-qt's addWidget keeps only a weak reference, and a surviving window can make PySide6
abort at interpreter exit).
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

import engine
import gui.training as training
from engine.live import LiveRun
from gui.training.images import normalise_symmetric

pytest_plugins = ["gui_support"]  # fixtures: gui_env (settings files in tmp_path)

ROOT = Path(__file__).resolve().parent.parent

# --- graphs -------------------------------------------------------------------------------------


def chain(name: str, nodes: list, spec: dict) -> engine.Graph:
    g = engine.Graph(name)
    prev = None
    for i, (t, cfg, nid) in enumerate(nodes):
        g.add_node(t, cfg, pos=(i * 160, 0), node_id=nid)
        if prev:
            g.add_edge(prev, nid)
        prev = nid
    g.set_meta("training", spec)
    return g


def mlp_xor(epochs: int = 3) -> engine.Graph:
    return chain("mlp", [("Input", {"shape": [2]}, "in"), ("Dense", {"units": 8}, "d1"),
                         ("Activation", {"fn": "tanh"}, "a1"), ("Dense", {"units": 2}, "d2")],
                 {"dataset": {"name": "xor", "repeat": 40, "noise": 0.1},
                  "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": 0.01},
                  "batch_size": 16, "epochs": epochs, "seed": 0})


def tiny_cnn(epochs: int = 2) -> engine.Graph:
    return chain("tiny cnn", [
        ("Input", {"shape": [1, 8, 8]}, "in"),
        ("Conv2D", {"filters": 4, "kernel_size": 3}, "c1"), ("Activation", {"fn": "relu"}, "a1"),
        ("Flatten", {}, "flat"), ("Dense", {"units": 10}, "out")],
        {"dataset": {"name": "digits"}, "loss": "cross_entropy",
         "optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 128, "epochs": epochs,
         "seed": 0})  # fmt: skip


def tiny_rnn(kind: str = "LSTM", epochs: int = 1, n: int = 300, T: int = 10) -> engine.Graph:
    return chain(f"{kind} adding", [
        ("Input", {"shape": [T, 2]}, "in"), (kind, {"hidden_size": 6}, "rnn"),
        ("Dense", {"units": 1}, "out")],
        {"dataset": {"name": "adding", "T": T, "n": n}, "loss": "mse",
         "optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 30, "epochs": epochs,
         "seed": 0})  # fmt: skip


def lenet5(batch_size: int = 32, epochs: int = 5) -> engine.Graph:
    return chain("LeNet-5", [
        ("Input", {"shape": [1, 32, 32]}, "in"),
        ("Conv2D", {"filters": 6, "kernel_size": 5}, "c1"), ("Activation", {"fn": "tanh"}, "a1"),
        ("AvgPool2D", {"kernel_size": 2}, "s2"),
        ("Conv2D", {"filters": 16, "kernel_size": 5}, "c3"), ("Activation", {"fn": "tanh"}, "a3"),
        ("AvgPool2D", {"kernel_size": 2}, "s4"), ("Flatten", {}, "flat"),
        ("Dense", {"units": 120}, "c5"), ("Activation", {"fn": "tanh"}, "a5"),
        ("Dense", {"units": 84}, "f6"), ("Activation", {"fn": "tanh"}, "a6"),
        ("Dense", {"units": 10}, "out")],
        {"dataset": {"name": "digits", "resize": [32, 32]}, "loss": "cross_entropy",
         "optimizer": {"name": "adam", "lr": 0.002}, "batch_size": batch_size, "epochs": epochs,
         "seed": 0})  # fmt: skip


# --- a minimal window with the contract's API (the real MainWindow is tested below too) -------


class FakeCanvas(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.badges: dict = {}
        self.cleared = 0

    def set_block_badges(self, badges: dict) -> None:
        self.badges = dict(badges)

    def clear_block_badges(self) -> None:
        self.badges = {}
        self.cleared += 1


class FakeWindow(QMainWindow):
    selectionChanged = Signal(list)

    def __init__(self, graph: engine.Graph, path: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("fake[*]")
        self.graph = graph
        self.path = path
        self.canvas = FakeCanvas()
        self.setCentralWidget(self.canvas)
        self.locks: list[bool] = []
        self._menus: dict = {}
        self.toolbar = self.addToolBar("main")

    def set_locked(self, locked: bool) -> None:
        self.locks.append(bool(locked))

    def selected_blocks(self) -> list[str]:
        return []

    def add_panel_dock(self, dock, area) -> None:
        self.addDockWidget(area, dock)

    def menu(self, name: str):
        if name not in self._menus:
            self._menus[name] = self.menuBar().addMenu(name)
        return self._menus[name]


def dispose(w: QMainWindow) -> None:
    ctrl = getattr(w, "training", None)
    if ctrl is not None:
        assert ctrl.shutdown(2000)
    w.close()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


@pytest.fixture
def make_window(qtbot):
    """make_window(graph, path=None) -> a shown FakeWindow with training attached."""
    made: list[QMainWindow] = []

    def make(graph: engine.Graph, path: str | None = None, size=(1500, 950)) -> FakeWindow:
        w = FakeWindow(graph, path)
        training.attach(w)
        w.resize(*size)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        dispose(w)


def show_all_panels(ctrl) -> None:
    for dock in ctrl.panel_docks.values():
        dock.show()
        dock.raise_()


def run_to_end(qtbot, ctrl, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=timeout)
    ctrl.redraw(force=True)


def replay(run, steps: int | None = None) -> LiveRun:
    """``run`` trained again here, from its graph and settings, to the end or for ``steps``
    steps: its ``trainer`` and ``model`` hold what the training process had then."""
    live = LiveRun(run.info["graph"], run.settings, lambda kind, payload: None)
    if steps is None:
        live.run()
        return live
    live._prepare()
    for ev in live.trainer.run():
        if ev["event"] == "step" and ev["step"] == steps:
            break
    return live


# --- the tests ----------------------------------------------------------------------------------


def test_short_run_fills_loss_and_gradients(qtbot, make_window):
    w = make_window(mlp_xor())
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


def test_filters_show_current_weights_live(qtbot, make_window):
    w = make_window(tiny_cnn(epochs=3))
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start(paused=True)
    qtbot.waitUntil(lambda: ctrl.current.status == "running", timeout=10_000)
    ctrl.step()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) == 1 and ctrl.current.filters_step == 1,
                    timeout=10_000)
    for k in range(2):  # paused: the weights stand still, the picture must equal them
        ctrl.redraw(force=True)
        panel = ctrl.panels["filters"]
        weight = replay(ctrl.current, steps=k + 1).model.params["c1.weight"]
        assert panel.shown_block == "c1"
        img = panel.image.image
        for o, (r, c) in enumerate(panel.corners):
            np.testing.assert_allclose(img[r:r + 3, c:c + 3], normalise_symmetric(weight[o, 0]),
                                       rtol=1e-6, atol=1e-7)
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


def test_lstm_gates_and_bptt_profile(qtbot, make_window):
    w = make_window(tiny_rnn("LSTM"))
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


def test_pause_step_resume_stop(qtbot, make_window):
    w = make_window(mlp_xor(epochs=2000))
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
    assert ctrl.dock.rate.text() == f"run 1 stopped: {n} steps"  # not the last rate, stale


def test_step_when_idle_starts_a_paused_run(qtbot, make_window):
    w = make_window(mlp_xor(epochs=50))
    ctrl = w.training
    ctrl.step()
    qtbot.waitUntil(lambda: ctrl.current is not None and ctrl.current.steps.total == 1,
                    timeout=10_000)
    qtbot.wait(200)
    assert ctrl.current.steps.total == 1 and ctrl.dock.state == "paused"


def test_invalid_settings_do_not_start(qtbot, make_window):
    w = make_window(mlp_xor())
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


def test_closing_mid_run_stops_within_a_second(qtbot, make_window):
    w = make_window(tiny_cnn(epochs=500))
    ctrl = w.training
    show_all_panels(ctrl)
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    t = QElapsedTimer()
    t.start()
    assert w.close()
    assert t.elapsed() < 1000
    assert not ctrl.thread.running()


def test_runs_are_saved_next_to_the_graph_and_reopened(qtbot, make_window, tmp_path):
    path = tmp_path / "net.json"
    g = mlp_xor(epochs=2)
    g.save(path)
    w = make_window(g, str(path))
    ctrl = w.training
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.05)
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    saved = tmp_path / "net.runs.json"
    assert saved.exists()
    w2 = make_window(engine.load_graph(path), str(path))
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


def test_event_loop_stays_responsive_while_lenet5_trains(qtbot, make_window):
    """A 10 ms QTimer in the GUI thread while LeNet-5 trains with its panels on screen: the
    largest gap between its ticks is the longest the event loop stalled."""
    w = make_window(lenet5(batch_size=32))
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
    print(f"\nLeNet-5: max event-loop gap {max(gaps):.0f} ms over {len(gaps)} ticks, "
          f"{steps} steps; longest redraw {ctrl.max_stall_ms:.0f} ms {ctrl.draw_ms}")
    # The goal is 50 ms. With training in its own process, benchmarks/gui_training_overhead.py
    # (the app's own event loop, these three panels) measured a largest gap of 31-36 ms on a
    # quiet 2-core machine and 50-110 ms while other work shared it; under pytest, with other
    # work on the machine, 70-135 ms. The bound leaves room for such noise and still fails a
    # GUI that waits for training or a redraw of several hundred milliseconds.
    assert max(gaps) <= 400


@pytest.fixture
def main_window(qtbot, gui_env):
    """The real MainWindow (settings in tmp_path), closed the way gui_support closes it."""
    from gui.main_window import MainWindow

    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    yield w
    assert w.training.shutdown(2000)
    w.close()
    # Empty the undo stack while the window is whole: QUndoStack's destructor clears it and
    # the signals that emits would reach the window's half-deleted parts.
    w.undo_stack.clear()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


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
        replay(ctrl.current).trainer.last_grad_rms)
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


def test_a_missing_data_file_is_refused_before_starting(qtbot, make_window, tmp_path):
    w = make_window(mlp_xor())
    ctrl = w.training
    ctrl.dock.set_spec({**w.graph.training, "dataset": {"name": "csv"}})
    assert not ctrl.start()  # the csv data set needs its "path"
    assert "path" in ctrl.dock.error.text() and w.locks == []
    ctrl.dock.use_file("csv", str(tmp_path / "nowhere.csv"))
    assert ctrl.start()  # the loader names the file it cannot find
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=10_000)
    assert "nowhere.csv" in ctrl.dock.error.text() and ctrl.runs == []


def test_a_hung_training_process_is_ended_when_the_window_closes(qtbot, make_window):
    w = make_window(tiny_cnn(epochs=500))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    proc = ctrl.thread.worker.process
    os.kill(proc.pid, signal.SIGSTOP)  # frozen: it can no longer read "stop"
    t = QElapsedTimer()
    t.start()
    assert w.close()
    assert t.elapsed() < 1500
    assert not ctrl.thread.running()
    proc.join(2)
    assert proc.exitcode is not None  # ended, not left behind


def test_a_crashed_training_process_fails_the_run_not_the_app(qtbot, make_window):
    w = make_window(tiny_cnn(epochs=500))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    os.kill(ctrl.thread.worker.process.pid, signal.SIGKILL)  # as the kernel's OOM killer would
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=5000)
    run = ctrl.current
    assert run.status == "failed"
    assert "training process ended unexpectedly" in ctrl.dock.error.text()
    assert w.locks[-1] is False and ctrl.dock.state == "idle"
    # what arrived before the crash is kept, and the app trains again
    assert len(run.steps) > 2
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 0, timeout=10_000)
    ctrl.stop()
    run_to_end(qtbot, ctrl, timeout=5000)
    assert ctrl.current.status == "stopped"


def test_one_warm_process_serves_the_windows_runs(qtbot, make_window):
    w = make_window(mlp_xor(epochs=1))
    ctrl = w.training
    ctrl.prewarm()  # what the app does after its window shows
    pid = ctrl.process.proc.pid
    for lr in (0.01, 0.05):
        ctrl.dock.optimizer_form.editors["lr"].setValue(lr)
        assert ctrl.start()
        run_to_end(qtbot, ctrl)
        assert ctrl.current.status == "finished"
        assert ctrl.thread.worker.process.pid == pid
    # the second run is the second run's own (not a late message of the first)
    assert ctrl.runs[1].settings["optimizer"]["lr"] == 0.05
    assert ctrl.runs[1].steps.last()[3] == pytest.approx(0.05)
    proc = ctrl.process.proc
    w.close()  # the window's process ends with it
    proc.join(5)
    assert proc.exitcode == 0


def test_gradient_bars_name_the_types_of_the_run_shown(qtbot, make_window):
    """Same block ids, another type (RNN, then LSTM): the bars' labels follow the run."""
    w = make_window(tiny_rnn("RNN"))
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


def test_try_it_after_a_run_uses_the_trained_weights(qtbot, make_window):
    from test_gui_panels import SEVEN

    from gui.training import prep

    g = chain("digits mlp", [("Input", {"shape": [64]}, "in"), ("Dense", {"units": 10}, "out")],
              {"dataset": {"name": "digits", "flatten": True}, "loss": "cross_entropy",
               "optimizer": {"name": "adam", "lr": 0.01}, "batch_size": 64, "epochs": 2,
               "seed": 0})
    w = make_window(g)
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


def test_cancelling_the_save_prompt_keeps_the_run_going(qtbot, main_window):
    w = main_window
    w.show()
    w.graph.replace_with(tiny_cnn(epochs=500))
    ctrl = w.training
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.02)  # an unsaved edit: closing asks
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    w.files.ask_save_changes = lambda: "cancel"
    assert not w.close()  # the user chose Cancel: the window stays, and so does the run
    n = len(ctrl.current.steps)
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > n + 2, timeout=10_000)
    assert ctrl.active is ctrl.current and ctrl.thread.running()
    w.files.ask_save_changes = lambda: "discard"
    assert w.close()
    assert not ctrl.thread.running()


def test_try_it_generates_the_trained_char_models_text(qtbot, make_window):
    from gui.training import prep

    g = engine.load_graph(ROOT / "presets" / "char_lstm.json")
    g.set_meta("training", {**g.training, "epochs": 1})
    w = make_window(g)
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
        p = prep.next_char_probs(lambda x: model.forward(x, training=False), vocab, expected,
                                 shape[0], len(shape) == 2, 0.0)
        expected += vocab[int(np.argmax(p))]
    assert text == expected


@pytest.mark.parametrize("path", sorted((ROOT / "presets").glob("*.json")), ids=lambda p: p.stem)
def test_the_training_dock_keeps_every_presets_settings(qtbot, path):
    """Shown in the dock and read back, a preset's settings train the same way (an option the
    dock had no editor for, such as an autoencoder's "target": "input", was once dropped)."""
    from gui.training.controller import same_settings
    from gui.training.controls import TrainingDock

    dock = TrainingDock()
    qtbot.addWidget(dock)
    training = engine.load_graph(path).training
    dock.set_spec(training)
    assert same_settings(dock.spec(), training), (dock.spec(), training)


def test_an_autoencoder_preset_trains_in_the_app_and_starting_edits_nothing(qtbot,
                                                                           main_window):
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
