"""Arrays to pictures: kernel grids, feature-map grids, heat maps. NumPy only (testable).

Every grid is one float image with NaN in the 1-pixel gaps between tiles (drawn transparent,
so the panel background separates the tiles). ``tiles`` gives each tile's (row, col) corner so
tests and hover read-outs can find a kernel in the picture.
"""

from __future__ import annotations

import math

import numpy as np

GAP = 1


def grid_shape(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles, about square on screen (``aspect`` = tile h / w)."""
    cols = max(1, math.ceil(math.sqrt(n * aspect)))
    rows = math.ceil(n / cols)
    return rows, cols


def tile(
    images: np.ndarray, cols: int | None = None, fill: float = np.nan
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay images out in a grid.

    Shapes: images (n, h, w) or (n, h, w, 3) -> grid (R*(h+GAP)-GAP, C*(w+GAP)-GAP[, 3]).
    """
    n, h, w = images.shape[:3]
    if cols is None:
        _, cols = grid_shape(n, h / w)
    rows = math.ceil(n / cols)
    shape = (rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, *images.shape[3:])
    out = np.full(shape, fill, dtype=np.float64)
    corners = []
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (h + GAP), c * (w + GAP)
        out[y : y + h, x : x + w] = images[k]
        corners.append((y, x))
    return out, corners


def normalise_symmetric(k: np.ndarray) -> np.ndarray:
    """k / max|k| into [-1, 1], keeping 0 at 0 (the white of a diverging map). All-zero stays 0."""
    m = float(np.max(np.abs(k))) if k.size else 0.0
    return k / m if m > 0 else np.zeros_like(k, dtype=np.float64)


def normalise_range(a: np.ndarray) -> np.ndarray:
    """(a - min) / (max - min) into [0, 1]; a constant array gives 0.5."""
    lo, hi = float(np.min(a)), float(np.max(a))
    if hi - lo <= 0:
        return np.full(a.shape, 0.5)
    return (a - lo) / (hi - lo)


def kernel_stack(weight: np.ndarray) -> np.ndarray:
    """A conv weight as (out, in, kh, kw): Conv1D's (out, in, k) becomes one row per kernel,
    ConvTranspose2D's (in, out, kh, kw) is swapped so tiles are its output maps."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim == 3:
        w = w[:, :, None, :]
    return w


def filter_grid(
    weight: np.ndarray, channel: int | None = 0, rgb: bool = False
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The kernels of one conv layer as a picture, each kernel normalised on its own.

    ``rgb`` (first layer on colour images, in_channels == 3): each kernel's three channels as
    one colour tile, min-max scaled to [0, 1]. Otherwise the kernels reading input channel
    ``channel`` scaled by their own max |w| to [-1, 1] (for a diverging colour map: 0 white).
    Shapes: weight (out, in, kh, kw) -> (grid, corners).
    """
    w = kernel_stack(weight)
    if rgb:
        tiles = np.stack([normalise_range(k) for k in w[:, :3]]).transpose(0, 2, 3, 1)
        return tile(tiles)
    c = int(min(max(0, channel or 0), w.shape[1] - 1))
    return tile(np.stack([normalise_symmetric(k) for k in w[:, c]]))


def map_grid(maps: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Feature maps (C, H, W) each min-max scaled to [0, 1], as a grid; (C, L) as rows."""
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, None, :]
    return tile(np.stack([normalise_range(m) for m in a]))


def as_display_image(x: np.ndarray) -> np.ndarray | None:
    """A data sample as something to show: (1, H, W) or (H, W) grey, (3, H, W) as RGB
    (H, W, 3) in [0, 1], a (T, F) sequence as F x T. None for flat vectors that are not
    square images."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 3 and a.shape[0] == 3:
        return normalise_range(a.transpose(1, 2, 0))
    if a.ndim == 3:
        return a.mean(axis=0)
    if a.ndim == 2:
        return a.T
    if a.ndim == 1:
        s = int(round(math.sqrt(a.size)))
        if s * s == a.size and s > 2:
            return a.reshape(s, s)
    return None
