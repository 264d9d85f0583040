"""Built-in tabular and image data: digits, XOR, moons, circles, spiral.

All offline and deterministic: randomness only through the Generator made from the seed.
Moons and circles follow scikit-learn's ``make_moons`` / ``make_circles`` constructions, written
out here so they draw from that Generator (scikit-learn's own take a legacy RandomState).

Each ``make_*`` function is the data set's generator, NumPy only: its loader checks the options
and wraps the arrays in a Dataset, and the PyTorch export copies the function's source into its
scripts (engine/export/standalone_data.py), so both make the same data from the same seed.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements
from engine.errors import ConfigError
from engine.settings import Opt

# ---------------------------------------------------------------------------------- images


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of 1-D linear interpolation, half-pixel centres.

    Output pixel i samples the input at s = (i + 0.5) * n_in / n_out - 0.5 (clamped to the edge),
    mixing its neighbours floor(s) and floor(s) + 1 with weights 1 - frac(s) and frac(s): the
    convention of PyTorch's ``interpolate(..., align_corners=False)`` and OpenCV's ``resize``.
    """
    s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    s = np.clip(s, 0.0, n_in - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = s - i0
    R = np.zeros((n_out, n_in))
    np.add.at(R, (np.arange(n_out), i0), 1.0 - w1)
    np.add.at(R, (np.arange(n_out), i1), w1)
    return R


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize images by bilinear interpolation, separably: out = R_h @ x @ R_w^T.

    Shapes: x (N, C, H, W) -> (N, C, size[0], size[1]), dtype kept.
    """
    H, W = x.shape[-2:]
    Rh = bilinear_matrix(H, size[0]).astype(x.dtype)
    Rw = bilinear_matrix(W, size[1]).astype(x.dtype)
    return Rh @ x @ Rw.T


def pad_center(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre images on a zero canvas (LeNet-5 read 28x28 digits centred in 32x32).

    Shapes: x (N, C, H, W) -> (N, C, size[0], size[1]) with size >= (H, W).
    """
    H, W = x.shape[-2:]
    top, left = (size[0] - H) // 2, (size[1] - W) // 2
    out = np.zeros((*x.shape[:-2], *size), dtype=x.dtype)
    out[..., top : top + H, left : left + W] = x
    return out


# ---------------------------------------------------------------------------------- digits

DIGITS_OPTIONS = {
    "resize": Opt(
        "size",
        default=None,
        nullable=True,
        max=128,
        doc="[H, W]: interpolate the 8x8 images to this size (bilinear)",
    ),
    "pad": Opt(
        "size",
        default=None,
        nullable=True,
        max=128,
        doc="[H, W]: centre the (resized) images on a zero canvas of this size",
    ),
    "flatten": Opt("bool", default=False, doc="X as (N, H*W) vectors for MLPs"),
}


DIGITS_COUNT = 1797


def make_digits(rng, resize, pad, flatten):
    """scikit-learn's 8x8 digits / 16, optionally resized (bilinear) and centred on a canvas."""
    from sklearn.datasets import load_digits  # reads the copy shipped with scikit-learn

    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # pixel / 16 -> [0, 1]
    if resize is not None:
        X = resize_bilinear(X, tuple(resize))
    if pad is not None:
        X = pad_center(X, tuple(pad))
    if flatten:
        X = X.reshape(len(X), -1)
    return np.ascontiguousarray(X, dtype=np.float32), d.target.astype(np.int64)


def load_digits(cfg: dict, rng: np.random.Generator) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels), in file order.

    The images are the UCI "optdigits" ones, already downsampled to 8x8, so ``resize`` enlarges
    them (bilinear keeps strokes smooth, e.g. [32, 32] for LeNet-5); ``pad`` instead centres
    them on a larger canvas, as LeNet-5's 28x28 MNIST digits sat in 32x32 (``"resize": [28, 28],
    "pad": [32, 32]`` reproduces that framing). No randomness: the seed does not matter.
    """
    steps = ["pixel / 16 to [0, 1]"]
    H, W = 8, 8
    if cfg["resize"] is not None:
        H, W = cfg["resize"]
        check_elements(DIGITS_COUNT * H * W, "digits resized")
        steps.append(f"bilinear resize to {H}x{W}")
    if cfg["pad"] is not None:
        if cfg["pad"][0] < H or cfg["pad"][1] < W:
            raise ConfigError(
                f"data set 'digits': 'pad' {cfg['pad']} must be at least the "
                f"image size {[H, W]} (pad adds a border; use 'resize' to shrink)"
            )
        steps.append(f"centred on a {cfg['pad'][0]}x{cfg['pad'][1]} zero canvas")
    X, y = make_digits(rng, **cfg)
    return Dataset(
        X,
        y,
        "classification",
        n_classes=10,
        class_names=[str(i) for i in range(10)],
        name="digits",
        description=DATASETS_HERE["digits"].description,
        normalisation="; ".join(steps),
        meta={"source": "sklearn.datasets.load_digits (UCI optdigits)"},
    )


# ---------------------------------------------------------------------------------- xor

XOR_OPTIONS = {
    "targets": Opt(
        "choice",
        default="class",
        choices=("class", "float"),
        doc="class: y int64 ids (softmax/cross-entropy); "
        "float: y (N, 1) float32 in {0, 1} (sigmoid + MSE/BCE)",
    ),
    "repeat": Opt("int", default=1, min=1, max=100_000, doc="copies of the four points"),
    "noise": Opt(
        "float",
        default=0.0,
        min=0.0,
        max=1.0,
        doc="std of Gaussian jitter added to the copies (0: the exact points)",
    ),
}


def make_xor(rng, targets, repeat, noise):
    """XOR's four points, repeated, optionally jittered; y class ids or (N, 1) float 0/1."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    X, y = np.tile(X, (repeat, 1)), np.tile(y, repeat)
    if noise > 0:
        X = X + rng.normal(0.0, noise, X.shape).astype(np.float32)
    if targets == "float":
        return X, y[:, None].astype(np.float32)
    return X, y


