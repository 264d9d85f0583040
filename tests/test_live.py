"""engine.training_process: the messages of a training run, and the training process's
protocol, without Qt."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

import engine
from engine.training_process import LiveRun, child_main


def xor_graph(epochs: int = 2) -> engine.Graph:
    g = engine.Graph("xor")
    g.add_node("Input", {"shape": [2]}, node_id="in")
    g.add_node("Dense", {"units": 4}, node_id="d1")
    g.add_node("Activation", {"fn": "tanh"}, node_id="a1")
    g.add_node("Dense", {"units": 2}, node_id="out")
    for a, b in (("in", "d1"), ("d1", "a1"), ("a1", "out")):
        g.add_edge(a, b)
    g.set_meta(
        "training",
        {
            "dataset": {"name": "xor", "repeat": 10},
            "loss": "cross_entropy",
            "optimizer": {"name": "sgd", "lr": 0.1},
            "batch_size": 8,
            "epochs": epochs,
            "seed": 0,
        },
    )
    return g


def test_a_run_reports_every_step_then_finishes_with_its_weights():
    g = xor_graph()
    got = []
    live = LiveRun(g.to_dict(), g.training, lambda kind, payload: got.append((kind, payload)))
    live.run()
    kinds = [k for k, _ in got]
    assert kinds[0] == "prepared" and kinds[-1] == "finished"
    steps = [e for k, p in got if k == "steps" for e in p]
    info = got[0][1]
    assert [e["step"] for e in steps] == list(range(1, info["total_steps"] + 1))
    assert [p["epoch"] for k, p in got if k == "epoch"] == [1, 2]
    end = got[-1][1]
    for k, v in live.model.params.items():
        np.testing.assert_array_equal(end["weights"][k], v)
    last_epoch = [p for k, p in got if k == "epoch"][-1]  # the confusion of the final model
    assert last_epoch["confusion"].sum() == info["n_val"] and "confusion" not in end


def test_a_payload_that_cannot_be_sent_still_ends_the_run_with_a_message():
    from engine.training_process import _run_guarded

    g = xor_graph()
    got = []

    def send(kind, payload):
        if kind == "finished":
            raise TypeError("cannot pickle")
        got.append(kind)

    _run_guarded(LiveRun(g.to_dict(), g.training, send))
    assert got[-1] == "failed"


def test_the_process_protocol_runs_two_runs_and_ignores_bad_controls():
    ctx = multiprocessing.get_context("spawn")
    inbox, out = ctx.Pipe(duplex=False)
    commands_in, commands = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(out, commands_in), daemon=True)
    proc.start()
    out.close()
    commands_in.close()
    g = xor_graph()
    try:
        for run_id in (1, 2):
            commands.send(("run", (run_id, g.to_dict(), g.training, False), {}))
            commands.send(("set_lr", ("fast",), {}))  # refused in the process, nothing breaks
            kinds = []
            while not kinds or kinds[-1] not in ("finished", "failed"):
                assert inbox.poll(30), "no message from the training process"
                rid, kind, _ = inbox.recv()
                assert rid == run_id
                kinds.append(kind)
            assert kinds[-1] == "finished"
        commands.send(None)
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()


def test_the_helper_process_is_forked_with_no_run_thread_alive(monkeypatch):
    """A two-process run's helper is a fork (engine.parallel), made by child_main's own
    thread between the prepare and train threads: a fork beside a running thread may copy a
    lock that thread holds, locked for ever."""
    import os

    real_fork, forks = os.fork, []

    def fork():
        forks.append([t.name for t in threading.enumerate()])
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setenv("BLOCKPROP_PROCESSES", "2")
    monkeypatch.setattr("engine.training_process.keep_freed_memory", lambda: None)
    inbox, out = multiprocessing.Pipe(duplex=False)
    commands_in, commands = multiprocessing.Pipe(duplex=False)
    g = xor_graph()
    commands.send(("run", (1, g.to_dict(), g.training, False), {}))
    got = []

    def read():
        while True:
            _, kind, payload = inbox.recv()
            got.append((kind, payload))
            if kind in ("finished", "failed"):
                commands.send(None)
                return

    reader = threading.Thread(target=read, name="test-reader", daemon=True)
    reader.start()
    child_main(out, commands_in)
    reader.join(10)
    assert got[-1][0] == "finished", got[-1]
    assert dict(got)["prepared"]["processes"] == 2
    assert len(forks) == 1
    assert not [name for name in forks[0] if name.startswith("blockprop-")]


def test_stop_before_the_data_is_loaded_ends_the_run_at_once():
    g = xor_graph(epochs=1000)
    got = []
    live = LiveRun(g.to_dict(), g.training, lambda kind, payload: got.append((kind, payload)))
    live.stop()
    t = threading.Thread(target=live.run)
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert got[-1][0] == "finished" and got[-1][1]["reason"] == "stopped"
    assert not [p for k, p in got if k == "steps"]


def test_check_lr_refuses_what_is_not_a_positive_number():
    from engine.errors import ConfigError
    from engine.training_spec import check_lr

    assert check_lr(0.5) == 0.5
    for bad in (0, -1.0, float("nan"), "fast", True):
        with pytest.raises(ConfigError):
            check_lr(bad)


def test_a_run_sent_while_the_last_one_prepares_ends_that_one_first(monkeypatch):
    """Each run ends with "finished" (the app waits for it), also one stopped by the next
    "run" before its data was loaded."""
    monkeypatch.setattr("engine.training_process.keep_freed_memory", lambda: None)
    inbox, out = multiprocessing.Pipe(duplex=False)
    commands_in, commands = multiprocessing.Pipe(duplex=False)
    g = xor_graph(epochs=1000)
    commands.send(("run", (1, g.to_dict(), g.training, False), {}))
    commands.send(("run", (2, g.to_dict(), g.training, False), {}))
    commands.send(("stop", (), {}))
    got = []

    def read():
        while True:
            rid, kind, payload = inbox.recv()
            got.append((rid, kind, payload))
            if rid == 2 and kind in ("finished", "failed"):
                commands.send(None)
                return

    reader = threading.Thread(target=read, name="test-reader", daemon=True)
    reader.start()
    child_main(out, commands_in)
    reader.join(10)
    ends = [(rid, kind, p.get("reason")) for rid, kind, p in got if kind in ("finished", "failed")]
    assert ends == [(1, "finished", "stopped"), (2, "finished", "stopped")]
    assert [rid for rid, _, _ in got] == sorted(rid for rid, _, _ in got)  # run 1's first
