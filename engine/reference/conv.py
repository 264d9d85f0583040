"""Convolutions, one output value at a time: Conv2D (with stride, padding, LeNet-5's
connection table and groups), Conv1D and ConvTranspose2D.

A convolution layer slides each filter over the input and takes a dot product at every
position (lecture 004: "convolution as a sliding dot product"). Like PyTorch and the slides'
numerical example (lecture 000: a 5x5 image and a 3x3 filter give the map 12 12 17 / 10 17 19 /
9 6 14) the filter is not flipped, strictly a cross-correlation:

    out[n, f, y, x] = b[f] + sum_{c, i, j} w[f, c, i, j] * xpad[n, c, y*S_h + i, x*S_w + j]

with xpad the input with P zeros around it. Output size (lecture 000): floor((W - K + 2P) / S) + 1.

Backward: every output value was made from one patch, so its gradient goes back to that patch
(to the inputs through the weights, to the weights through the inputs; lecture 003's
"gradient of a kernel" is the second sum):

    dxpad[n, c, y*S_h + i, x*S_w + j] += dout[n, f, y, x] * w[f, c, i, j]
    dw[f, c, i, j]                    += dout[n, f, y, x] * xpad[n, c, y*S_h + i, x*S_w + j]
    db[f]                              = sum_{n, y, x} dout[n, f, y, x]

then dx is dxpad without its padding. engine/layers/conv.py computes the same sums as matrix
products (im2col, "wide rows", "folded"); tests/test_reference.py holds them equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)


def same_padding(kernel: int) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1: K - 1 in total, the odd one
    after (PyTorch's padding="same")."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


def pad4(padding: Any, kh: int, kw: int) -> Pad4:
    """(top, bottom, left, right) from p, [ph, pw], "valid" (no padding) or "same"."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        return (*same_padding(kh), *same_padding(kw))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return ph, ph, pw, pw


