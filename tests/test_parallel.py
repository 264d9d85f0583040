"""engine.parallel: a training step split over two processes computes the same training as one
process, picks itself only where it pays and is exact, and never outlives its run."""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest

import engine
from engine import parallel
from engine.data.base import Dataset
from engine.errors import ConfigError
from engine.trainer import Trainer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the split forks (Linux)")


def conv_graph(extra: list[tuple[str, dict]] | None = None) -> engine.Graph:
    blocks = [
        ("Input", {"shape": [1, 12, 12]}),
        ("Conv2D", {"filters": 4, "kernel_size": 3}),
        ("Activation", {"fn": "relu"}),
        ("MaxPool2D", {"kernel_size": 2}),
        *(extra or []),
        ("Flatten", {}),
        ("Dense", {"units": 3}),
    ]
    g = engine.Graph(name="small conv")
    prev = None
    for i, (kind, cfg) in enumerate(blocks):
        n = g.add_node(kind, cfg, node_id=f"b{i}")
        if prev:
            g.add_edge(prev, n)
        prev = n
    return g


def bn_graph() -> engine.Graph:
    """BatchNorm on images (after a convolution) and on vectors (after a Dense)."""
    blocks = [
        ("Input", {"shape": [1, 12, 12]}),
        ("Conv2D", {"filters": 4, "kernel_size": 3, "bias": False}),
        ("BatchNorm", {}),
        ("Activation", {"fn": "relu"}),
        ("MaxPool2D", {"kernel_size": 2}),
        ("Flatten", {}),
        ("Dense", {"units": 6}),
        ("BatchNorm", {"momentum": 0.3}),
        ("Activation", {"fn": "tanh"}),
        ("Dense", {"units": 3}),
    ]
    g = engine.Graph(name="small conv with BatchNorm")
    prev = None
    for i, (kind, cfg) in enumerate(blocks):
        n = g.add_node(kind, cfg, node_id=f"b{i}")
        if prev:
            g.add_edge(prev, n)
        prev = n
    return g


def data(n: int = 90) -> Dataset:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
    return Dataset(X, rng.integers(0, 3, n), "classification", n_classes=3, name="noise")


def train(processes, batch_size=8, epochs=2, graph=None, lr=0.05, **kw) -> tuple[Trainer, list]:
    model = engine.build_model(graph or conv_graph(), seed=1)
    t = Trainer(
        model,
        data(),
        batch_size=batch_size,
        epochs=epochs,
        seed=2,
        optimizer={"name": "momentum", "lr": lr},
        processes=processes,
        **kw,
    )
    return t, list(t.run())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie would still answer kill(0)
        return f.read().split()[2] == "Z"


@pytest.mark.parametrize("batch_size", [8, 7, 5])  # even halves; 4+3; uneven last batches
def test_two_processes_train_as_one_process_does(batch_size):
    one, ev1 = train(1, batch_size, l2=1e-3, clip_norm=5.0)
    two, ev2 = train(2, batch_size, l2=1e-3, clip_norm=5.0)
    assert two.processes == 2 and ev2[-1]["processes"] == 2 and ev1[-1]["processes"] == 1
    assert len(ev1) == len(ev2)
    for a, b in zip(ev1, ev2, strict=True):
        assert a["event"] == b["event"]
        if a["event"] == "step":
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
            for block, rms in a["grad_rms"].items():
                assert b["grad_rms"][block] == pytest.approx(rms, rel=1e-3, abs=1e-7)
        elif a["event"] == "epoch":  # accuracy counts come from both halves
            assert b["train_acc"] == pytest.approx(a["train_acc"])
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
    for name, p in one.model.params.items():
        np.testing.assert_allclose(two.model.params[name], p, rtol=1e-3, atol=1e-5)


def test_the_split_differs_from_one_process_only_by_rounding():
    """Not the same numbers by accident: one process on half the batch trains differently."""
    _, full = train(1, 8, epochs=1)
    half, _ = train(1, 4, epochs=1)
    two, _ = train(2, 8, epochs=1)
    ref = engine.build_model(conv_graph(), seed=1)
    moved = [n for n, p in two.model.params.items() if not np.allclose(p, ref.params[n])]
    assert moved
    assert any(not np.allclose(half.model.params[n], two.model.params[n], atol=1e-4) for n in moved)


def started_split_run(epochs: int, graph: engine.Graph | None = None):
    """A split run after its first event: (trainer, the run, the helper's pid)."""
    model = engine.build_model(graph or conv_graph(), seed=1)
    t = Trainer(model, data(), batch_size=8, epochs=epochs, processes=2)
    run = t.run()
    next(run)
    return t, run, t._split.pid


