"""engine.Trainer: events, determinism, divergence, controls from another thread, settings."""

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.trainer as trainer_mod
from engine.data.base import Dataset
from engine.errors import ConfigError, DataError
from engine.model import build_model
from engine.trainer import Trainer
from engine.training_spec import check_training


def blobs(n=300, seed=0, classes=3, features=4) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, features)) * 3
    y = rng.integers(0, classes, n)
    X = centres[y] + rng.standard_normal((n, features))
    return Dataset(
        X=X.astype(np.float32), y=y, task="classification", n_classes=classes, name="blobs"
    )


def linear_data(n=200, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32) * 10
    y = (X @ np.array([1.0, -2.0, 0.5]))[:, None].astype(np.float32)
    return Dataset(X=X, y=y, task="regression", name="linear")


def mlp(features=4, hidden=16, out=3) -> engine.Graph:
    g = engine.Graph("mlp")
    g.add_node("Input", {"shape": [features]}, node_id="in")
    g.add_node("Dense", {"units": hidden}, node_id="d1")
    g.add_node("Activation", {"fn": "tanh"}, node_id="a1")
    g.add_node("Dense", {"units": out}, node_id="out")
    g.add_edge("in", "d1")
    g.add_edge("d1", "a1")
    g.add_edge("a1", "out")
    return g


def linear(features=3) -> engine.Graph:
    g = engine.Graph("linear")
    g.add_node("Input", {"shape": [features]}, node_id="in")
    g.add_node("Dense", {"units": 1}, node_id="out")
    g.add_edge("in", "out")
    return g


def make(seed=0, **kw) -> Trainer:
    kw.setdefault("batch_size", 32)
    kw.setdefault("optimizer", {"name": "adam", "lr": 0.01})
    return Trainer(build_model(mlp(), seed=seed), blobs(), seed=seed, **kw)


def strip_time(events):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in events]


def test_events_follow_the_training_log_format():
    tr = make(epochs=2)
    events = list(tr.run())
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    n_train = len(tr.train_data[0])
    assert len(steps) == 2 * math.ceil(n_train / 32)
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    assert set(steps[0]) == {"event", "epoch", "step", "loss", "lr", "grad_rms"}
    assert set(steps[0]["grad_rms"]) == {"d1", "out"}  # blocks without parameters left out
    assert set(epochs[0]) == {
        "event",
        "epoch",
        "train_loss",
        "val_loss",
        "train_acc",
        "val_acc",
        "seconds",
    }
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "finished"
    assert events[-1]["epoch"] == 2 and events[-1]["step"] == len(steps)
    json.dumps(events)  # plain JSON values only
    assert epochs[1]["val_acc"] > 0.8 and epochs[1]["train_loss"] < epochs[0]["train_loss"]
    ep1 = [e["loss"] for e in steps if e["epoch"] == 1]
    assert epochs[0]["train_loss"] == pytest.approx(sum(ep1) / len(ep1))
    assert all(v.dtype == np.float32 for v in tr.model.params.values())
    assert tr.history == epochs


def test_same_seed_same_numbers():
    a = strip_time(make(seed=4, epochs=2).run())
    b = strip_time(make(seed=4, epochs=2).run())
    assert a == b
    c = strip_time(make(seed=5, epochs=2).run())
    assert a != c


def test_val_split_sizes_and_val_data():
    tr = make(val_split=0.25)
    Xv, yv = tr.val_data
    assert len(Xv) == 75 and len(tr.train_data[0]) == 225
    assert Xv.dtype == np.float32 and yv.dtype == np.int64
    none = make(val_split=0.0)
    ev = [e for e in none.run() if e["event"] == "epoch"][0]
    assert ev["val_loss"] is None and ev["val_acc"] is None


def test_grad_rms_is_rms_of_each_blocks_gradient():
    tr = make()
    run = tr.run()
    ev = next(run)
    grads = tr.model.grads
    for block, names in {"d1": ["d1.weight", "d1.bias"], "out": ["out.weight", "out.bias"]}.items():
        g = np.concatenate([grads[k].astype(np.float64).ravel() for k in names])
        want = math.sqrt(np.sum(g * g) / g.size)
        assert ev["grad_rms"][block] == pytest.approx(want, rel=1e-5)
    assert tr.last_grad_rms == ev["grad_rms"]
    run.close()


def test_evaluation_in_batches_equals_one_batch(monkeypatch):
    tr = make()
    X, y = tr.val_data
    monkeypatch.setattr(trainer_mod, "EVAL_BATCH", 7)
    tr.batch_size = 7
    loss, acc = tr.evaluate(X, y)
    out = tr.model.forward(X)
    assert loss == pytest.approx(tr.loss_fn.forward(out, y), rel=1e-5)
    assert acc == pytest.approx(np.mean(out.argmax(1) == y))


