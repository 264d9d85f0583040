"""engine.parallel's shared flat arrays: a split run keeps its parameters in the split's shared
memory and combines the halves' gradients into one flat array, and every step's loss and
parameters equal one process's (clipping, L1/L2, schedules, an uneven or one-sample batch)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_parallel import conv_graph, data, started_split_run

import engine
from engine import parallel
from engine.trainer import Trainer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the split forks (Linux)")


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": {"name": "adam", "lr": 0.01}, "clip_norm": 0.5},
        {
            "optimizer": {"name": "momentum", "lr": 0.05},
            "l2": 1e-2,
            "schedule": {"name": "step", "step_size": 1},
        },
        {"optimizer": {"name": "sgd", "lr": 0.05}, "l1": 1e-3, "clip_norm": 1.0},
        {"optimizer": {"name": "rmsprop", "lr": 0.01}, "l2": 1e-3},
    ],
    ids=["adam-clip", "momentum-l2-schedule", "sgd-l1-clip", "rmsprop-l2"],
)
def test_the_split_updates_the_shared_flat_parameters_as_one_process_does(settings):
    """The parameters live in the split's shared memory and the update runs on the flat
    parameters and gradients where they are (nothing gathered); after every step the loss and
    every parameter match one process's, also with clipping, L1/L2 and a schedule."""
    runs = []
    for processes in (1, 2):
        model = engine.build_model(conv_graph(), seed=1)
        t = Trainer(model, data(), batch_size=8, epochs=2, seed=2, processes=processes, **settings)
        runs.append((t, t.run()))
    (one, run1), (two, run2) = runs
    steps = 0
    for a, b in zip(run1, run2, strict=True):
        assert a["event"] == b["event"]
        if a["event"] != "step":
            continue
        steps += 1
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
        assert b["lr"] == a["lr"]
        for name, p in one.model.params.items():
            np.testing.assert_allclose(two.model.params[name], p, rtol=1e-3, atol=1e-5)
        if steps == 1:
            split = two._split
            flat = split.flat_params
            assert all(np.shares_memory(p, flat) for p in two.model.params.values())
            assert all(
                np.shares_memory(layer.params[k], flat)
                for layer in two.model.layers.values()
                for k in layer.params
            )
            st = two.optimizer.__dict__.get("_flat")
            assert st and "w" not in st and "g" not in st  # nothing gathered
    assert steps == 2 * 9 and two.processes == 2


def test_an_uneven_split_combines_into_the_flat_gradient_with_the_halves_weights():
    """7 samples: 4 here and 3 in the helper; the combined gradient is (4 g0 + 3 g1) / 7, in
    the flat array the layers' gradients are then views of."""
    from functools import partial

    from engine.losses import get_loss
    from engine.trainer import forward_backward

    ds = data()
    loss = get_loss("cross_entropy")
    one, two = (engine.build_model(conv_graph(), seed=1) for _ in range(2))
    split = parallel.SplitStep(two, partial(forward_backward, two, loss, ds.X, ds.y, True), 7)
    try:
        idx = np.arange(7)
        loss1, _ = forward_backward(one, loss, ds.X, ds.y, True, idx)
        loss2, _ = split.forward_backward(idx)
        assert loss2 == pytest.approx(loss1, rel=1e-5)
        for (name, g), view in zip(two.grads.items(), split.grad_views, strict=True):
            assert g is view and np.shares_memory(g, split.flat_grads)
            np.testing.assert_allclose(g, one.grads[name], rtol=1e-4, atol=1e-6, err_msg=name)
    finally:
        split.close()


def test_a_split_run_checks_its_flat_parameters_for_a_weight_that_is_not_finite():
    """The update's check for NaN and infinity reads the split's flat parameters in one call:
    a bad value in any block is found there, and the check goes back to the arrays when the
    model's parameters are moved elsewhere (astype)."""
    t, run, _ = started_split_run(epochs=1)
    try:
        model = t.model
        assert model.flat_params is t._split.flat_params
        assert t._weights_finite()
        for name in ("b1.weight", "b5.bias"):
            p = model.params[name]
            keep = p.flat[-1]
            p.flat[-1] = np.inf if name == "b1.weight" else np.nan
            assert not t._weights_finite(), name
            p.flat[-1] = keep
        assert t._weights_finite()
    finally:
        run.close()
    model.astype(np.float64)
    assert model.flat_params is None and t._weights_finite()


def test_a_one_sample_batch_of_a_split_run_clips_its_own_gradients():
    """The last batch of one sample runs in this process alone: clipping scales the layers'
    own gradients then, not the split's flat array of the step before."""
    ds = data(91)
    runs = []
    for processes in (1, 2):
        model = engine.build_model(conv_graph(), seed=1)
        t = Trainer(
            model,
            ds,
            batch_size=8,
            epochs=2,
            seed=2,
            processes=processes,
            optimizer={"name": "adam", "lr": 0.01},
            clip_norm=1e-3,
        )
        assert len(t.train_data[0]) % 8 == 1
        runs.append((t, [e for e in t.run() if e["event"] == "step"]))
    (one, ev1), (two, ev2) = runs
    assert two.processes == 2 and len(ev1) == len(ev2)
    for a, b in zip(ev1, ev2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
    for name, p in one.model.params.items():
        np.testing.assert_allclose(two.model.params[name], p, rtol=1e-3, atol=1e-5)
