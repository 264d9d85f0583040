"""The data sets as self-contained NumPy functions the PyTorch exporter copies into its scripts
(which must run without BlockProp).

Each function named in ``MAKERS`` returns ``(X, y)`` equal, for the same options and seed, to
what ``engine.data.load_dataset`` gives (tests/test_export_torch_data.py checks every built-in data
set and every file format against it). The built-in sets' generators are the engine's own
(``engine.data.builtin``, ``sequences``, ``text``: their ``make_*`` functions, which the loaders
call), imported here so the exporter finds their source; the file readers below are written
again because the engine's check every byte of an untrusted file, and a script may assume
well-formed input. Every function uses only NumPy (scikit-learn for ``digits``, Pillow for
image folders) and the other names listed in ``MAKERS``.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import to_one_hot
from engine.data.builtin import (
    bilinear_matrix,
    make_circles,
    make_digits,
    make_moons,
    make_spiral,
    make_xor,
    pad_center,
    resize_bilinear,
    shuffled,
)
from engine.data.reviews import REVIEW_FILLER, REVIEW_SENTIMENT, make_reviews
from engine.data.seq2seq import (
    DATE_CHARS,
    DATE_FORMS,
    DATE_SOURCE,
    DATE_TARGET,
    MONTHS,
    STRIP_SLOTS,
    STRIP_VOCAB,
    WEEKDAYS,
    date_text,
    make_dates,
    make_digit_strips,
    make_sorting,
    side_by_side,
)
from engine.data.sequences import make_adding, make_copy, make_reversal, make_sine
from engine.data.text import (
    PAIRS,
    WORDS,
    bracket_expression,
    bracket_tags,
    char_windows,
    chars_corpus,
    encode,
    grammar_sentence,
    make_tagging,
    noun_phrase,
    pick,
    verb_phrase,
    windows,
)
from engine.data.timing import make_timed_spikes

__all__ = [
    "REVIEW_FILLER",
    "REVIEW_SENTIMENT",
    "make_reviews",
    "bilinear_matrix",
    "make_adding",
    "make_circles",
    "make_copy",
    "make_digits",
    "make_moons",
    "make_reversal",
    "DATE_CHARS",
    "DATE_FORMS",
    "DATE_SOURCE",
    "DATE_TARGET",
    "MONTHS",
    "STRIP_SLOTS",
    "STRIP_VOCAB",
    "WEEKDAYS",
    "date_text",
    "make_dates",
    "make_digit_strips",
    "make_sorting",
    "side_by_side",
    "make_sine",
    "make_timed_spikes",
    "make_spiral",
    "make_tagging",
    "make_xor",
    "pad_center",
    "resize_bilinear",
    "shuffled",
    "to_one_hot",
    "PAIRS",
    "WORDS",
    "bracket_expression",
    "bracket_tags",
    "char_windows",
    "chars_corpus",
    "encode",
    "grammar_sentence",
    "noun_phrase",
    "pick",
    "verb_phrase",
    "windows",
]


def make_chars(rng, corpus, n, T, one_hot):
    """A generated corpus cut into consecutive windows of T characters."""
    text, T, starts, vocab = chars_corpus(rng, corpus, n, T)
    return char_windows(text, T, starts, one_hot, vocab)


# ------------------------------------------------------------------------------ user files


def labels_to_targets(values):
    """Labels -> class ids (text: sorted order; whole numbers 0..999: as they are; other whole
    numbers: sorted order) or (N, 1) float32 regression targets."""
    if values.dtype.kind == "U":
        return np.unique(values.astype(str), return_inverse=True)[1].astype(np.int64)
    v = values.astype(np.float64)
    if not np.all(v == np.round(v)):
        return v.astype(np.float32)[:, None]
    uniq = np.unique(v)
    if uniq[0] >= 0 and uniq[-1] < 1000:
        return v.astype(np.int64)
    return np.searchsorted(uniq, v).astype(np.int64)


def as_task(values, task):
    """labels_to_targets with the data set's 'task' option applied."""
    if task == "regression":
        return values.astype(np.float64).astype(np.float32)[:, None]
    y = labels_to_targets(values)
    if task == "classification" and y.dtype != np.int64:
        raise SystemExit("task 'classification' needs whole-number labels")
    return y


