"""Turning a drawing into a network input exactly as the training images were made, and
sampling text from a character model. NumPy only (tested without a display).

A drawing is kept as strokes (polylines in pad coordinates), not as the pad's pixels, so it can
be rasterised at the data set's own scale with the data set's own stroke width:

- ``digits`` (scikit-learn / UCI optdigits): NIST normalised each digit into a 32x32 binary
  bitmap (the digit's height fills the frame, aspect kept; sideways we centre the centre of
  mass: in the data set both it and the box centre sit at 3.5 +- 0.3 of 8), then counted the
  set pixels of each 4x4 block (0..16); BlockProp's loader divides by 16 and then applies the spec's
  ``resize`` (bilinear), ``pad`` and ``flatten`` with the loader's own functions, reused here.
- ``idx`` (MNIST): the digit fitted into a 20x20 box, anti-aliased grey levels, placed so its
  centre of mass is the centre of the 28x28 frame (LeCun et al.), pixel / 255 when the loader
  normalises.
"""

from __future__ import annotations

import math

import numpy as np

from engine.data.builtin import pad_center, resize_bilinear

NIST_FRAME = 32  # optdigits' bitmap size before the 4x4 block counts
NIST_STROKE = 4.5  # pen width in bitmap pixels: gives about the data set's ink share (30 %)
MNIST_BOX = 20 / 28  # MNIST's digit box relative to its frame
MNIST_STROKE = 2.4 / 28  # pen width relative to the frame
SUPERSAMPLE = 4
TRY_DATASETS = ("digits", "idx")


def rasterise(
    strokes: list[np.ndarray], shape: tuple[int, int], width: float, supersample: int = 1
) -> np.ndarray:
    """Ink coverage in [0, 1] of polylines drawn with a round pen of ``width`` pixels.

    Shapes: strokes [(k, 2) of (x, y) in pixel units of ``shape``] -> (H, W). A pixel (centre
    at x + 0.5, y + 0.5) is inked when its distance to a segment is at most width / 2;
    ``supersample`` s averages s x s sub-pixels (anti-aliasing).
    """
    H, W = shape
    s = supersample
    ys, xs = np.mgrid[0 : H * s, 0 : W * s]
    px = (xs.ravel() + 0.5) / s
    py = (ys.ravel() + 0.5) / s
    ink = np.zeros(px.shape, dtype=bool)
    r2 = (width / 2) ** 2
    for st in strokes:
        st = np.asarray(st, dtype=np.float64).reshape(-1, 2)
        if len(st) == 1:
            st = np.vstack([st, st])
        a, b = st[:-1], st[1:]
        for (ax, ay), (bx, by) in zip(a, b, strict=True):
            dx, dy = bx - ax, by - ay
            L2 = dx * dx + dy * dy
            t = (
                np.zeros_like(px)
                if L2 == 0
                else np.clip(((px - ax) * dx + (py - ay) * dy) / L2, 0.0, 1.0)
            )
            ink |= (px - (ax + t * dx)) ** 2 + (py - (ay + t * dy)) ** 2 <= r2
    img = ink.reshape(H * s, W * s).astype(np.float64)
    if s > 1:
        img = img.reshape(H, s, W, s).mean(axis=(1, 3))
    return img


def fit(
    strokes: list[np.ndarray],
    box: float,
    frame: tuple[int, int],
    pad: float = 0.0,
    by_height: bool = False,
) -> list[np.ndarray]:
    """Scale and move strokes so their bounding box fits a ``box`` x ``box`` square (aspect
    kept; ``by_height``: the height fills it unless the width would overflow) centred in
    ``frame``. ``pad`` is the pen's half width, kept inside the box."""
    pts = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    size = np.maximum(hi - lo, 1e-9)
    inner = box - 2 * pad
    if by_height:
        scale = min(inner / size[1], inner / max(size[0], 1e-9))
    else:
        scale = inner / max(size[0], size[1])
    centre_src = (lo + hi) / 2
    centre_dst = np.array([frame[1] / 2, frame[0] / 2])
    return [
        (np.asarray(s, dtype=np.float64).reshape(-1, 2) - centre_src) * scale + centre_dst
        for s in strokes
    ]


def centre_of_mass_shift(img: np.ndarray, rows: bool = True) -> np.ndarray:
    """Shift by whole pixels (zero fill) so the centre of mass is nearest the frame's centre
    (only sideways when ``rows`` is False)."""
    m = img.sum()
    if m <= 0:
        return img
    H, W = img.shape
    ys, xs = np.mgrid[0:H, 0:W]
    cy, cx = (img * ys).sum() / m, (img * xs).sum() / m
    dy = int(round((H - 1) / 2 - cy)) if rows else 0
    dx = int(round((W - 1) / 2 - cx))
    out = np.zeros_like(img)
    ys0, ys1 = max(0, dy), min(H, H + dy)
    xs0, xs1 = max(0, dx), min(W, W + dx)
    out[ys0:ys1, xs0:xs1] = img[ys0 - dy : ys1 - dy, xs0 - dx : xs1 - dx]
    return out


