"""BatchNorm, Dropout, Embedding: gradients, statistics, masks, PyTorch equivalence, errors."""

import numpy as np
import pytest
from gradcheck import check_layer, numeric_grad, rel_error
from reference_runners import FixedUniform

from engine.errors import ConfigError, DataError, ShapeError
from engine.layers import BatchNorm, Dropout, Embedding

SHAPES = {"features": (5,), "sequence": (4, 3), "image": (3, 4, 5)}


# --- BatchNorm ------------------------------------------------------------------------------------
def bn(in_shape, seed=0, **kw):
    layer = BatchNorm(**kw).build(in_shape, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    layer.params["weight"][...] = rng.uniform(0.5, 1.5, layer.params["weight"].shape)
    layer.params["bias"][...] = rng.uniform(-0.5, 0.5, layer.params["bias"].shape)
    return layer


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(kind, training):
    rng = np.random.default_rng(2)
    layer = bn(SHAPES[kind])
    x = 3 * rng.standard_normal((4, *SHAPES[kind])) + 1
    if not training:  # non-trivial running statistics first
        for _ in range(3):
            layer.forward(3 * rng.standard_normal(x.shape).astype(np.float32) + 1, True)
    check_layer(layer, x, training=training)


@pytest.mark.parametrize("offset,path", [(0.5, "one pass"), (10.0, "two passes")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_on_images_both_ways_equal_the_textbook(offset, path, dtype):
    """Training on images takes engine.norm_images's one-pass statistics and x-based backward
    while the mean is small against the spread, the two-pass way otherwise; both equal the
    readable reference (engine.reference.norm), and the two-pass way passes gradcheck too."""
    from engine import norm_images
    from engine.reference import norm as R

    rng = np.random.default_rng(4)
    x = (2 * rng.standard_normal((5, 3, 6, 7)) + offset).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    assert (norm_images.moments(x) is None) == (path == "two passes")
    layer = bn((3, 6, 7), momentum=0.3)
    layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
    w, b = (layer.params[k].astype(np.float64) for k in ("weight", "bias"))
    x64 = x.astype(np.float64)
    ref, cache, mean, var = R.batchnorm_forward(x64, w, b, True, np.zeros(3), np.ones(3), 0.3)
    rdx, rdw, rdb = R.batchnorm_backward(dout.astype(np.float64), cache)
    out = layer.forward(x, training=True)
    dx = layer.backward(dout)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    assert out.dtype == dx.dtype == dtype
    for got, want in [(out, ref), (dx, rdx), (layer.grads["weight"], rdw),
                      (layer.grads["bias"], rdb)]:  # fmt: skip
        assert rel_error(got, want) < tol
    for k, want in (("running_mean", mean), ("running_var", var)):  # kept in float32
        assert rel_error(layer.buffers[k], want) < 1e-6
    if dtype == np.float64:
        check_layer(bn((3, 6, 7)), x64, training=True)


class MirrorSync:
    """A split step's engine.batch_sync.BatchSync whose other half holds the same samples: the
    whole batch is this half twice."""

    first = True

    def __init__(self, n):
        self.n_first = self.n_second = n
        self.exchanges = 0

    n = property(lambda self: self.n_first + self.n_second)
    n_local = property(lambda self: self.n_first)

    def exchange(self, mine):
        self.exchanges += 1
        mine = np.array(mine, np.float64)
        return mine, mine.copy()


@pytest.mark.parametrize("offset,exchanges", [(0.5, 1), (10.0, 2)])
def test_batchnorm_on_images_in_a_split_step_uses_the_whole_batchs_sums(offset, exchanges):
    """One exchange a pass on the one-pass way, a second in forward where the mean is large
    against the spread; the half computes what one process computes on the whole batch."""
    rng = np.random.default_rng(5)
    x = (2 * rng.standard_normal((4, 3, 6, 7)) + offset).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    whole, half = bn((3, 6, 7), momentum=0.3), bn((3, 6, 7), momentum=0.3)
    half.batch_sync = sync = MirrorSync(4)
    out = half.forward(x, training=True)
    assert sync.exchanges == exchanges
    want = whole.forward(np.concatenate([x, x]), training=True)[:4]
    np.testing.assert_allclose(out, want, rtol=0, atol=2e-5 * np.abs(want).max())
    for k, b in whole.buffers.items():
        np.testing.assert_allclose(half.buffers[k], b, rtol=1e-6, err_msg=k)
    # the half's loss is the mean over its own samples, so its dout is n / n_local = 2 times
    # the whole batch's: dx is the whole batch's for dout twice over (BatchNorm is linear in
    # dout), the half's own gradients half the whole batch's
    dx = half.backward(dout)
    assert sync.exchanges == exchanges + 1
    dx_want = whole.backward(np.concatenate([dout, dout]))[:4]
    np.testing.assert_allclose(dx, dx_want, rtol=0, atol=2e-5 * np.abs(dx_want).max())
    for k, g in whole.grads.items():
        np.testing.assert_allclose(half.grads[k], g / 2, rtol=2e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_on_images_takes_strided_inputs(training):
    # the per-channel rows read x and dout as (N, C, H*W): a transposed view is copied, not
    # refused, and gives the contiguous input's numbers
    r = np.random.default_rng(11)
    x = r.standard_normal((3, 2, 5, 4)).astype(np.float32)
    dout = r.standard_normal((3, 2, 4, 5)).astype(np.float32)
    outs = []
    strided = (x.transpose(0, 1, 3, 2), np.asfortranarray(dout))
    for xin, din in (strided, (np.ascontiguousarray(strided[0]), dout)):
        layer = BatchNorm().build((2, 4, 5), np.random.default_rng(0))
        out = layer.forward(xin, training=training)
        outs.append((out, layer.backward(din), layer.grads["weight"]))
    for got, want in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", list(SHAPES))
def test_batchnorm_normalises_per_channel_and_updates_running_stats(kind):
    rng = np.random.default_rng(0)
    shape = SHAPES[kind]
    layer = BatchNorm(momentum=0.2).build(shape)
    x = (2.5 * rng.standard_normal((6, *shape)) + 4).astype(np.float32)
    out = layer.forward(x, training=True)
    axes = (0, 2, 3) if kind == "image" else tuple(range(x.ndim - 1))
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=axes), 1, atol=1e-3)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.2 * x.mean(axis=axes), rtol=1e-5)
    np.testing.assert_allclose(
        layer.buffers["running_var"], 0.8 + 0.2 * x.var(axis=axes, ddof=1), rtol=1e-5
    )  # unbiased
    assert out.dtype == np.float32 and layer.buffers["running_var"].dtype == np.float32
    # inference: (x - running_mean) / sqrt(running_var + eps), no update
    before = {k: v.copy() for k, v in layer.buffers.items()}
    c = (slice(None), None, None) if kind == "image" else (slice(None),)
    expected = (x - layer.buffers["running_mean"][c]) / np.sqrt(
        layer.buffers["running_var"][c] + 1e-5
    )
    np.testing.assert_allclose(layer.forward(x, training=False), expected, rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(before[k], layer.buffers[k]) for k in before)


def test_batchnorm_defaults_and_shapes():
    layer = BatchNorm().build((3, 8, 8))
    assert np.all(layer.params["weight"] == 1) and np.all(layer.params["bias"] == 0)
    assert np.all(layer.buffers["running_mean"] == 0) and np.all(layer.buffers["running_var"] == 1)
    assert layer.param_shapes((3, 8, 8)) == {"weight": (3,), "bias": (3,)}
    assert BatchNorm().param_shapes((7,)) == {"weight": (7,), "bias": (7,)}
    assert BatchNorm().buffer_shapes((10, 6)) == {"running_mean": (6,), "running_var": (6,)}


def test_batchnorm_errors():
    with pytest.raises(ShapeError, match="bn1"):
        BatchNorm(name="bn1").build((1, 2, 3, 4))
    layer = BatchNorm(name="bn2").build((4,))
    with pytest.raises(ShapeError, match="batch size of 2"):
        layer.forward(np.ones((1, 4), np.float32), training=True)
    layer.forward(np.ones((1, 4), np.float32), training=False)  # inference is fine
    with pytest.raises(ConfigError):
        BatchNorm(eps=0)
    with pytest.raises(ConfigError):
        BatchNorm(momentum=1.5)


@pytest.mark.parametrize("kind", list(SHAPES))
def test_batchnorm_matches_pytorch(kind):
    torch = pytest.importorskip("torch")
    shape = SHAPES[kind]
    rng = np.random.default_rng(5)
    layer = bn(shape, momentum=0.3, eps=1e-3)
    c = layer.params["weight"].shape[0]
    ref = (torch.nn.BatchNorm2d if kind == "image" else torch.nn.BatchNorm1d)(
        c, momentum=0.3, eps=1e-3
    )
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.params["weight"]))
        ref.bias.copy_(torch.from_numpy(layer.params["bias"]))

    def to_torch(a):  # PyTorch's BatchNorm1d wants (N, C, L): features of a sequence in axis 1
        t = torch.tensor(a, requires_grad=True)
        return t, (t.transpose(1, 2) if kind == "sequence" else t)

    def from_torch(t):
        return t.transpose(1, 2) if kind == "sequence" else t

    for _ in range(3):
        x = (2 * rng.standard_normal((6, *shape)) - 1).astype(np.float32)
        r = rng.standard_normal(x.shape).astype(np.float32)
        xt, xin = to_torch(x)
        out_t = from_torch(ref(xin))
        (out_t * torch.from_numpy(r)).sum().backward()
        out = layer.forward(x, training=True)
        np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(layer.backward(r), xt.grad.numpy(), atol=1e-4)
        np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), atol=1e-4)
        np.testing.assert_allclose(layer.grads["bias"], ref.bias.grad.numpy(), atol=1e-4)
        ref.zero_grad()
    np.testing.assert_allclose(layer.buffers["running_mean"], ref.running_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(layer.buffers["running_var"], ref.running_var.numpy(), atol=1e-5)
    ref.eval()
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = from_torch(ref(to_torch(x)[1])).numpy()
    np.testing.assert_allclose(layer.forward(x, training=False), expected, atol=1e-5)


# --- Dropout --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_gradient_with_fixed_mask(rate):
    rng = np.random.default_rng(0)
    layer = Dropout(rate=rate).build((3, 4))
    u = rng.random((2, 3, 4))
    layer.rng = FixedUniform(u)
    check_layer(layer, rng.standard_normal((2, 3, 4)), training=True)
    dout = rng.standard_normal((2, 3, 4))
    layer.forward(rng.standard_normal((2, 3, 4)), training=True)
    np.testing.assert_allclose(layer.backward(dout), dout * (u >= rate) / (1 - rate))


def test_dropout_statistics_and_inference():
    rate = 0.3
    layer = Dropout(rate=rate).build((1000,), np.random.default_rng(1))
    x = np.ones((50, 1000), np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    kept = out != 0
    assert abs(1 - kept.mean() - rate) < 0.01
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)  # inverted scaling
    assert abs(out.mean() - 1) < 0.02  # expectation preserved
    assert np.array_equal(layer.forward(x, training=False), x)
    assert np.array_equal(layer.backward(x), x)
    zero = Dropout(rate=0).build((10,))
    assert np.array_equal(zero.forward(x[:, :10], training=True), x[:, :10])


def test_dropout_is_reproducible_from_the_build_generator():
    x = np.ones((4, 100), np.float32)
    a = Dropout(rate=0.5).build((100,), np.random.default_rng(7))
    b = Dropout(rate=0.5).build((100,), np.random.default_rng(7))
    c = Dropout(rate=0.5).build((100,), np.random.default_rng(8))
    ma, mb, mc = (d.forward(x, training=True) for d in (a, b, c))
    assert np.array_equal(ma, mb) and not np.array_equal(ma, mc)
    assert not np.array_equal(ma, a.forward(x, training=True))  # a new mask each step


@pytest.mark.parametrize(
    "rate,words", [(1.0, "every value"), (1.5, "every value"), (-0.1, "negative")]
)
def test_dropout_refuses_bad_rates(rate, words):
    with pytest.raises(ConfigError) as e:
        Dropout(rate=rate, name="drop1")
    assert "drop1" in str(e.value) and words in str(e.value) and "1" in str(e.value)
    with pytest.raises(ConfigError):
        Dropout(rate="half")


# --- Embedding ------------------------------------------------------------------------------------
def test_embedding_forward_and_repeated_id_gradient():
    rng = np.random.default_rng(0)
    layer = Embedding(num_embeddings=6, embedding_dim=3).build((5,), rng)
    ids = np.array([[1, 4, 1, 1, 0], [4, 5, 1, 0, 0]], np.int64)  # ids repeat
    out = layer.forward(ids)
    assert out.shape == (2, 5, 3)
    np.testing.assert_array_equal(out[0, 2], layer.params["weight"][1])
    errors = check_layer(layer, ids)  # numeric gradient of the weights; ids get none
    assert set(errors) == {"weight"}
    dout = rng.standard_normal((2, 5, 3))
    layer.forward(ids)
    assert layer.backward(dout) is None
    dw = layer.grads["weight"]
    np.testing.assert_allclose(dw[1], dout[0, 0] + dout[0, 2] + dout[0, 3] + dout[1, 2])
    assert np.all(dw[[2, 3]] == 0)  # unused rows get no gradient


def test_embedding_gradient_against_numeric_explicitly():
    rng = np.random.default_rng(1)
    layer = Embedding(num_embeddings=4, embedding_dim=2).build((6,), rng).astype(np.float64)
    ids = rng.integers(0, 3, (3, 6))
    r = rng.standard_normal((3, 6, 2))
    layer.forward(ids)
    layer.backward(r)

    def f():
        return float(np.sum(layer.forward(ids) * r))

    assert rel_error(layer.grads["weight"], numeric_grad(f, layer.params["weight"])) < 1e-6


def test_embedding_init_and_dtype():
    layer = Embedding(num_embeddings=400, embedding_dim=50).build((3,), np.random.default_rng(0))
    w = layer.params["weight"]
    assert w.dtype == np.float32 and abs(w.std() - 1) < 0.02 and abs(w.mean()) < 0.02
    assert layer.forward(np.zeros((2, 3), np.int64)).dtype == np.float32
    assert Embedding(num_embeddings=5, embedding_dim=2).output_shape((7,)) == (7, 2)


def test_embedding_errors():
    layer = Embedding(num_embeddings=5, embedding_dim=2, name="emb").build((3,))
    with pytest.raises(ConfigError) as e:
        layer.forward(np.array([[0, 7, 2]]))
    msg = str(e.value)
    assert "emb" in msg and "0 to 7" in msg and "at least 8" in msg
    with pytest.raises(ConfigError, match="negative"):
        layer.forward(np.array([[0, -1, 2]]))
    with pytest.raises(DataError, match="integer ids"):
        layer.forward(np.array([[0.5, 1.0, 2.0]]))
    np.testing.assert_array_equal(
        layer.forward(np.array([[0.0, 1.0, 2.0]])), layer.forward(np.array([[0, 1, 2]]))
    )
    with pytest.raises(ShapeError, match="emb"):
        Embedding(num_embeddings=5, embedding_dim=2, name="emb").build((3, 4))
    with pytest.raises(ShapeError) as e:
        layer.forward(np.zeros((2, 4), np.int64))
    assert "(N, 3)" in str(e.value) and "(2, 4)" in str(e.value)
    with pytest.raises(ConfigError):
        Embedding(num_embeddings=0, embedding_dim=2)


def test_embedding_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    layer = Embedding(num_embeddings=7, embedding_dim=4).build((5,), rng)
    ref = torch.nn.Embedding(7, 4)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.params["weight"]))
    ids = rng.integers(0, 7, (3, 5))
    r = rng.standard_normal((3, 5, 4)).astype(np.float32)
    out_t = ref(torch.from_numpy(ids))
    (out_t * torch.from_numpy(r)).sum().backward()
    np.testing.assert_array_equal(layer.forward(ids), out_t.detach().numpy())
    layer.backward(r)
    np.testing.assert_allclose(layer.grads["weight"], ref.weight.grad.numpy(), atol=1e-5)


def test_wrong_input_shapes_name_block_expected_and_actual():
    for layer in (BatchNorm(name="bn9").build((3, 4, 4)), Dropout(name="drop9").build((6,))):
        bad = np.zeros((2, 5), np.float32)
        with pytest.raises(ShapeError) as e:
            layer.forward(bad, training=True)
        msg = str(e.value)
        assert layer.name in msg and f"(N, {', '.join(map(str, layer.in_shape))})" in msg
        assert "(2, 5)" in msg