def read_csv(path, label=-1, header="auto", delimiter=None, task="auto", standardize=False):
    """A CSV file of numeric feature columns and one label column."""
    import csv
    import io

    def is_number(cell):
        try:
            float(cell)
        except ValueError:
            return False
        return True

    with open(path, "rb") as f:
        text = f.read().decode("utf-8-sig")
    if delimiter is None:
        first = next((line for line in text.splitlines() if line.strip()), "")
        counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
        delimiter = max(counts, key=counts.get) if max(counts.values()) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = [[c.strip() for c in cells] for cells in reader if any(c.strip() for c in cells)]
    if header == "auto":
        header = len(rows) > 1 and any(
            not is_number(a) and is_number(b) for a, b in zip(rows[0], rows[1], strict=False)
        )
    names = rows[0] if header else None
    data = rows[1:] if header else rows
    width = len(data[0])
    col = names.index(label) if isinstance(label, str) else label % width
    feats = [j for j in range(width) if j != col]
    X = np.array([[float(cells[j]) for j in feats] for cells in data], dtype=np.float64)
    raw = [cells[col] for cells in data]
    labels = (
        np.array([float(c) for c in raw])
        if all(is_number(c) for c in raw)
        else np.array(raw, dtype=str)
    )
    y = as_task(labels, task)
    if standardize:
        mean, std = X.mean(0), X.std(0)
        std[std == 0] = 1.0
        X = (X - mean) / std
    return X.astype(np.float32), y


def read_npz(path, x_key="X", y_key="y", task="auto", ids=False):
    """An .npz archive with arrays X and y (never unpickled)."""
    with np.load(path, allow_pickle=False) as f:
        X, y = f[x_key], f[y_key]
    if X.ndim == 1:
        X = X[:, None]
    X = X.astype(np.int64) if ids else X.astype(np.float32)
    if y.ndim == 1:
        return X, as_task(y, task)
    if y.dtype.kind in "biu" and y.ndim == 2 and task != "regression":
        return X, y.astype(np.int64)
    return X, y.astype(np.float32)


def read_idx_file(path):
    """An IDX array (MNIST's format), plain or gzip-compressed."""
    import gzip
    import struct

    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    dtype, ndim = np.dtype(types[raw[2]]), raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=4 + 4 * ndim)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(images, labels, n=None, normalize=True, flatten=False):
    """An MNIST-style pair of IDX files: X (N, 1, H, W) (or flat), y (N,) class ids."""
    imgs, labs = read_idx_file(images), read_idx_file(labels)
    n = n or len(imgs)
    imgs, labs = imgs[:n], labs[:n]
    X = imgs.astype(np.float32)
    if normalize and imgs.dtype == np.uint8:
        X /= 255.0
    if X.ndim == 3:
        X = X.reshape(len(X), -1) if flatten else X[:, None]
    return np.ascontiguousarray(X), labels_to_targets(labs)


def read_text(rng, path, T=64, n=None, one_hot=False):
    """A UTF-8 text cut into windows of T characters (vocab: its sorted distinct characters)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8-sig")
    if n is None:
        starts = np.arange(0, len(text) - T, T)
    else:
        starts = rng.integers(0, len(text) - T, n)
    return char_windows(text, T, starts, one_hot)


def read_image_folder(path, size=None, grayscale=True):
    """root/<class>/<images>: classes in sorted folder order, images in name order, [0, 1]."""
    from pathlib import Path

    from PIL import Image

    exts = (
        ".png",
        ".jpg",
        ".jpeg",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".webp",
    )
    root = Path(path).expanduser()
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    X, y = [], []
    for label, d in enumerate(folders):
        for file in sorted(f for f in d.iterdir() if f.suffix.lower() in exts and f.is_file()):
            with Image.open(file) as im:
                if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                    scale = 1.0 if im.mode == "F" else 1.0 / 65535.0
                    f = Image.fromarray(np.asarray(im, dtype=np.float32) * np.float32(scale))
                    if size:
                        f = f.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    img = np.asarray(f, dtype=np.float32)[None]
                    img = img if grayscale else np.repeat(img, 3, axis=0)
                else:
                    im = im.convert("L" if grayscale else "RGB")
                    if size:
                        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    img = np.asarray(im, dtype=np.float32) / 255.0
                    img = img[None] if grayscale else img.transpose(2, 0, 1)
            X.append(img)
            y.append(label)
    return np.stack(X).astype(np.float32), np.array(y, dtype=np.int64)


# ------------------------------------------------------------------------------ downloaded sets
# The standard data sets are read from BlockProp's cache folder (the script does not download:
# train once in BlockProp, or put the files there by hand, as its README says).


def blockprop_data_dir():
    """BlockProp's data folder: $BLOCKPROP_DATA_DIR, else $XDG_CACHE_HOME/blockprop."""
    import os
    from pathlib import Path

    env = os.environ.get("BLOCKPROP_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "blockprop"


def data_file(folder, name):
    """The path of a downloaded file, or exit saying where to put it."""
    p = blockprop_data_dir() / folder / name
    if not p.is_file():
        raise SystemExit(
            f"{p} is missing: train once in BlockProp (it downloads the data set), "
            f"or download {name} by hand into {p.parent}"
        )
    return p


def read_mnist_set(folder, split="train", n=None, pad=None, flatten=False):
    """MNIST-style IDX files from BlockProp's data folder: X in [0, 1], y class ids."""
    names = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }[split]
    imgs = read_idx_file(data_file(folder, names[0]))
    labs = read_idx_file(data_file(folder, names[1]))
    n = n or len(imgs)
    imgs, labs = imgs[:n], labs[:n]
    if pad:
        H, W = imgs.shape[1:]
        top, left = (pad[0] - H) // 2, (pad[1] - W) // 2
        canvas = np.zeros((len(imgs), pad[0], pad[1]), dtype=np.uint8)
        canvas[:, top : top + H, left : left + W] = imgs
        imgs = canvas
    X = imgs[:, None].astype(np.float32) / np.float32(255)
    if flatten:
        X = X.reshape(len(X), -1)
    return np.ascontiguousarray(X), labs.astype(np.int64)