def digits_sample(strokes: list[np.ndarray], cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """(sample, 8x8 picture) as ``engine.data``'s digits loader with options ``cfg`` makes it.

    Shapes: -> (1, H, W) or (H*W,) float32, and the 8x8 grid in [0, 1] before resize/pad.
    """
    n = NIST_FRAME
    fitted = fit(strokes, n, (n, n), pad=NIST_STROKE / 2, by_height=True)
    bitmap = rasterise(fitted, (n, n), NIST_STROKE, supersample=SUPERSAMPLE) >= 0.5
    # The height fills the frame (every optdigits sample spans all 8 rows), so only the
    # sideways position is set by the centre of mass.
    bitmap = centre_of_mass_shift(bitmap.astype(np.float64), rows=False) > 0.5
    counts = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))  # set pixels per 4x4 block: 0..16
    small = (counts.astype(np.float32) / 16.0)[None, None]  # pixel / 16 -> [0, 1]
    X = small
    if cfg.get("resize") is not None:
        X = resize_bilinear(X, tuple(_pair(cfg["resize"])))
    if cfg.get("pad") is not None:
        X = pad_center(X, tuple(_pair(cfg["pad"])))
    if cfg.get("flatten"):
        X = X.reshape(1, -1)
    return np.ascontiguousarray(X[0], dtype=np.float32), small[0, 0]


def mnist_sample(
    strokes: list[np.ndarray], shape: tuple[int, int], normalize: bool = True
) -> np.ndarray:
    """An MNIST-style picture (H, W): 20/28 box, anti-aliased, centre of mass centred."""
    H, W = shape
    side = min(H, W)
    fitted = fit(strokes, side * MNIST_BOX, shape, pad=0.0)
    img = rasterise(fitted, shape, side * MNIST_STROKE, supersample=SUPERSAMPLE)
    img = centre_of_mass_shift(img)
    return (img if normalize else img * 255.0).astype(np.float32)


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, (int, float)) else [int(x) for x in v]


def drawing_input(
    strokes: list[np.ndarray], dataset_spec: dict, input_shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """The model input for a drawing (and a picture of it as the network sees it).

    ValueError when this data set's preprocessing cannot be reproduced from a drawing.
    """
    name = dataset_spec.get("name")
    if not strokes or not any(len(s) for s in strokes):
        raise ValueError("draw something first")
    if name == "digits":
        x, _ = digits_sample(strokes, dataset_spec)
    elif name == "idx":
        if len(input_shape) == 3:
            H, W = input_shape[1:]
        else:
            H = W = int(round(math.sqrt(int(np.prod(input_shape)))))
        x = mnist_sample(strokes, (H, W), dataset_spec.get("normalize", True))
        x = x.reshape(input_shape) if int(np.prod(input_shape)) == x.size else x
    else:
        raise ValueError(
            f"drawings are prepared like the 'digits' and 'idx' (MNIST) data "
            f"sets; this model was trained on {name!r}"
        )
    if tuple(x.shape) != tuple(input_shape):
        raise ValueError(
            f"the drawing becomes {tuple(x.shape)} but the model takes {tuple(input_shape)}"
        )
    pic = x.reshape(-1, *x.shape[-2:])[0] if x.ndim >= 2 else x.reshape(int(math.sqrt(x.size)), -1)
    return x, pic


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64) / max(temperature, 1e-6)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def next_char_probs(
    forward, vocab: list[str], text: str, T: int, one_hot: bool, temperature: float
) -> np.ndarray:
    """Probabilities of the next character after ``text`` from a character model.

    The model reads windows of exactly T characters: the last T of ``text`` (shorter text is
    placed at the start and the rest filled with the first vocabulary entry; a forward RNN's
    output at the text's last position does not depend on what follows it).
    Shapes: forward((1, T) ids or (1, T, V)) -> (1, T, V) or (1, V) logits.
    """
    index = {c: i for i, c in enumerate(vocab)}
    ids = [index[c] for c in text if c in index][-T:]
    if not ids:
        ids = [0]
    last = len(ids) - 1
    window = np.array(ids + [0] * (T - len(ids)), dtype=np.int64)[None]
    x = np.eye(len(vocab), dtype=np.float32)[window] if one_hot else window
    out = np.asarray(forward(x))
    logits = out[0, last] if out.ndim == 3 else out[0]
    return softmax(logits, temperature)


def sample_char(p: np.ndarray, rng: np.random.Generator, temperature: float) -> int:
    """Draw from ``p``; temperature 0 means always the most likely character."""
    if temperature <= 1e-3:
        return int(np.argmax(p))
    return int(rng.choice(len(p), p=p))
