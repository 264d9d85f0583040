"""The data sets again, as self-contained NumPy functions the PyTorch exporter copies into its
scripts (which must run without BlockProp).

Each ``make_*`` / ``read_*`` function returns ``(X, y)`` equal, for the same options and seed,
to what ``engine.data.load_dataset`` gives (tests/test_export_torch.py checks every built-in data
set and every file format against it). They use only NumPy (scikit-learn for ``digits``, Pillow
for image folders) and the other names listed in ``NEEDS``; this module imports nothing from
BlockProp. For files they assume well-formed input: the engine's loaders are the ones that check.
"""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------------------ shared helpers


def to_one_hot(ids, depth):
    """ids (...) int -> (..., depth) float32 with a single 1 per position."""
    out = np.zeros((*ids.shape, depth), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def shuffled(X, y, rng):
    p = rng.permutation(len(X))
    return np.ascontiguousarray(X[p], dtype=np.float32), y[p].astype(np.int64)


def bilinear_matrix(n_in, n_out):
    """(n_out, n_in) linear interpolation matrix, half-pixel centres (align_corners=False)."""
    s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    s = np.clip(s, 0.0, n_in - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = s - i0
    R = np.zeros((n_out, n_in))
    np.add.at(R, (np.arange(n_out), i0), 1.0 - w1)
    np.add.at(R, (np.arange(n_out), i1), w1)
    return R


# ------------------------------------------------------------------------------ built-in sets


def make_digits(rng, resize=None, pad=None, flatten=False):
    """scikit-learn's 8x8 digits / 16, optionally resized (bilinear) and centred on a canvas."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    if resize is not None:
        Rh = bilinear_matrix(X.shape[-2], resize[0]).astype(X.dtype)
        Rw = bilinear_matrix(X.shape[-1], resize[1]).astype(X.dtype)
        X = Rh @ X @ Rw.T
    if pad is not None:
        H, W = X.shape[-2:]
        top, left = (pad[0] - H) // 2, (pad[1] - W) // 2
        canvas = np.zeros((*X.shape[:-2], *pad), dtype=X.dtype)
        canvas[..., top : top + H, left : left + W] = X
        X = canvas
    if flatten:
        X = X.reshape(len(X), -1)
    return np.ascontiguousarray(X, dtype=np.float32), d.target.astype(np.int64)


def make_xor(rng, targets="class", repeat=1, noise=0.0):
    """XOR's four points, repeated, optionally jittered."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    X, y = np.tile(X, (repeat, 1)), np.tile(y, repeat)
    if noise > 0:
        X = X + rng.normal(0.0, noise, X.shape).astype(np.float32)
    if targets == "float":
        return X, y[:, None].astype(np.float32)
    return X, y


def make_moons(rng, n=500, noise=0.1):
    """Two interleaving half circles (make_moons' construction)."""
    n_out = n // 2
    n_in = n - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1),
        ]
    )
    y = np.repeat([0, 1], [n_out, n_in])
    X = X + rng.normal(0.0, noise, X.shape) if noise > 0 else X
    return shuffled(X, y, rng)


def make_circles(rng, n=500, noise=0.05, factor=0.5):
    """A circle inside a circle (make_circles' construction)."""
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([factor * np.cos(t_in), factor * np.sin(t_in)], 1),
        ]
    )
    y = np.repeat([0, 1], [n_out, n_in])
    X = X + rng.normal(0.0, noise, X.shape) if noise > 0 else X
    return shuffled(X, y, rng)


def make_spiral(rng, n=300, arms=3, noise=0.2, turns=0.64):
    """k interleaved spiral arms, one class each."""
    counts = np.full(arms, n // arms)
    counts[: n % arms] += 1
    Xs, ys = [], []
    for j, m in enumerate(counts):
        r = np.linspace(0.0, 1.0, m)
        t = 2 * np.pi * (j / arms + turns * r) + rng.normal(0.0, noise, m)
        Xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(m, j))
    return shuffled(np.concatenate(Xs), np.concatenate(ys), rng)


def make_adding(rng, T=50, n=10000):
    """The adding problem: X (N, T, 2) values and markers, y (N, 1) the sum of the marked."""
    half = T // 2
    X = np.zeros((n, T, 2), dtype=np.float32)
    X[:, :, 0] = rng.random((n, T), dtype=np.float32)
    rows = np.arange(n)
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    return X, (X[rows, first, 0] + X[rows, second, 0])[:, None]


def make_copy(rng, n=2000, length=5, delay=10, symbols=8):
    """The copy memory task: X (N, T, K + 2) one-hot, y (N, T) ids."""
    T = 2 * length + delay
    seq = rng.integers(1, symbols + 1, (n, length))
    ids = np.zeros((n, T), dtype=np.int64)
    ids[:, :length] = seq
    ids[:, length + delay - 1] = symbols + 1
    y = np.zeros((n, T), dtype=np.int64)
    y[:, T - length :] = seq
    return to_one_hot(ids, symbols + 2), y


def make_sine(rng, n=2000, T=30, noise=0.05, many_to_many=False):
    """Noisy sine windows; y the clean next value (or every next value)."""
    w = rng.uniform(0.1, 0.6, (n, 1))
    phi = rng.uniform(0.0, 2 * np.pi, (n, 1))
    A = rng.uniform(0.5, 1.0, (n, 1))
    s = A * np.sin(w * np.arange(T + 1) + phi)
    X = (s[:, :T] + rng.normal(0.0, noise, (n, T)))[:, :, None].astype(np.float32)
    if many_to_many:
        return X, s[:, 1:, None].astype(np.float32)
    return X, s[:, T:].astype(np.float32)


# ------------------------------------------------------------------------------ characters

