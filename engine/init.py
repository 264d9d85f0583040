"""Weight initialisers (lecture 000: N(0, eps), He N(0, sqrt(2/n)); lecture 001: zero / random /
Xavier / He).

All take a shape, the fans and a ``np.random.Generator``; they return float32 arrays.
Xavier/Glorot: Var = 2 / (fan_in + fan_out). He/Kaiming: Var = 2 / fan_in (for ReLU).
A uniform U(-a, a) has Var = a^2 / 3, which gives the uniform limits below.
"""

from __future__ import annotations

import numpy as np

from engine import blas_threads
from engine.errors import ConfigError


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) for PyTorch layouts: (out, in) or (out_c, in_c, *kernel)."""
    if len(shape) < 2:
        n = int(shape[0]) if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def orthogonal(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """Saxe et al.'s orthogonal matrix (rows or columns orthonormal), QR of a Gaussian matrix."""
    rows = int(shape[0])
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    # one BLAS thread: Householder QR is a chain of small rank-1 updates, which OpenBLAS split
    # over threads that then wait for each other (a (512, 128) matrix: 11 ms on two threads,
    # up to 70 on a busy machine; 2.7 ms on one)
    with blas_threads.limited(0):
        q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique (uniform over orthogonal matrices)
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).reshape(shape)


def initialize(
    method: str,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    fan_in: int | None = None,
    fan_out: int | None = None,
    std: float = 0.01,
    limit: float = 0.05,
    value: float = 0.0,
) -> np.ndarray:
    """An array of ``shape`` drawn by ``method``: one of engine.settings.INITS, or a
    layer's own start ("ones", "standard_normal", "constant" ``value``)."""
    fi, fo = fans(shape)
    fan_in = fi if fan_in is None else fan_in
    fan_out = fo if fan_out is None else fan_out
    if method == "zeros":
        w = np.zeros(shape)
    elif method == "ones":
        w = np.ones(shape)
    elif method == "constant":
        w = np.full(shape, value)
    elif method == "standard_normal":
        w = rng.standard_normal(shape)
    elif method == "normal":
        w = rng.normal(0.0, std, shape)
    elif method == "uniform":
        w = rng.uniform(-limit, limit, shape)
    elif method == "xavier_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif method == "xavier_uniform":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, shape)
    elif method == "he_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif method == "he_uniform":
        a = np.sqrt(6.0 / fan_in)
        w = rng.uniform(-a, a, shape)
    elif method == "orthogonal":
        w = orthogonal(shape, rng)
    else:
        raise ConfigError(f"unknown initialiser {method!r}")
    return np.asarray(w, dtype=np.float32)
