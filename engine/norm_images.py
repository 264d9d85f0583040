"""BatchNorm on a batch of images in few passes over the data (engine.layers.norm.BatchNorm
uses these while training on (N, C, H, W) in one process).

The textbook forward (mu, then x - mu, then its squares, then xhat, then weight * xhat + bias)
reads and writes the whole batch seven times, and keeps xhat for backward. Here the statistics
come from two reading passes, the sums of x and of x^2 per channel (the second a dot product
per map, ``np.vecdot``), and the output is one affine map per channel:

    var = sum(x^2) / m - mu^2,   out = x * s + t,   s = weight / std,  t = bias - mu * s

and backward needs x itself, not xhat (xhat = (x - mu) / std):

    dbias = sum(dout),   dweight = (sum(dout * x) - mu * dbias) / std
    dx = k dout - (k dweight / m) xhat - k dbias / m    (k = weight / std)
       = k dout + a x + c,   a = -k dweight / (m std),  c = k (dweight mu / std - dbias) / m

Sums are added in float64. ``sum(x^2) / m - mu^2`` loses digits when the mean is large
against the spread; ``moments`` then returns None and the layer takes the two-pass way
(min of 30, 64x16x32x32: forward 2.6 -> 1.1 ms, backward 2.7 -> 2.0; benchmarks/NOTES.md).
"""

from __future__ import annotations

import numpy as np

from engine.functional import channel_sum

# The one-pass variance is used while mu^2 <= MEAN_TO_SPREAD * var in every channel (the mean
# within two standard deviations of 0): float32
# sums then lose at most a few of their ~7 digits to the subtraction.
MEAN_TO_SPREAD = 4.0


def _per_channel(v: np.ndarray, dtype) -> np.ndarray:
    return v.astype(dtype).reshape(1, -1, 1, 1)


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, variance) per channel of x (N, C, H, W), float64 (C,); None where the one-pass
    variance would lose digits (the caller computes it from x - mean)."""
    n, c = x.shape[:2]
    m = x.size // c
    x3 = x.reshape(n, c, -1)
    mu = channel_sum(x).astype(np.float64) / m
    var = np.vecdot(x3, x3).sum(axis=0, dtype=np.float64) / m - mu * mu
    if not np.all(mu * mu <= MEAN_TO_SPREAD * var):  # also catches var <= 0 and NaN
        return None
    return mu, var


def affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x * scale + shift per channel (scale, shift: (C,)), a new array."""
    out = np.multiply(x, _per_channel(scale, x.dtype))
    out += _per_channel(shift, x.dtype)
    return out


def backward(
    dout: np.ndarray,
    x: np.ndarray,
    mu: np.ndarray,
    inv_std: np.ndarray,
    weight: np.ndarray,
    scratch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) of out = weight * (x - mu) * inv_std + bias over the batch's
    statistics (module docstring); ``scratch``: a reusable array of x's shape."""
    n, c = x.shape[:2]
    m = x.size // c
    dbias = channel_sum(dout).astype(np.float64)
    dxs = np.vecdot(dout.reshape(n, c, -1), x.reshape(n, c, -1)).sum(axis=0, dtype=np.float64)
    dweight = inv_std * (dxs - mu * dbias)
    k = weight.astype(np.float64) * inv_std
    a = -k * dweight * inv_std / m
    shift = k * (dweight * inv_std * mu - dbias) / m
    dx = np.multiply(dout, _per_channel(k, dout.dtype))
    dx += np.multiply(x, _per_channel(a, x.dtype), out=scratch)
    dx += _per_channel(shift, dx.dtype)
    return dx, dweight.astype(dout.dtype), dbias.astype(dout.dtype)
