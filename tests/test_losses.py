"""Losses: values, gradients (central differences, float64), stability, errors, PyTorch parity."""

import math

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from engine.errors import ConfigError, DataError, ShapeError
from engine.losses import LOSSES, get_loss

rng = np.random.default_rng(0)


def _check_grad(loss, out, y):
    """Loss.backward against central differences of Loss.forward (float64)."""
    out = np.array(out, dtype=np.float64)
    loss.forward(out, y)
    analytic = loss.backward()
    numeric = numeric_grad(lambda: loss.forward(out, y), out)
    err = rel_error(analytic, numeric)
    assert err < 1e-6, f"{loss!r}: relative error {err}"
    return analytic


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("shape", [(4, 1), (3, 5), (2, 3, 4)])
def test_mse_gradient(shape, half):
    _check_grad(get_loss("mse", half=half), rng.standard_normal(shape), rng.standard_normal(shape))


@pytest.mark.parametrize("shape", [(5, 3), (1, 7), (2, 4, 6)])
def test_cross_entropy_gradient(shape):
    y = rng.integers(0, shape[-1], size=shape[:-1])
    _check_grad(get_loss("cross_entropy"), 3 * rng.standard_normal(shape), y)


@pytest.mark.parametrize("shape", [(6, 1), (3, 4), (2, 3, 2)])
def test_bce_with_logits_gradient(shape):
    y = rng.uniform(0, 1, size=shape)
    _check_grad(get_loss("bce_with_logits"), 3 * rng.standard_normal(shape), y)


def test_mse_conventions_and_values():
    out = np.array([[1.0, 2.0], [3.0, 5.0]])
    y = np.array([[0.0, 2.0], [1.0, 1.0]])
    mse = get_loss("mse")
    assert mse.forward(out, y) == pytest.approx((1 + 0 + 4 + 16) / 4)
    np.testing.assert_allclose(mse.backward(), 2 * (out - y) / 4)
    half = get_loss("mse", half=True)
    assert half.forward(out, y) == pytest.approx(0.5 * (1 + 0 + 4 + 16) / 4)
    np.testing.assert_allclose(half.backward(), (out - y) / 4)
    # the alias and the lecture's single-sample case: L = 1/2 (t - y)^2, dL/dy = y - t
    alias = get_loss("half_mse")
    assert alias.forward(np.array([[2.087]]), np.array([[1.0]])) == pytest.approx(0.5 * 1.087**2)
    assert alias.backward()[0, 0] == pytest.approx(1.087)


def test_cross_entropy_values_by_hand():
    ce = get_loss("cross_entropy")
    # equal logits: -log(1/C)
    assert ce.forward(np.zeros((3, 4)), np.array([0, 1, 3])) == pytest.approx(math.log(4))
    z = np.array([[2.0, 1.0, 0.1]])
    p = np.exp(z) / np.exp(z).sum()
    assert ce.forward(z, np.array([0])) == pytest.approx(-math.log(p[0, 0]))
    np.testing.assert_allclose(ce.backward(), p - np.array([[1.0, 0, 0]]))
    # (N, T, C): mean over N*T rows, gradient divided by N*T
    z3 = rng.standard_normal((2, 3, 4))
    y3 = rng.integers(0, 4, size=(2, 3))
    val = ce.forward(z3, y3)
    g3 = ce.backward()
    flat = get_loss("cross_entropy")
    assert val == pytest.approx(flat.forward(z3.reshape(6, 4), y3.reshape(6)))
    np.testing.assert_allclose(g3.reshape(6, 4), flat.backward())
    np.testing.assert_allclose(g3.sum(axis=-1), 0, atol=1e-12)  # softmax - onehot sums to 0


def test_bce_values_by_hand():
    bce = get_loss("bce_with_logits")
    x = np.array([[0.0], [2.0]])
    y = np.array([[1.0], [0.0]])
    s = 1 / (1 + np.exp(-x))
    want = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert bce.forward(x, y) == pytest.approx(want)
    np.testing.assert_allclose(bce.backward(), (s - y) / 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(dtype):
    ce = get_loss("cross_entropy")
    z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=dtype)
    val = ce.forward(z, np.array([0, 0]))
    # row 0 is right with certainty (0); row 1: log(1 + 2 e^1e4) - 0 = 1e4 + log 2
    assert val == pytest.approx((0 + 1e4 + math.log(2)) / 2, rel=1e-6)
    g = ce.backward()
    assert g.dtype == dtype and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.array([[0, 0, 0], [-1, 0.5, 0.5]]) / 2, atol=1e-7)

    bce = get_loss("bce_with_logits")
    x = np.array([[1e4, -1e4, 1e4]], dtype=dtype)
    val = bce.forward(x, np.array([[1.0, 0.0, 0.0]], dtype=dtype))
    assert val == pytest.approx(1e4 / 3, rel=1e-6)
    g = bce.backward()
    assert g.dtype == dtype and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.array([[0, 0, 1 / 3]]), atol=1e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_keeps_float32(name):
    out = rng.standard_normal((4, 3)).astype(np.float32)
    y = {
        "mse": out * 0 + 1,
        "cross_entropy": np.array([0, 1, 2, 1]),
        "bce_with_logits": (out > 0).astype(np.float32),
    }[name]
    loss = get_loss(name)
    assert isinstance(loss.forward(out, y), float)
    d = loss.backward()
    assert d.dtype == np.float32 and d.shape == out.shape


