"""Dense (fully connected): the multilayer perceptron's layer (lecture 000's backprop slide).

Lecture 000 writes one layer as z^l = W^l a^{l-1} + b^l for one sample (a column); with the
batch as rows of x that is out = x W^T + b, and backpropagation gives

    delta = dL/dout                      (one row per sample)
    dL/dW_jk = sum_n delta_nj x_nk       i.e. dW = delta^T x
    dL/db_j  = sum_n delta_nj            i.e. db = column sums of delta
    dL/dx    = delta W                   (the delta handed to the layer below)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def dense_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, tuple]:
    """out = x W^T + b.

    Shapes: x (N, D) -> out (N, M); w (M, D), b (M,). A sequence x (N, T, D) gives (N, T, M):
    the same W at every time step (each (sample, step) is one row).
    """
    out = x @ w.T
    if b is not None:
        out = out + b
    return out, (x, w, b)


def dense_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, Any]:
    """(dx, dW, db) from dout = dL/dout: dx = dout W, dW = dout^T x, db = sum of dout.

    For sequences the sums run over samples and time steps alike (the weight is shared).
    """
    x, w, b = cache
    rows_x = x.reshape(-1, x.shape[-1])  # every (sample, step) is one row
    rows_d = dout.reshape(-1, dout.shape[-1])
    dw = rows_d.T @ rows_x
    db = None if b is None else rows_d.sum(axis=0)
    dx = dout @ w
    return dx, dw, db
