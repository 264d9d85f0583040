"""The project-wide run history (issue 19 item 1, issue 18 section 3): runs of different
graphs stay listed and overlay on shared axes; the history files are untrusted."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from training_support import run_to_end

from gui.preset_dialog import PRESETS_DIR
from gui.training import history as hist
from gui.training.run_data import RunData
from gui.training.runs_file import FORMAT, VERSION, run_to_dict, runs_path

pytest_plugins = ["gui_support", "training_support"]


def _run(name="r", started=1000.0, blocks=("d1", "d2"), steps=30) -> RunData:
    run = RunData(1, name, {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 8})
    run.started = started
    run.set_blocks(list(blocks), {b: "Dense" for b in blocks})
    run.add_steps(
        [
            {
                "step": i + 1,
                "epoch": 1,
                "loss": 1.0 / (i + 1),
                "lr": 0.1,
                "grad_rms": {b: 0.1 / (k + 1) for k, b in enumerate(blocks)},
            }
            for i in range(steps)
        ]
    )
    run.add_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_acc": 0.8})
    run.set_time_grads({"d1": np.array([1e-6, 1e-3, 1.0])})
    run.status = "finished"
    return run


def test_history_keeps_loads_renames_and_deletes_runs(tmp_path):
    h = hist.RunHistory(tmp_path / "h")
    e = h.add(_run("first"), {"name": "XOR", "nodes": []}, "/x/xor.json")
    assert e["graph_name"] == "XOR" and e["final"]["val_acc"] == 0.8
    again = hist.RunHistory(tmp_path / "h")  # a new session reads the index only
    (entry,) = again.entries()
    assert entry["key"] == e["key"] and entry["settings"]["batch_size"] == 8
    run, link = again.load(e["key"], run_id=7)
    assert run.run_id == 7 and link["path"] == "/x/xor.json" and link["graph"]["name"] == "XOR"
    # The per-block gradient history and the BPTT profile come back for the overlays.
    assert run.grads.data().shape == (30, 3)
    assert np.allclose(run.grads.data()[:, 2], 0.05)
    assert np.allclose(run.time_grads_avg["d1"], [1e-6, 1e-3, 1.0])
    again.rename(e["key"], "renamed")
    assert hist.RunHistory(tmp_path / "h").load(e["key"], 1)[0].name == "renamed"
    assert hist.RunHistory(tmp_path / "h").entries()[0]["name"] == "renamed"
    again.delete(e["key"])
    assert hist.RunHistory(tmp_path / "h").entries() == []
    assert not (tmp_path / "h" / f"{e['key']}.json").exists()


def test_history_is_capped_oldest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(hist, "MAX_RUNS", 3)
    h = hist.RunHistory(tmp_path / "h")
    keys = [h.add(_run(f"r{i}", started=1000.0 + i), None, None)["key"] for i in range(5)]
    assert [e["key"] for e in h.entries()] == keys[2:]
    assert sorted(p.stem for p in (tmp_path / "h").glob("*.json") if p.stem != "index") == sorted(
        keys[2:]
    )


def _index(folder, runs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").write_text(
        json.dumps({"format": hist.INDEX_FORMAT, "version": 1, "runs": runs})
    )


def test_hostile_history_files_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "h"
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"format": hist.RUN_FORMAT, "version": 1, "run": {}}))
    # A key that walks out of the folder, a key of the wrong type, wrong field types: skipped.
    _index(
        folder,
        [
            {"key": "../secret", "name": "x"},
            {"key": 5},
            {"key": "ok-1", "name": ["no"]},
            {"key": "ok-2", "settings": "no"},
            {"key": "good", "name": "fine", "settings": {}, "final": {}},
        ],
    )
    h = hist.RunHistory(folder)
    assert [e["key"] for e in h.entries()] == ["good"]
    assert len(h.problems) == 4 and all("skipped" in p for p in h.problems)
    with pytest.raises(ValueError, match="bad run key"):
        h.load("../secret", 1)
    with pytest.raises(ValueError, match="not found"):
        h.load("good", 1)
    # Not JSON, not a history, another version, too large: no runs and one message.
    for text, msg in (
        ("{not json", "cannot read"),
        (json.dumps({"format": "other"}), "not a BlockProp run history"),
        (json.dumps({"format": hist.INDEX_FORMAT, "version": 99}), "not supported"),
        ("[" * 100_000 + "]" * 100_000, "cannot read"),
    ):
        (folder / "index.json").write_text(text)
        h = hist.RunHistory(folder)
        assert h.entries() == [] and msg in h.problems[0], (text[:20], h.problems)
    monkeypatch.setattr(hist, "MAX_INDEX_BYTES", 100)
    (folder / "index.json").write_text(" " * 200 + "{}")
    h = hist.RunHistory(folder)
    assert h.entries() == [] and "the limit of" in h.problems[0]
    # A run file whose curve lies about its columns, or is not a run: refused in one line.
    bad = run_to_dict(_run())
    bad["curve"]["loss"] = bad["curve"]["loss"][:3]
    (folder / "bad.json").write_text(
        json.dumps({"format": hist.RUN_FORMAT, "version": 1, "run": bad})
    )
    with pytest.raises(ValueError, match="differ in length"):
        hist.RunHistory(folder).load("bad", 1)
    (folder / "bad.json").write_text(json.dumps({"format": hist.RUN_FORMAT, "version": 1}))
    with pytest.raises(ValueError, match="must be an object"):
        hist.RunHistory(folder).load("bad", 1)
    if hasattr(os, "mkfifo"):  # a special file never hangs the reader
        os.mkfifo(folder / "fifo.json")
        with pytest.raises(ValueError):
            hist.RunHistory(folder).load("fifo", 1)


def test_history_folder_follows_xdg_and_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv(hist.ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert hist.history_dir() == tmp_path / "xdg" / "blockprop" / "runs"
    monkeypatch.setenv(hist.ENV, str(tmp_path / "mine"))
    assert hist.history_dir() == tmp_path / "mine"


def _train_preset(qtbot, w, name, epochs=1):
    w.choose_preset = lambda: str(PRESETS_DIR / f"{name}.json")
    assert w.open_preset()
    qtbot.wait(20)
    ctrl = w.training
    ctrl.dock.set_spec({**ctrl.dock.spec(), "epochs": epochs})
    assert ctrl.start(), ctrl.dock.error.text()
    run_to_end(qtbot, ctrl, timeout=60_000)
    return ctrl.runs[-1]


def test_runs_of_two_graphs_overlay_and_compare(qtbot, main_window):
    w = main_window
    w.show()
    ctrl = w.training
    a = _train_preset(qtbot, w, "optimizers_sgd")
    b = _train_preset(qtbot, w, "optimizers_adam")
    assert a.status == b.status == "finished"
    assert ctrl.runs[-2:] == [a, b] and a.graph_name != b.graph_name
    panel = ctrl.panels["runs"]
    ctrl.panel_docks["runs"].show()
    ctrl.panel_docks["runs"].raise_()
    # Select both rows, Compare: exactly these two are overlaid, on one axis.
    panel.tree.clearSelection()
    for r in (a, b):
        panel._items[r.run_id].setSelected(True)
    panel.compare_button.click()
    assert panel.checked == {a.run_id, b.run_id}
    for metric in ("loss per step (smoothed)", "validation accuracy per epoch"):
        panel.metric_box.setCurrentText(metric)
        panel.refresh(ctrl.current, force=True)
        assert set(panel.curves) == {a.run_id, b.run_id}
        assert all(len(x) > 0 for x, _ in panel.curves.values())
    title = panel.plot.titleLabel.text
    assert a.graph_name in title and b.graph_name in title
    panel.metric_box.setCurrentText("gradient RMS of each block per step")
    panel.refresh(ctrl.current, force=True)
    assert len(panel.curves) == len(a.blocks) + len(b.blocks)
    assert panel.plot.getViewBox().state["logMode"][1]  # decades: a log axis for all
    # Both runs are in the history; a new window (a new session) lists them, lazily.
    entries = hist.RunHistory().entries()
    assert {e["key"] for e in entries} >= {a.history_key, b.history_key}
    # The table sorts by a metric (numbers as numbers).
    col = panel.tree.headerItem().text
    names = [col(i) for i in range(panel.tree.columnCount())]
    panel.tree.sortByColumn(names.index("val acc"), Qt.SortOrder.DescendingOrder)
    first = panel.tree.topLevelItem(0).run
    assert first.final_metrics()["val_acc"] == max(r.final_metrics()["val_acc"] for r in (a, b))


def test_old_runs_files_still_load_and_join_the_history(qtbot, main_window, tmp_path):
    from training_support import mlp_xor

    g = tmp_path / "old.json"
    mlp_xor().save(g)
    d = run_to_dict(_run("from an old file", started=1234.5))
    runs_path(g).write_text(json.dumps({"format": FORMAT, "version": VERSION, "runs": [d]}))
    w = main_window
    assert w.files.open(str(g))
    qtbot.wait(50)
    names = [r.name for r in w.training.runs]
    assert names.count("from an old file") == 1
    assert [e["name"] for e in hist.RunHistory().entries()] == ["from an old file"]
    assert w.files.open(str(g))  # opened again: not listed (nor kept) twice
    qtbot.wait(50)
    assert [r.name for r in w.training.runs].count("from an old file") == 1
    assert len(hist.RunHistory().entries()) == 1


def test_a_new_session_lists_the_history_and_reads_curves_when_compared(qtbot, train_window):
    from training_support import mlp_xor

    h = hist.RunHistory()
    h.add(_run("sgd", started=1.0), {"name": "A"}, None)
    h.add(_run("adam", started=2.0), {"name": "B"}, None)
    w = train_window(mlp_xor())
    ctrl = w.training
    old = [r for r in ctrl.runs if r.history_key]
    assert [r.name for r in old] == ["sgd", "adam"] and not any(r.loaded for r in old)
    assert old[0].final_metrics()["val_acc"] == 0.8  # the table reads the index alone
    panel = ctrl.panels["runs"]
    panel.compare_selected([r.run_id for r in old])
    panel.metric_box.setCurrentText("BPTT profile (recent mean)")
    panel.refresh(None, force=True)
    assert all(r.loaded for r in old) and len(panel.curves) == 2
    assert np.allclose(panel.curves["sgd: d1"][1], [1e-6, 1e-3, 1.0])
    panel._items[old[1].run_id].setText(0, "adam, renamed")  # edited in the table
    assert old[1].name == "adam, renamed"
    assert [e["name"] for e in hist.RunHistory().entries()] == ["sgd", "adam, renamed"]
    panel._items[old[0].run_id].setSelected(True)
    panel.tree.setCurrentItem(panel._items[old[0].run_id])
    panel.delete_button.click()
    assert [e["name"] for e in hist.RunHistory().entries()] == ["adam, renamed"]


def test_another_graphs_runs_overlay_in_gradients_only_when_compared(qtbot, main_window, tmp_path):
    """Issue 19: after opening graph B, B's Gradients panel draws none of graph A's BPTT
    profiles (A's run was ticked on starting, not chosen) until A's run is compared."""
    from training_support import mlp_xor

    w = main_window
    w.show()
    ctrl = w.training
    a = _train_preset(qtbot, w, "hello_rnn")
    assert a.time_grads_avg, "the RNN run has BPTT profiles"
    g = tmp_path / "b.json"
    mlp_xor().save(g)
    assert w.files.open(str(g))
    qtbot.wait(50)
    ctrl.dock.set_spec({**ctrl.dock.spec(), "epochs": 1})
    assert ctrl.start(), ctrl.dock.error.text()
    run_to_end(qtbot, ctrl, timeout=60_000)
    b = ctrl.runs[-1]
    assert b is not a and a.run_id in ctrl.panels["runs"].checked  # still ticked in Runs
    grads = ctrl.panels["gradients"]
    assert a not in ctrl.runlist.overlay_runs()
    assert not [n for n, _v, _o in grads._bptt_series(b) if a.name in n]
    ctrl.panels["runs"].compare_selected([a.run_id, b.run_id])  # chosen: now it overlays
    assert a in ctrl.runlist.overlay_runs()
    assert [n for n, _v, _o in grads._bptt_series(b) if a.name in n]


def test_opening_another_graph_reframes_the_runs_plot(qtbot, main_window, tmp_path):
    """Issue 19 item 6: the Runs plot's axis ranges do not stay where they were zoomed for the
    previous graph; opening another graph autoranges it to what is shown."""
    from training_support import mlp_xor

    w = main_window
    w.show()
    ctrl = w.training
    run = _run("sgd", started=1.0, steps=30)
    run.run_id = 1000
    ctrl.runs.append(run)
    ctrl.runs_version += 1
    ctrl.panel_docks["runs"].show()
    ctrl.panel_docks["runs"].raise_()
    panel = ctrl.panels["runs"]
    panel.compare_selected([run.run_id])
    panel.metric_box.setCurrentText("loss per step (smoothed)")
    panel.refresh(None, force=True)
    x, _y = next(iter(panel.curves.values()))
    vb = panel.plot.getViewBox()
    vb.setXRange(1000, 2000, padding=0)  # zoomed far away: autorange is off
    assert not vb.autoRangeEnabled()[0]
    g = tmp_path / "other.json"
    mlp_xor().save(g)
    assert w.files.open(str(g))
    qtbot.wait(50)
    panel.refresh(None, force=True)
    vb.updateAutoRange()
    assert all(vb.autoRangeEnabled())
    (x0, x1), _ = vb.viewRange()
    assert x0 <= float(x.min()) and float(x.max()) <= x1 < 1000
