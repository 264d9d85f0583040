"""Convolution and pooling layers: the functional forms against the loop references, gradient
checks, bad input (against PyTorch: test_conv_pool_torch.py; chunks and buffers:
test_conv_pool_fast_paths.py; every layer against engine.reference: test_reference.py).

The references are the obvious loops of engine.reference.conv / .pool (one output value at a
time); the fast versions in engine.functional / engine.layers must agree with them.
"""

import numpy as np
import pytest
from gradcheck import check_layer

from engine import conv_plan
from engine import functional as F
from engine.errors import BlockPropError, ConfigError, ShapeError
from engine.layers import (
    AvgPool2D,
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    GlobalAvgPool2D,
    MaxPool2D,
    Subsample2D,
    Upsample2D,
)
from engine.reference import conv as ref_conv
from engine.reference import pool as ref_pool

LENET_C3 = [
    [0, 1, 2],
    [1, 2, 3],
    [2, 3, 4],
    [3, 4, 5],
    [4, 5, 0],
    [5, 0, 1],
    [0, 1, 2, 3],
    [1, 2, 3, 4],
    [2, 3, 4, 5],
    [3, 4, 5, 0],
    [4, 5, 0, 1],
    [5, 0, 1, 2],
    [0, 1, 3, 4],
    [1, 2, 4, 5],
    [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


def rng(seed=0):
    return np.random.default_rng(seed)


def tied_images(seed, shape):
    """ReLU of mostly negative values: most windows are all zeros, i.e. full of ties."""
    x = rng(seed).standard_normal(shape) - 1.2
    x[..., ::3, 1::2] = 0.7  # equal positive values inside windows too
    return np.maximum(x, 0.0)


# --- functional against the references ---------------------------------------------------------
CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    ((1, 2, 8, 9), (3, 2, 2, 3), [2, 1], [1, 0]),
    ((2, 1, 6, 6), (2, 1, 4, 4), 1, "same"),  # even kernel: 1 before, 2 after (as PyTorch)
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, "same"),
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, "valid"),
    ((3, 2, 9, 9), (5, 2, 5, 5), 3, 2),
    ((2, 4, 1, 1), (3, 4, 1, 1), 1, 0),  # 1x1 convolution on 1x1 maps
    ((2, 1, 26, 29), (3, 1, 3, 3), 1, 1),  # rows of 29 outputs: no wide rows going forward
    ((2, 3, 8, 7), (4, 3, 1, 1), 2, 0),  # windows that do not overlap: no phases going back
    ((2, 2, 9, 8), (3, 2, 3, 2), 2, [1, 0]),  # rows by phases, columns not overlapping
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("wide_below", [None, 0, 10_000])  # default / never / always wide rows
def test_conv2d_matches_loops(monkeypatch, x_shape, w_shape, stride, padding, bias, wide_below):
    if wide_below is not None:
        monkeypatch.setattr(conv_plan, "WIDE_FORWARD_BELOW", wide_below)
    r = rng(1)
    x, w = r.standard_normal(x_shape), r.standard_normal(w_shape)
    b = r.standard_normal(w_shape[0]) if bias else None
    st = F.pair(stride)
    pad4 = F.padding4(padding, w_shape[2:], st)
    out = F.conv2d(x, w, b, stride=stride, padding=padding)
    ref, _ = ref_conv.conv2d_forward(x, w, b, st, pad4)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    out32 = F.conv2d(
        x.astype(np.float32),
        w.astype(np.float32),
        None if b is None else b.astype(np.float32),
        stride,
        padding,
    )
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("chunk_bytes", [None, 1])  # whole batch / one sample per chunk
def test_conv2d_backward_matches_loops(monkeypatch, x_shape, w_shape, stride, padding, chunk_bytes):
    if chunk_bytes:
        monkeypatch.setattr(conv_plan, "CHUNK_BYTES", chunk_bytes)
    r = rng(24)
    x = r.standard_normal(x_shape)
    layer = Conv2D(
        filters=w_shape[0], kernel_size=list(w_shape[2:]), stride=stride, padding=padding
    ).build(x_shape[1:], r)
    layer.astype(np.float64)
    out = layer.forward(x, training=True)
    dout = r.standard_normal(out.shape)
    dx = layer.backward(dout)
    pad4 = F.padding4(padding, w_shape[2:], F.pair(stride))
    p = layer.params
    _, cache = ref_conv.conv2d_forward(x, p["weight"], p["bias"], F.pair(stride), pad4)
    ref_dx, ref_dw, ref_db = ref_conv.conv2d_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["weight"], ref_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"], ref_db, rtol=1e-10, atol=1e-10)


