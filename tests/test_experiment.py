"""Experiments (issue 18 section 3): settings varied as a grid or a seeded random search,
one JSONL log per run and a summary CSV; bad --vary specs refused naming block and key."""

from __future__ import annotations

import csv
import json

import pytest
from training_support import mlp_xor

from engine import experiment as ex
from engine.cli import main
from engine.errors import ConfigError


@pytest.fixture
def graph_file(tmp_path):
    g = mlp_xor(epochs=1)
    path = tmp_path / "net.json"
    g.save(path)
    return path


def test_grid_trains_every_combination_and_writes_logs_and_a_summary(graph_file, tmp_path, capsys):
    out = tmp_path / "exp"
    argv = ["experiment", str(graph_file), "--vary", "lr=0.1,0.01", "--vary", "d1.units=4,16"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [(r["lr"], r["d1.units"]) for r in rows] == [
        ("0.1", "4"),
        ("0.1", "16"),
        ("0.01", "4"),
        ("0.01", "16"),
    ]
    assert all(r["status"] == "finished" and float(r["val_acc"]) >= 0 for r in rows)
    for i, r in enumerate(rows, 1):
        lines = (out / r["log"]).read_text().splitlines()
        head = json.loads(lines[0])
        assert head == {
            "event": "experiment",
            "run": i,
            "settings": {"lr": float(r["lr"]), "d1.units": int(r["d1.units"])},
        }
        events = [json.loads(x) for x in lines[1:]]
        assert events[0]["event"] == "step" and events[0]["lr"] == float(r["lr"])
        assert events[-1]["event"] == "end"
        epoch = [e for e in events if e["event"] == "epoch"][-1]
        assert float(r["val_acc"]) == pytest.approx(epoch["val_acc"], rel=1e-5)
    text = capsys.readouterr().out
    assert "4 runs" in text and "best: run" in text
    # The varied block setting reached the model: 16 units give more weights to train.
    grads = [json.loads((out / r["log"]).read_text().splitlines()[1]) for r in rows]
    assert all("d1" in g["grad_rms"] for g in grads)


def test_random_search_is_seeded_and_distinct():
    g = mlp_xor().to_dict()
    varies = [ex.parse_vary("lr=0.1,0.03,0.01"), ex.parse_vary("batch_size=8,16,32")]
    a = ex.plan(g, varies, random=4, seed=3)
    b = ex.plan(g, varies, random=4, seed=3)
    c = ex.plan(g, varies, random=4, seed=4)
    sets = [json.dumps(t.settings, sort_keys=True) for t in a]
    assert sets == [json.dumps(t.settings, sort_keys=True) for t in b] and len(set(sets)) == 4
    assert sets != [json.dumps(t.settings, sort_keys=True) for t in c]
    assert len(ex.plan(g, varies)) == 9  # the grid
    t = a[0]
    assert t.spec["batch_size"] == t.settings["batch_size"]
    assert t.spec["optimizer"] == {**t.spec["optimizer"], "lr": t.settings["lr"]}


def test_groups_and_optimizer_apply_to_every_block():
    g = mlp_xor().to_dict()
    (t,) = ex.plan(g, [ex.parse_vary("init=he_normal")])
    inits = {n["id"]: n["config"].get("init") for n in t.graph["nodes"]}
    assert inits["d1"] == inits["d2"] == "he_normal" and inits["in"] is None
    (t,) = ex.plan(g, [ex.parse_vary("optimizer=sgd")])
    assert t.spec["optimizer"]["name"] == "sgd" and t.spec["optimizer"]["lr"] == 0.01


@pytest.mark.parametrize(
    "vary, message",
    [
        ("lr", "write NAME=V1,V2"),
        ("lr=", "give the values"),
        ("lr=0.1,0.1", "given twice"),
        ("colour=red", "not a setting to vary"),
        ("d9.units=3", "no block 'd9'"),
        ("d1.unit=3", "block 'd1' (Dense) has no setting 'unit'"),
        ("d1.units=-3", "block 'd1': 'units' must be"),
        ("dropout=0.1", "no Dropout block"),
        ("lr=-1", "run 1 (lr=-1)"),
    ],
)
def test_bad_vary_specs_are_refused_in_one_line(graph_file, tmp_path, capsys, vary, message):
    assert main(["experiment", str(graph_file), "--vary", vary, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written


def test_best_prefers_accuracy_and_the_lowest_loss():
    ts = [ex.Trial(i, {}, {}, {}) for i in range(3)]
    for t, acc, loss in zip(ts, (0.5, 0.9, 0.7), (0.3, 0.2, 0.1), strict=True):
        t.result = {"status": "finished", "val_acc": acc, "val_loss": loss}
    assert ex.best(ts).index == 1 and ex.best(ts, "val_loss").index == 2
    ts[1].result["status"] = "diverged"
    assert ex.best(ts).index == 2
    with pytest.raises(ConfigError, match="--random"):
        ex.combinations([ex.parse_vary("lr=1,2")], random=0)


def test_a_run_that_cannot_train_is_a_failed_line_and_the_others_go_on(graph_file, tmp_path):
    out = tmp_path / "exp"
    # An Input of 3 features cannot take the 2-feature XOR data: that run fails, with why.
    argv = ["experiment", str(graph_file), "--vary", "in.shape=[2],[3]", "--out", str(out)]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["status"] for r in rows] == ["finished", "failed"]
    assert "expects (3,)" in rows[1]["message"] or "shape" in rows[1]["message"]
    last = json.loads((out / rows[1]["log"]).read_text().splitlines()[-1])
    assert last["event"] == "end" and last["reason"] == "failed"
