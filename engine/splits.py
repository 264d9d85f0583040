"""Train / validation / test splits and k-fold cross-validation (lecture 000).

``test_split`` (a training setting, default 0) holds out a share of the data as a test set,
drawn first and from a stream of its own (``seed`` and 3), so it stays the same whatever the
validation share or fold: training never sees it, validation never includes it, and only a
final evaluation (``Trainer.evaluate_test``: ``app.py train --test``, Train > Evaluate on the
test set) reports on it. ``val_split`` stays a share of all the data (0.6 / 0.2 / 0.2 for
``test_split`` 0.2 and ``val_split`` 0.2). Without a test share the split is exactly
``engine.data.split_indices`` (the exports reproduce it).

k-fold cross-validation (``cross_validation`` {"k": K, "fold": i}, set per run by
``cross_validate``, never saved with a graph): the data besides the test set are dealt into K
folds (stratified for classes: each class's shuffled samples go round the folds in turn) and
fold i validates; ``cross_validate`` trains all K and reports the mean and the spread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from engine.data import split_indices, stratified_pick
from engine.errors import ConfigError, DataError


def check_cross_validation(cv: Any) -> dict:
    """{"k": K, "fold": i} checked, or ConfigError."""
    if not isinstance(cv, dict) or set(cv) - {"k", "fold"}:
        raise ConfigError(f'training: cross_validation must be {{"k": K, "fold": i}}, got {cv!r}')
    k, i = cv.get("k"), cv.get("fold", 0)
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 100:
        raise ConfigError(
            f"training: cross_validation k must be a whole number from 2 to 100, got {k!r}"
        )
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < k:
        raise ConfigError(f"training: cross_validation fold must be from 0 to {k - 1}, got {i!r}")
    return {"k": k, "fold": i}


def fold_ids(y: np.ndarray | None, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """The fold (0..k-1) of each of ``n`` samples; with class ids each class is dealt round."""
    out = np.empty(n, dtype=np.int64)
    if y is None:
        out[rng.permutation(n)] = np.arange(n) % k
        return out
    order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
    out[order] = np.arange(n) % k
    return out


def split_three(
    dataset: Any, val_split: float, seed: int, test_split: float = 0.0, cv: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) sample indices; see the module docstring."""
    if not test_split and cv is None:
        tr, va = split_indices(dataset, val_split, seed)
        return tr, va, np.zeros(0, dtype=np.int64)
    N = len(dataset)
    y = np.asarray(dataset.y) if dataset.task == "classification" else None
    n_test = int(round(N * test_split))
    rest, test = stratified_pick(y, N, n_test, np.random.default_rng([seed, 3]))
    y_rest = y[rest] if y is not None else None
    if cv is not None:
        if cv["k"] > len(rest):
            raise DataError(f"{cv['k']} folds of {len(rest)} samples: use fewer folds")
        f = fold_ids(y_rest, len(rest), cv["k"], np.random.default_rng([seed, 4]))
        return rest[f != cv["fold"]], rest[f == cv["fold"]], test
    n_val = int(round(N * val_split))
    if n_val + n_test >= N:
        raise DataError(
            f"val_split {val_split} and test_split {test_split} of {N} samples leave none to "
            "train on; lower them"
        )
    tr, va = stratified_pick(y_rest, len(rest), n_val, np.random.default_rng(seed))
    return rest[tr], rest[va], test


def cross_validate(
    make_trainer: Callable[[dict], Any], k: int, on_event: Callable[[int, dict], None] | None = None
) -> dict:
    """Train K runs (``make_trainer({"k": K, "fold": i})`` builds each) and summarise their
    final validation metrics: {"folds": [...], "mean": {...}, "std": {...}}."""
    check_cross_validation({"k": k, "fold": 0})
    folds = []
    for i in range(k):
        trainer = make_trainer({"k": k, "fold": i})
        last: dict = {}
        end: dict = {}
        for ev in trainer.run():
            if on_event is not None:
                on_event(i, ev)
            if ev["event"] == "epoch":
                last = ev
            elif ev["event"] == "end":
                end = ev
        folds.append(
            {
                "fold": i,
                "status": end.get("reason", "stopped"),
                **{m: last.get(m) for m in ("train_loss", "val_loss", "train_acc", "val_acc")},
            }
        )
        if end.get("reason") == "stopped":
            break
    return summarise(folds)


def summarise(folds: list[dict]) -> dict:
    """Mean and standard deviation (ddof 1: the spread between folds) of each metric."""
    mean, std = {}, {}
    for m in ("train_loss", "val_loss", "train_acc", "val_acc"):
        v = np.array([f[m] for f in folds if isinstance(f.get(m), (int, float))], dtype=float)
        if len(v):
            mean[m] = float(v.mean())
            std[m] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"folds": folds, "mean": mean, "std": std}


def summary_lines(result: dict) -> Iterator[str]:
    for f in result["folds"]:
        parts = [f"fold {f['fold'] + 1}: {f['status']}"]
        parts += [f"{m} {f[m]:.4f}" for m in ("val_loss", "val_acc") if f.get(m) is not None]
        yield "  ".join(parts)
    k = len(result["folds"])
    for m in ("val_acc", "val_loss"):
        if m in result["mean"]:
            yield f"{k}-fold {m}: mean {result['mean'][m]:.4f}, std {result['std'][m]:.4f}"
