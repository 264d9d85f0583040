"""Pooling and resampling, one window at a time: MaxPool2D, AvgPool2D, GlobalAvgPool2D,
Subsample2D (LeNet-5's S2/S4), Upsample2D, MaxUnpool2D, GlobalAvgPool1D, GlobalMaxPool1D.

A pooling layer slides a kh x kw window with stride S over each map separately (lecture 000:
3x3 max pooling at stride 1 turns the 5x5 example into 3 3 3 / 3 3 3 / 3 2 3) and keeps one
number per window; output size floor((H + 2P - k) / S) + 1, as for convolutions.

Backward: each output value depends only on its window, so its gradient goes back to the
window's inputs, added up where windows overlap:
    max:     all of dout to the input that was the maximum (zero to the others);
    average: dout / (kh * kw) to every input of the window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.reference.conv import zero_pad


def _windows(h: int, w: int, kernel, stride, padding, ceil_mode: bool = False):
    """(kh, kw), (sh, sw), (ph, pw), OH, OW for an H x W map; stride None: the kernel size.
    ``ceil_mode`` (PyTorch's): the sizes rounded up, OH = ceil((H + 2P - kh) / S) + 1, but no
    window may start in the padding after the input."""
    kh, kw = kernel
    sh, sw = kernel if stride is None else stride
    ph, pw = padding
    if not ceil_mode:
        return (
            (kh, kw),
            (sh, sw),
            (ph, pw),
            (h + 2 * ph - kh) // sh + 1,
            (w + 2 * pw - kw) // sw + 1,
        )
    oh, ow = math.ceil((h + 2 * ph - kh) / sh) + 1, math.ceil((w + 2 * pw - kw) / sw) + 1
    oh -= (oh - 1) * sh >= h + ph
    ow -= (ow - 1) * sw >= w + pw
    return (kh, kw), (sh, sw), (ph, pw), oh, ow


# --- MaxPool2D ---------------------------------------------------------------------------------
def max_pool2d_forward(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int] | None = None,
    padding: tuple[int, int] = (0, 0),
    ceil_mode: bool = False,
) -> tuple[np.ndarray, tuple]:
    """out[n, c, y, x] = max of the window at (y*S_h, x*S_w) of the map padded with -inf
    (padding never wins; with ``ceil_mode`` the last window may run past the padded map, the
    part past it -inf too).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW). The cache remembers where each maximum was:
    the FIRST one in row-major order when several are equal (``np.argmax``; PyTorch chooses
    the same, and after a ReLU whole windows of zeros tie).
    """
    (kh, kw), (sh, sw), (ph, pw), oh, ow = _windows(
        *x.shape[2:], kernel, stride, padding, ceil_mode
    )
    xpad = zero_pad(x, (ph, ph, pw, pw), value=-np.inf)
    # ceil_mode: the rows and columns the last window reaches past the padded map
    extra_h = max(0, (oh - 1) * sh + kh - xpad.shape[2])
    extra_w = max(0, (ow - 1) * sw + kw - xpad.shape[3])
    xpad = zero_pad(xpad, (0, extra_h, 0, extra_w), value=-np.inf)
    n_samples, n_maps = x.shape[:2]
    out = np.zeros((n_samples, n_maps, oh, ow))
    where = np.zeros((n_samples, n_maps, oh, ow, 2), dtype=int)  # (row, column) in xpad
    for n in range(n_samples):
        for c in range(n_maps):
            for y in range(oh):
                for x_ in range(ow):
                    window = xpad[n, c, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]
                    first = int(np.argmax(window))  # row-major index of the first maximum
                    out[n, c, y, x_] = window.flat[first]
                    where[n, c, y, x_] = (y * sh + first // kw, x_ * sw + first % kw)
    return out, (x.shape, (ph, pw), where)


def max_pool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: each dout[n, c, y, x] goes to the one input that was its window's maximum."""
    x_shape, (ph, pw), where = cache
    n_samples, n_maps, h, w = x_shape
    dxpad = np.zeros((n_samples, n_maps, h + 2 * ph, w + 2 * pw))  # a max is never padding
    for n, c, y, x_ in np.ndindex(dout.shape):
        row, col = where[n, c, y, x_]
        dxpad[n, c, row, col] += dout[n, c, y, x_]
    return dxpad[:, :, ph : ph + h, pw : pw + w]


