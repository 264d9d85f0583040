"""Winograd F(2x2, 3x3) (engine/winograd.py) computes what engine.reference's loops compute:
forward, the input gradient through the same routine, the weight gradient by F(3x3, 2x2), and
Conv2D's gradients on that path;
the layer takes it only where ``winograd.pays`` says so."""

import numpy as np
import pytest
from gradcheck import check_layer

from engine import blas_threads, winograd
from engine import functional as F
from engine.layers import Conv2D
from engine.reference import conv as ref_conv

# (N, C, F, H, W, pad (top, bottom, left, right)): odd and even outputs, 0-2 zeros per side
CASES = [
    (2, 5, 7, 9, 8, (1, 1, 1, 1)),
    (3, 4, 6, 7, 11, (0, 2, 1, 0)),
    (1, 3, 5, 5, 5, (2, 2, 2, 2)),
    (2, 6, 3, 6, 4, (0, 0, 0, 0)),
    (4, 2, 2, 3, 3, (1, 0, 0, 1)),
]


def rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("n,c,f,h,w,pad", CASES)
def test_forward_and_input_gradient_match_the_reference_loops(n, c, f, h, w, pad):
    r = rng(1)
    x = r.standard_normal((n, c, h, w)).astype(np.float32)
    wt = r.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = r.standard_normal(f).astype(np.float32)
    want, cache = ref_conv.conv2d_forward(x, wt, b, (1, 1), pad)
    conv = winograd.WinogradConv(x.shape, f, pad, np.float32)
    out = conv.forward(x, wt, b)
    assert out.shape == want.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-5 * np.abs(want).max())
    dout = r.standard_normal(want.shape).astype(np.float32)
    dx_want, _, _ = ref_conv.conv2d_backward(dout, cache)
    dx = conv.input_grad(dout, wt)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_want, rtol=0, atol=1e-5 * np.abs(dx_want).max())