WORDS = {
    "det": ("the", "a"),
    "adj": ("small", "red", "old"),
    "noun": ("cat", "dog", "fox", "bird"),
    "verb": ("sees", "likes", "chases", "hears"),
    "verb_base": ("see", "like", "chase", "hear"),
}
PAIRS = ("()", "[]", "{}", "<>")


def pick(rng, words):
    return words[rng.integers(len(words))]


def noun_phrase(rng, depth):
    words = [pick(rng, WORDS["det"])] + ([pick(rng, WORDS["adj"])] if rng.random() < 0.3 else [])
    s = " ".join([*words, pick(rng, WORDS["noun"])])
    if depth < 2 and rng.random() < 0.35:
        o, c = ("(", ")") if rng.random() < 0.5 else ("[", "]")
        s += f" {o}that {verb_phrase(rng, depth + 1, base=False)}{c}"
    return s


def verb_phrase(rng, depth, base):
    verb = pick(rng, WORDS["verb_base"] if base else WORDS["verb"])
    return f"{verb} {noun_phrase(rng, depth)}" if rng.random() < 0.7 else verb


def grammar_sentence(rng):
    if rng.random() < 0.3:
        return f"does {noun_phrase(rng, 0)} {verb_phrase(rng, 0, base=True)}?"
    return f"{noun_phrase(rng, 0)} {verb_phrase(rng, 0, base=False)}."


def bracket_expression(rng, depth=0):
    items = []
    for _ in range(rng.integers(1, 4)):
        if depth < 4 and rng.random() < 0.45:
            o, c = PAIRS[rng.integers(len(PAIRS))]
            items.append(o + bracket_expression(rng, depth + 1) + c)
        else:
            items.append("abc"[rng.integers(3)])
    return "".join(items)


def char_windows(text, T, starts, one_hot_x, vocab=None):
    """Next-character pairs: X[i] = ids[s:s + T], y[i] = ids[s + 1:s + T + 1]."""
    if vocab is None:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        table = np.unique(codes)
        vocab = [chr(c) for c in table]
        ids = np.searchsorted(table, codes).astype(np.int64)
    else:
        index = {ch: i for i, ch in enumerate(vocab)}
        ids = np.array([index[ch] for ch in text], dtype=np.int64)
    idx = starts[:, None] + np.arange(T)
    X, y = ids[idx], ids[idx + 1]
    return (to_one_hot(X, len(vocab)) if one_hot_x else X), y


def make_chars(rng, corpus="grammar", n=None, T=None, one_hot=False):
    """A generated corpus cut into consecutive windows of T characters."""
    if corpus == "hello":
        n = n or 1
        return char_windows("hello" * n, 4, np.arange(n) * 5, one_hot, vocab=list("helo"))
    n, T = n or 1000, T or 32
    make = grammar_sentence if corpus == "grammar" else bracket_expression
    parts, length = [], 0
    while length - 1 < n * T + 1:  # the join adds one space fewer than parts
        parts.append(make(rng))
        length += len(parts[-1]) + 1
    alphabet = "".join(sum(WORDS.values(), ())) + "that does ()[]?."
    if corpus == "brackets":
        alphabet = "".join(PAIRS) + "abc "
    return char_windows(" ".join(parts), T, np.arange(n) * T, one_hot, sorted(set(alphabet)))


def make_tagging(rng, rule="last_token", n=2000, T=20, symbols=None, one_hot=True):
    """Tag every step from past and future context: y (N, T) in {0, 1}."""
    if rule == "last_token":
        K = symbols or 2
        ids = rng.integers(0, K, (n, T))
        y = (ids == ids[:, -1:]).astype(np.int64)
    else:
        K = 4  # tokens ( ) a b
        ids = rng.integers(0, 4, (n, T))
        y = np.zeros(ids.shape, dtype=np.int64)
        for row, seq in enumerate(ids):
            stack = []
            for t, tok in enumerate(seq):
                if tok == 0:
                    stack.append(t)
                elif tok == 1 and stack:
                    y[row, stack.pop() : t + 1] = 1
    return (to_one_hot(ids, K) if one_hot else ids), y


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
CHAR_NEEDS = [
    "WORDS",
    "PAIRS",
    "to_one_hot",
    "pick",
    "noun_phrase",
    "verb_phrase",
    "grammar_sentence",
    "bracket_expression",
    "char_windows",
]
MAKERS: dict[str, tuple[str, bool, list[str]]] = {
    "digits": ("make_digits", True, ["bilinear_matrix"]),
    "xor": ("make_xor", True, []),
    "moons": ("make_moons", True, ["shuffled"]),
    "circles": ("make_circles", True, ["shuffled"]),
    "spiral": ("make_spiral", True, ["shuffled"]),
    "adding": ("make_adding", True, []),
    "copy": ("make_copy", True, ["to_one_hot"]),
    "sine": ("make_sine", True, []),
    "chars": ("make_chars", True, CHAR_NEEDS),
    "tagging": ("make_tagging", True, ["to_one_hot"]),
    "csv": ("read_csv", False, ["labels_to_targets", "as_task"]),
    "npz": ("read_npz", False, ["labels_to_targets", "as_task"]),
    "idx": ("read_idx", False, ["read_idx_file", "labels_to_targets"]),
    "text": ("read_text", True, ["to_one_hot", "char_windows"]),
    "image_folder": ("read_image_folder", False, []),
    "mnist": ("read_mnist", False, MNIST_NEEDS),
    "fashion_mnist": ("read_fashion_mnist", False, MNIST_NEEDS),
    "cifar10": ("read_cifar10", False, ["blockprop_data_dir", "data_file"]),
    "shakespeare": (
        "read_shakespeare",
        True,
        ["blockprop_data_dir", "data_file", "to_one_hot", "char_windows"],
    ),
}
