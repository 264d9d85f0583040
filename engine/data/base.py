"""What every data set is: the ``Dataset`` record, option checking, and safe file access.

Built-in data sets and user files both end as a ``Dataset``: ``X`` (float32 features, or int64
token ids), ``y`` (int64 class ids, or float32 targets) and what a trainer needs to know about
them. Every loader declares its options with the same ``Opt`` records the layers use, so the
GUI can build editors for them and a wrong option is a ``ConfigError`` that names the data set.

Files from users are untrusted: the helpers here check size before reading and turn every
failure into a ``DataError`` that names the file (never a traceback, never a MemoryError).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np

from engine.errors import DataError
from engine.safe_io import fmt_size, open_regular, read_limited
from engine.settings import Opt, check_spec

TASKS = ("classification", "regression", "sequence_classification")

# Limits that refuse absurd files before they exhaust memory (module attributes, so tests can
# lower them). MAX_ELEMENTS bounds any array a loader makes: 2**28 float32 values are 1 GiB.
MAX_FILE_BYTES = 2 * 1024**3
MAX_TEXT_BYTES = 64 * 1024**2
MAX_ELEMENTS = 2**28
MAX_DATA_BYTES = 2 * 1024**3  # the arrays of one data set together (X and y)


class ByteImages:
    """Images kept as uint8 in memory, read as float32 in [0, 1] (pixel / 255) one batch at a
    time: MNIST's 60,000 images take 47 MB this way instead of 188 MB as float32.

    Indexing (``X[idx]``, ``X[i:j]``) returns the float32 values, as an array would;
    ``subset(idx)`` keeps the bytes (a split of the data set); ``np.asarray(X)`` converts all.
    Shapes: raw (N, ...) uint8.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, raw: np.ndarray) -> None:
        if raw.dtype != np.uint8:
            raise TypeError(f"ByteImages holds uint8, got {raw.dtype}")
        self.raw = raw
        self.shape, self.ndim, self.size = raw.shape, raw.ndim, raw.size

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, key) -> np.ndarray:
        return self.raw[key].astype(np.float32) / np.float32(255)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def subset(self, idx) -> ByteImages:
        return ByteImages(self.raw[idx])

    def copy(self) -> np.ndarray:
        return self[...]


def rows(X, idx):
    """``X[idx]`` kept in X's own storage (bytes stay bytes) for a split of the data."""
    return X.subset(idx) if isinstance(X, ByteImages) else X[idx]