@pytest.mark.parametrize("n,c,f,h,w,pad", CASES)
def test_weight_gradient_matches_the_reference_loops(n, c, f, h, w, pad, monkeypatch):
    r = rng(7)
    x = r.standard_normal((n, c, h, w)).astype(np.float32)
    wt = r.standard_normal((f, c, 3, 3)).astype(np.float32)
    want, cache = ref_conv.conv2d_forward(x, wt, None, (1, 1), pad)
    dout = r.standard_normal(want.shape).astype(np.float32)
    _, dw_want, _ = ref_conv.conv2d_backward(dout, cache)
    conv = winograd.WinogradConv(x.shape, f, pad, np.float32)
    dw = conv.weight_grad(x, dout)
    assert dw.shape == wt.shape and dw.dtype == np.float32
    np.testing.assert_allclose(dw, dw_want, rtol=0, atol=1e-5 * np.abs(dw_want).max())
    # two samples per chunk: the sums over chunks add up to the same, and the junk tiles stay
    # zero when a smaller last chunk reuses the scratch arrays
    p = conv.plan
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 2 * 16 * max(c, f) * p.TH * p.TX * 4)
    chunked = winograd.WinogradConv(x.shape, f, pad, np.float32)
    assert [b - a for a, b in chunked.plan.chunks] == [2] * (n // 2) + [1] * (n % 2)
    np.testing.assert_allclose(
        chunked.weight_grad(x, dout), dw_want, rtol=0, atol=1e-5 * np.abs(dw_want).max()
    )
    # on the input transform a training forward pass kept (per chunk), the same numbers; an
    # inference pass drops it (another x's), so the gradient then reads the x it is given
    for c in (conv, chunked):
        c.forward(r.standard_normal(x.shape).astype(np.float32), wt, None, training=True)
        c.forward(x, wt, None)
        np.testing.assert_allclose(
            c.weight_grad(x, dout), dw_want, rtol=0, atol=1e-5 * np.abs(dw_want).max()
        )
        c.forward(x, wt, None, training=True)
        np.testing.assert_allclose(
            c.weight_grad(x, dout), dw_want, rtol=0, atol=1e-5 * np.abs(dw_want).max()
        )


def test_a_training_pass_keeps_the_input_transform_only_up_to_keep_bytes(monkeypatch):
    x = rng(9).standard_normal((2, 3, 6, 6)).astype(np.float32)
    wt = rng(10).standard_normal((4, 3, 3, 3)).astype(np.float32)
    conv = winograd.WinogradConv(x.shape, 4, (1, 1, 1, 1), np.float32)
    conv.forward(x, wt, None, training=True)
    assert conv._kept is not None
    monkeypatch.setattr(winograd, "KEEP_BYTES", conv.plan.transform_bytes - 1)
    conv.forward(x, wt, None, training=True)
    assert conv._kept is None


def test_kernel_transform_is_g_g_gt_and_its_flip_that_of_the_flipped_kernel():
    r = rng(8)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    u = winograd.kernel_transform(w)
    want = np.einsum("ai,fcij,bj->abfc", winograd.G, w, winograd.G).reshape(16, 4, 3)
    np.testing.assert_allclose(u, want, rtol=1e-6, atol=1e-6)
    flip = winograd.kernel_transform(w, flip=True)
    assert flip.shape == (16, 3, 4) and flip.flags.c_contiguous
    np.testing.assert_allclose(flip, winograd.kernel_transform(winograd.flipped(w)), atol=1e-6)


# 32x32 float32 maps lie 4 KiB apart: the load takes its unaligned copy first (ALIGNED_MAPS),
# for x and, in the input gradient, for dout
@pytest.mark.parametrize("c,size", [(64, 8), (5, 32)])
def test_resnet_sized_layer_stays_within_float32_rounding_of_im2col(monkeypatch, c, size):
    r = rng(2)
    x = r.standard_normal((3, c, size, size)).astype(np.float32)
    layer = Conv2D(filters=c, kernel_size=3, padding=1).build((c, size, size), r)
    want_params = layer.params
    dout = r.standard_normal((3, c, size, size)).astype(np.float32)
    monkeypatch.setattr(winograd, "pays", lambda *a: False)
    want, dx_want = layer.forward(x, training=True), layer.backward(dout).copy()
    dw_want = layer.grads["weight"].copy()
    monkeypatch.setattr(winograd, "pays", lambda *a: True)
    layer = Conv2D(filters=c, kernel_size=3, padding=1).build((c, size, size))
    layer.params = want_params  # a fresh layer: nothing loaded by the im2col run
    out, dx = layer.forward(x, training=True), layer.backward(dout)
    assert layer._cache[2] is not None  # the Winograd path ran
    for got, ref in ((out, want), (dx, dx_want), (layer.grads["weight"], dw_want)):
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("padding", [1, 0, [2, 1]])
def test_conv2d_gradients_on_the_winograd_path(monkeypatch, padding):
    monkeypatch.setattr(winograd, "pays", lambda *a: True)
    layer = Conv2D(filters=3, kernel_size=3, padding=padding).build((2, 5, 6), rng(3))
    check_layer(layer, rng(4).standard_normal((2, 2, 5, 6)))
    assert layer._cache[2] is not None


def test_chunks_give_the_same_numbers(monkeypatch):
    monkeypatch.setattr(winograd, "pays", lambda *a: True)
    r = rng(5)
    x = r.standard_normal((5, 3, 7, 7)).astype(np.float32)
    layer = Conv2D(filters=4, kernel_size=3, padding=1).build((3, 7, 7), r)
    out = layer.forward(x)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)  # one sample per chunk
    chunked = Conv2D(filters=4, kernel_size=3, padding=1).build((3, 7, 7))
    chunked.params = layer.params
    out2 = chunked.forward(x)
    assert len(chunked._cache[2].plan.chunks) == 5
    np.testing.assert_allclose(out2, out, rtol=1e-6, atol=1e-6)


