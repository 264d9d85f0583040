"""A training run's data: the data set checked against the model and the loss, converted to
the dtypes training uses, split into training, validation and test rows (seeded), with the
augmentation stream and the data set's own score. engine.Trainer holds one ``TrainingData``.

``prepare_data`` refuses what cannot work with one line naming the data set (samples that do
not fit the Input, class ids asked of real-valued targets); ``check_fit`` then runs one tiny
batch through the model and the loss to refuse what shapes cannot show (an output of the wrong
size, class ids out of range), naming the output block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import data as data_sets
from engine.augment import Augmented, active, check_fits
from engine.errors import BlockPropError, ConfigError, DataError
from engine.model import Model
from engine.splits import split_three

Pair = tuple[Any, np.ndarray]  # (X, y); X may be engine.data.ByteImages


@dataclass
class TrainingData:
    """Shapes: X (N, *input_shape), y as the loss reads it (see ``prepare_data``)."""

    train: Pair
    val: Pair
    test: Pair  # only Trainer.evaluate_test reads it
    name: str  # the data set's, for messages
    n_classes: int | None
    aug: Augmented | None  # training batches pass through engine.augment, or None
    score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None  # engine.data.SCORES


def prepare_data(ds: Any, spec: dict, model: Model) -> TrainingData:
    """The data set ``ds`` for a run of ``model`` with the checked training ``spec``: X as
    float32 (or kept as bytes or token ids), y as int64 class ids for cross_entropy, float32
    otherwise (0/1 ids become one logit per sample for bce_with_logits)."""
    name = getattr(ds, "name", "data")
    X, y = ds.X, np.asarray(ds.y)
    if not isinstance(X, data_sets.ByteImages):  # bytes stay bytes: float32 per batch
        X = np.asarray(X)
    if X.dtype.kind == "f" and X.dtype != np.float32:
        X = X.astype(np.float32)  # float64 data would silently double the time
    if tuple(X.shape[1:]) != tuple(model.input_shape):
        raise DataError(
            f"data set {name!r} has samples of shape {tuple(X.shape[1:])} but the Input "
            f"'{model.input_id}' expects {tuple(model.input_shape)}: set the "
            "Input's shape to match, or choose a data set (or resize) that fits"
        )
    out = tuple(model.output_shape)
    loss = spec["loss"]
    task = getattr(ds, "task", None)
    if loss == "cross_entropy":
        if y.dtype.kind not in "iu":
            raise ConfigError(
                f"loss cross_entropy needs class ids but data set {name!r} has "
                f"{task or y.dtype} targets: use loss mse"
            )
        y = y.astype(np.int64, copy=False)
    elif loss == "bce_with_logits" and y.ndim == 1 and out == (1,):
        y = y.astype(np.float32).reshape(-1, 1)  # class ids 0/1 -> one logit per sample
    else:
        y = y.astype(np.float32, copy=False)
    # The data engineer's seeded split (stratified for classes); shuffling has its own stream.
    tr, va, te = split_three(
        ds, spec["val_split"], spec["seed"], spec["test_split"], spec.get("cross_validation")
    )
    train = (data_sets.rows(X, tr), y[tr])
    aug_spec = spec.get("augment")
    aug = None
    if active(aug_spec):  # with their own stream
        check_fits(aug_spec, tuple(X.shape[1:]), X.dtype.kind in "iu", y.ndim > 1)
        aug = Augmented(train[0], aug_spec, np.random.default_rng([spec["seed"], 2]))
    # a regression data set's own accuracy, for validation and test
    score = (getattr(ds, "meta", None) or {}).get("score")
    return TrainingData(
        train=train,
        val=(data_sets.rows(X, va), y[va]),
        test=(data_sets.rows(X, te), y[te]),
        name=name,
        n_classes=getattr(ds, "n_classes", None),
        aug=aug,
        score=None if loss != "mse" else data_sets.SCORES.get(score),
    )


def check_fit(model: Model, loss_fn: Any, loss: str, data: TrainingData) -> None:
    """The output block (and every extra head) must give what the loss needs for these
    targets."""
    heads = model.heads
    for out_id in [model.output_id, *heads]:
        shape = model.output_shape if out_id not in heads else None
        _check_output(out_id, tuple(shape or model.analysis.shapes[out_id]), loss, data)
    X, y = data.train
    try:  # one tiny batch catches what shapes cannot (class ids out of range, ...)
        loss_fn.forward(model.forward(X[:2], training=False), y[:2])
        for h in heads:
            loss_fn.forward(model.head_outputs[h], y[:2])
    except BlockPropError as e:
        raise type(e)(e.message, block=e.block or model.output_id, file=e.file) from None


def _check_output(out_id: str, out: tuple, loss: str, data: TrainingData) -> None:
    y = data.train[1]
    if loss == "cross_entropy":
        if out[:-1] != tuple(y.shape[1:]) or not out:
            want = "(classes,)" if y.ndim == 1 else f"({y.shape[1]}, classes)"
            raise DataError(
                f"the output block gives {out} but loss cross_entropy on data "
                f"set {data.name!r} needs {want}",
                block=out_id,
            )
        k = data.n_classes
        if k is not None and out[-1] != k:
            raise DataError(
                f"the output block gives {out[-1]} scores but data set "
                f"{data.name!r} has {k} classes: give it {k} units",
                block=out_id,
            )
    elif out != tuple(y.shape[1:]):
        raise DataError(
            f"the output block gives {out} per sample but the targets of data "
            f"set {data.name!r} are {tuple(y.shape[1:])}: make the last "
            f"block output {tuple(y.shape[1:])}",
            block=out_id,
        )
