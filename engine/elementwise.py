"""Element-wise passes over image batches in the forms NumPy runs fastest (the ReLU, the
per-channel scale and shift of BatchNorm and of a convolution's bias).

NumPy's loops over two arrays are vectorised; over an array and one value broadcast along each
row (``np.maximum(x, 0)``, ``x * s.reshape(1, -1, 1, 1)``) they run about half as fast, and a
broadcast along rows of a short map pays a loop call every row. So the zero of the ReLU is a
row of zeros broadcast over rows of x, and a per-channel value is a (C, H*W) array over the
(N, C, H*W) maps (benchmarks/NOTES.md, "Issue 20, late evening": 32x16x32x32 float32, ReLU
0.164 -> 0.077 ms, the affine map 0.185 -> 0.105 ms). Same operations, the same bits.
"""

from __future__ import annotations

import math

import numpy as np

_ZERO_ROW = 1024
_zero_rows: dict[np.dtype, np.ndarray] = {}


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) element-wise (the values of ``np.maximum(x, 0)``), into ``out`` (which may be
    x) or a new array."""
    if out is None:
        out = np.empty_like(x)
    if not (x.flags.c_contiguous and out.flags.c_contiguous) or x.dtype.kind != "f":
        return np.maximum(x, 0, out=out)
    zero = _zero_rows.get(x.dtype)
    if zero is None:
        zero = _zero_rows[x.dtype] = np.zeros(_ZERO_ROW, x.dtype)
    flat, dst = x.reshape(-1), out.reshape(-1)
    rows = flat.size // _ZERO_ROW * _ZERO_ROW
    np.maximum(flat[:rows].reshape(-1, _ZERO_ROW), zero, out=dst[:rows].reshape(-1, _ZERO_ROW))
    np.maximum(flat[rows:], zero[: flat.size - rows], out=dst[rows:])
    return out


def maps(a: np.ndarray, view: bool = True) -> np.ndarray:
    """a (N, C, H, W) as (N, C, H*W): a view (ValueError where that would need a copy, which
    an in-place pass would then fill instead of a); ``view=False`` for an operand that is only
    read: a copy where needed."""
    shape = (a.shape[0], a.shape[1], math.prod(a.shape[2:]))
    return np.reshape(a, shape, copy=False if view else None)


def channel_rows(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """v (C,) in ``like``'s dtype as the per-channel operand for ``maps(like)``: a (C, H*W)
    array, each value repeated over its map, when like holds several samples; (C, 1) for one
    (the rows would cost a pass as long as the one they speed up)."""
    c, hw = like.shape[1], math.prod(like.shape[2:])
    col = v.astype(like.dtype, copy=False).reshape(c, 1)
    if like.shape[0] < 2:
        return col
    rows = np.empty((c, hw), like.dtype)
    rows[...] = col
    return rows
