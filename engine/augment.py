"""Data augmentation (lecture 001): random changes to each training batch, never to validation.

A graph's training settings may hold ``"augment": {"crop_padding": 4, "hflip": true, ...}``;
``AUGMENT_OPTIONS`` declares every setting (all off by default) and ``check_augment`` checks
them. The Trainer passes each training batch through ``augment_batch`` with its own Generator,
``default_rng([seed, 2])``, so a run is repeatable; evaluation sees the data as it is.

``augment_batch`` and ``affine_batch`` use NumPy only and nothing else from BlockProp: the
PyTorch exporter copies them into its scripts, which then draw the same numbers in the same
order and so train on the same augmented batches.

Transforms, in this order, each drawn per sample:
- crop_padding p: pad with p zero pixels on every side, cut a random H x W window (a shift of
  up to p pixels, as the classic CIFAR recipe does);
- hflip: mirror left-right with probability 1/2;
- rotate (degrees), shift (fraction of the size), scale (zoom in [1 - s, 1 + s]): one affine
  map about the image centre, sampled bilinearly, zeros outside;
- brightness b: add U(-b, b); contrast c: scale the deviation from the sample's mean by
  U(1 - c, 1 + c);
- cutout s: zero an s x s square at a random centre (clipped at the border);
- noise sigma: add N(0, sigma^2) to every value.

For token ids (N, T) of a sequence classifier, lecture 001's text augmentations that need no
thesaurus (Wei and Zou's EDA: random swap and random deletion; synonym replacement and random
insertion need a synonym list, which BlockProp does not ship), in this order:
- token_swap n: swap the tokens at two random positions, n times;
- token_delete p: drop each token with probability p (one always stays), close the gaps and
  fill the end with id 0 (padding).
They change where tokens are, so a data set whose targets are per step (a language model) is
refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.settings import Opt, check_spec

AUGMENT_OPTIONS: dict[str, Opt] = {
    "crop_padding": Opt(
        "int", default=0, min=0, max=32, doc="random crop after padding this many pixels (0: off)"
    ),
    "hflip": Opt("bool", default=False, doc="mirror left-right with probability 1/2"),
    "rotate": Opt("float", default=0.0, min=0.0, max=180.0, doc="rotate by up to this (degrees)"),
    "shift": Opt(
        "float", default=0.0, min=0.0, max=0.5, doc="shift by up to this fraction of the size"
    ),
    "scale": Opt("float", default=0.0, min=0.0, max=0.9, doc="zoom by a factor in [1-s, 1+s]"),
    "brightness": Opt("float", default=0.0, min=0.0, max=1.0, doc="add U(-b, b) to a sample"),
    "contrast": Opt(
        "float", default=0.0, min=0.0, max=1.0, doc="scale contrast by a factor in [1-c, 1+c]"
    ),
    "cutout": Opt("int", default=0, min=0, max=256, doc="zero a random square of this side"),
    "noise": Opt("float", default=0.0, min=0.0, max=10.0, doc="add Gaussian noise of this std"),
    "token_swap": Opt(
        "int", default=0, min=0, max=100, doc="token ids: swap two random tokens, this many times"
    ),
    "token_delete": Opt(
        "float", default=0.0, min=0.0, max=0.9, doc="token ids: drop each token with this chance"
    ),
}
SPATIAL = ("crop_padding", "hflip", "rotate", "shift", "scale", "cutout")
TOKENS = ("token_swap", "token_delete")


def check_augment(spec: Any) -> dict:
    """The complete, checked augmentation settings (defaults filled in), or ConfigError."""
    return check_spec("training: augment", spec, AUGMENT_OPTIONS)


def active(cfg: dict | None) -> bool:
    """Does ``cfg`` change anything?"""
    return bool(cfg) and any(cfg[k] != AUGMENT_OPTIONS[k].default for k in cfg)


def check_fits(
    cfg: dict, sample_shape: tuple, integer: bool, per_step_targets: bool = False
) -> None:
    """Refuse settings the samples cannot take: image transforms on samples that are not
    images (C, H, W), value transforms on token ids, token transforms on anything else or on
    a data set whose targets are per step."""
    used = [k for k in AUGMENT_OPTIONS if cfg[k] != AUGMENT_OPTIONS[k].default]
    if integer:
        other = [k for k in used if k not in TOKENS]
        if other:
            raise ConfigError(
                f"training: augment {other[0]!r} works on real-valued samples; this data set "
                "holds token ids (token_swap and token_delete fit them)"
            )
        if used and per_step_targets:
            raise ConfigError(
                f"training: augment {used[0]!r} moves tokens, but this data set's targets are "
                "per step (a language model): it fits sequence classification only"
            )
        return
    tokens = [k for k in used if k in TOKENS]
    if tokens:
        raise ConfigError(
            f"training: augment {tokens[0]!r} works on token ids; this data set holds "
            "real-valued samples"
        )
    spatial = [k for k in SPATIAL if k in used]
    if spatial and len(sample_shape) != 3:
        raise ConfigError(
            f"training: augment {spatial[0]!r} needs image samples (C, H, W), "
            f"got samples of shape {tuple(sample_shape)} (only brightness, contrast and "
            "noise work on any sample)"
        )


def augment_tokens(x, rng, token_swap=0, token_delete=0.0):
    """A randomly changed copy of the token ids x (N, T): ``token_swap`` random swaps, then
    each token dropped with probability ``token_delete`` (the rest moved up, 0s after)."""
    x = np.array(x, copy=True)
    N, T = x.shape[:2]
    rows = np.arange(N)
    for _ in range(token_swap):
        i = rng.integers(0, T, N)
        j = rng.integers(0, T, N)
        x[rows, i], x[rows, j] = x[rows, j], x[rows, i]
    if token_delete:
        keep = rng.random((N, T)) >= token_delete
        keep[rows, rng.integers(0, T, N)] |= ~keep.any(axis=1)  # one token always stays
        order = np.argsort(~keep, axis=1, kind="stable")  # kept tokens first, in order
        x = np.take_along_axis(x, order, axis=1)
        x[np.arange(T)[None, :] >= keep.sum(axis=1)[:, None]] = 0
    return x


def affine_batch(x, angle, scale, shift):
    """Rotate (radians), zoom and shift (pixels (dy, dx)) every image of x (N, C, H, W) about
    its centre: out(p) = x(A^-1 (p - c - t) + c), sampled bilinearly, zeros outside."""
    N, C, H, W = x.shape
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(H) - cy, np.arange(W) - cx, indexing="ij")
    y0 = yy[None] - shift[:, 0, None, None]
    x0 = xx[None] - shift[:, 1, None, None]
    cos = np.cos(angle)[:, None, None]
    sin = np.sin(angle)[:, None, None]
    inv = 1.0 / scale[:, None, None]
    sy = (cos * y0 + sin * x0) * inv + cy
    sx = (-sin * y0 + cos * x0) * inv + cx
    iy, ix = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = sy - iy, sx - ix
    out = np.zeros((N, H, W, C))
    n = np.arange(N)[:, None, None]
    for dy, dx, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yi, xi = iy + dy, ix + dx
        inside = (yi >= 0) & (yi < H) & (xi >= 0) & (xi < W)
        v = x[n, :, np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)]  # (N, H, W, C)
        out += (w * inside)[..., None] * v
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)


def augment_batch(
    x,
    rng,
    crop_padding=0,
    hflip=False,
    rotate=0.0,
    shift=0.0,
    scale=0.0,
    brightness=0.0,
    contrast=0.0,
    cutout=0,
    noise=0.0,
    token_swap=0,
    token_delete=0.0,
):
    """A randomly changed float32 copy of the batch x (N, ...); see the module docstring.
    Token ids (an integer x) go through ``augment_tokens`` and stay integers.

    Random numbers come from ``rng`` in a fixed order, only for the transforms that are on.
    """
    if np.asarray(x).dtype.kind in "iu":
        return augment_tokens(x, rng, token_swap, token_delete)
    x = np.array(x, dtype=np.float32, copy=True)
    N = len(x)
    if crop_padding:
        p = crop_padding
        C, H, W = x.shape[1:]
        padded = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=np.float32)
        padded[:, :, p : p + H, p : p + W] = x
        oy = rng.integers(0, 2 * p + 1, N)
        ox = rng.integers(0, 2 * p + 1, N)
        rows = (oy[:, None] + np.arange(H))[:, None, :, None]
        cols = (ox[:, None] + np.arange(W))[:, None, None, :]
        x = padded[np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None], rows, cols]
    if hflip:
        flip = rng.random(N) < 0.5
        x[flip] = x[flip][..., ::-1]
    if rotate or shift or scale:
        H, W = x.shape[-2:]
        angle = np.deg2rad(rng.uniform(-rotate, rotate, N))
        zoom = rng.uniform(1.0 - scale, 1.0 + scale, N)
        move = rng.uniform(-shift, shift, (N, 2)) * np.array([H, W])
        x = affine_batch(x, angle, zoom, move)
    axes = tuple(range(1, x.ndim))
    if brightness:
        b = rng.uniform(-brightness, brightness, N).astype(np.float32)
        x += b.reshape(-1, *[1] * (x.ndim - 1))
    if contrast:
        c = rng.uniform(1.0 - contrast, 1.0 + contrast, N).astype(np.float32)
        mean = x.mean(axis=axes, keepdims=True)
        x = (x - mean) * c.reshape(-1, *[1] * (x.ndim - 1)) + mean
    if cutout:
        H, W = x.shape[-2:]
        cy = rng.integers(0, H, N)
        cx = rng.integers(0, W, N)
        top, left = cy - cutout // 2, cx - cutout // 2
        r = np.arange(H)[None, :, None]
        q = np.arange(W)[None, None, :]
        hole = (
            (r >= top[:, None, None])
            & (r < (top + cutout)[:, None, None])
            & (q >= left[:, None, None])
            & (q < (left + cutout)[:, None, None])
        )
        x[np.broadcast_to(hole[:, None], x.shape)] = 0.0
    if noise:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    return x


class Augmented:
    """The training samples as the Trainer reads them: ``X[idx]`` is the batch, augmented."""

    def __init__(self, X, cfg: dict, rng: np.random.Generator) -> None:
        self.X, self.cfg, self.rng = X, cfg, rng

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx) -> np.ndarray:
        return augment_batch(self.X[idx], self.rng, **self.cfg)