def test_regression_has_no_accuracy():
    tr = Trainer(
        build_model(linear()),
        linear_data(),
        loss="mse",
        optimizer={"name": "sgd", "lr": 1e-3},
        epochs=3,
    )
    epochs = [e for e in tr.run() if e["event"] == "epoch"]
    assert all(e["train_acc"] is None and e["val_acc"] is None for e in epochs)
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]


def test_diverged_keeps_the_weights_of_the_last_sane_loss():
    tr = Trainer(
        build_model(linear()),
        linear_data(),
        loss="mse",
        optimizer={"name": "sgd", "lr": 0.5},
        epochs=50,
        batch_size=16,
    )
    after = [tr.model.state()]  # the weights after each step (the first: before any)
    events = []
    for ev in tr.run():
        events.append(ev)
        if ev["event"] == "step":
            after.append(tr.model.state())
    end = events[-1]
    assert end["event"] == "end" and end["reason"] == "diverged"
    assert "learning rate" in end["message"] and "times the first step's" in end["message"]
    steps = [e for e in events if e["event"] == "step"]
    # The loss of the weights after the last step exploded: the run comes back to the
    # weights before it, whose loss (that last step's) was sane.
    assert steps[-1]["loss"] <= trainer_mod.LOSS_EXPLODES * steps[0]["loss"]
    for k, v in tr.model.state().items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, after[-2][k])


def test_diverged_with_overflowing_update_restores_a_snapshot():
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), epochs=3)
    real_step = tr.optimizer.step
    calls = []

    def overflowing_step(params, grads):  # the 3rd update overflows to inf
        real_step(params, grads)
        calls.append(1)
        if len(calls) == 3:
            params["out.bias"][0] = np.inf

    tr.optimizer.step = overflowing_step
    after = []
    events = []
    for ev in tr.run():
        events.append(ev)
        if ev["event"] == "step":
            after.append(m.state())
    end = events[-1]
    assert end["reason"] == "diverged" and end["step"] == 2
    assert "step 3 (the update made a weight infinite" in end["message"]
    assert "earlier step" in end["message"]
    for k, v in after[-1].items():  # the weights before the bad update
        np.testing.assert_array_equal(m.state()[k], v)


def test_an_update_overflowing_on_the_last_step_is_diverged_not_finished():
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), epochs=1, batch_size=300, val_split=0.0)  # one step in all
    start = m.state()
    real_step = tr.optimizer.step

    def overflowing_step(params, grads):
        real_step(params, grads)
        params["d1.weight"][0, 0] = np.float32(3e38) * 10

    tr.optimizer.step = overflowing_step
    end = list(tr.run())[-1]
    assert end["reason"] == "diverged" and "step 1" in end["message"]
    for k, v in start.items():
        np.testing.assert_array_equal(m.state()[k], v)


def test_an_exploding_loss_that_stays_finite_is_diverged():
    """lr 1e6 made weights of 1e30 and a run that "finished": the loss grows by orders of
    magnitude long before it is infinite."""
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), optimizer={"name": "sgd", "lr": 1e6}, epochs=5)
    start = m.state()
    events = list(tr.run())
    end = events[-1]
    assert end["reason"] == "diverged" and "times the first step's" in end["message"]
    assert all(math.isfinite(e["loss"]) for e in events if e["event"] == "step")
    biggest = max(float(np.abs(v).max()) for v in m.state().values())
    assert biggest <= 2 * max(float(np.abs(v).max()) for v in start.values())


def test_a_validation_loss_that_explodes_ends_the_run_with_sane_weights():
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), epochs=3, batch_size=300)  # one step per epoch
    real_step = tr.optimizer.step
    calls = []

    def blowing_step(params, grads):  # the 2nd update makes the output huge but finite
        real_step(params, grads)
        calls.append(1)
        if len(calls) == 2:
            params["out.weight"] *= 1e12

    tr.optimizer.step = blowing_step
    after = []
    events = []
    for ev in tr.run():
        events.append(ev)
        if ev["event"] == "step":
            after.append(m.state())
    end = events[-1]
    assert end["reason"] == "diverged" and "validation loss" in end["message"]
    assert [e["event"] for e in events].count("epoch") == 2
    for k, v in after[0].items():  # what the first epoch's validation found sane
        np.testing.assert_array_equal(m.state()[k], v)


def test_a_last_update_that_explodes_without_validation_data_is_diverged():
    """No validation set and one step in all: only the loss after the update can tell."""
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), epochs=1, batch_size=300, val_split=0.0)
    start = m.state()
    real_step = tr.optimizer.step

    def blowing_step(params, grads):
        real_step(params, grads)
        params["out.weight"] *= 1e12  # huge, still finite

    tr.optimizer.step = blowing_step
    end = list(tr.run())[-1]
    assert end["reason"] == "diverged" and "loss after the last update" in end["message"]
    for k, v in start.items():
        np.testing.assert_array_equal(m.state()[k], v)
    tr2 = Trainer(build_model(mlp(), seed=0), blobs(), epochs=2, val_split=0.0)
    assert list(tr2.run())[-1]["reason"] == "finished"  # a healthy run is not affected


