"""Blocks that only move values around: Flatten, Reshape, Transpose and Slice (Input passes
its data through).

None of them changes a value, so backward puts each gradient back where its value came from: the
inverse reshape (lecture 002's CNN pipeline flattens the last feature maps for the dense
classifier; the gradient flows back into the maps unchanged).
"""

from __future__ import annotations

import numpy as np


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out[n] = the values of sample n in C order (channels, then rows, then columns).

    Shapes: x (N, *s) -> out (N, prod(s)); e.g. (N, 16, 5, 5) -> (N, 400) in LeNet-5."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout in the input's shape."""
    return dout.reshape(cache)


def reshape_forward(x: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple]:
    """Each sample to ``shape``, values in C order. Shapes: x (N, *s) -> out (N, *shape)."""
    return x.reshape(x.shape[0], *shape), x.shape


def reshape_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout in the input's shape."""
    return dout.reshape(cache)


def transpose_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out[n, b, a] = x[n, a, b]: a sequence (T, E) as E channels of length T."""
    n, a, b = x.shape
    out = np.zeros((n, b, a))
    for i, j, k in np.ndindex(x.shape):
        out[i, k, j] = x[i, j, k]
    return out, x.shape


def transpose_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx[n, a, b] = dout[n, b, a]: the gradient goes back the way the value came."""
    dx = np.zeros(cache)
    for i, j, k in np.ndindex(cache):
        dx[i, j, k] = dout[i, k, j]
    return dx


def slice_forward(x: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, tuple]:
    """out[n, t] = x[n, start + t] for t < stop - start. Shapes: x (N, T, *s) ->
    out (N, stop - start, *s)."""
    out = np.stack([x[:, start + t] for t in range(stop - start)], axis=1)
    return out, (x.shape, start)


def slice_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx[n, start + t] = dout[n, t]; the steps not kept get 0."""
    shape, start = cache
    dx = np.zeros(shape, dout.dtype)
    for t in range(dout.shape[1]):
        dx[:, start + t] = dout[:, t]
    return dx
