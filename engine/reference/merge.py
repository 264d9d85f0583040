"""Blocks with several inputs: Add (ResNet's shortcut) and Concat.

Add: out = x_1 + x_2 + ...; each d out / d x_k is the identity, so every input receives dout
whole. That is why a shortcut helps (lecture 001, ResNet; lecture 002): the gradient reaches
the earlier layer through the sum without being multiplied by the layers it skips.
Concat: the inputs side by side along one axis; backward cuts dout into the same pieces.
"""

from __future__ import annotations

import numpy as np


def add_forward(xs: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """out = sum of the inputs. Shapes: xs [(N, *s), ...] -> out (N, *s)."""
    out = np.zeros_like(xs[0])
    for x in xs:
        out = out + x
    return out, len(xs)


def add_backward(dout: np.ndarray, cache: int) -> list[np.ndarray]:
    """[dout, dout, ...]: one copy of dout per input."""
    return [dout.copy() for _ in range(cache)]


def concat_forward(xs: list[np.ndarray], axis: int) -> tuple[np.ndarray, tuple]:
    """The inputs joined along ``axis`` of the sample (0: channels of images, features of
    vectors; -1: the last axis). Shapes: (N, a1, ...), (N, a2, ...) -> (N, a1 + a2, ...)."""
    a = axis % (xs[0].ndim - 1) + 1  # sample axis -> array axis (after the batch)
    sizes = [x.shape[a] for x in xs]
    return np.concatenate(xs, axis=a), (a, sizes)


def concat_backward(dout: np.ndarray, cache: tuple) -> list[np.ndarray]:
    """dout cut along the joined axis into pieces the sizes of the inputs."""
    a, sizes = cache
    pieces, start = [], 0
    for size in sizes:
        index = [slice(None)] * dout.ndim
        index[a] = slice(start, start + size)
        pieces.append(dout[tuple(index)])
        start += size
    return pieces