def test_helper_ends_with_the_run_and_holds_no_other_files():
    t, run, pid = started_split_run(epochs=3)
    fds = os.listdir(f"/proc/{pid}/fd")
    assert len(fds) <= 5, fds  # stdin, stdout, stderr and its two pipes: nothing of ours
    run.close()  # a run left early (the app's Stop, a loop that breaks) ends its helper
    assert t._split is None and gone(pid)


@pytest.mark.parametrize("with_bn", [False, True])  # BatchNorm: killed between exchanges
def test_a_killed_helper_leaves_the_run_going_in_one_process(with_bn):
    model = engine.build_model(bn_graph() if with_bn else conv_graph(), seed=1)
    t = Trainer(model, data(), batch_size=8, epochs=2, processes=2)
    events = []
    for ev in t.run():
        events.append(ev)
        if len(events) == 3:
            os.kill(t._split.pid, signal.SIGKILL)
    end = events[-1]
    assert end["reason"] == "finished" and end["processes"] == 1
    assert "ended unexpectedly" in end["note"] and "exit code -9" in end["note"]
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2 * 9 and all(np.isfinite(e["loss"]) for e in steps)


@pytest.mark.parametrize("with_bn", [False, True])
def test_a_diverging_split_run_ends_as_diverged_with_good_weights(with_bn):
    # with BatchNorm: a half whose loss is not finite skips its backward pass, and the other
    # half, waiting for its BatchNorm sums, must not hang (engine.batch_sync.end_step)
    t, events = train(2, 8, epochs=3, lr=1e30, graph=bn_graph() if with_bn else None)
    assert events[-1]["reason"] == "diverged"
    assert all(np.isfinite(p).all() for p in t.model.params.values())


def test_which_models_split(monkeypatch):
    monkeypatch.setattr(parallel, "free_cores", lambda: 2)
    drop = conv_graph([("Dropout", {"rate": 0.5})])
    model = engine.build_model(bn_graph(), seed=0)  # BatchNorm swaps its sums (batch_sync)
    assert parallel.split_blocker(model) is None
    assert parallel.choose_processes(model, 64, 2)[0] == 2
    assert parallel.split_blocker(engine.build_model(drop, seed=0)) is None
    assert "float64" in parallel.split_blocker(engine.build_model(conv_graph()).astype(np.float64))
    small = engine.build_model(conv_graph(), seed=0)
    n, why = parallel.choose_processes(small, 8, "auto")
    assert n == 1 and "too short" in why
    with pytest.raises(ConfigError, match="at least 2 samples"):
        parallel.choose_processes(small, 1, 2)
    assert parallel.choose_processes(small, 8, 1) == (1, "processes=1")


def test_the_helper_draws_dropout_masks_of_its_own_and_the_same_each_run():
    import copy

    graph = conv_graph([("Dropout", {"rate": 0.5})])
    model = engine.build_model(graph, seed=0)
    x = data(8).X
    forked, again = copy.deepcopy(model), copy.deepcopy(model)  # what fork gives the helper
    parallel._reseed_dropout(forked)
    parallel._reseed_dropout(again)
    mine = model.forward(x, training=True)
    helper = forked.forward(x, training=True)
    assert not np.allclose(mine, helper)  # not the parent's masks
    np.testing.assert_array_equal(again.forward(x, training=True), helper)
    _, first = train(2, 8, epochs=1, graph=graph)
    _, second = train(2, 8, epochs=1, graph=graph)
    assert [e.get("loss") for e in first] == [e.get("loss") for e in second]


def test_lenet5_splits_under_auto_on_two_cores(monkeypatch):
    from pathlib import Path

    from engine.graph import load_graph

    lenet = load_graph(Path(__file__).resolve().parent.parent / "presets" / "lenet5.json")
    model = engine.build_model(lenet, seed=0)
    # C1 6x(1x5x5) at 28x28 + C2 16x(6x5x5) at 10x10 + dense 400x120 + 120x84 + 84x10
    per_sample = 150 * 784 + 2400 * 100 + 48000 + 10080 + 840
    assert parallel.forward_macs(model, 1) == per_sample
    monkeypatch.setattr(parallel, "free_cores", lambda: 2)
    assert parallel.choose_processes(model, 64, "auto")[0] == 2
    monkeypatch.setattr(parallel, "free_cores", lambda: 1)
    assert parallel.choose_processes(model, 64, "auto") == (1, "one core")


def test_processes_setting_is_checked(monkeypatch):
    model = engine.build_model(conv_graph(), seed=0)
    with pytest.raises(ConfigError, match="processes must be 'auto', 1 or 2, got 3"):
        Trainer(model, data(), processes=3)
    monkeypatch.setenv("BLOCKPROP_PROCESSES", "many")
    with pytest.raises(ConfigError, match="environment variable BLOCKPROP_PROCESSES"):
        Trainer(model, data())
    monkeypatch.setenv("BLOCKPROP_PROCESSES", "2")
    assert Trainer(model, data(), batch_size=8).processes == 2


