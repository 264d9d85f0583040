"""How the Gradients panel shows modules: the blocks of a module instance (ids
``instance/inner``, as the engine names them) share one bar, labelled with the instance, until
the user expands it (a click on the bar, or "blocks inside modules" for all).

A module's value is the RMS over all its parameters, as if it were one block:
sqrt(sum_i n_i r_i^2 / sum_i n_i) for its blocks' RMS r_i over n_i parameters each (equal
weights when the counts are not known, e.g. a run read back from a runs file).
"""

from __future__ import annotations

import numpy as np

EXPAND_MARK = " ▸"


def entries(blocks: list[str], expanded: set[str], expand_all: bool) -> list[tuple[str, list[int]]]:
    """(label, indices into ``blocks``) for each bar, input to output."""
    out: list[tuple[str, list[int]]] = []
    where: dict[str, int] = {}
    for i, b in enumerate(blocks):
        top = b.split("/", 1)[0] if "/" in b else None
        if top is None or expand_all or top in expanded:
            out.append((b, [i]))
        elif top in where:
            out[where[top]][1].append(i)
        else:
            where[top] = len(out)
            out.append((top + EXPAND_MARK, [i]))
    return out


def combine(values: np.ndarray, cols: list[int], weights: np.ndarray) -> np.ndarray:
    """The RMS over the parameters of blocks ``cols`` (last axis of ``values``); NaN where none
    of them has a value."""
    v = values[..., cols]
    w = np.broadcast_to(weights[cols], v.shape)
    ok = np.isfinite(v)
    num = np.where(ok, w * np.where(ok, v, 0.0) ** 2, 0.0).sum(axis=-1)
    den = np.where(ok, w, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), np.nan)


def bar_values(values: np.ndarray, bars: list[tuple[str, list[int]]], weights) -> np.ndarray:
    """``values`` (..., blocks) -> (..., bars)."""
    if all(len(cols) == 1 for _, cols in bars):
        return values[..., [cols[0] for _, cols in bars]]
    return np.stack([combine(values, cols, weights) for _, cols in bars], axis=-1)


def module_values(blocks: list[str], values: dict[str, float], counts: dict) -> dict[str, float]:
    """Each module instance's value (its blocks' combined RMS), keyed by the instance's id:
    the canvas's gradient badge of the instance's block."""
    bars = [b for b in entries(blocks, set(), False) if b[0].endswith(EXPAND_MARK)]
    if not bars:
        return {}
    v = np.array([values.get(b, np.nan) for b in blocks], dtype=float)
    w = np.array([float(counts.get(b, 1)) for b in blocks])
    out = {}
    for label, cols in bars:
        x = float(combine(v, cols, w))
        if np.isfinite(x):
            out[label.removesuffix(EXPAND_MARK)] = x
    return out
