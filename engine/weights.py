"""Weights files: ``.npz`` archives of named arrays (``"<block id>.<name>"``), never pickles.

``save_weights`` writes atomically (a temporary file in the same folder, then a rename), so a
failed save leaves the old file intact. ``load_weights`` refuses, naming the file and the
arrays that differ, any file that does not fit the model exactly, and changes nothing then.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from engine.atomic import write_atomic
from engine.errors import WeightsError
from engine.safe_io import fmt_size, npz_entries, npz_read, open_npz

if TYPE_CHECKING:
    from engine.model import Model

MAX_LISTED = 6
# A weights file is read only if it is a regular file of at most MAX_FILE_BYTES; without a
# model to compare with, its arrays may hold at most MAX_WEIGHTS_BYTES (VGG-16's 138 million
# float32 weights are 553 MB). Module attributes, so tests can lower them.
MAX_FILE_BYTES = 4 * 1024**3
MAX_WEIGHTS_BYTES = 1024**3


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


def read_weights(
    path: str | os.PathLike, expect: dict[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """All arrays of a weights file by name. A missing, special, corrupted or pickled file
    raises WeightsError naming it.

    Nothing is allocated before the archive's headers are checked: with ``expect`` (name ->
    shape, a model's) the names and shapes must match exactly; without it the arrays may hold
    at most ``MAX_WEIGHTS_BYTES`` together. Either way a number array takes at most 8 bytes a
    value, so a file can never claim more memory than its model's weights in float64."""
    p = str(path)
    with open_npz(p, WeightsError, "weights file", MAX_FILE_BYTES) as zf:
        entries = npz_entries(zf, p, WeightsError)
        if expect is not None:
            _check_names_and_shapes({k: e.shape for k, e in entries.items()}, expect, p)
        bad_type = [
            k for k, e in entries.items() if e.dtype.kind not in "fiu" or e.dtype.itemsize > 8
        ]
        if bad_type:
            raise WeightsError(f"{_listed(bad_type)} must hold numbers", file=p)
        total = sum(e.nbytes for e in entries.values())
        if expect is None and total > MAX_WEIGHTS_BYTES:
            raise WeightsError(
                f"its arrays hold {fmt_size(total)}, more than the limit of "
                f"{fmt_size(MAX_WEIGHTS_BYTES)} for a weights file",
                file=p,
            )
        return {k: np.asarray(npz_read(zf, k, e, p, WeightsError)) for k, e in entries.items()}


def _check_names_and_shapes(
    have: dict[str, tuple[int, ...]], want: dict[str, tuple[int, ...]], p: str
) -> None:
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    wrong = [
        f"{k} {tuple(have[k])} in the file, {tuple(s)} in the graph"
        for k, s in want.items()
        if k in have and tuple(have[k]) != tuple(s)
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


def load_weights(model: Model, path: str | os.PathLike) -> None:
    """Copy the arrays of ``path`` into ``model``. The file must hold exactly the model's names
    and shapes; otherwise WeightsError lists the missing, unexpected and wrong-shaped names."""
    p = str(path)
    want = {k: v.shape for k, v in {**model.params, **model.buffers}.items()}
    arrays = read_weights(p, expect=want)  # names, shapes and dtypes checked from the headers
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
