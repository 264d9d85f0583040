"""Adaptive average pooling, one window at a time: AdaptiveAvgPool2D (PyTorch's
AdaptiveAvgPool2d).

Instead of a kernel and a stride, the output size (oh, ow) is chosen and the windows follow:
window i along an axis of length H spans [floor(i H / oh), ceil((i + 1) H / oh)). For 14 -> 4
(torchvision's InceptionAux) that is rows 0-3, 3-6, 7-10, 10-13: 4 rows each, neighbours
sharing a row where H is not a multiple of oh. Each output is the mean of its window.

Backward: as for average pooling, every input of a window gets dout / (the window's size),
added up where windows overlap.
"""

from __future__ import annotations

import math

import numpy as np


def _window(i: int, size: int, out: int) -> tuple[int, int]:
    """[start, end) of window i of ``out`` over an axis of ``size``."""
    return math.floor(i * size / out), math.ceil((i + 1) * size / out)


def adaptive_avg_pool2d_forward(
    x: np.ndarray, output_size: tuple[int, int]
) -> tuple[np.ndarray, tuple]:
    """out[n, c, i, j] = mean of x[n, c, R_i, C_j], R_i = [floor(i H / oh), ceil((i+1) H / oh))
    and C_j the same over W. Shapes: x (N, C, H, W) -> out (N, C, oh, ow)."""
    h, w = x.shape[2:]
    oh, ow = output_size
    out = np.zeros((*x.shape[:2], oh, ow))
    for n, c, i, j in np.ndindex(out.shape):
        (r0, r1), (c0, c1) = _window(i, h, oh), _window(j, w, ow)
        out[n, c, i, j] = x[n, c, r0:r1, c0:c1].mean()
    return out, (x.shape, (oh, ow))


def adaptive_avg_pool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: every input of window (i, j) gets dout[i, j] / (its size), added where windows
    overlap."""
    (n_samples, n_maps, h, w), (oh, ow) = cache
    dx = np.zeros((n_samples, n_maps, h, w))
    for n, c, i, j in np.ndindex(dout.shape):
        (r0, r1), (c0, c1) = _window(i, h, oh), _window(j, w, ow)
        dx[n, c, r0:r1, c0:c1] += dout[n, c, i, j] / ((r1 - r0) * (c1 - c0))
    return dx
