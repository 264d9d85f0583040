"""Every layer type against its textbook version in engine.reference (CS231n's layers.py beside
fast_layers.py): forward, input gradient and every parameter gradient agree in float64, over
shapes, strides and paddings; so do BatchNorm's running statistics, the recurrent blocks' gates
and their per-step gradient profile. Every block type must have a reference and name it.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from reference_cases import (
    CASES,
    assert_close,
    build,
    case_id,
    make_input,
    state_of,
)
from reference_runners import NO_REFERENCE, REFERENCES

from engine import conv_plan
from engine import reference as R
from engine.layers import (
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    Layer,
    MaxPool2D,
)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_fast_layer_agrees_with_its_reference(case):
    layer, shape, training = case
    rng = np.random.default_rng(11)
    layer = build(type(layer)(**layer.config), shape, rng)  # a fresh copy per run
    x = make_input(layer, shape, rng)
    ref_out, ref_backward, ref_state = REFERENCES[layer.type_name](layer, x, training)
    out = layer.forward(x, training=training)
    assert out.dtype == np.float64
    assert_close(out, ref_out, "forward")
    for where, value in ref_state.items():
        assert_close(state_of(layer, where), value, f"{where} after forward")
    dout = rng.standard_normal(out.shape)
    ref_dx, ref_grads, ref_after = ref_backward(dout.copy())
    dx = layer.backward(dout.copy())
    if ref_dx is None:
        assert dx is None
    else:
        assert_close(dx, ref_dx, "dx")
    assert set(ref_grads) == set(layer.params)
    for k, g in ref_grads.items():
        assert_close(layer.grads[k], g, f"grad {k}")
    for where, value in ref_after.items():
        assert_close(state_of(layer, where), value, f"{where} after backward")


def smallest_cases():
    """One case per block type (training mode if it has one, then the smallest input), per
    activation function, Conv2D with a connection table, and every recurrent cell in its
    fullest form (bidirectional, returning the sequence)."""
    best = {}
    for case in CASES:
        layer, shape, training = case
        key = layer.type_name
        if key in ("RNN", "LSTM", "GRU"):
            cfg = layer.config
            if not (cfg["bidirectional"] and cfg["return_sequences"]):
                continue
            key = f"{key}-{cfg.get('nonlinearity', '')}-{cfg.get('peepholes')}"
            key += f"-{cfg.get('convention')}-{cfg['single_bias']}"
        elif key == "Activation":  # every function (softmax's Jacobian above all)
            key = f"{key}-{layer.config['fn']}"
        elif key == "Conv2D":  # with and without a connection table, grouped
            key = f"{key}-{layer.config['connections'] is None}-{layer.config['groups'] > 1}"
        elif key == "Attention":  # every score, masked
            if len(shape) != 3:
                continue
            key = f"{key}-{layer.config['score']}"
        size = sum(np.prod(s) for s in shape) if isinstance(shape, list) else np.prod(shape)
        rank = (not training, size)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, case)
    return [case for _, case in best.values()]


@pytest.mark.parametrize("case", smallest_cases(), ids=[case_id(c) for c in smallest_cases()])
def test_reference_backward_is_the_derivative_of_its_forward(case):
    """The textbook code stands on its own: central differences of the reference's forward
    give its backward (float64, relative error below 1e-6)."""
    layer, shape, training = case
    rng = np.random.default_rng(12)
    layer = build(type(layer)(**layer.config), shape, rng)
    x = make_input(layer, shape, rng)
    if isinstance(layer, MaxPool2D):  # distinct values: a tie has no derivative to check
        x = rng.permutation(x.size).reshape(x.shape) / 10.0
    ref = REFERENCES[layer.type_name]
    out, backward, _ = ref(layer, x, training)
    r = rng.standard_normal(out.shape)
    dx, grads, _ = backward(r.copy())

    def loss():
        return float(np.sum(ref(layer, x, training)[0] * r))

    xs, dxs = (x, dx) if isinstance(x, list) else ([x], [dx])
    for i, (xi, dxi) in enumerate(zip(xs, dxs, strict=True)):
        if np.issubdtype(xi.dtype, np.floating):
            assert rel_error(dxi, numeric_grad(loss, xi)) < 1e-6, f"dx{i}"
    for k, g in grads.items():
        assert rel_error(g, numeric_grad(loss, layer.params[k])) < 1e-6, k


def engine_block_types():
    return {
        name: cls
        for name, cls in Layer.registry.items()
        if cls.__module__.startswith("engine.layers.")  # not classes made up inside tests
    }


def test_every_block_type_has_a_reference_and_cases():
    types = set(engine_block_types())
    assert types - set(NO_REFERENCE) == set(REFERENCES)
    assert {c[0].type_name for c in CASES} == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(engine_block_types()))
def test_each_layer_docstring_names_its_reference(name):
    """The app's block help links the textbook version named here."""
    if name in NO_REFERENCE:
        return
    doc = engine_block_types()[name].__doc__ or ""
    found = re.findall(r"Reference: engine\.reference\.(\w+)\.(\w+_forward)", doc)
    assert found, f"{name}'s docstring names no 'Reference: engine.reference.<module>.<fn>'"
    for module, fn in found:
        mod = importlib.import_module(f"engine.reference.{module}")
        assert callable(getattr(mod, fn)), f"{name}: engine.reference.{module}.{fn}"
        backward = fn.replace("_forward", "_backward")
        assert callable(getattr(mod, backward)), f"{name}: engine.reference.{module}.{backward}"