# --- MaxUnpool2D ------------------------------------------------------------------------------
def max_unpool2d_forward(x: np.ndarray, pool_cache: tuple) -> tuple[np.ndarray, tuple]:
    """Lecture 001's max-unpooling: "remember which element was max", then put each value
    x[n, c, y, x] back at the position its window's maximum came from (``pool_cache``, from
    max_pool2d_forward on the pool's input); zero everywhere else.

    Shapes: x (N, C, OH, OW), the pool's output -> out (N, C, H, W), the pool's input.
    """
    x_shape, (ph, pw), where = pool_cache
    n_samples, n_maps, h, w = x_shape
    outpad = np.zeros((n_samples, n_maps, h + 2 * ph, w + 2 * pw))
    for n, c, y, x_ in np.ndindex(x.shape):
        row, col = where[n, c, y, x_]
        outpad[n, c, row, col] = x[n, c, y, x_]
    return outpad[:, :, ph : ph + h, pw : pw + w], pool_cache


def max_unpool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx[n, c, y, x]: the gradient at the one position that value went to."""
    x_shape, (ph, pw), where = cache
    doutpad = np.pad(dout, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dx = np.zeros(where.shape[:4])
    for n, c, y, x_ in np.ndindex(dx.shape):
        row, col = where[n, c, y, x_]
        dx[n, c, y, x_] = doutpad[n, c, row, col]
    return dx


# --- AvgPool2D ---------------------------------------------------------------------------------
def avg_pool2d_forward(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int] | None = None,
    padding: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, tuple]:
    """out[n, c, y, x] = mean of the window, padded zeros counted (sum / (kh * kw), PyTorch's
    count_include_pad). Shapes: x (N, C, H, W) -> out (N, C, OH, OW)."""
    (kh, kw), (sh, sw), (ph, pw), oh, ow = _windows(*x.shape[2:], kernel, stride, padding)
    xpad = zero_pad(x, (ph, ph, pw, pw))
    out = np.zeros((*x.shape[:2], oh, ow))
    for n, c, y, x_ in np.ndindex(out.shape):
        out[n, c, y, x_] = xpad[n, c, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw].mean()
    return out, (x.shape, (kh, kw), (sh, sw), (ph, pw))


def avg_pool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: every input of a window gets dout / (kh * kw) (added up where windows overlap)."""
    (n_samples, n_maps, h, w), (kh, kw), (sh, sw), (ph, pw) = cache
    dxpad = np.zeros((n_samples, n_maps, h + 2 * ph, w + 2 * pw))
    for n, c, y, x_ in np.ndindex(dout.shape):
        dxpad[n, c, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw] += dout[n, c, y, x_] / (kh * kw)
    return dxpad[:, :, ph : ph + h, pw : pw + w]


