"""Convolution and pooling layers against PyTorch (skipped without torch): forward and every
gradient on random shapes, LeNet-sized convolutions, the C3 connection table as a masked
convolution, max-pool ties, average, upsample and global pooling.
"""

import numpy as np
import pytest
from test_conv_pool import LENET_C3, rng, tied_images

from engine import functional as F
from engine.layers import (
    AvgPool2D,
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    GlobalAvgPool2D,
    MaxPool2D,
    Upsample2D,
)


def _torch():
    return pytest.importorskip("torch")


def _close(actual, desired, rtol, atol):
    """Element-wise, with the absolute slack scaled to the array (float32 sums of thousands of
    terms differ in the last bits between summation orders)."""
    desired = np.asarray(desired)
    scale = float(np.abs(desired).max()) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol + rtol * scale)


def _grads_vs_torch(layer, tmod, x, rtol=1e-4, atol=1e-6):
    """Forward and all gradients (input, weight, bias) of a float32 layer against torch."""
    torch = _torch()
    tx = torch.tensor(x, requires_grad=True)
    tout = tmod(tx)
    dout = rng(99).standard_normal(tuple(tout.shape)).astype(np.float32)
    tout.backward(torch.from_numpy(dout))
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    _close(out, tout.detach().numpy(), rtol, atol)
    dx = layer.backward(dout)
    assert dx.dtype == np.float32
    _close(dx, tx.grad.numpy(), rtol, atol)
    names = [name for name, _ in tmod.named_parameters()]
    assert sorted(names) == sorted(layer.params)
    for name, p in tmod.named_parameters():
        _close(layer.grads[name], p.grad.numpy(), rtol, atol)


def _copy_params(layer, tmod):
    torch = _torch()
    with torch.no_grad():
        for name, p in tmod.named_parameters():
            p.copy_(torch.from_numpy(layer.params[name]))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(6))
