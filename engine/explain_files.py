"""What ``app.py explain`` reads and writes: the input sample from a file (an image or an
.npy array, checked before anything is allocated, never unpickled) and the picture of a map
over its input (engine/explain.py computes the maps)."""

from __future__ import annotations

import io

import numpy as np

from engine.data.base import read_bytes
from engine.errors import DataError
from engine.explain import shape_text

MAX_INPUT_BYTES = 64 * 1024**2
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")


def _npy(data: bytes, path: str) -> np.ndarray:
    """An .npy file's array, header checked before anything is allocated; never unpickled."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(version)
        read = read or {(2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise DataError(f"has .npy format version {version}; save with np.save", file=path)
        shape, fortran, dtype = read(f)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError, struct/unicode errors ...
        raise DataError(f"is not a .npy array file ({e})", file=path) from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"holds {dtype} values; save a numeric array", file=path)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    rest = data[f.tell() :]
    if nbytes != len(rest):
        raise DataError(
            f"claims shape {tuple(shape)} ({nbytes:,} bytes) but holds {len(rest):,}: the file "
            "is truncated or corrupt",
            file=path,
        )
    return np.frombuffer(rest, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_input(path: str, input_shape: tuple) -> np.ndarray:
    """One sample for a graph whose Input takes ``input_shape``: a .npy array of that shape (a
    leading batch axis of 1 is dropped) or an image file (grayscale for 1 channel, RGB for 3,
    pixels scaled to [0, 1]; not resized: its size must be the Input's). DataError otherwise."""
    data = read_bytes(path, MAX_INPUT_BYTES, "sample file")
    suffix = str(path).lower().rsplit(".", 1)[-1] if "." in str(path) else ""
    if f".{suffix}" == ".npy" or data[:6] == b"\x93NUMPY":
        x = _npy(data, path)
        if x.ndim == len(input_shape) + 1 and x.shape[0] == 1:
            x = x[0]
    elif f".{suffix}" in IMAGE_SUFFIXES or suffix == "":
        from engine.data.images import _pillow, _pixels

        if len(input_shape) != 3 or input_shape[0] not in (1, 3):
            raise DataError(
                f"is an image, but the graph's Input takes {shape_text(input_shape)} (images "
                "need 1 x H x W or 3 x H x W); give a .npy array",
                file=path,
            )
        Image = _pillow()
        try:
            with Image.open(io.BytesIO(data)) as im:
                x = _pixels(Image, im, None, input_shape[0] == 1, path)
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types
            raise DataError(
                f"cannot be decoded as an image ({type(e).__name__}: {e})", file=path
            ) from None
    else:
        raise DataError("is neither a .npy array nor an image (.png, .jpg ...)", file=path)
    if tuple(x.shape) != tuple(input_shape):
        raise DataError(
            f"is {shape_text(x.shape)} but the graph's Input takes {shape_text(input_shape)}",
            file=path,
        )
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise DataError("holds NaN or infinite values", file=path)
    return np.array(x)


# A perceptual colour map (matplotlib's viridis at 9 stops, linearly interpolated): low is dark
# blue, high is yellow; the legend of the GUI and the overlay PNG use the same one.
VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    np.float64,
)


def normalized(m: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``m`` scaled to [0, 1] between its minimum (0 if all values are >= 0) and maximum, with
    the two ends (what the legend shows)."""
    m = np.asarray(m, np.float64)
    lo = min(float(m.min()), 0.0) if m.size else 0.0
    hi = float(m.max()) if m.size else 1.0
    span = hi - lo
    return (np.zeros_like(m) if span <= 0 else (m - lo) / span), lo, hi


def colorize(u: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB uint8 (..., 3) through VIRIDIS."""
    t = np.clip(np.asarray(u, np.float64), 0, 1) * (len(VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(VIRIDIS) - 2)
    f = (t - i)[..., None]
    return np.round(VIRIDIS[i] * (1 - f) + VIRIDIS[i + 1] * f).astype(np.uint8)


def input_picture(x: np.ndarray) -> np.ndarray:
    """A sample as an RGB uint8 picture (H, W, 3): images min-max scaled, 1-D inputs a strip
    (token ids, which are names not amounts, a plain grey one)."""
    if not np.issubdtype(np.asarray(x).dtype, np.floating):
        return np.full((1, np.asarray(x).shape[-1], 3), 128, np.uint8)
    x = np.asarray(x, np.float64)
    if x.ndim == 3:
        x = x[0] if x.shape[0] != 3 else x.transpose(1, 2, 0)
    elif x.ndim == 2:  # (C, L): the channels' mean along the sequence
        x = x.mean(axis=0)[None]
    else:
        x = x[None]
    lo, hi = float(x.min()), float(x.max())
    g = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    g = np.round(g * 255).astype(np.uint8)
    return g if g.ndim == 3 else np.repeat(g[..., None], 3, axis=-1)


def overlay(x: np.ndarray, m: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The input picture with the colour-mapped map over it at ``opacity`` (H, W, 3) uint8."""
    base = input_picture(x).astype(np.float64)
    heat = colorize(normalized(m)[0]).astype(np.float64)
    if heat.ndim == 2:
        heat = heat[None]
    return np.round(base * (1 - opacity) + heat * opacity).astype(np.uint8)
