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

A split step (engine.parallel, engine.batch_sync) takes the same way: the halves swap
``sums`` (forward) and ``grad_sums`` (backward) and each applies the whole batch's totals
(``moments_from_sums``, ``input_grad``).
"""

from __future__ import annotations

import numpy as np

from engine.elementwise import channel_rows, maps
from engine.functional import channel_sum

# The one-pass variance is used while mu^2 <= MEAN_TO_SPREAD * var in every channel (the mean
# within two standard deviations of 0): float32
# sums then lose at most a few of their ~7 digits to the subtraction.
MEAN_TO_SPREAD = 4.0


def sums(x: np.ndarray) -> np.ndarray:
    """sum(x) and sum(x^2) per channel of x (N, C, H, W): (2, C) float64."""
    n, c = x.shape[:2]
    x3 = x.reshape(n, c, -1)
    squares = np.vecdot(x3, x3).sum(axis=0, dtype=np.float64)
    return np.stack([channel_sum(x).astype(np.float64), squares])


def moments_from_sums(s: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, variance) per channel from ``sums`` over m values per channel, float64 (C,);
    None where the one-pass variance would lose digits (the caller computes it from x - mean)."""
    mu = s[0] / m
    var = s[1] / m - mu * mu
    if not np.all(mu * mu <= MEAN_TO_SPREAD * var):  # also catches var <= 0 and NaN
        return None
    return mu, var


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, variance) per channel of x (N, C, H, W), float64 (C,); None where the one-pass
    variance would lose digits (the caller computes it from x - mean)."""
    return moments_from_sums(sums(x), x.size // x.shape[1])


def affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x * scale + shift per channel (scale, shift: (C,)), a new array."""
    out = np.empty(x.shape, x.dtype)
    np.multiply(maps(x, view=False), channel_rows(scale, x), out=maps(out))
    maps(out)[...] += channel_rows(shift, x)
    return out


def grad_sums(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum(dout) and sum(dout * x) per channel: (2, C) float64."""
    n, c = x.shape[:2]
    dxs = np.vecdot(dout.reshape(n, c, -1), x.reshape(n, c, -1)).sum(axis=0, dtype=np.float64)
    return np.stack([channel_sum(dout).astype(np.float64), dxs])


def weight_grad(g: np.ndarray, mu: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
    """dweight = (sum(dout * x) - mu * dbias) / std from ``grad_sums`` g, float64 (C,)."""
    return inv_std * (g[1] - mu * g[0])


def input_grad(
    dout: np.ndarray,
    x: np.ndarray,
    mu: np.ndarray,
    inv_std: np.ndarray,
    weight: np.ndarray,
    g: np.ndarray,
    m: int,
    scratch: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """dx = k dout + scale (a x + c) (module docstring) from the batch's ``grad_sums`` g over
    m values per channel; ``scale``: a split step's n / n_local (its dout is that many times
    the whole batch's, and g the whole batch's sums: engine.layers.norm)."""
    dbias = g[0]
    dweight = weight_grad(g, mu, inv_std)
    k = weight.astype(np.float64) * inv_std
    a = -scale * k * dweight * inv_std / m
    shift = scale * k * (dweight * inv_std * mu - dbias) / m
    dx = np.empty(dout.shape, dout.dtype)
    d3 = maps(dx)
    np.multiply(maps(dout, view=False), channel_rows(k, dout), out=d3)
    d3 += np.multiply(maps(x, view=False), channel_rows(a, x), out=maps(scratch))
    d3 += channel_rows(shift, dx)
    return dx


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
    g = grad_sums(dout, x)
    dx = input_grad(dout, x, mu, inv_std, weight, g, x.size // x.shape[1], scratch)
    return dx, weight_grad(g, mu, inv_std).astype(dout.dtype), g[0].astype(dout.dtype)