def test_conv2d_against_torch(seed):
    torch = _torch()
    r = rng(100 + seed)
    c, f = int(r.integers(1, 5)), int(r.integers(1, 7))
    k = [int(r.integers(1, 6)), int(r.integers(1, 6))]
    stride = [int(r.integers(1, 4)), int(r.integers(1, 4))]
    padding = [int(r.integers(0, k[0] // 2 + 1)), int(r.integers(0, k[1] // 2 + 1))]
    if seed % 3 == 0:
        stride, padding = 1, "same"
    h, w = int(r.integers(k[0], 20)), int(r.integers(k[1], 20))
    bias = bool(seed % 2)
    layer = Conv2D(filters=f, kernel_size=k, stride=stride, padding=padding, bias=bias)
    layer.build((c, h, w), r)
    tmod = torch.nn.Conv2d(c, f, k, stride=stride, padding=padding, bias=bias)
    _copy_params(layer, tmod)
    _grads_vs_torch(
        layer, tmod, r.standard_normal((int(r.integers(1, 9)), c, h, w), dtype=np.float32)
    )


def test_lenet_sized_convolutions_against_torch():
    torch = _torch()
    r = rng(7)
    for c, f, size in ((1, 6, 32), (6, 16, 14)):
        layer = Conv2D(filters=f, kernel_size=5).build((c, size, size), r)
        tmod = torch.nn.Conv2d(c, f, 5)
        _copy_params(layer, tmod)
        _grads_vs_torch(layer, tmod, r.standard_normal((64, c, size, size), dtype=np.float32))


def test_conv2d_with_connections_against_masked_torch():
    torch = _torch()
    r = rng(16)
    layer = Conv2D(filters=16, kernel_size=5, connections=LENET_C3).build((6, 14, 14), r)
    tmod = torch.nn.Conv2d(6, 16, 5)
    _copy_params(layer, tmod)  # zeros outside the table, so torch computes the same forward
    x = r.standard_normal((4, 6, 14, 14), dtype=np.float32)
    out = layer.forward(x, training=True)
    tx = torch.tensor(x, requires_grad=True)
    tout = tmod(tx)
    _close(out, tout.detach().numpy(), 1e-4, 1e-6)
    tout.backward(torch.ones_like(tout))
    _close(layer.backward(np.ones_like(out)), tx.grad.numpy(), 1e-4, 1e-6)
    mask = layer._weight_mask
    _close(layer.grads["weight"], tmod.weight.grad.numpy() * mask, 1e-4, 1e-6)
    assert np.all(layer.grads["weight"][mask[:, :, 0, 0] == 0] == 0)


@pytest.mark.parametrize("seed", range(4))
def test_conv1d_against_torch(seed):
    torch = _torch()
    r = rng(200 + seed)
    c, f, k = int(r.integers(1, 5)), int(r.integers(1, 6)), int(r.integers(1, 6))
    stride, padding = int(r.integers(1, 4)), int(r.integers(0, k // 2 + 1))
    if seed == 0:
        stride, padding = 1, "same"
    length = int(r.integers(k, 30))
    layer = Conv1D(filters=f, kernel_size=k, stride=stride, padding=padding, bias=seed != 1)
    layer.build((c, length), r)
    tmod = torch.nn.Conv1d(c, f, k, stride=stride, padding=padding, bias=seed != 1)
    _copy_params(layer, tmod)
    _grads_vs_torch(layer, tmod, r.standard_normal((3, c, length), dtype=np.float32))


@pytest.mark.parametrize("seed", range(4))
def test_conv_transpose2d_against_torch(seed):
    torch = _torch()
    r = rng(300 + seed)
    c, f = int(r.integers(1, 5)), int(r.integers(1, 5))
    k = [int(r.integers(1, 5)), int(r.integers(1, 5))]
    stride = [int(r.integers(1, 4)), int(r.integers(1, 4))]
    padding = [int(r.integers(0, k[0] // 2 + 1)), int(r.integers(0, k[1] // 2 + 1))]
    h, w = int(r.integers(2, 9)), int(r.integers(2, 9))
    layer = ConvTranspose2D(
        filters=f, kernel_size=k, stride=stride, padding=padding, bias=seed != 2
    ).build((c, h, w), r)
    tmod = torch.nn.ConvTranspose2d(c, f, k, stride=stride, padding=padding, bias=seed != 2)
    _copy_params(layer, tmod)
    _grads_vs_torch(layer, tmod, r.standard_normal((3, c, h, w), dtype=np.float32))


@pytest.mark.parametrize(
    "k,s,p", [(2, None, 0), (2, None, 1), (3, 2, 1), (3, 1, 1), ([2, 3], [1, 2], [1, 1]), (2, 3, 0)]
)
def test_max_pool_with_ties_against_torch(k, s, p):
    torch = _torch()
    x = tied_images(17, (4, 3, 12, 13)).astype(np.float32)
    layer = MaxPool2D(kernel_size=k, stride=s, padding=p).build(x.shape[1:])
    tmod = torch.nn.MaxPool2d(k, stride=s, padding=p)
    # A gradient sent to the wrong one of tied inputs would be off by O(1); overlapping windows
    # only add up in another order (last-bit differences).
    _grads_vs_torch(layer, tmod, x, rtol=1e-6, atol=0)


def test_max_pool_after_relu_in_a_lenet_batch_against_torch():
    torch = _torch()
    r = rng(18)
    x = np.maximum(r.standard_normal((64, 6, 28, 28), dtype=np.float32), 0)  # half zeros
    x[:, :, :6] = 0.0  # blank borders, as digits have
    layer = MaxPool2D(kernel_size=2).build((6, 28, 28))
    _grads_vs_torch(layer, torch.nn.MaxPool2d(2), x, rtol=0, atol=0)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ([3, 2], [1, 2], [1, 0])])
def test_avg_pool_against_torch(k, s, p):
    torch = _torch()
    x = rng(19).standard_normal((3, 2, 9, 8), dtype=np.float32)
    layer = AvgPool2D(kernel_size=k, stride=s, padding=p).build(x.shape[1:])
    _grads_vs_torch(layer, torch.nn.AvgPool2d(k, stride=s, padding=p, count_include_pad=True), x)


@pytest.mark.parametrize("scale", [2, [2, 3]])
def test_upsample_and_global_pool_against_torch(scale):
    torch = _torch()
    x = rng(20).standard_normal((2, 3, 4, 5), dtype=np.float32)
    _grads_vs_torch(
        Upsample2D(scale=scale).build(x.shape[1:]),
        torch.nn.Upsample(scale_factor=tuple(F.pair(scale)), mode="nearest"),
        x,
    )
    _grads_vs_torch(
        GlobalAvgPool2D().build(x.shape[1:]),
        torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),
        x,
    )