# --- GlobalAvgPool2D ---------------------------------------------------------------------------
def global_avg_pool2d_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out[n, c] = mean of map c: one number per map (GoogLeNet's and ResNet's head, and the
    input of lecture 001's class activation maps). Shapes: x (N, C, H, W) -> out (N, C)."""
    return x.mean(axis=(2, 3)), x.shape


def global_avg_pool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx[n, c, y, x] = dout[n, c] / (H * W): every pixel had the same share in the mean."""
    n_samples, n_maps, h, w = cache
    dx = np.zeros(cache)
    for n, c in np.ndindex(n_samples, n_maps):
        dx[n, c] = dout[n, c] / (h * w)
    return dx


# --- Subsample2D -------------------------------------------------------------------------------
def subsample2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, kernel: tuple[int, int]
) -> tuple[np.ndarray, tuple]:
    """LeNet-5's trainable subsampling (S2, S4; lecture 003): per map c, over non-overlapping
    k x k windows,

        out[n, c, y, x] = w[c] * sum of the window + b[c]

    Rows/columns that do not fill a window are dropped. Shapes: x (N, C, H, W), w (C,), b (C,)
    -> out (N, C, H // kh, W // kw).
    """
    kh, kw = kernel
    n_samples, n_maps, h, wd = x.shape
    sums = np.zeros((n_samples, n_maps, h // kh, wd // kw))
    for n, c, y, x_ in np.ndindex(sums.shape):
        sums[n, c, y, x_] = x[n, c, y * kh : (y + 1) * kh, x_ * kw : (x_ + 1) * kw].sum()
    out = sums * w[None, :, None, None] + b[None, :, None, None]
    return out, (x.shape, kernel, w, sums)


def subsample2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dw, db): dw[c] = sum of dout * (window sum), db[c] = sum of dout, and every input of
    a window gets dout * w[c]; inputs left out of every window get 0."""
    x_shape, (kh, kw), w, sums = cache
    dw = (dout * sums).sum(axis=(0, 2, 3))
    db = dout.sum(axis=(0, 2, 3))
    dx = np.zeros(x_shape)
    for n, c, y, x_ in np.ndindex(dout.shape):
        dx[n, c, y * kh : (y + 1) * kh, x_ * kw : (x_ + 1) * kw] = dout[n, c, y, x_] * w[c]
    return dx, dw, db


# --- Upsample2D --------------------------------------------------------------------------------
def upsample2d_forward(x: np.ndarray, scale: tuple[int, int]) -> tuple[np.ndarray, tuple]:
    """Nearest neighbour: each pixel becomes an sh x sw block (lecture 001's upsampling in a
    convolutional autoencoder's decoder): out[n, c, y, x] = x[n, c, y // sh, x // sw].

    Shapes: x (N, C, H, W) -> out (N, C, H * sh, W * sw)."""
    sh, sw = scale
    n_samples, n_maps, h, w = x.shape
    out = np.zeros((n_samples, n_maps, h * sh, w * sw))
    for n, c, y, x_ in np.ndindex(out.shape):
        out[n, c, y, x_] = x[n, c, y // sh, x_ // sw]
    return out, (x.shape, scale)


def upsample2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx[n, c, y, x] = sum of dout over the block that pixel was copied to."""
    x_shape, (sh, sw) = cache
    dx = np.zeros(x_shape)
    for n, c, y, x_ in np.ndindex(x_shape):
        dx[n, c, y, x_] = dout[n, c, y * sh : (y + 1) * sh, x_ * sw : (x_ + 1) * sw].sum()
    return dx


# --- GlobalAvgPool1D and GlobalMaxPool1D -------------------------------------------------------
def global_avg_pool1d_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out[n, c] = (1 / L) * sum over positions t of x[n, c, t]."""
    n_samples, n_maps, length = x.shape
    out = np.zeros((n_samples, n_maps))
    for n, c in np.ndindex(n_samples, n_maps):
        out[n, c] = sum(x[n, c, t] for t in range(length)) / length
    return out, x.shape


def global_avg_pool1d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Every position of a channel gets dout / L."""
    dx = np.zeros(cache)
    for n, c, t in np.ndindex(cache):
        dx[n, c, t] = dout[n, c] / cache[2]
    return dx


def global_max_pool1d_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out[n, c] = max over t of x[n, c, t]; the cache keeps where (the first maximum)."""
    n_samples, n_maps, length = x.shape
    out = np.zeros((n_samples, n_maps))
    where = np.zeros((n_samples, n_maps), dtype=int)
    for n, c in np.ndindex(n_samples, n_maps):
        best = 0
        for t in range(1, length):
            if x[n, c, t] > x[n, c, best]:
                best = t
        out[n, c], where[n, c] = x[n, c, best], best
    return out, (x.shape, where)


def global_max_pool1d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """All of dout[n, c] to the position that was the maximum."""
    shape, where = cache
    dx = np.zeros(shape)
    for n, c in np.ndindex(shape[:2]):
        dx[n, c, where[n, c]] = dout[n, c]
    return dx