def test_the_layer_takes_winograd_only_where_it_applies_and_pays(monkeypatch):
    # BLAS on one thread, whatever the machine is doing (two threads: the next test)
    monkeypatch.setattr(blas_threads, "threads_for", lambda macs: 1)
    r = rng(6)
    cases = [  # (in_shape, settings, batch, Winograd?)
        ((64, 8, 8), {"filters": 64, "kernel_size": 3, "padding": 1}, 32, True),
        ((64, 8, 8), {"filters": 64, "kernel_size": 3, "padding": 1}, 2, False),  # few tiles
        ((128, 28, 28), {"filters": 128, "kernel_size": 3, "padding": 1}, 1, True),  # 196
        ((256, 14, 14), {"filters": 256, "kernel_size": 3, "padding": 1}, 1, True),  # 49
        ((512, 7, 7), {"filters": 512, "kernel_size": 3, "padding": 1}, 4, False),  # 64, wide
        ((16, 32, 32), {"filters": 16, "kernel_size": 3, "padding": 1}, 8, False),  # thin
        ((32, 16, 16), {"filters": 32, "kernel_size": 3, "padding": 1}, 8, True),  # 512 tiles
        ((32, 16, 16), {"filters": 32, "kernel_size": 3, "padding": 1}, 4, False),  # 256
        ((64, 8, 8), {"filters": 64, "kernel_size": 3, "stride": 2, "padding": 1}, 32, False),
        ((64, 8, 8), {"filters": 64, "kernel_size": 3, "padding": 3}, 32, False),
        ((64, 8, 8), {"filters": 64, "kernel_size": 3, "padding": 1, "groups": 2}, 32, False),
        ((64, 8, 8), {"filters": 64, "kernel_size": 1}, 32, False),
    ]
    for in_shape, cfg, n, wino in cases:
        layer = Conv2D(**cfg).build(in_shape, r)
        layer.forward(np.zeros((n, *in_shape), np.float32))
        assert (layer._cache[2] is not None) == wino, (cfg, n)


@pytest.mark.parametrize("threads", [1, 2])
def test_with_two_blas_threads_one_image_of_64_maps_takes_im2col(monkeypatch, threads):
    """On two threads the products (which Winograd shrinks) run on both cores and the
    transforms on one: one image of ResNet-18's 64-map stage takes im2col then, its 128- and
    256-map stages stay with Winograd; a training batch (small products: one thread) too."""
    monkeypatch.setattr(blas_threads, "threads_for", lambda macs: threads if macs >= 2**23 else 1)
    r = rng(8)
    cases = [  # (maps, size, batch, Winograd on one thread, on two)
        (64, 56, 1, True, False),
        (128, 28, 1, True, True),
        (256, 14, 1, True, True),
        (64, 8, 32, True, True),  # chunks of a few samples: products below 8 M, one thread
    ]
    for c, hw, n, one, two in cases:
        layer = Conv2D(filters=c, kernel_size=3, padding=1).build((c, hw, hw), r)
        x = r.standard_normal((n, c, hw, hw)).astype(np.float32)
        out = layer.forward(x, training=True)
        assert (layer._cache[2] is not None) == (one if threads == 1 else two), (c, n)
        # the backward pass follows the forward's choice, and both paths give the same (the
        # im2col plan's, checked against the reference loops elsewhere)
        want = F.conv2d(x, layer.params["weight"], None, 1, 1)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-5 * np.abs(want).max())
        assert layer.backward(np.ones_like(out)).shape == x.shape
    assert not winograd.pays(64, 64, 784, threads=2) and winograd.pays(64, 64, 784)


def test_blas_threads_follow_all_16_products_when_the_batch_is_one_chunk():
    # one image (one chunk): one np.matmul call runs the 16 products back to back, so BLAS's
    # threads (engine.blas_threads) follow their sum; with several chunks, one product each
    one = winograd.WinogradPlan((1, 128, 28, 28), 128, (1, 1, 1, 1))
    assert len(one.chunks) == 1
    assert one.product_macs == 16 * 128 * 128 * 14 * 14  # 14x14 tiles (no junk column)
    many = winograd.WinogradPlan((64, 64, 8, 8), 64, (1, 1, 1, 1))
    (n0, n1), count = many.chunks[0], len(many.chunks)
    assert count > 1 and many.product_macs == 64 * 64 * (n1 - n0) * 4 * 4
