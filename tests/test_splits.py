"""Train / validation / test splits and k-fold cross-validation (issue 18 section 3,
lecture 000): the test part is never trained on nor validated with and is reported once by a
final evaluation; k-fold reports the mean and the spread of K runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_support import mlp_xor

import engine
from engine.cli import main
from engine.data import load_dataset, split_indices
from engine.errors import ConfigError
from engine.splits import check_cross_validation, fold_ids, split_three, summarise

pytest_plugins = ["gui_support", "training_support"]


def _digits():
    return load_dataset({"name": "digits"}, seed=0)


def test_without_a_test_share_the_split_is_the_old_one():
    ds = _digits()
    tr, va, te = split_three(ds, 0.2, 5)
    tr0, va0 = split_indices(ds, 0.2, 5)
    assert np.array_equal(tr, tr0) and np.array_equal(va, va0) and len(te) == 0


def test_three_parts_are_disjoint_stratified_and_the_test_part_stays_put():
    ds = _digits()
    tr, va, te = split_three(ds, 0.2, 1, test_split=0.2)
    n = len(ds)
    assert len(te) == round(0.2 * n) and len(va) == round(0.2 * n)
    assert len(set(tr) | set(va) | set(te)) == n == len(tr) + len(va) + len(te)
    # Every class is in the test part in its share (stratified).
    share = np.bincount(ds.y[te], minlength=10) / np.bincount(ds.y, minlength=10)
    assert np.all(np.abs(share - 0.2) < 0.02)
    # The test part does not move when the validation share or a fold changes.
    _, _, te2 = split_three(ds, 0.1, 1, test_split=0.2)
    _, _, te3 = split_three(ds, 0.2, 1, test_split=0.2, cv={"k": 5, "fold": 3})
    assert np.array_equal(np.sort(te), np.sort(te2)) and np.array_equal(np.sort(te), np.sort(te3))


def test_k_folds_partition_the_data_besides_the_test_part():
    ds = _digits()
    parts = [split_three(ds, 0.2, 0, 0.1, {"k": 4, "fold": i}) for i in range(4)]
    vals = [set(p[1]) for p in parts]
    te = set(parts[0][2])
    assert all(not (a & b) for i, a in enumerate(vals) for b in vals[i + 1 :])
    assert set().union(*vals) | te == set(range(len(ds))) and not (set().union(*vals) & te)
    for tr, va, _ in parts:
        assert not (set(tr) & set(va)) and not (set(tr) & te)
    f = fold_ids(np.array([0] * 8 + [1] * 4), 12, 4, np.random.default_rng(0))
    assert np.bincount(f).tolist() == [3, 3, 3, 3]  # each class dealt round the folds
    with pytest.raises(ConfigError, match="fold must be from 0 to 2"):
        check_cross_validation({"k": 3, "fold": 3})
    with pytest.raises(ConfigError, match="k must be"):
        check_cross_validation({"k": 1})


def test_summary_mean_and_spread():
    r = summarise(
        [{"fold": i, "val_acc": a, "status": "finished"} for i, a in enumerate([0.8, 0.9, 1.0])]
    )
    assert r["mean"]["val_acc"] == pytest.approx(0.9)
    assert r["std"]["val_acc"] == pytest.approx(0.1)  # ddof 1: the spread between folds


def test_the_trainer_never_sees_the_test_part_and_evaluates_it_once_asked():
    g = mlp_xor(epochs=1)
    t = engine.Trainer.from_graph(g, test_split=0.25)
    n = len(load_dataset(g.training["dataset"], seed=0))
    assert t.test_size == round(0.25 * n)
    assert len(t.train_data[0]) + len(t.val_data[0]) + t.test_size == n
    list(t.run())
    r = t.evaluate_test()
    assert r["event"] == "test" and r["n_test"] == t.test_size and 0 <= r["test_acc"] <= 1
    X, y = t._test_data
    loss, acc = t.evaluate(X, y)
    assert r["test_loss"] == pytest.approx(loss) and r["test_acc"] == acc
    with pytest.raises(ConfigError, match="no test set"):
        engine.Trainer.from_graph(g).evaluate_test()


def test_cli_test_flag_reports_once_and_kfold_reports_mean_and_spread(tmp_path, capsys):
    path = tmp_path / "net.json"
    mlp_xor(epochs=1).save(path)
    log = tmp_path / "log.jsonl"
    assert main(["train", str(path), "--test-split", "0.2", "--test", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.count("test (") == 1 and "test_acc" in out
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["event"] == "test" and last["n_test"] > 0
    assert main(["train", str(path), "--test"]) == 2
    assert "--test needs a test set" in capsys.readouterr().err
    assert main(["train", str(path), "--kfold", "3", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "3-fold val_acc: mean" in out and "std" in out
    assert all(f"fold {i}: finished" in out for i in (1, 2, 3))
    folds = {json.loads(x)["fold"] for x in log.read_text().splitlines()}
    assert folds == {1, 2, 3}
    accs = [float(line.split("val_acc ")[1]) for line in out.splitlines() if ": finished" in line]
    mean = float(out.split("3-fold val_acc: mean ")[1].split(",")[0])
    assert len(accs) == 3 and mean == pytest.approx(np.mean(accs), abs=1e-4)
    assert main(["train", str(path), "--kfold", "1"]) == 2
    assert "k must be" in capsys.readouterr().err


# --- in the app ---------------------------------------------------------------------------------


def test_app_cross_validates_and_says_mean_and_spread(qtbot, train_window):
    w = train_window(mlp_xor(epochs=1))
    ctrl = w.training
    assert ctrl.queue.cross_validate(3) == ""
    qtbot.waitUntil(lambda: not ctrl.queue.busy and ctrl.active is None, timeout=60_000)
    runs = ctrl.runs[-3:]
    assert [r.settings["cross_validation"] for r in runs] == [{"k": 3, "fold": i} for i in range(3)]
    assert all(r.status == "finished" for r in runs)
    accs = [r.final_metrics()["val_acc"] for r in runs]
    cv = ctrl.queue.last_cv
    assert cv["mean"]["val_acc"] == pytest.approx(np.mean(accs))
    assert cv["std"]["val_acc"] == pytest.approx(np.std(accs, ddof=1))
    assert "val_acc mean" in w.statusBar().currentMessage()
    # Each fold validated on other samples: the validation sets differ in size or content.
    assert ctrl.panels["runs"].checked == {r.run_id for r in runs}


def test_app_evaluates_the_test_set_once(qtbot, train_window, monkeypatch):
    from gui.training import test_eval

    w = train_window(mlp_xor(epochs=1))
    ctrl = w.training
    assert ctrl.start()
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=30_000)
    plain = ctrl.current
    assert "held out no test set" in ctrl.test_eval.start()
    ctrl.dock.set_spec({**ctrl.dock.spec(), "test_split": 0.25})
    assert ctrl.start()
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=30_000)
    run = ctrl.current
    assert run is not plain and run.settings["test_split"] == 0.25
    assert ctrl.test_eval.start() == ""
    qtbot.waitUntil(lambda: "test" in run.end, timeout=30_000)
    expected = test_eval.evaluate(run.info["graph"], run.settings, run.weights)
    assert run.end["test"]["test_loss"] == pytest.approx(expected["test_loss"])
    assert run.final_metrics()["test_acc"] == expected["test_acc"]
    assert "test set" in w.statusBar().currentMessage()
    # Asked again: the same result, no second look at the test set.
    monkeypatch.setattr(test_eval, "evaluate", lambda *a: pytest.fail("evaluated twice"))
    assert ctrl.test_eval.start() == ""
    assert "evaluated once" in w.statusBar().currentMessage()
    # Kept with the run in the history (and shown in the table's "test acc").
    from gui.training.history import RunHistory

    entry = RunHistory().find(run.history_key)
    assert entry["final"]["test_acc"] == expected["test_acc"]
    back, _ = RunHistory().load(run.history_key, 1)
    assert back.final_metrics()["test_acc"] == expected["test_acc"]
