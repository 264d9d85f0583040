"""Does a graph fit the data it is to train on? Problems like the analysis's, with one-click fixes.

``analyze`` checks a graph without data; a graph can still not train on the chosen data set (a
hand-built LeNet-5 with a 1x32x32 Input on the 8x8 digits, an MLP on images that are not
flattened, ten scores for two classes). ``describe(dataset)`` keeps what a fit needs of a loaded
data set (a ``DataShape``: no arrays) and ``fit_problems`` compares it with an ``Analysis``:

    {"kind": "training", "dataset": {"resize": [32, 32], "pad": None}}   # the data set's options
    {"kind": "training", "set": {"loss": "mse"}}                          # a training setting

join the analysis's own fixes ("set" a block's setting). ``apply_training_fix`` makes the new
``training`` part; the app applies it as one undoable edit of the graph's training settings.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from engine.analysis import Problem

if TYPE_CHECKING:
    from engine.analysis import Analysis
    from engine.graph import Graph

# Data set options that set the image size: interpolate to it, or centre on a canvas of it.
RESIZE_KEYS = ("resize", "size")
PAD_KEY = "pad"


class DataShape(NamedTuple):
    """What a fit needs of a data set: one sample's input and target shapes, whether the targets
    are class ids and how many classes (None: not a class task)."""

    name: str
    x: tuple
    y: tuple
    ids: bool
    n_classes: int | None


def describe(ds: Any) -> DataShape:
    """The ``DataShape`` of a loaded ``Dataset``."""
    y = np.asarray(ds.y)
    return DataShape(
        str(getattr(ds, "name", "data")),
        tuple(int(d) for d in ds.X.shape[1:]),
        tuple(int(d) for d in y.shape[1:]),
        y.dtype.kind in "iu",
        getattr(ds, "n_classes", None),
    )


def _dims(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def _units_block(graph: Graph, a: Analysis) -> str | None:
    """The block whose ``units`` set the output's last axis: the output, or the nearest block
    before it whose output has the same shape (a Dense before its Softmax)."""
    from engine.layers import LAYER_TYPES

    n = a.output_id
    while n is not None:
        cls = LAYER_TYPES.get(a.types.get(n, ""))
        if cls is not None and "units" in cls.options:
            return n
        preds = graph.inputs_of(n)
        if len(preds) != 1 or a.shapes.get(preds[0]) != a.shapes.get(n):
            return None
        n = preds[0]
    return None


def _input_fix(data: DataShape, want: tuple, options: dict, ds: dict) -> dict | None:
    """Data set options that give samples of shape ``want`` (None: none do)."""
    have = data.x
    if "flatten" in options and math.prod(have) == math.prod(want):
        if len(want) == 1 and len(have) > 1:
            return {"flatten": True}
        if len(want) > 1 and len(have) == 1 and ds.get("flatten"):
            return {"flatten": False}
    if len(want) == 3 and len(have) == 3 and want[0] == have[0]:
        size = [int(want[1]), int(want[2])]
        key = next((k for k in RESIZE_KEYS if k in options), None)
        if key is not None:
            return {key: size, **({PAD_KEY: None} if PAD_KEY in options else {})}
        if PAD_KEY in options and ds.get(PAD_KEY) is None:
            if want[1] >= have[1] and want[2] >= have[2]:  # a border around the images
                return {PAD_KEY: size}
    return None


def fit_problems(graph: Graph, a: Analysis, data: DataShape, training: dict) -> list[Problem]:
    """What stops ``graph`` (analysed as ``a``) training on ``data`` with the ``training``
    settings; empty when it fits or when the graph's own problems hide the shapes."""
    from engine.data import dataset_options

    ds = training.get("dataset") if isinstance(training, dict) else None
    ds = {"name": ds} if isinstance(ds, str) else dict(ds or {})
    options = dataset_options(ds["name"]) if isinstance(ds.get("name"), str) else {}
    name = data.name
    inp = a.input_id
    want = a.shapes.get(inp) if inp is not None else None
    if want is None or a.output_id == inp:  # nothing to fit yet
        return []
    if tuple(want) != data.x:
        change = _input_fix(data, tuple(want), options, ds)
        how = _words(change) if change else "a data set that fits"
        fix = (
            {"kind": "training", "dataset": change}
            if change
            else {"kind": "set", "block": inp, "key": "shape", "value": list(data.x)}
        )
        return [
            Problem(
                inp,
                f"data set {name!r} gives samples of shape {_dims(data.x)} but the Input "
                f"expects {_dims(want)}: {how}, or set the Input's shape to {list(data.x)}",
                fix,
            )
        ]
    out_id = a.output_id
    out = a.shapes.get(out_id) if out_id is not None else None
    if out is None or out_id == inp:
        return []
    out = tuple(out)
    loss = training.get("loss", "cross_entropy")
    units = _units_block(graph, a)
    if loss == "cross_entropy":
        if not data.ids:
            return [
                Problem(
                    out_id,
                    f"loss cross_entropy needs class ids but data set {name!r} has numbers "
                    "as targets: use loss mse",
                    {"kind": "training", "set": {"loss": "mse"}},
                )
            ]
        if out[:-1] != data.y:
            per = "(classes,)" if not data.y else f"({', '.join(map(str, data.y))}, classes)"
            return [
                Problem(
                    out_id,
                    f"the output gives {_dims(out)} per sample but loss cross_entropy on data "
                    f"set {name!r} needs {per}",
                )
            ]
        k = data.n_classes
        if k is not None and out[-1] != k:
            fix = {"kind": "set", "block": units, "key": "units", "value": k} if units else None
            return [
                Problem(
                    out_id,
                    f"the output gives {out[-1]} scores but data set {name!r} has {k} "
                    f"classes: give {f'{units!r} ' if units else 'it '}{k} units",
                    fix,
                )
            ]
        return []
    target = (1,) if loss == "bce_with_logits" and not data.y else data.y  # ids 0/1: one logit
    if out != target:
        fix = None
        if units and out[:-1] == target[:-1] and target:
            fix = {"kind": "set", "block": units, "key": "units", "value": target[-1]}
        return [
            Problem(
                out_id,
                f"the output gives {_dims(out)} per sample but the targets of data set "
                f"{name!r} are {_dims(target) or 'one number'}: make the last block output "
                f"{list(target)}",
                fix,
            )
        ]
    return []