def seq_graph(kind: str, bidirectional: bool, hidden: int = 5) -> engine.Graph:
    g = engine.Graph(name="seq")
    g.add_node("Input", {"shape": [6, 3]}, node_id="in")
    g.add_node(
        kind,
        {"hidden_size": hidden, "bidirectional": bidirectional, "return_sequences": True},
        node_id="rnn",
    )
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_edge("in", "rnn")
    g.add_edge("rnn", "out")
    return g


@pytest.mark.parametrize("kind,bidirectional", [("LSTM", True), ("GRU", False), ("RNN", True)])
def test_recurrent_split_gives_the_whole_batchs_time_step_gradients(kind, bidirectional):
    rng = np.random.default_rng(5)
    ds = Dataset(
        rng.standard_normal((40, 6, 3)).astype(np.float32),
        rng.standard_normal((40, 6, 2)).astype(np.float32),
        "regression",
        name="seq",
    )
    runs = {}
    for processes in (1, 2):
        model = engine.build_model(seq_graph(kind, bidirectional), seed=0)
        t = Trainer(
            model,
            ds,
            loss="mse",
            batch_size=7,
            epochs=2,
            seed=0,
            optimizer={"name": "sgd", "lr": 0.1},
            processes=processes,
        )
        events = list(t.run())
        runs[processes] = (t, [e["loss"] for e in events if e["event"] == "step"])
    (one, loss1), (two, loss2) = runs[1], runs[2]
    assert two.processes == 2
    np.testing.assert_allclose(loss2, loss1, rtol=1e-4)
    # the BPTT panel's profile: RMS over the whole batch, not the parent's half
    for attr in ("last_time_grads", "last_time_grads_reverse"):
        a, b = getattr(one, attr), getattr(two, attr)
        assert (
            set(a) == set(b) == ({"rnn"} if attr == "last_time_grads" or bidirectional else set())
        )
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-3)


def test_recurrent_blocks_split_under_auto_only_when_a_time_step_pays(monkeypatch):
    monkeypatch.setattr(parallel, "free_cores", lambda: 2)
    small = engine.build_model(seq_graph("RNN", False, hidden=64), seed=0)
    n, why = parallel.choose_processes(small, 32, "auto")
    assert n == 1 and "block 'rnn' (RNN): a time step of" in why
    big = engine.build_model(seq_graph("LSTM", False, hidden=128), seed=0)
    # 4 gates x 128 x (3 + 128) weights, 6 time steps, then the Dense at each of them
    assert parallel.forward_macs(big, 1) == 4 * 128 * 131 * 6 + 128 * 2 * 6
    assert parallel.choose_processes(big, 32, "auto")[0] == 2


@pytest.mark.parametrize("with_bn", [False, True])  # BatchNorm: frozen between exchanges
def test_stop_does_not_wait_for_a_frozen_helper(with_bn):
    import threading
    import time

    t, run, pid = started_split_run(epochs=10_000, graph=bn_graph() if with_bn else None)
    os.kill(pid, signal.SIGSTOP)  # it can no longer answer
    try:
        threading.Timer(0.3, t.stop).start()
        t0 = time.monotonic()
        events = list(run)
        assert time.monotonic() - t0 < parallel.STOP_GRACE_S + 2.0
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    end = events[-1]
    assert end["reason"] == "stopped" and "did not answer" in end["note"]
    assert gone(pid)


