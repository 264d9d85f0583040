"""Model.predict (engine/inference.py): a convolution's BatchNorm and ReLU, and an Add's ReLU, run
inside the block before them. The same values as Model.forward(training=False) and as
engine.reference's loops, through every branch (the scale on the weights or on the output,
Winograd or im2col, groups, a convolution's own bias), and never stale: the BatchNorm's
statistics and the weights are read afresh after a training step, an in-place edit or a load."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import inference
from engine.layers import Conv2D
from engine.layers.norm import BatchNorm
from engine.optim import make_optimizer
from engine.reference import conv as ref_conv
from engine.reference.activation import activation_forward
from engine.reference.norm import batchnorm_forward


def _graph(nodes: list[tuple], shape: list[int]) -> engine.Graph:
    """nodes: (id, type, config, *sources)."""
    return engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "name": "t",
            "nodes": [{"id": "in", "type": "Input", "config": {"shape": shape}}]
            + [{"id": n, "type": t, "config": c} for n, t, c, *_ in nodes],
            "edges": [{"source": s, "target": n} for n, _, _, *srcs in nodes for s in srcs],
        }
    )


def conv(filters, k=3, stride=1, bias=False, groups=1):
    return {
        "filters": filters,
        "kernel_size": k,
        "stride": stride,
        "padding": k // 2,
        "bias": bias,
        "groups": groups,
    }


RELU = {"fn": "relu"}


def resnet_like(c: int = 8, wide: int = 64) -> engine.Graph:
    """Stem conv+BN+ReLU (scale on the weights), a residual block at ``wide`` maps (Winograd at
    14x14 for 64 maps; the scale on the output at 7x7), a projection, a grouped conv with a
    bias, a kept-able middle, a conv read twice (not fused), then a head."""
    return _graph(
        [
            ("stem", "Conv2D", conv(c, 5, 2, bias=True), "in"),
            ("stem_bn", "BatchNorm", {}, "stem"),
            ("stem_relu", "Activation", RELU, "stem_bn"),
            ("a", "Conv2D", conv(wide), "stem_relu"),
            ("a_bn", "BatchNorm", {}, "a"),
            ("a_relu", "Activation", RELU, "a_bn"),
            ("b", "Conv2D", conv(wide), "a_relu"),
            ("b_bn", "BatchNorm", {}, "b"),
            ("proj", "Conv2D", conv(wide, 1), "stem_relu"),
            ("proj_bn", "BatchNorm", {}, "proj"),
            ("add", "Add", {}, "b_bn", "proj_bn"),
            ("add_relu", "Activation", RELU, "add"),
            ("down", "Conv2D", conv(wide, 3, 2), "add_relu"),
            ("down_bn", "BatchNorm", {}, "down"),
            ("g", "Conv2D", conv(wide, 3, 1, bias=True, groups=4), "down_bn"),
            ("g_bn", "BatchNorm", {}, "g"),
            ("g_relu", "Activation", RELU, "g_bn"),
            ("twice", "Conv2D", conv(wide, 1), "g_relu"),
            ("twice_bn", "BatchNorm", {}, "twice"),
            ("twice_relu", "Activation", RELU, "twice"),
            ("join", "Add", {}, "twice_bn", "twice_relu"),
            ("gap", "GlobalAvgPool2D", {}, "join"),
            ("fc", "Dense", {"units": 5}, "gap"),
        ],
        [3, 28, 28],
    )


def randomise_batchnorm(model: engine.Model, rng: np.random.Generator) -> None:
    """Running statistics and affine parameters far from the identity they start at."""
    for layer in model.layers.values():
        if isinstance(layer, BatchNorm):
            c = layer.params["weight"].shape
            layer.buffers["running_mean"][...] = rng.normal(0, 0.5, c)
            layer.buffers["running_var"][...] = rng.uniform(0.3, 3.0, c)
            layer.params["weight"][...] = rng.uniform(0.5, 2.0, c)
            layer.params["bias"][...] = rng.normal(0, 0.5, c)


@pytest.fixture
def model() -> engine.Model:
    m = engine.build_model(resnet_like(), seed=3)
    randomise_batchnorm(m, np.random.default_rng(0))
    return m


def _x(model: engine.Model, n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *model.input_shape), dtype=np.float32)


def test_the_plan_fuses_only_what_nobody_else_sees(model):
    steps = inference.plan(model)
    assert steps["stem"] == ("stem_bn", True) and steps["a"] == ("a_bn", True)
    assert steps["b"] == ("b_bn", False) and steps["proj"] == ("proj_bn", False)
    assert steps["add"] == (None, True) and steps["g"] == ("g_bn", True)
    assert steps["down"] == ("down_bn", False)
    assert "twice" not in steps  # two readers: its own output is needed
    assert "join" not in steps  # Add -> pool: nothing to take
    inside = {n for n, s in steps.items() if s is None}
    assert inside == {"stem_bn", "stem_relu", "a_bn", "a_relu", "b_bn", "proj_bn", "add_relu"} | {
        "down_bn",
        "g_bn",
        "g_relu",
    }
    # a kept block's output must be its own: what reads it runs on its own
    kept = inference.plan(model, ("a_bn", "add"))
    assert kept["a"] == ("a_bn", False) and "a_relu" not in kept and "add" not in kept


@pytest.mark.parametrize("n", [1, 3])
def test_predict_gives_forwards_values(model, n):
    x = _x(model, n)
    want = model.forward(x, training=False)
    got = model.predict(x)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())
    # float64: the same sums, only the rounding differs
    model.astype(np.float64)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(model.predict(x64), model.forward(x64), rtol=1e-11, atol=1e-12)


def test_kept_blocks_hold_forwards_values(model):
    x = _x(model)
    model.forward(x, keep=("a_bn", "add", "g_relu"))
    want = dict(model.kept)
    model.predict(x, keep=["a_bn", "add", "g_relu"])  # a list as well as a tuple
    assert set(model.kept) == set(want)
    for k, v in want.items():
        np.testing.assert_allclose(model.kept[k], v, rtol=0, atol=2e-5 * np.abs(v).max())


@pytest.mark.parametrize(
    "c,f,hw,k,stride,bias,groups",
    [
        (3, 8, 12, 5, 2, True, 1),  # C*kh*kw = 75 <= 36 positions? no: scale on the output
        (3, 8, 24, 3, 1, False, 1),  # 27 <= 576: scale on the weights
        (64, 64, 14, 3, 1, True, 1),  # Winograd, 576 <= 196? no: on the output
        (64, 64, 30, 3, 1, False, 1),  # Winograd, scale on the weights
        (8, 8, 9, 3, 1, True, 2),  # grouped: after the groups' convolutions
    ],
)
def test_fused_convolution_matches_the_reference_loops(c, f, hw, k, stride, bias, groups):
    rng = np.random.default_rng(5)
    layer = Conv2D(
        name="c", filters=f, kernel_size=k, stride=stride, padding=1, bias=bias, groups=groups
    )
    layer.build((c, hw, hw), rng)
    if bias:
        layer.params["bias"][...] = rng.normal(0, 1, f)
    x = rng.standard_normal((1, c, hw, hw), dtype=np.float32)
    gamma, beta = rng.uniform(0.5, 2, f), rng.normal(0, 1, f)
    mean, var = rng.normal(0, 1, f), rng.uniform(0.3, 3, f)
    x64, w64 = x.astype(np.float64), layer.params["weight"].astype(np.float64)
    b64 = layer.params["bias"].astype(np.float64) if bias else None
    y, _ = ref_conv.conv2d_forward(x64, w64, b64, (stride, stride), (1, 1, 1, 1), groups=groups)
    y, *_ = batchnorm_forward(y, gamma, beta, False, mean, var)
    want, _ = activation_forward(y, "relu")
    bn = BatchNorm(name="bn")
    bn.build((f, *want.shape[2:]), rng)
    bn.params["weight"][...], bn.params["bias"][...] = gamma, beta
    bn.buffers["running_mean"][...], bn.buffers["running_var"][...] = mean, var
    got = layer.fused_forward(x, bn.inference_affine(), relu=True)
    assert got.dtype == np.float32 and bool(layer._winos) == (c == 64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    # the unfused blocks give the same (their rounding differs only)
    np.testing.assert_allclose(
        got, np.maximum(bn.forward(layer.forward(x)), 0), rtol=0, atol=1e-5 * np.abs(want).max()
    )


def test_nothing_goes_stale(model):
    """The BatchNorm's statistics and the weights are read at every call: after a training step
    (the running statistics and every weight move), an in-place edit and a weights load,
    predict still gives forward's values."""
    x = _x(model)
    before = model.predict(x)
    # a training step: forward in training mode, backward, SGD
    xs = _x(model, 4, seed=2)
    out = model.forward(xs, training=True)
    model.backward(out - 1.0, input_grad=False)
    make_optimizer({"name": "sgd", "lr": 0.1}).step(model.params, model.grads)
    after_step = model.predict(x)
    assert np.abs(after_step - before).max() > 1e-3
    want = model.forward(x)
    np.testing.assert_allclose(after_step, want, rtol=0, atol=2e-5 * np.abs(want).max())
    # an edit in place (as the GUI's weight editor or a test would)
    model.layers["a_bn"].buffers["running_var"][...] *= 4.0
    model.layers["stem"].params["weight"][...] *= -1.0
    edited = model.predict(x)
    want = model.forward(x)
    assert np.abs(edited - after_step).max() > 1e-3
    np.testing.assert_allclose(edited, want, rtol=0, atol=2e-5 * np.abs(want).max())
    # a load: back to the first state, and the first values
    fresh = engine.build_model(resnet_like(), seed=3)
    randomise_batchnorm(fresh, np.random.default_rng(0))
    model.set_state(fresh.state())
    np.testing.assert_allclose(model.predict(x), before, rtol=0, atol=1e-6 * np.abs(before).max())


def test_backward_after_predict_is_refused(model):
    x = _x(model)
    out = model.predict(x)
    with pytest.raises(RuntimeError, match="predict"):
        model.backward(np.ones_like(out))
    out = model.forward(x)  # forward's caches again: backward runs
    assert model.backward(np.ones_like(out)).shape == x.shape
