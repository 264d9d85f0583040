"""Runs in the app end rightly (issue 13): a graph's runs file holds the runs it trained, a shipped
preset opened by path is a copy that is never written, closing during a run asks first and
keeps the stopped run, and a graph's relative data paths are found from its folder."""

from __future__ import annotations

import json

import numpy as np
from training_support import ROOT, answer_stop_prompts, mlp_xor, run_to_end, tiny_cnn

import engine
from gui.preset_dialog import PRESETS_DIR
from gui.training.runs_file import runs_path

# fixtures: gui_env (settings files in tmp_path); train_window, main_window
pytest_plugins = ["gui_support", "training_support"]


def _presets_untouched():
    """The presets folder as shipped: graph files only (no runs file) and their bytes."""
    return {str(p): p.read_bytes() for p in sorted(PRESETS_DIR.rglob("*")) if p.is_file()}


def _train(qtbot, w, epochs=2):
    ctrl = w.training
    ctrl.dock.set_spec({**ctrl.dock.spec(), "epochs": epochs})
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    assert ctrl.current is not None, ctrl.dock.error.text()  # a run that failed to start
    return ctrl.current


def test_runs_of_a_preset_are_not_written_into_the_next_opened_graph(qtbot, main_window, tmp_path):
    w = main_window
    w.show()
    presets = _presets_untouched()
    other = tmp_path / "other.json"
    mlp_xor().save(other)
    w.choose_preset = lambda: str(PRESETS_DIR / "xor.json")
    assert w.open_preset()
    run = _train(qtbot, w)
    assert run.status == "finished" and w.training.runs == [run]
    w.files.ask_save_changes = lambda: "discard"  # the epochs edit
    assert w.files.open(str(other))
    qtbot.wait(50)  # the deferred reload too
    assert not runs_path(other).exists()
    # The preset's run stays listed (issue 19: runs are compared across graphs), the panels
    # show no run of another graph.
    assert w.training.runs == [run] and w.training.current is None
    # Its own run is saved next to it, and only that one.
    mine = _train(qtbot, w)
    saved = json.loads(runs_path(other).read_text())["runs"]
    assert [r["name"] for r in saved] == [mine.name] and w.training.runs == [run, mine]
    assert _presets_untouched() == presets


def test_save_as_still_takes_the_runs_of_an_unsaved_graph_along(qtbot, main_window, tmp_path):
    w = main_window
    w.show()
    w.choose_preset = lambda: str(PRESETS_DIR / "xor.json")
    assert w.open_preset()
    run = _train(qtbot, w)
    w.files.ask_save_path = lambda: str(tmp_path / "mine.json")
    assert w.files.save()
    saved = json.loads(runs_path(tmp_path / "mine.json").read_text())["runs"]
    assert [r["name"] for r in saved] == [run.name]
    assert w.training.runs == [run]


def test_a_shipped_preset_opened_by_path_is_a_copy(qtbot, main_window, monkeypatch):
    """./dev.sh app presets/xor.json: Ctrl+S asks where (Save As), training writes nothing
    into presets/."""
    w = main_window
    w.show()
    presets = _presets_untouched()
    monkeypatch.chdir(ROOT)
    try:
        assert w.files.load("presets/xor.json")  # what gui.main does with the argument
        assert w.files.path is None and w.files.preset == "XOR (2-2-1 sigmoid)"
        assert w.windowTitle() == "XOR (2-2-1 sigmoid) (preset) — BlockProp"
        assert "presets/xor.json" not in " ".join(w.files.recent_files())
        run = _train(qtbot, w)
        assert run.status == "finished"
        asked = []
        w.files.ask_save_path = lambda: asked.append(1)  # Cancel in the Save As dialog
        w.actions.save.trigger()  # Ctrl+S
        assert asked == [1]
    finally:
        stray = PRESETS_DIR / "xor.runs.json"
        leaked = stray.exists()
        stray.unlink(missing_ok=True)
    assert not leaked
    assert _presets_untouched() == presets


def test_closing_during_a_run_asks_and_keeps_the_stopped_run(qtbot, main_window, tmp_path):
    w = main_window
    w.show()
    path = tmp_path / "net.json"
    tiny_cnn(epochs=500).save(path)
    assert w.files.load(str(path))
    ctrl = w.training
    ctrl.dock.optimizer_form.editors["lr"].setValue(0.02)  # an unsaved edit: closing asks
    assert ctrl.start()
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > 2, timeout=10_000)
    # Cancel: the window stays, and so does the run; the save prompt was not reached.
    answer_stop_prompts(w, False)
    w.files.ask_save_changes = lambda: (_ for _ in ()).throw(AssertionError("asked"))
    assert not w.close()
    assert w.stop_prompts == [False] and w.isVisible()
    n = len(ctrl.current.steps)
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > n + 2, timeout=10_000)
    # Stop and close, then Cancel in "Save changes?": both prompts work, the run goes on.
    answer_stop_prompts(w, True)
    saves = []
    w.files.ask_save_changes = lambda: saves.append(1) or "cancel"
    assert not w.close()
    assert w.stop_prompts == [True] and saves == [1]
    n = len(ctrl.current.steps)
    qtbot.waitUntil(lambda: len(ctrl.current.steps) > n + 2, timeout=10_000)
    assert ctrl.active is ctrl.current and ctrl.thread.running()
    # Stop and close, Save: the run is stopped and kept next to the graph.
    w.files.ask_save_changes = lambda: "save"
    assert w.close()
    assert not ctrl.thread.running()
    saved = json.loads(runs_path(path).read_text())["runs"]
    assert len(saved) == 1 and saved[0]["status"] == "stopped"
    assert len(saved[0]["curve"]["step"]) > 4
    assert engine.load_graph(path).training["optimizer"]["lr"] == 0.02


def test_closing_an_idle_window_asks_nothing_about_training(qtbot, train_window):
    w = train_window(mlp_xor(epochs=1))
    assert w.training.start()
    run_to_end(qtbot, w.training)
    assert w.close()
    assert w.stop_prompts == []


def test_the_app_finds_relative_data_paths_from_the_graph_folder(
    qtbot, main_window, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    project.mkdir()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)
    np.savez(project / "data.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    g = mlp_xor(epochs=1)
    g.set_meta("training", {**g.training, "dataset": {"name": "npz", "path": "data.npz"}})
    g.save(project / "g.json")
    monkeypatch.chdir(tmp_path)  # not the graph's folder
    w = main_window
    w.show()
    assert w.files.load(str(project / "g.json"))
    run = _train(qtbot, w, epochs=1)
    assert run.status == "finished", run.end
    assert run.settings["dataset"]["path"] == "data.npz"  # the graph keeps it relative


def test_the_stop_prompt_names_where_the_run_is_kept(qtbot, train_window, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    seen = []

    def answer(button):
        box = QApplication.activeModalWidget()
        seen.append((box.text(), box.informativeText()))
        next(b for b in box.buttons() if b.text().replace("&", "") == button).click()

    for path, button, want in (
        (None, "Cancel", False),
        (str(tmp_path / "net.json"), "Stop and close", True),
    ):
        w = train_window(mlp_xor(), path)
        QTimer.singleShot(50, lambda b=button: answer(b))
        assert type(w.training).ask_stop_training(w.training) is want  # the real dialog
    assert seen[0][0] == "Stop the training and close the window?"
    assert "no file yet" in seen[0][1] and "Save As" in seen[0][1]
    assert "next to net.json" in seen[1][1]