@pytest.mark.parametrize("n", [8, 7, 3])  # even halves; 4 + 3; 2 + 1
def test_a_batchnorm_split_step_equals_one_process_step_by_step(n):
    """Every step's loss, every gradient and the running statistics: the two halves swap their
    BatchNorm sums, so they normalise with the whole batch's statistics as one process does."""
    from functools import partial

    from engine.losses import get_loss
    from engine.trainer import forward_backward

    ds = data()
    loss = get_loss("cross_entropy")
    one, two = (engine.build_model(bn_graph(), seed=1) for _ in range(2))
    split = parallel.SplitStep(two, partial(forward_backward, two, loss, ds.X, ds.y, True), n)
    rng = np.random.default_rng(0)
    try:
        for _ in range(5):
            idx = rng.choice(len(ds.X), n, replace=False)
            loss1, hits1 = forward_backward(one, loss, ds.X, ds.y, True, idx)
            loss2, hits2 = split.forward_backward(idx)
            assert loss2 == pytest.approx(loss1, rel=1e-5) and hits2 == hits1
            g1, g2 = one.grads, two.grads
            assert set(g1) == set(g2)
            for k, g in g1.items():
                # float32 rounding of the gradient's size (a bias before a BatchNorm gets 0)
                atol = max(1e-4 * float(np.abs(g).max()), 1e-6)
                np.testing.assert_allclose(g2[k], g, rtol=1e-4, atol=atol, err_msg=k)
            for k, b in one.buffers.items():
                np.testing.assert_allclose(two.buffers[k], b, rtol=1e-4, atol=1e-6, err_msg=k)
            for k, p in one.params.items():  # the next step starts from the same state
                p -= 0.5 * one.grads[k]
            two.set_state(one.state())
    finally:
        split.close()
    # not equal by accident: BatchNorm over a half alone gives other gradients
    alone = engine.build_model(bn_graph(), seed=1)
    alone.set_state(one.state())
    forward_backward(one, loss, ds.X, ds.y, True, idx)
    forward_backward(alone, loss, ds.X, ds.y, True, idx[: n - n // 2])
    assert not np.allclose(alone.grads["b1.weight"], one.grads["b1.weight"], rtol=1e-2)


def test_batchnorm_models_train_in_two_processes_as_in_one():
    one, ev1 = train(1, 8, graph=bn_graph())
    two, ev2 = train(2, 8, graph=bn_graph())
    assert two.processes == 2 and ev2[-1]["processes"] == 2
    steps = [(a, b) for a, b in zip(ev1, ev2, strict=True) if a["event"] == "step"]
    assert len(steps) == 2 * 9
    for a, b in steps:
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
        for block, rms in a["grad_rms"].items():
            assert b["grad_rms"][block] == pytest.approx(rms, rel=1e-3, abs=1e-7)
    state1, state2 = one.model.state(), two.model.state()
    for k, v in state1.items():  # parameters and running statistics
        np.testing.assert_allclose(state2[k], v, rtol=1e-3, atol=1e-5, err_msg=k)


def test_the_validation_pass_splits_its_rows_with_the_helper():
    """The helper evaluates the second half of the rows with the parameters of the moment;
    the halves' sums add up to one process's."""
    from functools import partial

    from engine.losses import get_loss
    from engine.trainer import forward_backward

    ds = data(41)
    loss = get_loss("cross_entropy")
    model = engine.build_model(conv_graph(), seed=1)
    t = Trainer(model, ds, batch_size=8, epochs=1, processes=1)
    calls = []

    def rows(start, stop):  # the parent's own half is recorded here, the helper's in the helper
        calls.append((start, stop))
        return t._eval_sums(ds.X, ds.y, start, stop)

    split = parallel.SplitStep(
        model, partial(forward_backward, model, loss, ds.X, ds.y, True), 8, evaluate=rows
    )
    try:
        for _ in range(2):
            whole = t._eval_sums(ds.X, ds.y, 0, 41)
            total, weight, correct, count = split.evaluate(41)
            assert (weight, correct, count) == (41, whole[2], whole[3])
            assert total == pytest.approx(whole[0], rel=1e-6)
            for p in model.params.values():  # the helper must see the new parameters
                p *= 0.5
    finally:
        split.close()
    assert calls == [(0, 21), (0, 21)]
    assert whole[0] != pytest.approx(t._eval_sums(ds.X, ds.y, 0, 41)[0], rel=1e-3)


def test_a_helper_killed_before_the_validation_pass_leaves_it_to_this_process():
    _, ev1 = train(1, 8, epochs=1)
    model = engine.build_model(conv_graph(), seed=1)
    t = Trainer(
        model,
        data(),
        batch_size=8,
        epochs=1,
        seed=2,
        optimizer={"name": "momentum", "lr": 0.05},
        processes=2,
    )
    events = []
    for ev in t.run():
        events.append(ev)
        if ev["event"] == "step" and ev["step"] == 9:  # the epoch's last: validation next
            os.kill(t._split.pid, signal.SIGKILL)
    epoch, end = events[-2], events[-1]
    assert end["reason"] == "finished" and end["processes"] == 1
    assert "ended unexpectedly" in end["note"]
    assert epoch["val_loss"] == pytest.approx(ev1[-2]["val_loss"], rel=1e-4)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        ("masked", "masked padding"),
        ("heads", "several outputs"),
        ("sampled", "scheduled sampling"),
    ],
)
def test_runs_that_need_the_whole_batch_stay_in_one_process_and_say_why(make, said):
    """processes=2 asked, but each of these needs the whole batch in one place (augmentation:
    tests/test_augment.py)."""
    if make == "masked":
        from test_mask_padding import caption_graph

        graph = caption_graph(True)
    elif make == "heads":
        from test_heads import two_heads

        graph = two_heads()
    else:
        from test_scheduled_sampling import reversal_graph

        graph = reversal_graph(0.5)
    t = Trainer.from_graph(graph, processes=2)
    assert t.processes == 1 and said in t.processes_reason