def zero_pad(x: np.ndarray, pad: Pad4, value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) with rows/columns of ``value`` added: pad = (top, bottom, left, right)."""
    t, b, left, right = pad
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, right)), constant_values=value)


# --- Conv2D ------------------------------------------------------------------------------------
def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: tuple[int, int] = (1, 1),
    pad: Pad4 = (0, 0, 0, 0),
    connections: list[list[int]] | None = None,
    groups: int = 1,
) -> tuple[np.ndarray, tuple]:
    """out[n, f, y, x] = b[f] + sum over the patch of w[f] * xpad (module docstring).

    Shapes: x (N, C, H, W), w (F, C / groups, kh, kw), b (F,) -> out (N, F, OH, OW),
    OH = (H + top + bottom - kh) // S_h + 1.
    ``connections`` (LeNet-5's C3, lecture 003): filter f reads only the input maps listed in
    connections[f]; its other weights take no part.
    ``groups``: the F filters and C maps are cut into that many groups in order; filter f of
    group g = f // (F / groups) reads the maps g * C/groups .. (g + 1) * C/groups - 1, its
    weight w[f, i] meeting map g * C/groups + i (the 2012 AlexNet's two towers: groups 2).
    """
    xpad = zero_pad(x, pad)
    n_samples, n_maps, hp, wp = xpad.shape
    n_filters, _, kh, kw = w.shape
    sh, sw = stride
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    reads = _reads(n_maps, w, connections, groups)
    out = np.zeros((n_samples, n_filters, oh, ow))
    for n in range(n_samples):
        for f in range(n_filters):
            maps, taps = reads[f]
            for y in range(oh):
                for x_ in range(ow):
                    patch = xpad[n, maps, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]
                    out[n, f, y, x_] = np.sum(patch * w[f, taps])
            if b is not None:
                out[n, f] += b[f]
    return out, (x, w, b, stride, pad, reads)


def _reads(n_maps: int, w: np.ndarray, connections, groups: int) -> list:
    """For each filter f: (the input maps it reads, the rows of w[f] that meet them)."""
    if connections:
        return [(list(row), list(row)) for row in connections]
    n_filters, per_group = w.shape[:2]
    group_of = [f // (n_filters // groups) for f in range(n_filters)]
    return [
        (list(range(g * per_group, (g + 1) * per_group)), list(range(per_group))) for g in group_of
    ]


def conv2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dw, db): each output value sends dout * w back to its patch of inputs and
    dout * patch to the weights (module docstring). Unconnected weights get 0."""
    x, w, b, (sh, sw), pad, reads = cache
    xpad = zero_pad(x, pad)
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    n_samples, n_filters, oh, ow = dout.shape
    kh, kw = w.shape[2:]
    for n in range(n_samples):
        for f in range(n_filters):
            for y in range(oh):
                for x_ in range(ow):
                    rows, cols = slice(y * sh, y * sh + kh), slice(x_ * sw, x_ * sw + kw)
                    g = dout[n, f, y, x_]
                    maps, taps = reads[f]
                    dxpad[n, maps, rows, cols] += g * w[f, taps]
                    dw[f, taps] += g * xpad[n, maps, rows, cols]
    top, _, left, _ = pad
    dx = dxpad[:, :, top : top + x.shape[2], left : left + x.shape[3]]
    db = None if b is None else dout.sum(axis=(0, 2, 3))
    return dx, dw, db


# --- Conv1D ------------------------------------------------------------------------------------
def conv1d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, tuple]:
    """The same sliding dot product along one axis (sequences laid out channels first):

        out[n, f, t] = b[f] + sum_{c, k} w[f, c, k] * xpad[n, c, t*S + k]

    Shapes: x (N, C, L), w (F, C, k), b (F,) -> out (N, F, OL), OL = (L + P_l + P_r - k) // S + 1.
    """
    xpad = np.pad(x, ((0, 0), (0, 0), pad))
    n_samples, _, lp = xpad.shape
    n_filters, _, k = w.shape
    ol = (lp - k) // stride + 1
    out = np.zeros((n_samples, n_filters, ol))
    for n in range(n_samples):
        for f in range(n_filters):
            for t in range(ol):
                out[n, f, t] = np.sum(xpad[n, :, t * stride : t * stride + k] * w[f])
                if b is not None:
                    out[n, f, t] += b[f]
    return out, (x, w, b, stride, pad)


def conv1d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dw, db), as conv2d_backward along one axis."""
    x, w, b, stride, pad = cache
    xpad = np.pad(x, ((0, 0), (0, 0), pad))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    n_samples, n_filters, ol = dout.shape
    k = w.shape[2]
    for n in range(n_samples):
        for f in range(n_filters):
            for t in range(ol):
                window = slice(t * stride, t * stride + k)
                dxpad[n, :, window] += dout[n, f, t] * w[f]
                dw[f] += dout[n, f, t] * xpad[n, :, window]
    dx = dxpad[:, :, pad[0] : pad[0] + x.shape[2]]
    db = None if b is None else dout.sum(axis=(0, 2))
    return dx, dw, db


# --- ConvTranspose2D ---------------------------------------------------------------------------
def conv_transpose2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, tuple]:
    """Transposed convolution (lecture 001's "transpose convolution", in decoders): each input
    pixel stamps its filter, scaled by its value, onto the output S pixels from its neighbour's
    stamp; overlapping stamps add up. Padding P then crops P rows/columns from each side:

        full[n, f, y*S_h + i, x*S_w + j] += x[n, c, y, x] * w[c, f, i, j]
        out = full[:, :, P_h : -P_h, P_w : -P_w] + b[f]

    Shapes: x (N, C, H, W), w (C, F, kh, kw), b (F,) -> out (N, F, Ho, Wo),
    Ho = (H - 1) * S_h - 2 P_h + kh. It is conv2d_backward's dx with the roles swapped: the
    convolution with this weight, stride and padding maps (Ho, Wo) back to (H, W).
    """
    n_samples, n_in, h, wd = x.shape
    _, n_out, kh, kw = w.shape
    sh, sw = stride
    ph, pw = padding
    full = np.zeros((n_samples, n_out, (h - 1) * sh + kh, (wd - 1) * sw + kw))
    for n in range(n_samples):
        for c in range(n_in):
            for y in range(h):
                for x_ in range(wd):
                    full[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw] += (
                        x[n, c, y, x_] * w[c]
                    )
    out = full[:, :, ph : full.shape[2] - ph, pw : full.shape[3] - pw]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out, (x, w, b, stride, padding)


def conv_transpose2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dw, db): each input pixel's stamp covered one window of the (uncropped) output, so
    its gradient is the dot product of the filter with dout over that window; the cropped
    border received nothing, so its gradient is zero:

        dx[n, c, y, x] = sum_{f, i, j} w[c, f, i, j] * dfull[n, f, y*S_h + i, x*S_w + j]
        dw[c, f, i, j] = sum_{n, y, x} x[n, c, y, x] * dfull[n, f, y*S_h + i, x*S_w + j]
    """
    x, w, b, (sh, sw), (ph, pw) = cache
    dfull = np.pad(dout, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n_samples, n_in, h, wd = x.shape
    kh, kw = w.shape[2:]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for n in range(n_samples):
        for c in range(n_in):
            for y in range(h):
                for x_ in range(wd):
                    window = dfull[n, :, y * sh : y * sh + kh, x_ * sw : x_ * sw + kw]
                    dx[n, c, y, x_] = np.sum(window * w[c])
                    dw[c] += x[n, c, y, x_] * window
    db = None if b is None else dout.sum(axis=(0, 2, 3))
    return dx, dw, db
