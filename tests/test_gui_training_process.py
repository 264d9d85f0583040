"""The training process as the app sees it: a missing data file is refused, a frozen process
is ended when the window closes, a crashed one fails only its run, one warm process serves a
window's runs, and cancelling the save prompt at close keeps the run going.
"""

from __future__ import annotations

import os
import signal

import pytest
from procs import children_of
from PySide6.QtCore import QElapsedTimer
from training_support import (
    mlp_xor,
    run_to_end,
    tiny_cnn,
)

# fixtures: gui_env (settings files in tmp_path); train_window, main_window
pytest_plugins = ["gui_support", "training_support"]


def test_a_missing_data_file_is_refused_before_starting(qtbot, train_window, tmp_path):
    w = train_window(mlp_xor())
    ctrl = w.training
    ctrl.dock.set_spec({**w.graph.training, "dataset": {"name": "csv"}})
    assert not ctrl.start()  # the csv data set needs its "path"
    assert "path" in ctrl.dock.error.text() and w.locks == []
    ctrl.dock.use_file("csv", str(tmp_path / "nowhere.csv"))
    assert ctrl.start()  # the loader names the file it cannot find
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=10_000)
    assert "nowhere.csv" in ctrl.dock.error.text() and ctrl.runs == []


def test_a_hung_training_process_is_ended_when_the_window_closes(qtbot, train_window):
    w = train_window(tiny_cnn(epochs=500))
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


def test_a_crashed_training_process_fails_the_run_not_the_app(qtbot, train_window):
    w = train_window(tiny_cnn(epochs=500))
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


def test_a_run_split_over_two_processes_keeps_going_when_its_helper_dies(
    qtbot, train_window, monkeypatch
):
    monkeypatch.setenv("BLOCKPROP_PROCESSES", "2")  # the training process inherits it
    w = train_window(tiny_cnn(epochs=500))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    assert ctrl.current.info["processes"] == 2
    assert "both cores" in w.statusBar().currentMessage()
    helpers = children_of(ctrl.thread.worker.process.pid)
    assert len(helpers) == 1
    os.kill(helpers[0], signal.SIGKILL)
    n = len(ctrl.current.steps)
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > n + 5, timeout=10_000)  # trains on
    ctrl.stop()
    run_to_end(qtbot, ctrl, timeout=5000)
    assert ctrl.current.status == "stopped"
    message = w.statusBar().currentMessage()
    assert "helper process" in message and "ended unexpectedly" in message


def test_one_warm_process_serves_the_windows_runs(qtbot, train_window):
    w = train_window(mlp_xor(epochs=1))
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