def load_xor(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Lecture 001's XOR: (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0, the problem no single
    perceptron separates. ``repeat`` stacks copies (so batches and validation splits have
    data), ``noise`` jitters them; with the defaults X is exactly the four points."""
    X, y = make_xor(rng, **cfg)
    desc = DATASETS_HERE["xor"].description
    if cfg["targets"] == "float":
        return Dataset(
            X,
            y,
            "regression",
            name="xor",
            description=desc,
            class_names=["0", "1"],
            meta={"targets": "float 0/1 for a sigmoid output"},
        )
    return Dataset(
        X, y, "classification", n_classes=2, class_names=["0", "1"], name="xor", description=desc
    )


# ---------------------------------------------------------------------------------- 2-D toys

MOONS_OPTIONS = {
    "n": Opt("int", default=500, min=2, max=1_000_000, doc="number of points"),
    "noise": Opt("float", default=0.1, min=0.0, max=10.0, doc="std of Gaussian noise"),
}

CIRCLES_OPTIONS = {
    "n": Opt("int", default=500, min=2, max=1_000_000, doc="number of points"),
    "noise": Opt("float", default=0.05, min=0.0, max=10.0, doc="std of Gaussian noise"),
    "factor": Opt(
        "float",
        default=0.5,
        min=0.0,
        max=1.0,
        min_exclusive=True,
        max_exclusive=True,
        doc="inner radius / outer radius",
    ),
}

SPIRAL_OPTIONS = {
    "n": Opt("int", default=300, min=2, max=1_000_000, doc="number of points (all arms)"),
    "arms": Opt("int", default=3, min=2, max=20, doc="number of arms = classes"),
    "noise": Opt("float", default=0.2, min=0.0, max=10.0, doc="std of angle noise (radians)"),
    "turns": Opt(
        "float",
        default=0.64,
        min=0.05,
        max=5.0,
        doc="how far each arm winds, in full turns (CS231n's spiral: 4 rad)",
    ),
}


def shuffled(X, y, rng):
    """X as float32 and y as int64 ids, both in one random order."""
    p = rng.permutation(len(X))
    return np.ascontiguousarray(X[p], dtype=np.float32), y[p].astype(np.int64)


def make_moons(rng, n, noise):
    """Two interleaving half circles (scikit-learn's make_moons construction).

    Outer moon (cos t, sin t), inner moon (1 - cos t, 1/2 - sin t), t evenly in [0, pi],
    plus N(0, noise^2) on each coordinate; classes 0 (outer) and 1 (inner).
    """
    n_out = n // 2
    n_in = n - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1),
        ]
    )
    y = np.repeat([0, 1], [n_out, n_in])
    X = X + rng.normal(0.0, noise, X.shape) if noise > 0 else X
    return shuffled(X, y, rng)


def make_circles(rng, n, noise, factor):
    """A circle inside a circle (scikit-learn's make_circles construction).

    Outer: radius 1, inner: radius ``factor``, angles evenly spaced on [0, 2 pi) plus
    N(0, noise^2) on each coordinate; classes 0 (outer) and 1 (inner).
    """
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([factor * np.cos(t_in), factor * np.sin(t_in)], 1),
        ]
    )
    y = np.repeat([0, 1], [n_out, n_in])
    X = X + rng.normal(0.0, noise, X.shape) if noise > 0 else X
    return shuffled(X, y, rng)


def make_spiral(rng, n, arms, noise, turns):
    """k interleaved spiral arms, one class each (CS231n's example of non-linear data).

    Arm j: radius r in [0, 1], angle t = 2 pi (j / k + turns * r) + N(0, noise^2),
    point r * (sin t, cos t).
    """
    counts = np.full(arms, n // arms)
    counts[: n % arms] += 1
    Xs, ys = [], []
    for j, m in enumerate(counts):
        r = np.linspace(0.0, 1.0, m)
        t = 2 * np.pi * (j / arms + turns * r) + rng.normal(0.0, noise, m)
        Xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(m, j))
    return shuffled(np.concatenate(Xs), np.concatenate(ys), rng)


def load_moons(cfg: dict, rng: np.random.Generator) -> Dataset:
    X, y = make_moons(rng, **cfg)
    return Dataset(
        X,
        y,
        "classification",
        n_classes=2,
        class_names=["outer", "inner"],
        name="moons",
        description=DATASETS_HERE["moons"].description,
    )


def load_circles(cfg: dict, rng: np.random.Generator) -> Dataset:
    X, y = make_circles(rng, **cfg)
    return Dataset(
        X,
        y,
        "classification",
        n_classes=2,
        class_names=["outer", "inner"],
        name="circles",
        description=DATASETS_HERE["circles"].description,
    )


def load_spiral(cfg: dict, rng: np.random.Generator) -> Dataset:
    X, y = make_spiral(rng, **cfg)
    k = cfg["arms"]
    return Dataset(
        X,
        y,
        "classification",
        n_classes=k,
        class_names=[f"arm {j}" for j in range(k)],
        name="spiral",
        description=DATASETS_HERE["spiral"].description,
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        "Handwritten digits 0-9, 1,797 8x8 grey images (scikit-learn); resize for LeNet-5",
        DIGITS_OPTIONS,
        load_digits,
    ),
    "xor": DatasetSpec(
        "XOR's four points (lecture 001): the problem a single perceptron cannot solve",
        XOR_OPTIONS,
        load_xor,
    ),
    "moons": DatasetSpec(
        "Two interleaving half circles in 2-D, 2 classes", MOONS_OPTIONS, load_moons
    ),
    "circles": DatasetSpec(
        "A noisy circle inside another in 2-D, 2 classes", CIRCLES_OPTIONS, load_circles
    ),
    "spiral": DatasetSpec(
        "k interleaved spiral arms in 2-D, one class per arm", SPIRAL_OPTIONS, load_spiral
    ),
}
