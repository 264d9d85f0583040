"""The "training" part of a graph file: its keys, their types and defaults, and the checks that
turn a user's dict (file, Training dock, command line, code) into a complete, normalised copy or
a ConfigError naming the field. engine.Trainer runs what these accept."""

from __future__ import annotations

import math
from typing import Any

from engine import data as data_sets
from engine.augment import check_augment
from engine.errors import ConfigError
from engine.heads import check_heads
from engine.losses import LOSSES
from engine.optim import check_optimizer_spec
from engine.schedules import check_schedule_spec
from engine.settings import Opt, check_spec
from engine.splits import check_cross_validation

TRAINING_OPTIONS: dict[str, Opt] = {
    "batch_size": Opt("int", default=32, min=1, max=1_000_000, doc="samples per step"),
    "epochs": Opt("int", default=1, min=1, max=1_000_000, doc="passes over the training set"),
    "seed": Opt("int", default=0, min=0, max=2**63 - 1, doc="weights, split and shuffling"),
    "val_split": Opt(
        "float", default=0.2, min=0.0, max=0.9, doc="fraction of the data held out for validation"
    ),
    "test_split": Opt(
        "float",
        default=0.0,
        min=0.0,
        max=0.9,
        doc="fraction held out as a test set: never trained on nor validated with, reported "
        "once by a final evaluation (engine/splits.py)",
    ),
    "l1": Opt("float", default=0.0, min=0.0, doc="L1 penalty l1 * sum|w|"),
    "l2": Opt("float", default=0.0, min=0.0, doc="L2 penalty l2/2 * sum w^2"),
    "clip_norm": Opt(
        "float",
        default=None,
        min=0.0,
        min_exclusive=True,
        nullable=True,
        doc="clip the joint gradient norm to this (empty: no clipping)",
    ),
    "mask_padding": Opt(
        "bool",
        default=False,
        doc="sequence targets: padding (class id 0) counts in neither the loss nor the accuracy",
    ),
    "scheduled_sampling": Opt(
        "float",
        default=0.0,
        min=0.0,
        max=1.0,
        doc="seq2seq: share of the decoder's input tokens replaced by its own predictions "
        "(0: teacher forcing)",
    ),
}
TRAINING_KEYS = (
    "dataset",
    "loss",
    "optimizer",
    "schedule",
    *TRAINING_OPTIONS,
    "augment",
    "cross_validation",
    "heads",
)
DEFAULT_OPTIMIZER = {"name": "adam", "lr": 1e-3}


def check_lr(lr: Any) -> float:
    """A learning rate set mid-run as a float, or ConfigError (the app checks before sending)."""
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"learning rate must be a number > 0, got {lr!r}")
    return float(lr)


def check_training(spec: Any, need_dataset: bool = True) -> dict:
    """A complete, normalised copy of a graph's "training" part, or ConfigError naming the field.

    ``dataset`` may be a name or {"name": ..., options}; it is required when ``need_dataset``.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError(f"training settings must be an object, got {spec!r}")
    settings = check_spec(
        "training",
        spec,
        TRAINING_OPTIONS,
        checked_elsewhere=(*TRAINING_KEYS[:4], "augment", "cross_validation", "heads"),
    )
    out: dict[str, Any] = {}
    ds = spec.get("dataset")
    if isinstance(ds, str):
        ds = {"name": ds}
    if ds is None:
        if need_dataset:
            raise ConfigError(
                'training: \'dataset\' is missing; choose a data set (e.g. {"name": "digits"})'
            )
    elif not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
        raise ConfigError(f"training: 'dataset' must be an object with a \"name\", got {ds!r}")
    else:
        if ds["name"] not in data_sets.DATASETS:
            raise ConfigError(
                f"training: unknown data set {ds['name']!r}; choose one of "
                f"{', '.join(sorted(data_sets.DATASETS))}"
            )
        ds = dict(ds)
    out["dataset"] = ds
    loss = spec.get("loss", "cross_entropy")
    if loss not in LOSSES:
        raise ConfigError(f"training: 'loss' must be one of {', '.join(LOSSES)}, got {loss!r}")
    out["loss"] = loss
    for key in ("optimizer", "schedule"):
        check = check_optimizer_spec if key == "optimizer" else check_schedule_spec
        value = spec.get(key, DEFAULT_OPTIMIZER if key == "optimizer" else None)
        try:
            out[key] = check(value)
        except ConfigError as e:
            raise ConfigError(f"training: {key}: {e.message}") from None
    if not settings.get("scheduled_sampling"):  # 0: teacher forcing, written only when set
        settings.pop("scheduled_sampling", None)
    if not settings.get("mask_padding"):  # off: every target counts, written only when set
        settings.pop("mask_padding", None)
    elif out["loss"] != "cross_entropy":
        raise ConfigError(
            "training: 'mask_padding' ignores the padding class (id 0) of class targets: it "
            f"needs the loss cross_entropy, not {out['loss']}"
        )
    out.update(settings)
    if spec.get("augment") is not None:  # engine.augment: training batches only
        out["augment"] = check_augment(spec["augment"])
    if spec.get("cross_validation") is not None:  # engine.splits: one fold of a k-fold run
        out["cross_validation"] = check_cross_validation(spec["cross_validation"])
    if spec.get("heads"):  # engine.heads: extra outputs, each with its loss weight
        out["heads"] = check_heads(spec["heads"])
    return out


def check_mask_padding(spec: dict, out_shape: tuple) -> None:
    """ConfigError when ``mask_padding`` is on but the output gives one class per sample (no
    sequence of targets to pad): class 0 is then a real class, which would silently not count."""
    if spec.get("mask_padding") and len(tuple(out_shape)) < 2:
        raise ConfigError(
            "training: 'mask_padding' leaves out the padding (class 0) of sequence targets, but "
            f"this graph's output {tuple(out_shape)} gives one class per sample (class 0 is a "
            "real class): turn 'mask_padding' off"
        )