def read_mnist(split="train", n=None, pad=None, flatten=False):
    return read_mnist_set("mnist", split, n, pad, flatten)


def read_fashion_mnist(split="train", n=None, pad=None, flatten=False):
    return read_mnist_set("fashion_mnist", split, n, pad, flatten)


def read_cifar10(split="train", n=None):
    """CIFAR-10's binary batches (label byte + 3,072 pixel bytes), NCHW in [0, 1]."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    recs = [np.fromfile(data_file("cifar10", f), dtype=np.uint8).reshape(-1, 3073) for f in names]
    rec = np.concatenate(recs)[: n or None]
    X = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(X), rec[:, 0].astype(np.int64)


def read_shakespeare(rng, T=100, n=None, one_hot=False):
    """Tiny Shakespeare cut into windows of T characters (as read_text)."""
    with open(data_file("shakespeare", "input.txt"), "rb") as f:
        text = f.read().decode("utf-8-sig")
    if n is None:
        starts = np.arange(0, len(text) - T, T)
    else:
        starts = rng.integers(0, len(text) - T, n)
    return char_windows(text, T, starts, one_hot)


# ------------------------------------------------------------------------------ the table

# data set name -> (function, whether it takes rng first, the other names it needs)
MNIST_NEEDS = ["blockprop_data_dir", "data_file", "read_idx_file", "read_mnist_set"]
CHAR_NEEDS = ["to_one_hot", "encode", "windows", "char_windows"]
CORPUS_NEEDS = [
    "WORDS",
    "PAIRS",
    "pick",
    "noun_phrase",
    "verb_phrase",
    "grammar_sentence",
    "bracket_expression",
    "chars_corpus",
    *CHAR_NEEDS,
]
MAKERS: dict[str, tuple[str, bool, list[str]]] = {
    "digits": ("make_digits", True, ["bilinear_matrix", "resize_bilinear", "pad_center"]),
    "xor": ("make_xor", True, []),
    "moons": ("make_moons", True, ["shuffled"]),
    "circles": ("make_circles", True, ["shuffled"]),
    "spiral": ("make_spiral", True, ["shuffled"]),
    "adding": ("make_adding", True, []),
    "copy": ("make_copy", True, ["to_one_hot"]),
    "sine": ("make_sine", True, []),
    "timed_spikes": ("make_timed_spikes", True, []),
    "reviews": ("make_reviews", True, ["REVIEW_FILLER", "REVIEW_SENTIMENT"]),
    "reversal": ("make_reversal", True, ["to_one_hot"]),
    "sorting": ("make_sorting", True, ["to_one_hot", "side_by_side"]),
    "dates": (
        "make_dates",
        True,
        [
            "to_one_hot",
            "side_by_side",
            "MONTHS",
            "WEEKDAYS",
            "DATE_FORMS",
            "DATE_SOURCE",
            "DATE_TARGET",
            "DATE_CHARS",
            "date_text",
        ],
    ),
    "digit_strips": ("make_digit_strips", True, ["to_one_hot", "STRIP_SLOTS", "STRIP_VOCAB"]),
    "chars": ("make_chars", True, CORPUS_NEEDS),
    "tagging": ("make_tagging", True, ["to_one_hot", "bracket_tags"]),
    "csv": ("read_csv", False, ["labels_to_targets", "as_task"]),
    "npz": ("read_npz", False, ["labels_to_targets", "as_task"]),
    "idx": ("read_idx", False, ["read_idx_file", "labels_to_targets"]),
    "text": ("read_text", True, CHAR_NEEDS),
    "image_folder": ("read_image_folder", False, []),
    "mnist": ("read_mnist", False, MNIST_NEEDS),
    "fashion_mnist": ("read_fashion_mnist", False, MNIST_NEEDS),
    "cifar10": ("read_cifar10", False, ["blockprop_data_dir", "data_file"]),
    "shakespeare": (
        "read_shakespeare",
        True,
        ["blockprop_data_dir", "data_file", *CHAR_NEEDS],
    ),
}