@dataclass
class Dataset:
    """A data set ready for training.

    Shapes: X (N, *input_shape), y (N,) class ids | (N, T) ids per step | (N, *target_shape)
    float targets; X may be ``ByteImages``, uint8 read as float32 per batch. ``input_shape`` and
    ``target_shape`` exclude the batch axis and are filled in
    from the arrays when not given. X is converted to float32 (int64 when it holds token ids),
    y to int64 (classes) or float32 (regression), so no float64 slips into training.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None = None
    input_shape: tuple | None = None
    target_shape: tuple | None = None
    class_names: list[str] | None = None
    name: str = "custom"
    description: str = ""
    normalisation: str = "none"
    vocab: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"data set {self.name!r}"
        X, y = self.X, np.asarray(self.y)
        if not isinstance(X, ByteImages):
            X = np.asarray(X)
        if self.task not in TASKS:
            raise DataError(f"{where}: task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if X.ndim < 2 or len(X) == 0:
            raise DataError(f"{where}: X must be (N, ...) with N >= 1 samples, got {X.shape}")
        if len(y) != len(X):
            raise DataError(f"{where}: X has {len(X)} samples but y has {len(y)}")
        if isinstance(X, ByteImages):
            pass  # float32 one batch at a time
        elif X.dtype.kind == "b" or X.dtype.kind == "f":
            X = X.astype(np.float32, copy=False)
        elif X.dtype.kind in "iu":
            X = X.astype(np.int64, copy=False)
        else:
            raise DataError(f"{where}: X must be numeric, got dtype {X.dtype}")
        if self.task == "regression":
            if y.dtype.kind not in "biuf":
                raise DataError(f"{where}: regression targets must be numeric, got {y.dtype}")
            y = y.astype(np.float32, copy=False)
        else:
            if y.dtype.kind not in "biu":
                raise DataError(f"{where}: {self.task} needs integer class ids, got {y.dtype}")
            y = y.astype(np.int64, copy=False)
            want = 1 if self.task == "classification" else 2
            if y.ndim != want:
                raise DataError(f"{where}: {self.task} needs y with {want} axes, got {y.shape}")
            if y.size and y.min() < 0:
                raise DataError(f"{where}: class ids must be >= 0, got {int(y.min())}")
            top = int(y.max()) + 1 if y.size else 0
            if self.n_classes is None:
                self.n_classes = top
            elif top > self.n_classes:
                raise DataError(f"{where}: class id {top - 1} >= n_classes {self.n_classes}")
        self.X, self.y = X, y
        if self.input_shape is None:
            self.input_shape = tuple(int(d) for d in X.shape[1:])
        if self.target_shape is None:
            self.target_shape = tuple(int(d) for d in y.shape[1:])

    def __len__(self) -> int:
        return len(self.X)


class DatasetSpec(NamedTuple):
    """A registered data set: one-line description, its options, and the loader.

    ``load(cfg, rng)`` gets the checked options (defaults filled in) and a seeded Generator.
    """

    description: str
    options: dict[str, Opt]
    load: Callable[[dict, np.random.Generator], Dataset]


def check_options(name: str, spec: dict, options: dict[str, Opt]) -> dict:
    """Return the complete, checked options of data set ``name`` (its spec minus "name"); a
    size given as one number becomes [n, n]."""
    cfg = {k: v for k, v in spec.items() if k != "name"}
    out = check_spec(f"data set {name!r}", cfg, options, noun="option")
    for key, opt in options.items():
        if opt.kind == "size" and key in cfg and isinstance(out[key], int):
            out[key] = [out[key], out[key]]
    return out


def check_elements(count: int, what: str, file: str | None = None) -> None:
    """Refuse an array of ``count`` values past ``MAX_ELEMENTS`` before allocating it."""
    if count > MAX_ELEMENTS:
        raise DataError(
            f"{what} would hold {count:,} values, more than the limit of "
            f"{MAX_ELEMENTS:,} ({MAX_ELEMENTS * 4 / 1024**3:.1f} GiB as float32); "
            f"use fewer or smaller samples",
            file=file,
        )


def check_bytes(nbytes: int, what: str, file: str | None = None) -> None:
    """Refuse arrays of ``nbytes`` together past ``MAX_DATA_BYTES`` before allocating them."""
    if nbytes > MAX_DATA_BYTES:
        raise DataError(
            f"{what} would take {fmt_size(nbytes)}, more than the limit of "
            f"{fmt_size(MAX_DATA_BYTES)} for a data set; use fewer or shorter samples",
            file=file,
        )


def user_file(path: str, max_bytes: int | None = None, what: str = "file") -> BinaryIO:
    """A user's file opened for reading bytes: it must be a regular file (never a device or a
    FIFO, even through a link), not empty and not over ``max_bytes`` as the OS reports it.
    Whoever reads it still bounds what it reads (``read_bytes``, or a header's checked size)."""
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    f = open_regular(path, DataError, what, limit)
    if os.fstat(f.fileno()).st_size == 0 and not f.read(1):  # /proc files report size 0
        f.close()
        raise DataError(f"the {what} is empty", file=str(path))
    f.seek(0)
    return f


def read_bytes(path: str, max_bytes: int | None = None, what: str = "file") -> bytes:
    """The bytes of a user's regular file, at most ``max_bytes`` of them read; an empty file,
    a larger one or an OS error is a DataError naming the file."""
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    data = read_limited(path, limit, DataError, what)
    if not data:
        raise DataError(f"the {what} is empty", file=str(path))
    return data


def read_text(path: str, max_bytes: int | None = None, what: str = "text file") -> str:
    """A user's file decoded as UTF-8 (or UTF-16 when it starts with that byte-order mark; a
    byte-order mark is dropped). Any other encoding is refused: guessing would garble text."""
    data = read_bytes(path, MAX_TEXT_BYTES if max_bytes is None else max_bytes, what)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte-order mark (Excel's
        try:  # "Unicode text"): unambiguous, so read it
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError(
                "starts like UTF-16 text but is not valid UTF-16; save it as UTF-8", file=str(path)
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}, "
            f"line {line}); save it as UTF-8",
            file=str(path),
        ) from None


def to_float32(a: np.ndarray, what: str, file: str | None = None) -> np.ndarray:
    """``a`` as float32 for training; NaN, infinity or values beyond float32's range
    (|x| > 3.4e38, which the cast would turn into infinity) are a DataError."""
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            bad = a[~finite].flat[0]
            raise DataError(f"{what} contains {bad} values; remove or fill them in", file=file)
        if a.size and a.dtype.itemsize > 4 and np.abs(a).max() > np.finfo(np.float32).max:
            raise DataError(
                f"{what} has values too large for float32 (beyond 3.4e38); rescale them", file=file
            )
    return a.astype(np.float32)


def to_one_hot(ids, depth):
    """ids (...) int -> (..., depth) float32 with a single 1 per position."""
    out = np.zeros((*ids.shape, depth), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out
