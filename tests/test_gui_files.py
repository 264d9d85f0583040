"""Files through the GUI: save and reopen, the title, the unsaved-changes prompt, bad files,
autosave and crash recovery, dropping a file, presets, recent files, remembered layout."""

from __future__ import annotations

import json
import os

from gui_helpers import build_chain
from PySide6.QtCore import QMimeData, QPoint, QUrl

from engine.graph import load_graph
from gui import files as files_mod
from gui.preset_dialog import PresetDialog, list_presets

LENET_ISH = [
    ("in", "Input", {"shape": [1, 16, 16]}),
    ("c1", "Conv2D", {"filters": 4, "kernel_size": 5, "padding": 2}),
    ("a1", "Activation", {"fn": "tanh"}),
    ("p", "MaxPool2D", {"kernel_size": 2}),
    ("f", "Flatten", {}),
    ("d", "Dense", {"units": 10}),
]

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def test_save_and_reopen_gives_the_same_graph(make_window, tmp_path):
    w = make_window()
    build_chain(w, LENET_ISH)
    w.controller.set_meta("name", "small")
    path = tmp_path / "net.json"
    w.files.ask_save_path = lambda: str(tmp_path / "net")  # the suffix is added
    assert "*" in w.windowTitle() and "Untitled" in w.windowTitle()
    assert w.actions.save.isEnabled()
    w.actions.save.trigger()
    assert path.exists()
    assert w.windowTitle() == "net.json — BlockProp"
    w2 = make_window()
    assert w2.files.open(str(path))
    assert w2.graph.to_dict() == w.graph.to_dict()
    assert w2.windowTitle() == "net.json — BlockProp"
    assert load_graph(path).to_dict() == w.graph.to_dict()
    assert w2.files.recent_files()[0] == str(path.resolve())
    # an edit marks the title, undoing it clears the mark
    w2.controller.set_option("d", "units", 12)
    assert w2.windowTitle() == "net.json* — BlockProp"
    w2.undo_stack.undo()
    assert w2.windowTitle() == "net.json — BlockProp"


def test_unsaved_changes_prompt_cancel_discard_save(window, tmp_path):
    w = window
    build_chain(w, LENET_ISH[:2])
    before = w.graph.to_dict()
    asked = []
    w.files.ask_save_changes = lambda: asked.append(1) or "cancel"
    assert not w.files.new()
    assert w.graph.to_dict() == before and len(asked) == 1
    w.files.ask_save_changes = lambda: "discard"
    assert w.files.new()
    assert len(w.graph) == 0 and not w.files.modified()
    build_chain(w, LENET_ISH[:1])
    w.files.ask_save_changes = lambda: "save"
    w.files.ask_save_path = lambda: str(tmp_path / "kept.json")
    assert w.files.new()
    assert load_graph(tmp_path / "kept.json").nodes() == ["in"]
    assert len(w.graph) == 0


def test_close_with_unsaved_changes_can_be_cancelled(make_window):
    w = make_window()
    build_chain(w, LENET_ISH[:1])
    w.files.ask_save_changes = lambda: "cancel"
    assert not w.close()
    assert w.isVisible()
    w.files.ask_save_changes = lambda: "discard"
    assert w.close()


def test_bad_file_shows_its_problem_and_loses_nothing(window, tmp_path):
    w = window
    build_chain(w, LENET_ISH[:2])
    before = w.graph.to_dict()
    bad = tmp_path / "broken.json"
    bad.write_text(
        json.dumps(
            {"format": "blockprop-graph", "version": 1, "nodes": [{"id": "x", "type": "Conv9D"}]}
        )
    )
    w.files.ask_save_changes = lambda: "discard"
    assert not w.files.open(str(bad))
    title, text = w.errors[-1]
    assert "broken.json" in text and "Conv9D" in text
    assert w.graph.to_dict() == before
    (tmp_path / "nojson.json").write_text("{")
    assert not w.files.load(str(tmp_path / "nojson.json"))
    assert "not valid JSON" in w.errors[-1][1]


