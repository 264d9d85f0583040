"""Weights files: ``.npz`` archives of named arrays (``"<block id>.<name>"``), never pickles.

``save_weights`` writes atomically (a temporary file in the same folder, then a rename), so a
failed save leaves the old file intact. ``load_weights`` refuses, naming the file and the
arrays that differ, any file that does not fit the model exactly, and changes nothing then.
"""

from __future__ import annotations

import os
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from engine.atomic import write_atomic
from engine.errors import WeightsError

if TYPE_CHECKING:
    from engine.model import Model

MAX_LISTED = 6


def save_weights(model: Model, path: str | os.PathLike) -> None:
    """Write every parameter and buffer of ``model`` to the ``.npz`` file ``path``."""
    # Numeric arrays only, which .npy stores as raw data: nothing in the file is ever pickled.
    arrays = {k: np.ascontiguousarray(v) for k, v in {**model.params, **model.buffers}.items()}
    try:
        write_atomic(path, lambda f: np.savez(f, **arrays))
    except OSError as e:
        raise WeightsError(
            f"cannot write the weights ({e.strerror or e})", file=str(path)
        ) from None


def _listed(names: list[str]) -> str:
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of a weights file by name; a missing, corrupted or pickled file raises
    WeightsError naming it."""
    p = str(path)
    try:
        data = np.load(p, allow_pickle=False)
        if isinstance(data, np.ndarray):  # a bare .npy file
            raise WeightsError(
                "is a single array, not a weights file (.npz of named arrays)", file=p
            )
        with data:
            return {k: np.asarray(data[k]) for k in data.files}
    except WeightsError:
        raise
    except FileNotFoundError:
        raise WeightsError("no such file", file=p) from None
    except IsADirectoryError:
        raise WeightsError("is a folder, not a weights file", file=p) from None
    except MemoryError:
        raise WeightsError(
            "cannot read: an array in it is larger than this machine's memory (corrupted?)", file=p
        ) from None
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError, OSError) as e:
        reason = (
            "it holds Python objects, which are never loaded"
            if "pickle" in str(e)
            else "not a weights file (.npz) or corrupted"
        )
        raise WeightsError(f"cannot read: {reason}", file=p) from None


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Copy the arrays of ``path`` into ``model``. The file must hold exactly the model's names
    and shapes; otherwise WeightsError lists the missing, unexpected and wrong-shaped names."""
    p = str(path)
    arrays = read_weights(p)
    want = {k: v.shape for k, v in {**model.params, **model.buffers}.items()}
    missing = [k for k in want if k not in arrays]
    unexpected = [k for k in arrays if k not in want]
    wrong = [
        f"{k} {tuple(arrays[k].shape)} in the file, {tuple(s)} in the graph"
        for k, s in want.items()
        if k in arrays and arrays[k].shape != s
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        if wrong:
            parts.append(f"wrong shape: {_listed(wrong)}")
        raise WeightsError(
            "does not fit this graph (" + "; ".join(parts) + "); load weights "
            "saved from the same graph",
            file=p,
        )
    bad_type = [k for k, v in arrays.items() if v.dtype.kind not in "fiu"]
    if bad_type:
        raise WeightsError(f"{_listed(bad_type)} must hold numbers", file=p)
    # Checked as the model will hold them: float64 values beyond float32's range become inf.
    dtypes = {k: v.dtype for k, v in {**model.params, **model.buffers}.items()}
    not_finite = []
    for k, v in arrays.items():
        with np.errstate(over="ignore", invalid="ignore"):
            arrays[k] = cast = np.asarray(v, dtype=dtypes[k])
        if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in (v, cast)):
            not_finite.append(k)
    if not_finite:
        raise WeightsError(
            f"{_listed(not_finite)} contain NaN, infinite values or values too large for "
            f"{dtypes[not_finite[0]]} (saved from a diverged run?)",
            file=p,
        )
    model.set_state(arrays)
