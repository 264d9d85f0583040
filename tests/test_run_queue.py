"""Runs one after another (issue 19 item 1, issue 18 section 3): "Train the family and
compare" trains every preset of the family and overlays them; an experiment in the app trains
the variants, overlays them and "Apply best settings" writes the best one's in one undo step."""

from __future__ import annotations

from training_support import mlp_xor

from engine import experiment as ex
from engine import families
from gui.preset_dialog import PRESETS_DIR

pytest_plugins = ["gui_support", "training_support"]


def _wait_queue(qtbot, ctrl, timeout=120_000):
    qtbot.waitUntil(lambda: not ctrl.queue.busy and ctrl.active is None, timeout=timeout)
    ctrl.redraw(force=True)


def test_every_family_member_is_a_preset_and_each_finds_its_family():
    for fam, (_what, members) in families.FAMILIES.items():
        assert len(members) >= 3
        for stem in members:
            path = PRESETS_DIR / f"{stem}.json"
            assert path.exists(), path
            import json

            assert families.family_of(json.loads(path.read_text())["name"]) == fam
    assert families.family_of("LeNet-5") is None


def test_train_the_family_runs_every_sibling_and_overlays_them(qtbot, main_window):
    w = main_window
    w.show()
    w.choose_preset = lambda: str(PRESETS_DIR / "init_he.json")
    assert w.open_preset()
    qtbot.wait(20)
    ctrl = w.training
    act = ctrl.queue.actions["family"]
    assert act.isEnabled() and "init" in act.text()
    assert ctrl.queue.train_family(epochs=1) == ""
    assert not act.isEnabled()  # one family at a time
    _wait_queue(qtbot, ctrl)
    names = [r.name for r in ctrl.runs[-3:]]
    members = families.members("init")
    import engine

    assert names == [engine.load_graph(p).name for p in members]
    runs = ctrl.runs[-3:]
    assert all(r.status == "finished" and len(r.epochs) == 1 for r in runs)
    assert all(r.graph_name == r.name for r in runs)  # each linked to its own graph
    assert all(r.graph_token is None for r in runs)  # not the window graph's (no badges)
    panel = ctrl.panels["runs"]
    assert panel.checked == {r.run_id for r in runs}
    panel.refresh(ctrl.current, force=True)
    assert set(panel.curves) == {r.run_id for r in runs}
    # Each sibling trained its own graph (init_zero's weights stay zero: chance accuracy).
    assert len({r.info["graph"]["name"] for r in runs}) == 3
    assert act.isEnabled()


def test_a_graph_outside_the_families_has_no_family_action(qtbot, train_window):
    w = train_window(mlp_xor())
    ctrl = w.training
    assert not ctrl.queue.actions["family"].isEnabled()
    assert "not one of a family" in ctrl.queue.train_family()


def test_experiment_in_the_app_trains_the_variants_and_applies_the_best(
    qtbot, main_window, tmp_path
):
    w = main_window
    w.show()
    path = tmp_path / "net.json"
    mlp_xor(epochs=1).save(path)
    assert w.files.open(str(path))
    qtbot.wait(20)
    ctrl = w.training
    varies = [ex.parse_vary("lr=0.001,0.05"), ex.parse_vary("d1.units=2,12")]
    assert ctrl.queue.run_experiment(varies, epochs=2) == ""
    _wait_queue(qtbot, ctrl)
    runs = ctrl.runs[-4:]
    assert [r.name for r in runs] == [
        "lr=0.001 d1.units=2",
        "lr=0.001 d1.units=12",
        "lr=0.05 d1.units=2",
        "lr=0.05 d1.units=12",
    ]
    assert [r.settings["optimizer"]["lr"] for r in runs] == [0.001, 0.001, 0.05, 0.05]
    assert [r.info["graph"]["nodes"][1]["config"]["units"] for r in runs] == [2, 12, 2, 12]
    assert ctrl.panels["runs"].checked == {r.run_id for r in runs}
    top = ctrl.queue.best()
    accs = [r.final_metrics()["val_acc"] for r in runs]
    assert top.result["val_acc"] == max(accs)
    # The variants are this graph's runs: in the history and in its runs file.
    assert all(r.history_key and r.graph_token == ctrl.runlist.token for r in runs)
    import json

    from gui.training.runs_file import runs_path

    saved = json.loads(runs_path(path).read_text())["runs"]
    assert [r["name"] for r in saved][-4:] == [r.name for r in runs]
    assert ctrl.queue.actions["apply_best"].isEnabled()
    before = w.graph.to_dict()
    assert ctrl.queue.apply_best() == ""
    assert w.graph.config_of("d1")["units"] == top.settings["d1.units"]
    assert w.graph.training["optimizer"]["lr"] == top.settings["lr"]
    assert ctrl.dock.spec()["optimizer"]["lr"] == top.settings["lr"]
    w.undo_stack.undo()  # one step takes it all back
    assert w.graph.to_dict() == before


def test_experiment_dialog_refuses_a_bad_line_naming_block_and_key(qtbot):
    from gui.training.experiment_dialog import ExperimentDialog

    dlg = ExperimentDialog(None, mlp_xor().to_dict(), 3)
    qtbot.addWidget(dlg)
    dlg.text.setPlainText("lr=0.1,0.01\nd1.unit=4,8")
    dlg._accept()
    assert dlg.result_args is None and "block 'd1' (Dense) has no setting 'unit'" in (
        dlg.error.text()
    )
    dlg.text.setPlainText("lr=0.1,0.01\nd1.units=4,8")
    dlg.random.setChecked(True)
    dlg.count.setValue(3)
    dlg._accept()
    a = dlg.result_args
    assert [v.name for v in a["varies"]] == ["lr", "d1.units"]
    assert a["random"] == 3 and a["epochs"] == 3


def test_stop_ends_the_queue_and_closing_starts_no_queued_run(qtbot, train_window):
    w = train_window(mlp_xor(epochs=50))
    ctrl = w.training
    assert ctrl.queue.cross_validate(3) == ""
    qtbot.waitUntil(lambda: ctrl.active is not None and len(ctrl.active.steps) > 0, timeout=30_000)
    ctrl.stop()
    qtbot.waitUntil(lambda: not ctrl.queue.busy and ctrl.active is None, timeout=30_000)
    assert [r.status for r in ctrl.runs] == ["stopped"]  # the other two never started
    assert ctrl.queue.cross_validate(3) == ""
    qtbot.waitUntil(lambda: ctrl.active is not None and len(ctrl.active.steps) > 0, timeout=30_000)
    assert ctrl.shutdown(3000)
    qtbot.wait(200)
    assert ctrl.active is None and not ctrl.queue.busy and len(ctrl.runs) == 2
