"""Data sets: built-in ones (offline, generated from a seed), the standard ones (MNIST,
Fashion-MNIST, CIFAR-10, tiny Shakespeare: downloaded on first use, see ``standard``), and the
user's own files.

``load_dataset({"name": "digits", "resize": [32, 32]}, seed=0)`` returns a ``Dataset``.
``DATASETS`` maps every name to a one-line description and ``DATASET_OPTIONS`` to its options
(``Opt`` records, as the layers use: the GUI builds its editors from them). A wrong name or
option is a ``ConfigError``; a bad file is a ``DataError`` naming the file.
``split(dataset, val_split, seed)`` makes the training / validation split.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import (
    base,
    builtin,
    files,
    idx,
    images,
    reviews,
    seq2seq,
    sequences,
    standard,
    text,
    timing,
)
from engine.data.base import ByteImages, Dataset, DatasetSpec, rows
from engine.data.standard import needs_download, prepare
from engine.errors import ConfigError, DataError
from engine.settings import Opt

_REGISTRY: dict[str, DatasetSpec] = {
    **builtin.DATASETS_HERE,
    **sequences.DATASETS_HERE,
    **timing.DATASETS_HERE,
    **seq2seq.DATASETS_HERE,
    **reviews.DATASETS_HERE,
    "chars": text.DATASETS_HERE["chars"],
    "tagging": text.DATASETS_HERE["tagging"],
    **standard.DATASETS_HERE,
    **files.DATASETS_HERE,
    **idx.DATASETS_HERE,
    "image_folder": images.DATASETS_HERE["image_folder"],
    "text": text.DATASETS_HERE["text"],
}

DATASETS: dict[str, str] = {name: spec.description for name, spec in _REGISTRY.items()}

# A regression data set's own accuracy, named in its ``meta["score"]``: (targets, outputs) ->
# one bool per sample, averaged by engine.Trainer into "val_acc" (the loss alone cannot say
# whether a timed-spikes sequence is right).
SCORES = {"spikes_right": timing.spikes_right}
DATASET_OPTIONS: dict[str, dict[str, Opt]] = {n: s.options for n, s in _REGISTRY.items()}
USER_FILE_DATASETS = ("csv", "npz", "idx", "image_folder", "text")
DOWNLOADED_DATASETS = tuple(standard.DATASETS_HERE)
BUILTIN_DATASETS = tuple(
    n for n in DATASETS if n not in USER_FILE_DATASETS and n not in DOWNLOADED_DATASETS
)


def load_dataset(spec: dict[str, Any] | str, seed: int = 0) -> Dataset:
    """Make or load the data set ``spec`` describes; randomness from ``default_rng(seed)``.

    ``spec`` is {"name": ..., option: value, ...} (a bare name means all defaults). The checked
    options, defaults included, are kept in ``dataset.meta["spec"]`` with the seed in
    ``meta["seed"]``, so a run can be repeated exactly.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f'a data set is given as {{"name": ..., options}}, got {spec!r}')
    name = spec.get("name")
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown data set {name!r}; built in: {', '.join(BUILTIN_DATASETS)}; "
            f"downloaded on first use: {', '.join(DOWNLOADED_DATASETS)}; "
            f"from your files: {', '.join(USER_FILE_DATASETS)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the data seed must be a non-negative integer, got {seed!r}")
    entry = _REGISTRY[name]
    spec = dict(spec)
    target = spec.pop("target", "labels")
    if target not in TARGETS:
        raise ConfigError(
            f"data set {name!r}: 'target' must be one of {', '.join(TARGETS)}, got {target!r}"
        )
    cfg = base.check_options(name, spec, entry.options)
    ds = entry.load(cfg, np.random.default_rng(int(seed)))
    if target == "input":
        ds = as_autoencoder(ds)
    ds.meta.setdefault(
        "spec", {"name": name, **cfg, **({"target": target} if target != "labels" else {})}
    )
    ds.meta.setdefault("seed", int(seed))
    return ds