def test_same_padding_keeps_the_size_and_pads_like_pytorch():
    assert F.padding4("same", (4, 5)) == (1, 2, 2, 2)
    assert F.padding4("valid", (3, 3)) == (0, 0, 0, 0)
    assert F.conv2d(np.ones((1, 1, 6, 7)), np.ones((1, 1, 4, 5)), padding="same").shape == (
        1,
        1,
        6,
        7,
    )
    with pytest.raises(ConfigError, match="stride 1"):
        F.padding4("same", (3, 3), (2, 2))


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ([2, 1], [0, 1]), (3, 0)])
def test_conv_transpose2d_matches_loops(stride, padding):
    r = rng(2)
    x, w, b = r.standard_normal((2, 3, 4, 5)), r.standard_normal((3, 2, 3, 3)), r.standard_normal(2)
    out = F.conv_transpose2d(x, w, b, stride, padding)
    ref, _ = ref_conv.conv_transpose2d_forward(x, w, b, F.pair(stride), F.pair(padding))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_conv1d_matches_loops():
    r = rng(3)
    x, w, b = r.standard_normal((2, 3, 11)), r.standard_normal((4, 3, 3)), r.standard_normal(4)
    ref, _ = ref_conv.conv1d_forward(x, w, b, stride=2, pad=(1, 1))
    np.testing.assert_allclose(F.conv1d(x, w, b, stride=2, padding=1), ref, rtol=1e-10)
    assert F.conv1d(x, w, b, padding="same").shape == (2, 4, 11)


POOL_CASES = [
    ((2, 2), None, (0, 0)),
    ((3, 3), (1, 1), (0, 0)),
    ((3, 3), (2, 2), (1, 1)),
    ((2, 3), (1, 2), (1, 1)),
    ((2, 2), (3, 3), (0, 0)),
    ((2, 2), None, (1, 1)),
    ((2, 2), None, (1, 0)),
]


@pytest.mark.parametrize("k,s,p", POOL_CASES)
def test_pools_match_loops_on_tied_images(k, s, p):
    x = tied_images(4, (2, 3, 7, 8))
    st = k if s is None else s
    for kind in ("max", "avg"):
        if kind == "max":
            ref, cache = ref_pool.max_pool2d_forward(x, k, st, p)
            route = ref_pool.max_pool2d_backward(np.ones_like(ref), cache)
        else:
            ref, _ = ref_pool.avg_pool2d_forward(x, k, st, p)
        fn = F.max_pool2d if kind == "max" else F.avg_pool2d
        np.testing.assert_allclose(fn(x, k, s, p), ref, rtol=1e-12)
        layer = (MaxPool2D if kind == "max" else AvgPool2D)(
            kernel_size=list(k), stride=None if s is None else list(s), padding=list(p)
        ).build(x.shape[1:])
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(out))
        if kind == "max":  # each window's gradient goes to ONE input: its first maximum
            np.testing.assert_array_equal(dx, route)
            assert dx.sum() == out.size


