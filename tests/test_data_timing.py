"""The timed spikes data set (Gers, Schraudolph & Schmidhuber 2002) and its spike metric."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.data import load_dataset
from engine.data.timing import spikes_right
from engine.errors import ConfigError


@pytest.mark.parametrize("cues,lo,hi", [(1, 8, 8), (2, 5, 12)])
def test_targets_continue_the_input_interval(cues, lo, hi):
    ds = load_dataset(
        {
            "name": "timed_spikes",
            "n": 300,
            "T": 40,
            "min_interval": lo,
            "max_interval": hi,
            "cues": cues,
        },
        seed=3,
    )
    assert ds.X.shape == ds.y.shape == (300, 40, 1) and ds.X.dtype == np.float32
    seen = set()
    for x, y in zip(ds.X[..., 0], ds.y[..., 0], strict=True):
        ins, outs = np.flatnonzero(x), np.flatnonzero(y)
        assert len(ins) == cues and len(outs) >= 1
        d = ins[1] - ins[0] if cues == 2 else lo
        seen.add(int(d))
        assert lo <= d <= hi and ins[0] < d
        # every spike, input then target, is d after the one before, up to the end
        spikes = np.concatenate([ins, outs])
        assert np.all(np.diff(spikes) == d) and spikes[-1] + d >= 40
    assert seen == set(range(lo, hi + 1))
    assert ds.meta["baseline_mse"] == pytest.approx(float(ds.y.var()))


def test_seeded_and_reproducible():
    spec = {"name": "timed_spikes", "n": 50, "cues": 2, "min_interval": 4, "max_interval": 9}
    a, b, c = (load_dataset(spec, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)


@pytest.mark.parametrize(
    "spec,words",
    [
        ({"min_interval": 9, "max_interval": 5, "cues": 2}, "larger than 'max_interval'"),
        ({"min_interval": 5, "max_interval": 9}, "cannot show the interval"),
        ({"T": 20, "min_interval": 5, "max_interval": 9, "cues": 2}, "at least"),
    ],
)
def test_bad_options_are_one_clear_message(spec, words):
    with pytest.raises(ConfigError, match=words) as e:
        load_dataset({"name": "timed_spikes", **spec})
    assert "timed_spikes" in str(e.value)


def test_spikes_right_counts_misses_extras_and_tolerance():
    y = np.zeros((4, 10))
    y[:, 5] = 1
    pred = np.zeros((4, 10))
    pred[0, 5] = 0.9  # right
    pred[1, 6] = 0.9  # one step late
    pred[2, [5, 8]] = 0.9  # an extra spike
    # row 3: silent, a miss
    np.testing.assert_array_equal(spikes_right(y, pred), [True, False, False, False])
    np.testing.assert_array_equal(spikes_right(y, pred, 1), [True, True, False, False])


def test_a_runs_accuracy_is_the_share_of_sequences_with_every_spike_on_time():
    graph = engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "nodes": [
                {"id": "in", "type": "Input", "config": {"shape": [24, 1]}},
                {
                    "id": "lstm",
                    "type": "LSTM",
                    "config": {"hidden_size": 2, "return_sequences": True},
                },
                {"id": "out", "type": "Dense", "config": {"units": 1}},
            ],
            "edges": [
                {"source": "in", "target": "lstm", "target_port": 0},
                {"source": "lstm", "target": "out", "target_port": 0},
            ],
            "training": {
                "dataset": {
                    "name": "timed_spikes",
                    "n": 200,
                    "T": 24,
                    "min_interval": 6,
                    "max_interval": 6,
                },
                "loss": "mse",
                "optimizer": {"name": "adam", "lr": 0.05},
                "epochs": 3,
                "val_split": 0.5,
            },
        }
    )
    trainer = engine.Trainer.from_graph(graph)
    last = [ev for ev in trainer.run() if ev["event"] == "epoch"][-1]
    X, y = trainer.val_data
    right = spikes_right(y, trainer.model.forward(X))
    assert last["val_acc"] == pytest.approx(right.mean())
    assert trainer.evaluate(X, y)[1] == pytest.approx(right.mean())
    assert spikes_right(y, y).all()  # the targets themselves are every sequence right