def test_the_weights_are_copied_every_step_for_small_models_only():
    small = make()
    assert small.snapshot_every() == 1
    big = engine.Graph("big")
    big.add_node("Input", {"shape": [4]}, node_id="in")
    big.add_node("Dense", {"units": 2000}, node_id="d1")
    big.add_node("Dense", {"units": 1000}, node_id="out")
    big.add_edge("in", "d1")
    big.add_edge("d1", "out")
    model = build_model(big, seed=0)  # 2,011,000 weights: a copy every 20 steps
    tr = Trainer(model, blobs(classes=1000, n=2000), epochs=1)
    assert tr.snapshot_every() == 20


def test_huge_learning_rate_diverges_with_finite_weights():
    m = build_model(mlp(), seed=0)
    tr = Trainer(m, blobs(), optimizer={"name": "sgd", "lr": 1e38}, epochs=3)
    events = list(tr.run())
    assert events[-1]["reason"] == "diverged"
    assert all(np.isfinite(v).all() for v in m.params.values())


def test_stop():
    tr = make(epochs=100)
    events = []
    for ev in tr.run():
        events.append(ev)
        if ev["event"] == "step" and ev["step"] == 3:
            tr.stop()
    assert [e["event"] for e in events] == ["step"] * 3 + ["end"]
    assert events[-1]["reason"] == "stopped" and events[-1]["step"] == 3


