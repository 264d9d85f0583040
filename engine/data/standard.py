"""The standard data sets the lectures use: MNIST, Fashion-MNIST, CIFAR-10, tiny Shakespeare.

Downloaded on first use (``engine.data.download``: cache folder, mirrors, pinned SHA-256 sums,
resume) and kept as bytes: images are uint8 on disk and in memory (``ByteImages``), read as
float32 in [0, 1] one batch at a time. The official train/test split is kept (``split``).
Formats: MNIST-style IDX (gzip), CIFAR-10's *binary* version (records of a label byte and
3,072 pixel bytes; its pickled "python version" is never used: nothing downloaded is ever
unpickled), plain UTF-8 text.

The SHA-256 sums and sizes below are the published files' (each sum found in several
independent projects that pin the same files: torchvision's MNIST list, TensorFlow Datasets'
url_checksums, Zalando's Fashion-MNIST mirrors, char-rnn's tinyshakespeare receipts).
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from engine.data import download
from engine.data.base import ByteImages, Dataset, DatasetSpec, read_text
from engine.data.download import Remote, Source
from engine.data.idx import read_idx
from engine.data.text import char_dataset
from engine.errors import ConfigError, DataError
from engine.settings import Opt

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

SOURCES: dict[str, Source] = {
    "mnist": Source(
        "mnist",
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
            "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
        ),
        (
            Remote(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                9_912_422,
            ),
            Remote(
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                28_881,
            ),
            Remote(
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                1_648_877,
            ),
            Remote(
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                4_542,
            ),
        ),
    ),
    # Fashion-MNIST's sizes are not pinned: the sums were found in several projects, the byte
    # counts only in one (26,421,880 / 29,515 / 4,422,102 / 5,148), so they are left out.
    "fashion_mnist": Source(
        "fashion_mnist",
        (
            "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        (
            Remote(
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            Remote(
                "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            Remote(
                "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            Remote(
                "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        ),
    ),
    "cifar10": Source(
        "cifar10",
        ("https://www.cs.toronto.edu/~kriz/",),
        (
            Remote(
                "cifar-10-binary.tar.gz",
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                170_052_171,
            ),
        ),
    ),
    "shakespeare": Source(
        "shakespeare",
        ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
        (
            Remote(
                "input.txt",
                "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                1_115_394,
            ),
        ),
    ),
}

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR_FILES = {
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
}
CIFAR_FOLDER = "cifar-10-batches-bin"  # inside the archive
CIFAR_RECORD = 1 + 3 * 32 * 32  # a label byte, then 1,024 red, 1,024 green, 1,024 blue bytes
CIFAR_PER_FILE = 10_000


def _split_n_options(what: str, n_train: int) -> dict[str, Opt]:
    return {
        "split": Opt(
            "choice",
            default="train",
            choices=("train", "test"),
            doc=f"the official training set ({n_train:,} {what}) or test set (10,000)",
        ),
        "n": Opt("int", default=None, nullable=True, min=1, doc="use only the first n samples"),
    }


IDX_SET_OPTIONS = {
    **_split_n_options("images", 60_000),
    "pad": Opt(
        "size",
        default=None,
        nullable=True,
        max=128,
        doc="[H, W]: centre the 28x28 images on a zero canvas (LeNet-5 read them in 32x32)",
    ),
    "flatten": Opt("bool", default=False, doc="X as (N, 784) vectors for MLPs"),
}
CIFAR_OPTIONS = _split_n_options("images", 50_000)
SHAKESPEARE_OPTIONS = {
    "T": Opt("int", default=100, min=1, max=10_000, doc="sequence length"),
    "n": Opt(
        "int",
        default=None,
        nullable=True,
        min=1,
        max=10_000_000,
        doc="draw n windows at random offsets (default: consecutive windows)",
    ),
    "one_hot": Opt("bool", default=False, doc="X as one-hot (N, T, V) float32 instead of ids"),
}


def source_of(name: str) -> Source | None:
    """The download source of data set ``name``, or None for the ones made here."""
    return SOURCES.get(name)


def needs_download(spec: dict | str) -> bool:
    """Would loading ``spec`` download files (some are not in the cache folder yet)?"""
    name = spec if isinstance(spec, str) else spec.get("name")
    source = SOURCES.get(name) if isinstance(name, str) else None
    if source is None:
        return False
    if name == "cifar10" and _cifar_extracted(source):
        return False
    return bool(download.missing(source))


def prepare(
    spec: dict | str,
    progress: download.Progress | None = None,
    cancel: download.Cancel | None = None,
) -> None:
    """Download (and check) the files data set ``spec`` needs, reporting to ``progress``.

    Nothing to do for a data set made here. The CLI and the app call this before training so
    the user sees the download (and can cancel it); ``load_dataset`` alone downloads silently.
    """
    name = spec if isinstance(spec, str) else spec.get("name")
    source = SOURCES.get(name) if isinstance(name, str) else None
    if source is None:
        return
    if name == "cifar10":
        _cifar_files(source, progress, cancel)
    else:
        download.fetch_all(source, progress, cancel)


# ---------------------------------------------------------------------------- MNIST-style


def _pad(raw: np.ndarray, size: list[int] | None, name: str) -> np.ndarray:
    if size is None:
        return raw
    H, W = raw.shape[-2:]
    if size[0] < H or size[1] < W:
        raise ConfigError(
            f"data set {name!r}: 'pad' {size} must be at least the image size {[H, W]}"
        )
    top, left = (size[0] - H) // 2, (size[1] - W) // 2
    out = np.zeros((*raw.shape[:-2], *size), dtype=raw.dtype)
    out[..., top : top + H, left : left + W] = raw
    return out


def _idx_loader(name: str, classes: list[str], description: str):
    def load(cfg: dict, rng: np.random.Generator) -> Dataset:
        source = SOURCES[name]
        images, labels = IDX_NAMES[cfg["split"]]
        ipath = str(download.fetch(source, images))
        lpath = str(download.fetch(source, labels))
        raw, y = read_idx(ipath), read_idx(lpath)
        if raw.dtype != np.uint8 or raw.ndim != 3 or y.ndim != 1 or len(raw) != len(y):
            raise DataError(
                f"is not {name}'s images (N, 28, 28) bytes with one label each", file=ipath
            )
        if y.size and int(y.max()) >= len(classes):
            raise DataError(f"has a label {int(y.max())} past {len(classes) - 1}", file=lpath)
        n = cfg["n"] or len(raw)
        raw, y = raw[:n], y[:n]
        raw = _pad(raw, cfg["pad"], name)[:, None]
        steps = ["pixel / 255 to [0, 1], per batch (kept as bytes)"]
        if cfg["pad"] is not None:
            steps.append(f"centred on a {cfg['pad'][0]}x{cfg['pad'][1]} zero canvas")
        if cfg["flatten"]:
            raw = raw.reshape(len(raw), -1)
        return Dataset(
            ByteImages(np.ascontiguousarray(raw)),
            y.astype(np.int64),
            "classification",
            n_classes=len(classes),
            class_names=list(classes),
            name=name,
            description=description,
            normalisation="; ".join(steps),
            meta={"split": cfg["split"], "folder": str(download.data_dir() / source.folder)},
        )

    return load


# ---------------------------------------------------------------------------- CIFAR-10


def _cifar_extracted(source: Source) -> bool:
    folder = download.data_dir() / source.folder
    files = [*CIFAR_FILES["train"], *CIFAR_FILES["test"]]
    return all(_ok_size(folder / f) for f in files)


def _ok_size(p: Path) -> bool:
    try:
        return p.is_file() and p.stat().st_size == CIFAR_RECORD * CIFAR_PER_FILE
    except OSError:
        return False


def _cifar_files(source: Source, progress=None, cancel=None) -> Path:
    """The folder holding CIFAR-10's six .bin files, taken out of the verified archive.

    Only the six expected regular files are read from the archive, each of exactly 10,000
    records, and written under our own names (never ``tarfile.extract``: an archive's paths
    are not trusted).
    """
    folder = download.data_dir() / source.folder
    if _cifar_extracted(source):
        return folder
    archive = download.fetch(source, source.files[0].name, progress, cancel)
    wanted = {f"{CIFAR_FOLDER}/{f}" for f in [*CIFAR_FILES["train"], *CIFAR_FILES["test"]]}
    size = CIFAR_RECORD * CIFAR_PER_FILE
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name not in wanted or not member.isfile() or member.size != size:
                    continue
                dest = folder / member.name.rsplit("/", 1)[1]
                part = dest.with_name(dest.name + ".part")
                src = tar.extractfile(member)
                with src, open(part, "wb") as out:
                    while block := src.read(1024 * 1024):
                        out.write(block)
                os.replace(part, dest)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as e:
        raise DataError(f"cannot be unpacked ({e})", file=str(archive)) from None
    if not _cifar_extracted(source):
        raise DataError(
            f"does not hold CIFAR-10's six {CIFAR_FOLDER}/*.bin files of {size:,} bytes",
            file=str(archive),
        )
    return folder


def read_cifar_bin(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: images (N, 3, 32, 32) uint8, labels (N,) int64."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0 or size % CIFAR_RECORD:
        raise DataError(
            f"is {size:,} bytes, not a whole number of {CIFAR_RECORD}-byte records", file=path
        )
    rec = np.fromfile(p, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    y = rec[:, 0].astype(np.int64)
    if y.max() >= 10:
        raise DataError(f"has a label {int(y.max())} past 9", file=path)
    return rec[:, 1:].reshape(-1, 3, 32, 32), y


def load_cifar10(cfg: dict, rng: np.random.Generator) -> Dataset:
    """CIFAR-10 (binary version): 32x32 colour images in 10 classes, NCHW uint8."""
    folder = _cifar_files(SOURCES["cifar10"])
    parts = [read_cifar_bin(str(folder / f)) for f in CIFAR_FILES[cfg["split"]]]
    raw = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    n = cfg["n"] or len(raw)
    return Dataset(
        ByteImages(np.ascontiguousarray(raw[:n])),
        y[:n],
        "classification",
        n_classes=10,
        class_names=list(CIFAR_CLASSES),
        name="cifar10",
        description=DATASETS_HERE["cifar10"].description,
        normalisation="pixel / 255 to [0, 1], per batch (kept as bytes)",
        meta={"split": cfg["split"], "folder": str(folder)},
    )


# ---------------------------------------------------------------------------- Shakespeare


def load_shakespeare(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Tiny Shakespeare (char-rnn's 1.1 MB of the plays) for a character model."""
    path = str(download.fetch(SOURCES["shakespeare"], "input.txt"))
    text, T = read_text(path), cfg["T"]
    if len(text) < T + 1:
        raise DataError(f"has {len(text)} characters, too few for T = {T}", file=path)
    if cfg["n"] is None:
        starts = np.arange(0, len(text) - T, T)
    else:
        starts = rng.integers(0, len(text) - T, cfg["n"])
    return char_dataset(
        text,
        T,
        starts,
        cfg["one_hot"],
        "shakespeare",
        DATASETS_HERE["shakespeare"].description,
        meta={"path": path},
        file=path,
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "MNIST handwritten digits, 28x28 (downloaded on first use, 11.6 MB)",
        IDX_SET_OPTIONS,
        None,  # filled in below (the loader needs the description)
    ),
    "fashion_mnist": DatasetSpec(
        "Fashion-MNIST clothing images, 28x28, 10 classes (downloaded on first use, 30 MB)",
        IDX_SET_OPTIONS,
        None,
    ),
    "cifar10": DatasetSpec(
        "CIFAR-10 colour images, 32x32, 10 classes (downloaded on first use, 170 MB)",
        CIFAR_OPTIONS,
        load_cifar10,
    ),
    "shakespeare": DatasetSpec(
        "Tiny Shakespeare, 1.1 MB of the plays, for char-RNNs (downloaded on first use)",
        SHAKESPEARE_OPTIONS,
        load_shakespeare,
    ),
}
for _name, _classes in (("mnist", MNIST_CLASSES), ("fashion_mnist", FASHION_CLASSES)):
    _d = DATASETS_HERE[_name]
    DATASETS_HERE[_name] = _d._replace(load=_idx_loader(_name, _classes, _d.description))
