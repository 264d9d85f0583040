"""Dense, Activation, Flatten, Reshape, Add, Concat: gradients, shapes and errors."""

import numpy as np
import pytest
from gradcheck import check_layer

from engine import elementwise
from engine import functional as F
from engine.errors import ConfigError, ShapeError
from engine.layers import Activation, Add, Concat, Dense, Flatten, Reshape

rng = np.random.default_rng(0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_in,units", [(3, 2), (7, 5)])
def test_dense_gradients(n_in, units, bias):
    layer = Dense(units=units, bias=bias).build((n_in,), rng)
    check_layer(layer, rng.standard_normal((4, n_in)))


def test_dense_on_sequences_applies_per_step():
    layer = Dense(units=3).build((5, 4), rng)
    assert layer.out_shape == (5, 3)
    x = rng.standard_normal((2, 5, 4))
    out = layer.forward(x.astype(np.float32))
    w, b = layer.params["weight"], layer.params["bias"]
    np.testing.assert_allclose(out[1, 2], x[1, 2] @ w.T + b, rtol=1e-5)
    check_layer(layer, x)


@pytest.mark.parametrize("training", [False, True])  # ReLU's mask: made in backward at inference
@pytest.mark.parametrize("fn", ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear"])
def test_activation_gradients(fn, training):
    layer = Activation(fn=fn).build((3, 5), rng)
    check_layer(layer, rng.standard_normal((2, 3, 5)), training=training)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 1023, 1024, 3 * 1024 + 5])
def test_relu_gives_np_maximum_values_bit_for_bit(dtype, size):
    # engine.functional.relu broadcasts a row of zeros (the faster loop): same bits, NaN,
    # infinities and negative zeros included, at sizes around its row length
    x = rng.standard_normal(size).astype(dtype)
    special = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-40, 1e-40], dtype)
    x[: min(size, 7)] = special[: min(size, 7)]
    x[-min(size, 7) :] = special[: min(size, 7)]  # in the part after the whole rows too
    for a in (x, x.reshape(1, -1)[:, ::-1]):  # contiguous, and a reversed view
        out = F.relu(a)
        want = np.maximum(a, 0)
        assert out.dtype == want.dtype and out.shape == want.shape
        assert np.array_equal(out.view(np.uint8), np.ascontiguousarray(want).view(np.uint8))
    layer = Activation(fn="relu").build((size,))
    assert np.array_equal(layer.forward(x[None]), np.maximum(x[None], 0), equal_nan=True)
    want = np.maximum(x, 0)
    assert elementwise.relu(x, out=x) is x  # in place (a convolution's epilogue)
    assert np.array_equal(x.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_gives_the_textbook_where_bit_for_bit(slope, dtype):
    x = rng.standard_normal((2, 3, 50)).astype(dtype)
    x[0, 0, :7] = [np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-40, 1e-40]
    dout = rng.standard_normal(x.shape).astype(dtype)
    layer = Activation(fn="leaky_relu", negative_slope=slope).build((3, 50))
    s = dtype(slope)
    with np.errstate(invalid="ignore"):  # -inf * 0
        out, want = layer.forward(x, training=True), np.where(x > 0, x, x * s)
    assert out.dtype == dtype and np.array_equal(out.view(np.uint8), want.view(np.uint8))
    dx, dx_want = layer.backward(dout), np.where(x > 0, dout, dout * s)
    assert dx.dtype == dtype and np.array_equal(dx.view(np.uint8), dx_want.view(np.uint8))


@pytest.mark.parametrize("n", [1, 3])
def test_per_channel_rows_give_the_broadcast_values(n):
    x = rng.standard_normal((n, 4, 3, 5)).astype(np.float32)
    v = rng.standard_normal(4)  # float64: taken in x's dtype, as the broadcast would be
    want = x * v.astype(np.float32).reshape(1, -1, 1, 1)
    got = elementwise.maps(x) * elementwise.channel_rows(v, x)
    assert got.dtype == np.float32 and np.array_equal(got.reshape(x.shape), want)
    with pytest.raises(ValueError):  # an in-place pass on a copy would be lost
        elementwise.maps(x[:, :, ::2])


def test_flatten_reshape_gradients():
    check_layer(Flatten().build((2, 3, 4), rng), rng.standard_normal((2, 2, 3, 4)))
    check_layer(Reshape(shape=[6, 4]).build((2, 3, 4), rng), rng.standard_normal((2, 2, 3, 4)))


def test_merge_gradients():
    xs = [rng.standard_normal((2, 3, 4, 4)) for _ in range(3)]
    check_layer(Add().build([(3, 4, 4)] * 3, rng), xs)
    ys = [rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))]
    layer = Concat().build([(3, 4, 4), (5, 4, 4)], rng)
    assert layer.out_shape == (8, 4, 4)
    check_layer(layer, ys)


def test_sigmoid_is_stable_for_large_inputs():
    out = Activation(fn="sigmoid").build((3,)).forward(np.array([[-1000.0, 0.0, 1000.0]]))
    assert np.all(np.isfinite(out)) and out[0, 1] == 0.5


def test_dense_refuses_images_and_names_the_fix():
    with pytest.raises(ShapeError, match="insert Flatten"):
        Dense(units=3, name="fc").build((1, 4, 4))


def test_wrong_input_shape_names_block_and_shapes():
    layer = Dense(units=3, name="fc1").build((4,))
    with pytest.raises(ShapeError) as e:
        layer.forward(np.zeros((2, 5), np.float32))
    assert "fc1" in str(e.value) and "(N, 4)" in str(e.value) and "(2, 5)" in str(e.value)


@pytest.mark.parametrize(
    "cfg",
    [{"units": 0}, {"units": -3}, {"units": 2.5}, {"units": "x"}, {"units": 3, "colour": 1}, {}],
)
def test_bad_settings_are_refused_when_built(cfg):
    with pytest.raises(ConfigError):
        Dense(name="d", **cfg)


def test_add_refuses_unequal_shapes():
    with pytest.raises(ShapeError, match="equal shape"):
        Add(name="a").build([(3,), (4,)])


def test_every_block_type_names_a_known_family_and_starts_valid():
    """The palette groups by the family a class names (no aliases elsewhere), and a class's
    starter settings make a valid block that the canvas can summarise."""
    from engine.layers import LAYER_TYPES
    from engine.layers.base import FAMILIES

    for name, cls in LAYER_TYPES.items():
        assert cls.family in FAMILIES, name
        options = cls.all_options()
        assert set(cls.starter) <= set(options), name
        if all(k in cls.starter for k, o in options.items() if o.required):
            layer = cls(name="b", **cls.starter)
            assert cls.summary(layer.config) or not layer.config, name


def test_every_block_type_is_importable_by_name_from_engine_layers():
    import engine.layers

    for name, cls in engine.layers.LAYER_TYPES.items():
        if not cls.__module__.startswith("engine.layers."):
            continue  # registered from outside (engine.layers.base.register), e.g. by a test
        assert getattr(engine.layers, name) is cls
        assert name in engine.layers.__all__