def _wait_for(cond, timeout=5.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


def test_pause_step_once_resume_stop_from_another_thread():
    tr = make(epochs=1000)
    events = []

    def steps():
        return sum(e["event"] == "step" for e in events)

    def consume():
        for ev in tr.run():
            events.append(ev)

    tr.pause()
    th = threading.Thread(target=consume, daemon=True)
    th.start()
    time.sleep(0.2)
    assert steps() == 0 and tr.paused
    tr.step_once()
    assert _wait_for(lambda: steps() == 1)
    time.sleep(0.2)
    assert steps() == 1
    tr.step_once()
    tr.step_once()
    assert _wait_for(lambda: steps() == 3)
    time.sleep(0.2)
    assert steps() == 3
    tr.resume()
    assert _wait_for(lambda: steps() > 20)
    tr.pause()
    time.sleep(0.1)
    n = steps()
    time.sleep(0.2)
    assert steps() == n
    tr.stop()  # stop also ends a paused run
    th.join(5)
    assert not th.is_alive()
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "stopped"


def test_set_lr_and_schedule():
    tr = make(
        epochs=3,
        optimizer={"name": "sgd", "lr": 0.1},
        schedule={"name": "step", "step_size": 1, "gamma": 0.5},
    )
    lrs = {}
    for ev in tr.run():
        if ev["event"] == "step":
            lrs.setdefault(ev["epoch"], set()).add(ev["lr"])
    assert lrs == {1: {0.1}, 2: {0.05}, 3: {0.025}}
    tr2 = make(epochs=2, optimizer={"name": "sgd", "lr": 0.1})
    seen = []
    for ev in tr2.run():
        if ev["event"] == "step":
            seen.append(ev["lr"])
            if ev["step"] == 2:
                tr2.set_lr(0.5)
    assert seen[:2] == [0.1, 0.1] and set(seen[2:]) == {0.5}
    assert tr2.optimizer.lr == 0.5
    with pytest.raises(ConfigError):
        tr2.set_lr(-1)


def test_l2_penalty_is_part_of_the_loss():
    plain = next(make(seed=2).run())
    reg_tr = make(seed=2, l2=0.1)
    p = reg_tr.model.params
    penalty = 0.05 * sum(
        float(np.sum(p[k].astype(np.float64) ** 2)) for k in ("d1.weight", "out.weight")
    )
    reg = next(reg_tr.run())
    assert reg["loss"] == pytest.approx(plain["loss"] + penalty, rel=1e-5)


def test_clip_norm_bounds_the_applied_gradient():
    tr = make(clip_norm=1e-3)
    next(tr.run())
    total = math.sqrt(
        sum(float(np.sum(g.astype(np.float64) ** 2)) for g in tr.model.grads.values())
    )
    assert total <= 1e-3 * (1 + 1e-4)


def test_time_grads_of_recurrent_blocks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = (X[:, 0, 0] > 0).astype(np.int64)
    ds = Dataset(X=X, y=y, task="classification", n_classes=2, name="seq")
    g = engine.Graph()
    g.add_node("Input", {"shape": [6, 3]}, node_id="in")
    g.add_node("LSTM", {"hidden_size": 5}, node_id="lstm")
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_edge("in", "lstm")
    g.add_edge("lstm", "out")
    tr = Trainer(build_model(g), ds, batch_size=16)
    next(tr.run())
    tg = tr.last_time_grads["lstm"]
    assert tg.shape == (6,) and np.all(tg >= 0) and tg[0] > 0  # the loss reaches the first step
    assert "out" not in tr.last_time_grads


def test_data_must_fit_the_graph():
    with pytest.raises(DataError, match="Input 'in' expects"):
        Trainer(build_model(mlp(features=5)), blobs())
    with pytest.raises(DataError) as e:
        Trainer(build_model(mlp(out=4)), blobs())
    assert e.value.block == "out" and "3 classes" in str(e.value)
    with pytest.raises(ConfigError, match="use loss mse"):
        Trainer(build_model(linear()), linear_data(), loss="cross_entropy")
    with pytest.raises(DataError) as e:
        Trainer(build_model(mlp(features=3, out=2)), linear_data(), loss="mse")
    assert e.value.block == "out"


def test_check_training_normalises_and_names_fields():
    spec = check_training({"dataset": "moons"})
    assert spec["dataset"] == {"name": "moons"}
    assert spec["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
    }
    assert spec["schedule"] == {"name": "constant"}
    assert (spec["loss"], spec["batch_size"], spec["epochs"], spec["seed"]) == (
        "cross_entropy",
        32,
        1,
        0,
    )
    assert spec["val_split"] == 0.2 and spec["l1"] == spec["l2"] == 0.0
    assert spec["clip_norm"] is None
    with pytest.raises(ConfigError, match="'colour', 'size'"):
        check_training({"dataset": "moons", "colour": 1, "size": 2})
    for bad, field in [
        ({"batch_size": "x"}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"val_split": 0.95}, "val_split"),
        ({"loss": "hinge"}, "loss"),
        ({"optimizer": {"name": "adam", "momentum": 1}}, "momentum"),
        ({"schedule": {"name": "cosine"}}, "schedule"),
        ({"clip_norm": -1}, "clip_norm"),
        ({"dataset": {"name": "nope"}}, "nope"),
        ({"dataset": 3}, "dataset"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(ConfigError, match=field):
            check_training({"dataset": "moons", **bad})
    with pytest.raises(ConfigError, match="'dataset' is missing"):
        check_training({})
    assert check_training({}, need_dataset=False)["dataset"] is None


def test_from_graph_uses_the_graphs_training_part():
    g = mlp(features=2, out=2)
    g.training = {
        "dataset": {"name": "moons", "n": 200},
        "optimizer": {"name": "adam", "lr": 0.02},
        "batch_size": 20,
        "epochs": 5,
        "seed": 3,
    }
    tr = Trainer.from_graph(g, epochs=2, lr=0.05, dataset="moons")
    assert tr.epochs == 2 and tr.optimizer.lr == 0.05 and tr.batch_size == 20
    assert len(tr.train_data[0]) + len(tr.val_data[0]) == 200  # kept the graph's "n"
    events = list(tr.run())
    assert events[-1]["reason"] == "finished"
    same = build_model(g, seed=3)  # the model was built with the training seed
    tr2 = Trainer.from_graph(g, model=same, epochs=2, lr=0.05)
    np.testing.assert_array_equal(
        tr2.model.params["d1.weight"], build_model(g, seed=3).params["d1.weight"]
    )


def test_lenet5_learns_digits():
    g = engine.load_graph(Path(__file__).resolve().parent.parent / "presets" / "lenet5.json")
    g.training["epochs"] = 2
    tr = Trainer.from_graph(g)
    epochs = [e for e in tr.run() if e["event"] == "epoch"]
    assert epochs[-1]["val_acc"] > 0.8
    assert set(tr.last_grad_rms) == {"c1", "c3", "c5", "f6", "out"}


def test_only_the_entry_points_tune_malloc(monkeypatch, tmp_path):
    """engine.heap changes malloc for the whole process: the command line's train and the
    app's training process do it (engine.training_process.child_main), a Trainer made in code
    does not."""
    import engine.cli
    import engine.heap

    calls = []
    monkeypatch.setattr(engine.heap, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(engine.cli, "keep_freed_memory", lambda: calls.append("cli"))
    list(make(epochs=1).run())
    assert calls == []
    g = engine.Graph()
    g.add_node("Input", {"shape": [2]}, node_id="in")
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_edge("in", "out")
    g.training = {"dataset": {"name": "xor", "repeat": 2}, "epochs": 1}
    g.save(tmp_path / "g.json")
    assert engine.cli.main(["train", str(tmp_path / "g.json")]) == 0
    assert calls == ["cli"]
