"""The user's own data files: CSV and NumPy .npz (MNIST's IDX is in idx.py, images in images.py).

Every file is untrusted. Sizes are checked before anything is allocated (a header's claimed
dimensions against the bytes actually there), nothing is unpickled (.npz members are parsed
with their header checked first; object arrays are refused), and every failure is a DataError
that names the file and says what is wrong.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile

import numpy as np

from engine.data import base
from engine.data.base import (
    Dataset,
    DatasetSpec,
    check_bytes,
    check_elements,
    read_text,
    to_float32,
)
from engine.errors import ConfigError, DataError
from engine.safe_io import NpyEntry, npz_entries, npz_read, open_npz
from engine.settings import Opt

TASK_OPT = Opt(
    "choice",
    default="auto",
    choices=("auto", "classification", "regression"),
    doc="auto: text or whole-number labels are classes, other numbers regression",
)
MAX_AUTO_CLASSES = 1000


def labels_to_targets(values: np.ndarray, task: str, file: str) -> dict:
    """Labels (N,) -> Dataset fields y, task, n_classes, class_names.

    Text labels become class ids in sorted order, with their text kept as class names.
    Non-negative whole numbers below 1000 are used as class ids directly; other whole numbers
    are mapped in sorted order. Other numbers are regression targets, y (N, 1) float32.
    """
    if values.dtype.kind == "U":
        if task == "regression":
            raise DataError(
                "the labels are text, so they cannot be regression targets; use "
                "task 'classification' or numeric labels",
                file=file,
            )
        names, y = np.unique(values.astype(str), return_inverse=True)
        return {
            "y": y.astype(np.int64),
            "task": "classification",
            "n_classes": len(names),
            "class_names": [str(v) for v in names],
        }
    if values.dtype.kind not in "biuf":
        raise DataError(f"the labels must be numbers or text, got dtype {values.dtype}", file=file)
    v = values.astype(np.float64)
    if not np.all(np.isfinite(v)):
        bad = int(np.flatnonzero(~np.isfinite(v))[0])
        raise DataError(
            f"the label of sample {bad} is {values[bad]}: labels must be finite numbers", file=file
        )
    whole = bool(np.all(v == np.round(v)))
    if task == "regression" or (task == "auto" and not whole):
        return {
            "y": to_float32(v, "the regression targets", file)[:, None],
            "task": "regression",
            "n_classes": None,
            "class_names": None,
        }
    if not whole:
        bad = v[v != np.round(v)][0]
        raise DataError(
            f"task 'classification' needs whole-number labels, found {bad:g}; "
            f"use task 'regression' for quantities",
            file=file,
        )
    uniq = np.unique(v)
    if task == "auto" and len(uniq) > MAX_AUTO_CLASSES:
        raise DataError(
            f"the labels have {len(uniq):,} distinct values: too many classes to "
            f"guess; set task 'regression' (or 'classification' to insist)",
            file=file,
        )
    if uniq[0] >= 0 and uniq[-1] < 1000:
        n = int(uniq[-1]) + 1
        return {
            "y": v.astype(np.int64),
            "task": "classification",
            "n_classes": n,
            "class_names": [str(i) for i in range(n)],
        }
    ids = np.searchsorted(uniq, v)
    return {
        "y": ids.astype(np.int64),
        "task": "classification",
        "n_classes": len(uniq),
        "class_names": [f"{u:g}" for u in uniq],
    }


# ------------------------------------------------------------------------------- CSV

CSV_OPTIONS = {
    "path": Opt("path", doc="a CSV file of numeric feature columns and one label column"),
    "label": Opt("column", default=-1, doc="label column: name or index (default: the last)"),
    "header": Opt(
        "choice",
        default="auto",
        choices=("auto", True, False),
        doc="whether the first row names the columns (auto: guess)",
    ),
    "delimiter": Opt(
        "str", default=None, nullable=True, doc="field separator (default: guess among , ; tab |)"
    ),
    "task": TASK_OPT,
    "standardize": Opt(
        "bool", default=False, doc="z-score each feature column with its mean and std in this file"
    ),
}


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _guess_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_rows(text: str, delim: str, path: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank row; a bad quote or NUL is a DataError."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    rows = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as e:
        raise DataError(f"is not valid CSV near line {reader.line_num} ({e})", file=path) from None
    return rows


def _column_index(label, names: list[str] | None, width: int, path: str) -> int:
    if isinstance(label, str):
        if names is None:
            raise DataError(
                f"label column {label!r} given by name, but the file has no header "
                f"row; give its index instead",
                file=path,
            )
        if label not in names:
            raise DataError(f"has no column {label!r} (columns: {', '.join(names)})", file=path)
        return names.index(label)
    if not -width <= label < width:
        raise DataError(
            f"label column index {label} is out of range for {width} columns", file=path
        )
    return label % width


def load_csv(cfg: dict, rng: np.random.Generator) -> Dataset:
    """A CSV file: numeric feature columns and a label column (class names, ids or numbers)."""
    path, delim = cfg["path"], cfg["delimiter"]
    if delim is not None and (len(delim) != 1 or delim in '"\r\n'):
        raise ConfigError(
            f"data set 'csv': 'delimiter' must be one character other than a "
            f"quote or line break, got {delim!r}"
        )
    text = read_text(path, what="CSV file")
    delim = delim or _guess_delimiter(text)
    rows = _read_rows(text, delim, path)
    if not rows:
        raise DataError("has no rows of data", file=path)
    width = len(rows[0][1])
    for line, cells in rows:
        if len(cells) != width:
            raise DataError(
                f"line {line} has {len(cells)} fields but line {rows[0][0]} has "
                f"{width}: every row needs the same number of columns",
                file=path,
            )
    header = cfg["header"]
    if header == "auto":  # a header: some column is text in row 1 but a number in row 2
        if len(rows) > 1:
            pairs = zip(rows[0][1], rows[1][1], strict=True)
            header = any(not _is_number(a) and _is_number(b) for a, b in pairs)
        else:  # a lone row is a header only if none of it is a number
            header = not any(_is_number(a) for a in rows[0][1])
    names = rows[0][1] if header else None
    data = rows[1:] if header else rows
    if not data:
        raise DataError("has a header row but no data rows", file=path)
    if width < 2:
        raise DataError("needs at least one feature column besides the label column", file=path)
    check_elements(len(data) * width, "the CSV's table", path)
    col = _column_index(cfg["label"], names, width, path)
    feats = [j for j in range(width) if j != col]
    X = np.empty((len(data), len(feats)), dtype=np.float64)
    for i, (line, cells) in enumerate(data):
        for k, j in enumerate(feats):
            cell = cells[j]
            try:
                X[i, k] = float(cell)
            except ValueError:
                what = "is empty (a missing value)" if not cell else f"{cell!r} is not a number"
                column = repr(names[j]) if names else str(j)
                raise DataError(
                    f"line {line}, column {column}: {what}; feature columns must be numeric",
                    file=path,
                ) from None
            if not math.isfinite(X[i, k]):
                column = repr(names[j]) if names else str(j)
                raise DataError(
                    f"line {line}, column {column}: {cell!r} is not a finite number; "
                    f"remove or fill in missing values",
                    file=path,
                )
    raw = [cells[col] for _, cells in data]
    if all(_is_number(c) for c in raw):
        labels = np.array([float(c) for c in raw])
    else:
        empty = next((line for line, cells in data if not cells[col]), None)
        if empty is not None:
            raise DataError(f"line {empty}: the label is empty", file=path)
        labels = np.array(raw, dtype=str)
    target = labels_to_targets(labels, cfg["task"], path)
    norm, meta = "none (raw values)", {"path": path, "columns": names}
    if cfg["standardize"]:
        mean, std = X.mean(0), X.std(0)
        std[std == 0] = 1.0
        X = (X - mean) / std
        norm = "z-score per feature column with this file's mean and std (meta: mean, std)"
        meta.update(mean=mean.tolist(), std=std.tolist())
    if names:
        meta["features"] = [names[j] for j in feats]
        meta["label"] = names[col]
    X = to_float32(X, "the feature table", path)
    return Dataset(
        X,
        name="csv",
        normalisation=norm,
        meta=meta,
        description=DATASETS_HERE["csv"].description,
        **target,
    )


# ------------------------------------------------------------------------------- NPZ

NPZ_OPTIONS = {
    "path": Opt("path", doc="a NumPy .npz archive (np.savez) with arrays X and y"),
    "x_key": Opt("str", default="X", doc="name of the features array"),
    "y_key": Opt("str", default="y", doc="name of the labels array"),
    "task": TASK_OPT,
    "ids": Opt("bool", default=False, doc="X holds integer token ids (for Embedding): keep int"),
}


def _npz_array(zf: zipfile.ZipFile, entries: dict[str, NpyEntry], key: str, path: str):
    """Array ``key`` of an .npz whose headers ``entries`` holds: its size checked against the
    limits before a byte of it is read."""
    if key not in entries:
        arrays = ", ".join(n.removesuffix(".npy") for n in zf.namelist()) or "none"
        raise DataError(
            f"has no array {key!r} (arrays: {arrays}); save with np.savez(path, X=..., y=...)",
            file=path,
        )
    e = entries[key]
    check_elements(math.prod(e.shape), f"array {key!r}", path)
    if e.nbytes > 8 * base.MAX_ELEMENTS:
        raise DataError(
            f"array {key!r} is {e.nbytes / 1024**3:,.1f} GiB, over the limit of "
            f"{8 * base.MAX_ELEMENTS / 1024**3:,.0f} GiB",
            file=path,
        )
    return npz_read(zf, key, e, path, DataError)


def load_npz(cfg: dict, rng: np.random.Generator) -> Dataset:
    """An .npz archive with X (N, ...) numeric and y (N,) labels (or (N, ...) float targets)."""
    path = cfg["path"]
    keys = (cfg["x_key"], cfg["y_key"])
    with open_npz(path, DataError, "npz file", base.MAX_FILE_BYTES) as zf:
        entries = npz_entries(zf, path, DataError, only=keys)
        if all(k in entries for k in keys):  # as stored, then as float32 / int64 for training
            ex, ey = (entries[k] for k in keys)
            check_bytes(
                ex.nbytes + ey.nbytes + 8 * (math.prod(ex.shape) + math.prod(ey.shape)),
                f"arrays X {ex.shape} and y {ey.shape}, as stored and as converted",
                path,
            )
        X, y = (_npz_array(zf, entries, k, path) for k in keys)
    if X.dtype.kind not in "biuf" or X.dtype.fields is not None:
        raise DataError(f"X must be numeric, got dtype {X.dtype}", file=path)
    if X.ndim == 0 or y.ndim == 0:
        raise DataError(
            f"X and y must have a sample axis, got shapes {X.shape} and {y.shape}", file=path
        )
    if len(X) != len(y):
        raise DataError(f"X has {len(X)} samples but y has {len(y)}", file=path)
    if len(X) == 0:
        raise DataError("X and y have no samples", file=path)
    if X.ndim == 1:
        X = X[:, None]
    if cfg["ids"]:
        if X.dtype.kind not in "iu" or (X.size and X.min() < 0):
            raise DataError("'ids' needs X of non-negative integers", file=path)
        X = X.astype(np.int64)
    else:
        X = to_float32(X, "X", path)
    if y.ndim == 1:
        target = labels_to_targets(y, cfg["task"], path)
    elif y.dtype.kind in "biu" and y.ndim == 2 and cfg["task"] != "regression":
        if y.size and y.min() < 0:
            raise DataError("per-step class ids in y must be >= 0", file=path)
        target = {"y": y.astype(np.int64), "task": "sequence_classification"}
    elif y.dtype.kind in "biuf" and y.dtype.fields is None and cfg["task"] != "classification":
        target = {"y": to_float32(y, "y", path), "task": "regression"}
    else:
        raise DataError(
            f"y must be 1-D labels (N,), (N, T) integer ids or numeric targets, "
            f"got {y.dtype} {y.shape}",
            file=path,
        )
    return Dataset(
        X,
        name="npz",
        description=DATASETS_HERE["npz"].description,
        normalisation="none (as stored)",
        meta={"path": path},
        **target,
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "csv": DatasetSpec(
        "Your own CSV file: numeric feature columns and a label column", CSV_OPTIONS, load_csv
    ),
    "npz": DatasetSpec("Your own NumPy .npz archive with arrays X and y", NPZ_OPTIONS, load_npz),
}