def test_max_pool_tie_goes_to_the_first_max_in_row_major_order():
    x = np.array([[[[0.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]]]])
    layer = MaxPool2D(kernel_size=2).build((1, 2, 4))
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[[[5.0, 1.0]]]])
    dx = layer.backward(np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0.0, 2.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_max_pool_inference_finds_its_choices_only_when_asked():
    # training keeps where each maximum came from; inference keeps x and finds them for a
    # backward pass (engine.explain) or MaxUnpool2D: both give the same routes and indices
    x = np.random.default_rng(3).integers(0, 4, (2, 3, 7, 7)).astype(np.float32)  # ties
    dout = np.random.default_rng(4).standard_normal((2, 3, 4, 4)).astype(np.float32)
    results = []
    for training in (True, False):
        layer = MaxPool2D(kernel_size=3, stride=2, padding=1).build((3, 7, 7))
        out = layer.forward(x, training=training)
        assert isinstance(layer._cache[1], dict) == training
        results.append((out, layer.argmax_indices(), layer.backward(dout)))
    for got, want in zip(results[1], results[0], strict=True):
        np.testing.assert_array_equal(got, want)


def test_max_pool_padding_is_minus_infinity_and_avg_counts_padded_zeros():
    x = -np.ones((1, 1, 2, 2))
    assert F.max_pool2d(x, 2, 2, 1).max() == -1.0  # padding never wins
    np.testing.assert_allclose(F.avg_pool2d(x, 2, 2, 1), np.full((1, 1, 2, 2), -0.25))


def test_window_sum_upsample_and_global_average():
    x = np.arange(2 * 3 * 5 * 4, dtype=float).reshape(2, 3, 5, 4)
    s = F.window_sum2d(x, 2)
    assert s.shape == (2, 3, 2, 2)
    assert s[1, 2, 1, 0] == x[1, 2, 2:4, 0:2].sum()
    up = F.upsample2d(x, [2, 3])
    assert up.shape == (2, 3, 10, 12)
    assert np.all(up[:, :, 4:6, 3:6] == x[:, :, 2:3, 1:2])
    np.testing.assert_allclose(F.global_avg_pool2d(x), x.mean(axis=(2, 3)))


# --- gradient checks (float64, central differences) --------------------------------------------
@pytest.mark.parametrize(
    "in_shape,cfg",
    [
        ((2, 5, 5), {"filters": 3, "kernel_size": 3}),
        ((3, 6, 7), {"filters": 2, "kernel_size": [2, 3], "stride": 2, "padding": 1}),
        ((2, 5, 4), {"filters": 2, "kernel_size": 2, "padding": "same"}),
        ((2, 5, 5), {"filters": 2, "kernel_size": 3, "padding": "same"}),
        ((2, 6, 6), {"filters": 2, "kernel_size": 3, "stride": [1, 2], "padding": [0, 1]}),
        ((1, 4, 4), {"filters": 2, "kernel_size": 4, "padding": "valid"}),
        ((3, 5, 5), {"filters": 4, "kernel_size": 3, "connections": [[0], [1, 2], [0, 2], [2]]}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradients(in_shape, cfg, bias):
    layer = Conv2D(bias=bias, **cfg).build(in_shape, rng(8))
    check_layer(layer, rng(9).standard_normal((2, *in_shape)))


@pytest.mark.parametrize(
    "cfg",
    [
        {"kernel_size": 3},
        {"kernel_size": 2, "stride": 2, "padding": 1},
        {"kernel_size": 4, "padding": "same"},
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_gradients(cfg, bias):
    layer = Conv1D(filters=3, bias=bias, **cfg).build((2, 9), rng(10))
    check_layer(layer, rng(11).standard_normal((2, 2, 9)))


@pytest.mark.parametrize(
    "cfg",
    [
        {"kernel_size": 3},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": [2, 3], "stride": [2, 1], "padding": [0, 1]},
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose2d_gradients(cfg, bias):
    layer = ConvTranspose2D(filters=2, bias=bias, **cfg).build((3, 4, 4), rng(12))
    check_layer(layer, rng(13).standard_normal((2, 3, 4, 4)))


@pytest.mark.parametrize(
    "layer",
    [
        MaxPool2D(kernel_size=2),
        MaxPool2D(kernel_size=3, stride=2, padding=1),
        MaxPool2D(kernel_size=[2, 3], stride=1),
        AvgPool2D(kernel_size=2),
        AvgPool2D(kernel_size=3, stride=2, padding=1),
        AvgPool2D(kernel_size=[3, 2], stride=[1, 2]),
        GlobalAvgPool2D(),
        Subsample2D(),
        Subsample2D(kernel_size=3),
        Upsample2D(),
        Upsample2D(scale=[1, 3]),
    ],
    ids=repr,
)
def test_pool_gradients(layer):
    # distinct values (a permutation), so no window has a tie the central difference would split
    x = rng(14).permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7) / 10.0
    check_layer(layer.build((2, 7, 7), rng(15)), x)


# --- connection table --------------------------------------------------------------------------
def test_connection_mask_holds_through_training_and_loaded_weights():
    r = rng(21)
    layer = Conv2D(filters=16, kernel_size=5, connections=LENET_C3).build((6, 14, 14), r)
    off = layer._weight_mask[:, :, 0, 0] == 0
    assert off.sum() == 16 * 6 - 60 and np.all(layer.params["weight"][off] == 0)
    assert np.all(layer.params["weight"][~off] != 0)
    x = r.standard_normal((2, 6, 14, 14), dtype=np.float32)
    for _ in range(3):  # plain SGD: masked weights get zero gradient and stay zero
        out = layer.forward(x, training=True)
        layer.backward(out)
        layer.params["weight"] -= 0.01 * layer.grads["weight"]
    assert np.all(layer.params["weight"][off] == 0)
    layer.params["weight"][...] = 1.0  # weights loaded from elsewhere: the table still holds
    out = layer.forward(np.ones((1, 6, 14, 14), np.float32))
    np.testing.assert_allclose(
        out[0, :, 0, 0] - layer.params["bias"], [25.0 * len(row) for row in LENET_C3], rtol=1e-6
    )


# --- bad settings and bad input ----------------------------------------------------------------
def test_wrong_input_shape_names_block_expected_and_actual():
    layer = Conv2D(filters=2, kernel_size=3, name="conv7").build((3, 8, 8))
    with pytest.raises(ShapeError) as e:
        layer.forward(np.zeros((2, 1, 8, 8), np.float32))
    msg = str(e.value)
    assert "conv7" in msg and "(N, 3, 8, 8)" in msg and "(2, 1, 8, 8)" in msg
    with pytest.raises(ShapeError) as e:
        MaxPool2D(kernel_size=2, name="pool3").build((3, 8, 8)).forward(np.zeros((2, 8, 8)))
    assert "pool3" in str(e.value) and "(2, 8, 8)" in str(e.value)


@pytest.mark.parametrize(
    "cls,in_shape",
    [
        (Conv2D, (400,)),
        (Conv2D, (3, 8)),
        (Conv1D, (3, 8, 8)),
        (ConvTranspose2D, (4,)),
        (MaxPool2D, (8, 8)),
        (AvgPool2D, (5,)),
        (GlobalAvgPool2D, (5,)),
        (Subsample2D, (3, 8)),
        (Upsample2D, (2, 2, 2, 2)),
    ],
)
def test_wrong_rank_is_refused_with_the_shape(cls, in_shape):
    cfg = {
        "Conv2D": {"filters": 2, "kernel_size": 3},
        "Conv1D": {"filters": 2, "kernel_size": 3},
        "ConvTranspose2D": {"filters": 2, "kernel_size": 3},
        "MaxPool2D": {"kernel_size": 2},
        "AvgPool2D": {"kernel_size": 2},
    }.get(cls.type_name, {})
    with pytest.raises(ShapeError) as e:
        cls(name="blk", **cfg).build(in_shape)
    assert "blk" in str(e.value) and str(tuple(in_shape)).replace(",)", ")") in str(e.value)


@pytest.mark.parametrize(
    "cls,cfg,match",
    [
        (Conv2D, {"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
        (Conv2D, {"filters": 2, "kernel_size": -3}, "kernel_size"),
        (Conv2D, {"filters": 0, "kernel_size": 3}, "filters"),
        (Conv2D, {"filters": 2, "kernel_size": [3, 0]}, "kernel_size"),
        (Conv2D, {"filters": 2, "kernel_size": 3, "padding": -1}, "padding"),
        (Conv2D, {"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
        (Conv2D, {"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same"}, "stride 1"),
        (Conv2D, {"filters": 2, "kernel_size": 3, "connections": [[0], [1], [0]]}, "3 rows"),
        (Conv2D, {"filters": 1, "kernel_size": 3, "connections": [[0, 0]]}, "twice"),
        (Conv2D, {"filters": 1, "kernel_size": 3, "connections": [[]]}, "connections"),
        (Conv2D, {"filters": 2, "kernel_size": 3, "dilation": 2}, "dilation"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
        (Conv1D, {"filters": 2, "kernel_size": 3, "padding": [1, 1]}, "padding"),
        (ConvTranspose2D, {"filters": 2, "kernel_size": 3, "padding": "same"}, "padding"),
        (ConvTranspose2D, {"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
        (MaxPool2D, {"kernel_size": 2, "padding": 2}, "half"),
        (AvgPool2D, {"kernel_size": [4, 2], "padding": [2, 2]}, "half"),
        (MaxPool2D, {"kernel_size": 2, "stride": 0}, "stride"),
        (MaxPool2D, {"kernel_size": 0}, "kernel_size"),
        (MaxPool2D, {"kernel_size": 2, "padding": "same"}, "padding"),
        (Subsample2D, {"kernel_size": 0}, "kernel_size"),
        (Upsample2D, {"scale": 0}, "scale"),
    ],
)
def test_bad_settings_are_refused_when_built(cls, cfg, match):
    with pytest.raises(ConfigError, match=match) as e:
        cls(name="bad", **cfg)
    assert "bad" in str(e.value)


@pytest.mark.parametrize(
    "layer,in_shape",
    [
        (Conv2D(filters=2, kernel_size=5, name="big"), (1, 4, 4)),
        (Conv2D(filters=2, kernel_size=[2, 9], padding=1, name="big"), (1, 8, 6)),
        (Conv1D(filters=2, kernel_size=7, name="big"), (1, 5)),
        (MaxPool2D(kernel_size=3, name="big"), (1, 2, 8)),
        (AvgPool2D(kernel_size=4, padding=1, name="big"), (1, 1, 8)),
        (Subsample2D(kernel_size=3, name="big"), (1, 2, 8)),
    ],
)
def test_kernel_larger_than_input_is_refused(layer, in_shape):
    with pytest.raises(ShapeError) as e:
        layer.build(in_shape)
    assert "big" in str(e.value) and "smaller kernel" in str(e.value)


def test_connections_must_fit_the_input_maps():
    Conv2D(filters=16, kernel_size=5, connections=LENET_C3, name="c3").build((6, 14, 14))
    with pytest.raises(ConfigError, match="input map 5") as e:
        Conv2D(filters=16, kernel_size=5, connections=LENET_C3, name="c3").build((5, 14, 14))
    assert "c3" in str(e.value) and "only 5 maps" in str(e.value)


def test_transposed_convolution_with_too_much_padding_is_refused():
    with pytest.raises(ShapeError, match="less padding") as e:
        ConvTranspose2D(filters=1, kernel_size=1, padding=1, name="up").build((1, 1, 1))
    assert "up" in str(e.value)


def test_functional_refuses_bad_input():
    with pytest.raises(ShapeError, match="smaller kernel"):
        F.conv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match="channels"):
        F.conv2d(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 2, 2)))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        F.max_pool2d(np.zeros((3, 3)), 2)
    assert issubclass(ShapeError, BlockPropError)


def test_families_and_docstrings():
    for cls in (Conv2D, Conv1D, ConvTranspose2D):
        assert cls.family == "Convolution"
    for cls in (MaxPool2D, AvgPool2D, GlobalAvgPool2D, Subsample2D):
        assert cls.family == "Pooling"
    assert Upsample2D.family == "Reshape"
    for cls in (
        Conv2D,
        Conv1D,
        ConvTranspose2D,
        MaxPool2D,
        AvgPool2D,
        GlobalAvgPool2D,
        Subsample2D,
        Upsample2D,
    ):
        assert "Shapes:" in cls.__doc__