TARGETS = ("labels", "input")
# The option every data set takes (load_dataset handles it, not the data set's loader).
TARGET_OPTION = Opt(
    "choice",
    "labels",
    choices=TARGETS,
    doc="what the model learns to output: the labels, or the input itself "
    "(an autoencoder reconstructs its input)",
)


def resolve_paths(spec: dict[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """A copy of the data set ``spec`` whose relative file paths are taken from ``folder``.

    A graph's data files are found from the graph file's folder (the graph can be moved with
    them, and opened from anywhere); absolute and ``~`` paths stay as they are.
    """
    out, name = dict(spec), spec.get("name")
    for key, opt in (DATASET_OPTIONS.get(name, {}) if isinstance(name, str) else {}).items():
        value = out.get(key)
        if opt.kind == "path" and isinstance(value, str) and value:
            if not Path(value).expanduser().is_absolute():
                out[key] = str(Path(folder) / value)
    return out


def dataset_options(name: str) -> dict[str, Opt]:
    """All options of data set ``name``: its own, then ``target`` (what a form shows)."""
    return {**DATASET_OPTIONS.get(name, {}), "target": TARGET_OPTION}


def as_autoencoder(ds: Dataset) -> Dataset:
    """The same samples with themselves as targets (autoencoders: reconstruct the input).

    Any data set takes the option ``"target": "input"``; its labels are kept in
    ``meta["labels"]`` (the GUI colours samples by them).
    """
    if ds.X.dtype.kind != "f":
        raise ConfigError(
            f"data set {ds.name!r} holds token ids; 'target': 'input' needs "
            "real-valued samples (use one_hot)"
        )
    out = Dataset(
        X=ds.X,
        y=ds.X.copy(),
        task="regression",
        name=ds.name,
        description=f"{ds.description} (reconstruct the input)",
        normalisation=ds.normalisation,
        class_names=None,
        vocab=ds.vocab,
        meta={**ds.meta, "labels": ds.y},
    )
    return out


def split_indices(
    dataset: Dataset, val_split: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, val) sample indices; val holds round(N * val_split) samples.

    For classification the split is stratified: each class gives its share of the validation
    set (largest remainders decide the rounding), so a rare class is not left out by chance.
    """
    if (
        isinstance(val_split, bool)
        or not isinstance(val_split, (int, float))
        or not 0.0 <= val_split < 1.0
    ):
        raise ConfigError(f"val_split must be a number in [0, 1), got {val_split!r}")
    rng = np.random.default_rng(seed)
    N = len(dataset)
    n_val = int(round(N * val_split))
    if n_val >= N:
        raise DataError(
            f"val_split {val_split} of {N} samples leaves none to train on; lower val_split"
        )
    return stratified_pick(dataset.y if dataset.task == "classification" else None, N, n_val, rng)


def stratified_pick(
    y: np.ndarray | None, n: int, n_pick: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(the rest, ``n_pick`` picked) of ``range(n)``, both shuffled; with class ids ``y`` each
    class gives its share of the pick (largest remainders decide the rounding)."""
    if y is None or n_pick == 0:
        perm = rng.permutation(n)
        return perm[n_pick:], perm[:n_pick]
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n_pick / n
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: n_pick - take.sum()]
    take[extra] += 1
    val = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take, strict=True)]
    )
    train = np.setdiff1d(np.arange(n), val)
    return rng.permutation(train), rng.permutation(val)


def split(
    dataset: Dataset, val_split: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_val, y_val) from a seeded, stratified (for classes) shuffle."""
    train, val = split_indices(dataset, val_split, seed)
    X, y = dataset.X, dataset.y
    return X[train], y[train], X[val], y[val]


__all__ = [
    "BUILTIN_DATASETS",
    "DOWNLOADED_DATASETS",
    "ByteImages",
    "needs_download",
    "prepare",
    "rows",
    "DATASETS",
    "DATASET_OPTIONS",
    "TARGET_OPTION",
    "USER_FILE_DATASETS",
    "Dataset",
    "DatasetSpec",
    "dataset_options",
    "load_dataset",
    "split",
    "split_indices",
]