def apply_training_fix(training: dict | None, fix: dict) -> dict:
    """The ``training`` part with a ``{"kind": "training"}`` fix applied (a new dict)."""
    out = dict(training or {})
    ds = out.get("dataset")
    ds = {"name": ds} if isinstance(ds, str) else dict(ds or {"name": "digits"})
    ds.update(fix.get("dataset") or {})
    out["dataset"] = ds
    out.update(fix.get("set") or {})
    return out


def _words(options: dict) -> str:
    """Data set options in words: {"resize": [32, 32], "pad": None} -> "set the data set's
    resize to 32x32 (and no pad)"."""
    shown = {
        k: _dims(v) if isinstance(v, list) else ("on" if v else "off") if isinstance(v, bool) else v
        for k, v in options.items()
    }
    parts = [f"{k} to {v}" for k, v in shown.items() if v is not None]
    cleared = [k for k, v in shown.items() if v is None]
    return f"set the data set's {' and '.join(parts)}" + (
        f" (and no {' or '.join(cleared)})" if cleared else ""
    )


def fix_words(fix: dict) -> str:
    """What a training fix does, for its button's tooltip and the status bar."""
    if isinstance(fix.get("words"), str):  # a fix that says itself (engine.heads)
        return fix["words"]
    parts = [_words(fix["dataset"])] if fix.get("dataset") else []
    parts += [f"set {k} to {v}" for k, v in (fix.get("set") or {}).items()]
    text = "; ".join(parts) or "change the training settings"
    return text[:1].upper() + text[1:]