# --- the references reproduce the lectures' numbers --------------------------------------------
def test_reference_conv_and_pool_give_lecture_000s_numbers():
    image = np.array(
        [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]],
        dtype=float,
    )[None, None]
    kernel = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=float)[None, None]
    out, _ = R.conv.conv2d_forward(image, kernel)
    np.testing.assert_array_equal(out[0, 0], [[12, 12, 17], [10, 17, 19], [9, 6, 14]])
    pooled, _ = R.pool.max_pool2d_forward(image, (3, 3), (1, 1))
    np.testing.assert_array_equal(pooled[0, 0], [[3, 3, 3], [3, 3, 3], [3, 2, 3]])


def test_reference_lstm_step_follows_the_gate_equations():
    """Zero weights and a forget bias of 1: i = f = o = sigma(.), g = 0 except through b_g."""
    h, f = 2, 3
    p = {
        "weight_ih": np.zeros((4 * h, f)),
        "weight_hh": np.zeros((4 * h, h)),
        "bias_ih": np.array([0, 0, 1, 1, 0.5, 0.5, 0, 0], float),
        "bias_hh": np.zeros(4 * h),
    }
    c_prev = np.array([[2.0, -1.0]])
    hid, c, _ = R.recurrent.lstm_step_forward(np.ones((1, f)), np.zeros((1, h)), c_prev, p)
    sig = R.recurrent.sigmoid
    np.testing.assert_allclose(c, sig(1.0) * c_prev + 0.5 * np.tanh(0.5))
    np.testing.assert_allclose(hid, 0.5 * np.tanh(c))


def test_conv_cases_cover_every_fast_path():
    """The convolution cases run each of the plan's layouts: folded, wide rows (short and long
    rows) and strided im2col (engine/conv_plan.py)."""
    seen = set()
    for layer, shape, _ in CASES:
        if isinstance(layer, (Conv2D, Conv1D, ConvTranspose2D)):
            rng = np.random.default_rng(0)
            built = build(type(layer)(**layer.config), shape, rng)
            built.forward(make_input(built, shape, rng))
            (plan,) = built._plans.values()
            plan = plan[0] if isinstance(plan, list) else plan  # Conv2D: one plan per group
            if plan.folded:
                seen.add("folded")
            elif plan.wide:
                seen.add(
                    "wide, long rows"
                    if plan.OW >= conv_plan.WIDE_FORWARD_BELOW
                    else "wide, short rows"
                )
            else:
                seen.add("strided")
    assert seen == {"folded", "wide, long rows", "wide, short rows", "strided"}


def test_folding_counts_the_copy_of_the_weight():
    """The folded layout copies the weight each call: for a wide layer on one sample (ResNet-18
    inference, 512 maps at 7x7) that costs more than its smaller columns save."""
    same = (1, 1), (1, 1, 1, 1)
    assert not conv_plan.Conv2dPlan((1, 512, 7, 7), (512, 512, 3, 3), *same).folded
    assert not conv_plan.Conv2dPlan((1, 12, 3, 3), (12, 12, 3, 3), *same).folded
    assert conv_plan.Conv2dPlan((4, 12, 3, 3), (12, 12, 3, 3), *same).folded
    assert conv_plan.Conv2dPlan((64, 64, 8, 8), (64, 64, 3, 3), *same).folded  # ResNet-20
    assert conv_plan.Conv2dPlan((1, 64, 56, 56), (64, 64, 3, 3), *same).folded  # ResNet-18
