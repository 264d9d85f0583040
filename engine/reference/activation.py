"""Activation functions f applied element-wise (softmax: over the last axis), and their slopes.

Backward is the chain rule through an element-wise f: dL/dx = dL/dout * f'(x) (lecture 000's
delta^l = (W^{l+1 T} delta^{l+1}) (x) f'(z^l)). The slopes, as lectures 001 and 002 give them:

    relu(x)       = max(0, x)              relu'    = 1 if x > 0 else 0
    leaky_relu(x) = x if x > 0 else a x    leaky'   = 1 if x > 0 else a
    sigmoid(x)    = 1 / (1 + e^-x)         sigmoid' = s (1 - s)    (at most 1/4: it saturates)
    tanh(x)                                tanh'    = 1 - t^2
    linear(x)     = x                      linear'  = 1

Softmax mixes the features of a row, so its derivative is a matrix (the Jacobian):
    s_i = e^{x_i} / sum_j e^{x_j},   ds_i / dx_j = s_i (delta_ij - s_j)
and dL/dx = J^T dL/ds, row by row.
"""

from __future__ import annotations

import numpy as np

FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) as written (the engine's version avoids overflow for x << 0)."""
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    """e^{x_i} / sum_j e^{x_j} over the last axis (shifted by the row's max: same value, no
    overflow)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def activation_forward(
    x: np.ndarray, fn: str, negative_slope: float = 0.01
) -> tuple[np.ndarray, tuple]:
    """out = fn(x). Shapes: x (N, *s) -> out (N, *s)."""
    if fn == "relu":
        out = np.maximum(x, 0.0)
    elif fn == "leaky_relu":
        out = np.where(x > 0, x, negative_slope * x)
    elif fn == "sigmoid":
        out = sigmoid(x)
    elif fn == "tanh":
        out = np.tanh(x)
    elif fn == "softmax":
        out = softmax(x)
    elif fn == "linear":
        out = x.copy()
    else:
        raise ValueError(f"unknown activation {fn!r}: one of {', '.join(FUNCTIONS)}")
    return out, (x, out, fn, negative_slope)


def activation_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout * f'(x); for softmax dx = J^T dout with the Jacobian of each row."""
    x, out, fn, slope = cache
    if fn == "relu":
        return dout * (x > 0)
    if fn == "leaky_relu":
        return dout * np.where(x > 0, 1.0, slope)
    if fn == "sigmoid":
        return dout * out * (1.0 - out)
    if fn == "tanh":
        return dout * (1.0 - out**2)
    if fn == "linear":
        return dout.copy()
    # softmax: one Jacobian per row of features
    s_rows = out.reshape(-1, out.shape[-1])
    d_rows = dout.reshape(-1, dout.shape[-1])
    dx = np.empty_like(d_rows)
    for r in range(s_rows.shape[0]):
        s = s_rows[r]
        jacobian = np.diag(s) - np.outer(s, s)  # J[i, j] = s_i (delta_ij - s_j), symmetric
        dx[r] = jacobian.T @ d_rows[r]
    return dx.reshape(dout.shape)
