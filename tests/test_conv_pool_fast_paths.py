"""The fast convolution and pooling paths' mechanics: a batch split into chunks gives the same
numbers, outputs are fresh C-contiguous float32 arrays that later calls never overwrite, and
the weight gradient alone (no input gradient) matches engine.reference's loops on every path.
"""

import numpy as np
import pytest
from test_conv_pool import CONV_CASES, rng

from engine import blas_threads, conv_plan, winograd
from engine import functional as F
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


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_chunked_batch_gives_the_same_numbers(monkeypatch, stride, padding):
    r = rng(5)
    x = r.standard_normal((7, 3, 9, 9)).astype(np.float32)
    whole = Conv2D(filters=4, kernel_size=3, stride=stride, padding=padding).build((3, 9, 9), r)
    out = whole.forward(x, training=True)
    dout = r.standard_normal(out.shape).astype(np.float32)
    dx = whole.backward(dout).copy()
    grads = {k: v.copy() for k, v in whole.grads.items()}
    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 1)  # one sample per chunk
    chunked = Conv2D(filters=4, kernel_size=3, stride=stride, padding=padding).build((3, 9, 9))
    chunked.params = {k: v.copy() for k, v in whole.params.items()}
    out2 = chunked.forward(x, training=True)
    assert len(chunked._plans[(x.shape, x.dtype)][0].chunks) == 7
    np.testing.assert_allclose(out2, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(chunked.backward(dout), dx, rtol=1e-5, atol=1e-5)
    for k in grads:
        np.testing.assert_allclose(chunked.grads[k], grads[k], rtol=1e-4, atol=1e-4)


def test_outputs_are_fresh_and_float32_stays_float32():
    r = rng(6)
    layer = Conv2D(filters=3, kernel_size=3, padding=1).build((2, 6, 6), r)
    x1 = r.standard_normal((4, 2, 6, 6)).astype(np.float32)
    x2 = r.standard_normal((4, 2, 6, 6)).astype(np.float32)
    out1 = layer.forward(x1, training=True)
    keep = out1.copy()
    dx1 = layer.backward(np.ones_like(out1))
    keep_dx = dx1.copy()
    out2 = layer.forward(x2, training=True)
    layer.backward(np.ones_like(out2))
    np.testing.assert_array_equal(out1, keep)  # a later call never writes into old results
    np.testing.assert_array_equal(dx1, keep_dx)
    assert out2.dtype == dx1.dtype == layer.grads["weight"].dtype == np.float32
    assert out1.flags.c_contiguous and dx1.flags.c_contiguous
    out3 = layer.forward(x1[:3])  # another batch size
    np.testing.assert_allclose(out3, keep[:3], rtol=1e-6)


@pytest.mark.parametrize(
    "layer,in_shape",
    [
        (Conv2D(filters=2, kernel_size=3, padding="same"), (3, 7, 6)),
        (Conv2D(filters=2, kernel_size=3, stride=2, padding=1), (3, 7, 6)),
        (Conv1D(filters=2, kernel_size=3, padding=1), (3, 9)),
        (ConvTranspose2D(filters=2, kernel_size=3, stride=2, padding=1), (3, 4, 5)),
        (MaxPool2D(kernel_size=3, stride=2, padding=1), (3, 7, 6)),
        (AvgPool2D(kernel_size=2, padding=1), (3, 7, 6)),
        (Subsample2D(), (3, 7, 6)),
        (Upsample2D(), (3, 7, 6)),
        (GlobalAvgPool2D(), (3, 7, 6)),
    ],
    ids=repr,
)
def test_results_are_c_contiguous_float32(layer, in_shape):
    # other blocks, the GUI and the exporter may hand these arrays to code that wants plain
    # C-ordered memory
    layer.build(in_shape, rng(22))
    x = rng(23).standard_normal((2, *in_shape), dtype=np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    for a in (out, dx, *layer.grads.values()):
        assert a.flags.c_contiguous and a.dtype == np.float32


@pytest.mark.parametrize(
    "layer",
    [
        Conv2D(filters=2, kernel_size=3),
        Conv2D(filters=2, kernel_size=3, stride=2),
        ConvTranspose2D(filters=2, kernel_size=3, stride=2),
        MaxPool2D(kernel_size=2),
        AvgPool2D(kernel_size=3, stride=1, padding=1),
    ],
    ids=repr,
)
def test_results_never_share_memory_with_later_calls(layer):
    r = rng(25)
    layer.build((2, 6, 6), r)
    x1, x2 = r.standard_normal((2, 3, 2, 6, 6), dtype=np.float32)
    out1 = layer.forward(x1, training=True)
    dx1 = layer.backward(r.standard_normal(out1.shape, dtype=np.float32))
    kept = out1.copy(), dx1.copy()
    out2 = layer.forward(x2, training=True)
    dx2 = layer.backward(r.standard_normal(out2.shape, dtype=np.float32))
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(dx1, kept[1])
    assert not np.shares_memory(out1, out2) and not np.shares_memory(dx1, dx2)


def test_no_input_gradient_when_not_needed():
    r = rng(7)
    layer = Conv2D(filters=2, kernel_size=3).build((1, 5, 5), r)
    x = r.standard_normal((2, 1, 5, 5))
    dout = r.standard_normal((2, 2, 3, 3))
    layer.forward(x, training=True)
    layer.backward(dout)
    dw = layer.grads["weight"].copy()
    layer.needs_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(dout) is None
    np.testing.assert_allclose(layer.grads["weight"], dw, rtol=1e-6)


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("chunk_bytes", [None, 1])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("wide_below", [0, 10_000])  # valid columns / wide rows for every size
def test_weight_gradient_without_input_gradient(
    monkeypatch, x_shape, w_shape, stride, padding, chunk_bytes, bias, wide_below
):
    # needs_input_grad=False takes its own path for long rows (valid columns, dout as it is)
    monkeypatch.setattr(conv_plan, "WIDE_FORWARD_BELOW", wide_below)
    if chunk_bytes:
        monkeypatch.setattr(conv_plan, "CHUNK_BYTES", chunk_bytes)
    r = rng(31)
    x = r.standard_normal(x_shape)
    cfg = {"filters": w_shape[0], "kernel_size": list(w_shape[2:]), "stride": stride}
    layer = Conv2D(padding=padding, bias=bias, **cfg).build(x_shape[1:], r).astype(np.float64)
    p, st = layer.params, F.pair(stride)
    _, cache = ref_conv.conv2d_forward(
        x, p["weight"], p.get("bias"), st, F.padding4(padding, w_shape[2:], st)
    )
    out = layer.forward(x, training=True)
    dout = r.standard_normal(out.shape)
    _, dw, db = ref_conv.conv2d_backward(dout, cache)
    want = {"weight": dw, **({"bias": db} if bias else {})}
    layer.needs_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(dout) is None
    assert set(layer.grads) == set(want)
    for k in want:
        np.testing.assert_allclose(layer.grads[k], want[k], rtol=1e-10, atol=1e-12)


def test_convolution_products_run_blas_on_one_thread_and_restore_it(monkeypatch):
    # On a busy machine OpenBLAS's threads wait for each other on the per-sample products of
    # wide layers (benchmarks/NOTES.md): every product of a convolution runs on one thread, and
    # the setting is given back afterwards.
    libs = blas_threads.numpy_blas()
    if not libs:
        pytest.skip("threadpoolctl does not see NumPy's BLAS here")
    lib = libs[0]
    before = lib.get_num_threads()
    seen = []
    real = np.matmul

    def spy(*args, **kwargs):
        seen.append(lib.get_num_threads())
        return real(*args, **kwargs)

    r = rng(3)
    layers = [
        (Conv2D(filters=8, kernel_size=3, padding=1), (4, 8, 8)),
        (Conv2D(filters=8, kernel_size=3, stride=2), (4, 9, 9)),
        (ConvTranspose2D(filters=3, kernel_size=2, stride=2), (4, 5, 5)),
        (Conv2D(filters=6, kernel_size=3, padding=1), (5, 6, 6)),  # Winograd (below)
    ]
    # the 5-map layer on the Winograd path: its kernel transforms are products too
    monkeypatch.setattr(winograd, "pays", lambda c, f, tiles: c == 5)
    lib.set_num_threads(2)
    try:
        monkeypatch.setattr(np, "matmul", spy)
        for layer, shape in layers:
            layer.build(shape, r)
            out = layer.forward(r.standard_normal((2, *shape)).astype(np.float32), training=True)
            layer.backward(np.ones_like(out))
        monkeypatch.setattr(np, "matmul", real)
        assert layers[-1][0]._cache[2] is not None
        assert seen and set(seen) == {1}
        assert lib.get_num_threads() == 2
    finally:
        lib.set_num_threads(before)


def _pool_layers():
    """Layers on each path the scratch pool serves, built alike at every call (seeded)."""
    r = rng(21)
    specs = [
        (Conv2D(filters=64, kernel_size=3, padding=1), (64, 8, 8)),  # Winograd (batch 32)
        (Conv2D(filters=64, kernel_size=3, padding=1), (64, 8, 8)),  # and another: its V kept
        (Conv2D(filters=8, kernel_size=3, padding=1), (6, 9, 9)),  # folded / wide rows
        (Conv2D(filters=8, kernel_size=3, stride=2, padding=1), (8, 9, 9)),  # by phases
        (Conv2D(filters=8, kernel_size=3, padding=1, groups=2), (8, 7, 7)),  # two plans
        (ConvTranspose2D(filters=4, kernel_size=2, stride=2), (8, 5, 5)),
    ]
    layers = [layer.build(shape, r) for layer, shape in specs]
    xs = [r.standard_normal((32, *shape)).astype(np.float32) for _, shape in specs]
    return layers, xs


def _step(layer, x):
    out = layer.forward(x, training=True)
    dx = layer.backward(np.cos(out))
    return out, dx, layer.grads["weight"].copy()


def test_plans_sharing_scratch_buffers_interleave_and_threads_keep_their_own():
    """Every plan of a thread takes its scratch arrays from one pool (conv_plan.scratch):
    forward A, forward B, backward B, backward A (a net's order) give what each gives alone,
    on the Winograd, im2col, folded, by-phases and grouped paths; two threads at once (the
    app's Try it and a training run), each with its own layers, give what one gives."""
    import threading

    layers, xs = _pool_layers()
    want = [_step(layer, x) for layer, x in zip(layers, xs, strict=True)]
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        out_a = a.forward(xs[i], training=True)
        out_b = b.forward(xs[i + 1], training=True)
        dx_b = b.backward(np.cos(out_b))
        dx_a = a.backward(np.cos(out_a))
        got = [(out_a, dx_a, a.grads["weight"]), (out_b, dx_b, b.grads["weight"])]
        for g3, w3 in zip(got, (want[i], want[i + 1]), strict=True):
            for g, w in zip(g3, w3, strict=True):
                np.testing.assert_array_equal(g, w)
    results: dict[int, list] = {}

    def run(k):
        own, own_xs = _pool_layers()
        results[k] = [
            _step(layer, x) for _ in range(3) for layer, x in zip(own, own_xs, strict=True)
        ]

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in (0, 1):
        assert len(results[k]) == 3 * len(layers)
        for j, got in enumerate(results[k]):
            # other buffers (addresses) and BLAS threads round a little differently; a buffer
            # written by the other thread meanwhile would be wrong by the values' own size
            for g, w in zip(got, want[j % len(layers)], strict=True):
                np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * np.abs(w).max())