def test_autosave_and_recovery_after_a_crash(make_window, gui_env):
    w = make_window()
    build_chain(w, LENET_ISH)
    w.files.autosave()
    rec = w.files.recovery_path
    assert rec.exists() and rec.parent == gui_env / "recovery"
    data = json.loads(rec.read_text())
    assert data["graph"] == w.graph.to_dict()
    # The process "crashes": its recovery file is left behind by a process no longer running.
    crashed = rec.parent / "recovery-999999-deadbeef.json"
    crashed.write_text(json.dumps({**data, "pid": 2**22 + 12345}))
    w2 = make_window()
    offered = []
    w2.files.ask_restore = lambda d: offered.append(d) or True
    assert w2.files.offer_recovery()
    assert len(offered) == 1 and offered[0]["graph"] == data["graph"]
    assert w2.graph.to_dict() == data["graph"]
    assert w2.files.modified() and "*" in w2.windowTitle()
    assert not crashed.exists()
    # a file of a window of this process that is still open is never offered
    assert files_mod.find_recoveries(rec.parent) == [] or all(
        p != rec for p, _ in files_mod.find_recoveries(rec.parent)
    )
    # saving removes this window's recovery file; a clean close removes it too
    w2.files.autosave()
    assert w2.files.recovery_path.exists()
    w2.files.ask_save_path = lambda: str(gui_env / "recovered.json")
    assert w2.files.save()
    assert not w2.files.recovery_path.exists()
    w.files.ask_save_changes = lambda: "discard"
    w.close()
    assert not rec.exists()


def test_autosave_timer_is_a_minute_and_clean_graph_writes_nothing(window):
    assert window.files.timer.interval() == 60_000 and window.files.timer.isActive()
    window.files.autosave()
    assert not window.files.recovery_path.exists()


def test_declined_recovery_is_deleted(make_window, gui_env):
    d = gui_env / "recovery"
    d.mkdir(exist_ok=True)
    f = d / "recovery-4242424-x.json"
    f.write_text(
        json.dumps(
            {
                "format": "blockprop-recovery",
                "version": 1,
                "pid": 2**22 + 7,
                "saved_at": 1.0,
                "path": None,
                "graph": {"format": "blockprop-graph", "version": 1},
            }
        )
    )
    w = make_window()
    w.files.ask_restore = lambda data: False
    assert not w.files.offer_recovery()
    assert not f.exists() and len(w.graph) == 0


def test_dropping_a_json_file_opens_it(window, tmp_path):
    w = window
    src = tmp_path / "dropped.json"
    g = load_graph(os.path.join(os.path.dirname(__file__), "..", "presets", "lenet5.json"))
    g.save(src)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(src))])
    from test_gui_canvas import send_drop

    send_drop(w.canvas.viewport(), md, QPoint(100, 100))
    assert w.graph.to_dict() == g.to_dict()
    assert w.windowTitle() == "dropped.json — BlockProp"


def test_open_preset_dialog_lists_presets_and_opens_one(window, tmp_path, monkeypatch):
    w = window
    folder = tmp_path / "presets"
    folder.mkdir()
    g = load_graph(os.path.join(os.path.dirname(__file__), "..", "presets", "lenet5.json"))
    g.description = "The classic digit reader."
    g.save(folder / "lenet5.json")
    (folder / "broken.json").write_text("[1, 2")
    (folder / "lenet5.runs.json").write_text("{}")  # runs of the preset opened by path
    infos = list_presets(folder)
    assert [i.name for i in infos] == ["broken", "LeNet-5"]
    assert infos[1].description == "The classic digit reader." and infos[1].blocks == 13
    dlg = PresetDialog(folder)
    assert dlg.list.count() == 2
    assert dlg.selected_path() == str(folder / "lenet5.json")
    assert "digit reader" in dlg.detail.text()
    dlg.close()
    w.choose_preset = lambda: str(folder / "lenet5.json")
    assert w.open_preset()
    assert len(w.graph) == 13 and w.files.path is None
    assert w.windowTitle() == "LeNet-5 (preset) — BlockProp"


def test_dock_layout_is_remembered(make_window):
    w = make_window()
    w._docks["problems"].hide()
    w.close()
    w2 = make_window()
    assert not w2._docks["problems"].isVisible()
    assert w2._docks["palette"].isVisible()
    w2.reset_panels()
    assert w2._docks["problems"].isVisible()