def test_predict():
    z = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(get_loss("cross_entropy").predict(z), [1, 0])
    np.testing.assert_array_equal(get_loss("cross_entropy").predict(z[None]), [[1, 0]])
    np.testing.assert_array_equal(
        get_loss("bce_with_logits").predict(np.array([[-0.5, 0.2]])), [[0, 1]]
    )
    np.testing.assert_array_equal(get_loss("mse").predict(z), z)


def test_label_out_of_range_is_a_data_error():
    ce = get_loss("cross_entropy")
    with pytest.raises(DataError) as e:
        ce.forward(np.zeros((2, 3)), np.array([0, 3]))
    msg = str(e.value)
    assert "3" in msg and "C=3" in msg and "0..2" in msg and "4 units" in msg
    with pytest.raises(DataError, match="-1"):
        ce.forward(np.zeros((2, 3)), np.array([0, -1]))
    with pytest.raises(DataError, match="whole numbers"):
        ce.forward(np.zeros((2, 3)), np.array([0.5, 1.0]))
    # whole-valued float ids are accepted
    assert ce.forward(np.zeros((2, 3)), np.array([0.0, 2.0])) == pytest.approx(math.log(3))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError) as e:
        get_loss("mse").forward(np.zeros((4, 1)), np.zeros((4,)))
    assert "(4, 1)" in str(e.value) and "(4,)" in str(e.value)
    with pytest.raises(ShapeError) as e:
        get_loss("cross_entropy").forward(np.zeros((4, 3)), np.zeros((5,), int))
    assert "(4, 3)" in str(e.value) and "(5,)" in str(e.value) and "(N,)" in str(e.value)
    with pytest.raises(ShapeError, match="one-hot"):
        get_loss("cross_entropy").forward(np.zeros((4, 3)), np.eye(3)[[0, 1, 2, 0]])
    with pytest.raises(ShapeError, match=r"\(N, C\) or \(N, T, C\)"):
        get_loss("cross_entropy").forward(np.zeros((4,)), np.zeros((4,), int))
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 4\)"):
        get_loss("bce_with_logits").forward(np.zeros((2, 3)), np.zeros((2, 4)))


def test_bce_targets_must_be_probabilities():
    with pytest.raises(DataError, match="between 0 and 1"):
        get_loss("bce_with_logits").forward(np.zeros((2, 1)), np.array([[0.0], [2.0]]))


def test_unknown_loss_and_settings():
    with pytest.raises(ConfigError) as e:
        get_loss("hinge")
    assert all(n in str(e.value) for n in LOSSES)
    with pytest.raises(ConfigError):
        get_loss("cross_entropy", half=True)
    with pytest.raises(ConfigError):
        get_loss("mse", halve=True)
    with pytest.raises(RuntimeError, match="before forward"):
        get_loss("mse").backward()


# --- PyTorch parity ------------------------------------------------------------------------------


def _torch_pair(torch, fn, out, y):
    t = torch.tensor(out, requires_grad=True)
    val = fn(t, y)
    val.backward()
    return val.item(), t.grad.numpy()


def test_matches_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    out = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, size=5)
    ce = get_loss("cross_entropy")
    tv, tg = _torch_pair(torch, F.cross_entropy, out, torch.tensor(y))
    assert ce.forward(out, y) == pytest.approx(tv, rel=1e-12)
    np.testing.assert_allclose(ce.backward(), tg, rtol=1e-10, atol=1e-14)

    # (N, T, C) with (N, T): torch wants (N, C, T)
    out3 = 5 * rng.standard_normal((3, 6, 4))
    y3 = rng.integers(0, 4, size=(3, 6))
    t3 = torch.tensor(out3, requires_grad=True)
    val = F.cross_entropy(t3.permute(0, 2, 1), torch.tensor(y3))
    val.backward()
    assert ce.forward(out3, y3) == pytest.approx(val.item(), rel=1e-12)
    np.testing.assert_allclose(ce.backward(), t3.grad.numpy(), rtol=1e-10, atol=1e-14)

    reg = rng.standard_normal((4, 3))
    target = rng.standard_normal((4, 3))
    mse = get_loss("mse")
    tv, tg = _torch_pair(torch, F.mse_loss, reg, torch.tensor(target))
    assert mse.forward(reg, target) == pytest.approx(tv, rel=1e-12)
    np.testing.assert_allclose(mse.backward(), tg, rtol=1e-12)

    logits = np.concatenate([10 * rng.standard_normal((3, 2)), [[1e4, -1e4]]])
    probs = np.concatenate([rng.uniform(0, 1, (3, 2)), [[0.3, 1.0]]])
    bce = get_loss("bce_with_logits")
    tv, tg = _torch_pair(torch, F.binary_cross_entropy_with_logits, logits, torch.tensor(probs))
    assert bce.forward(logits, probs) == pytest.approx(tv, rel=1e-12)
    np.testing.assert_allclose(bce.backward(), tg, rtol=1e-10, atol=1e-14)
