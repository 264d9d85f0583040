"""Files in the real formats of the standard data sets (MNIST-style IDX gzip, CIFAR-10's binary
batches, plain text), generated, for tests and benchmarks: our machines cannot download the real
ones. ``place`` writes them into the cache folder as a finished download would leave them and
pins their own SHA-256 sums, so ``load_dataset``, the Trainer and the exported scripts read them
exactly as they would read the real files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
from pathlib import Path

import numpy as np

from engine.data import download, standard
from engine.data.download import Remote, Source

# the 65 characters of tiny Shakespeare (char-rnn's input.txt)
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def idx_gz(a: np.ndarray) -> bytes:
    head = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return gzip.compress(head + a.astype(np.uint8).tobytes(), mtime=0, compresslevel=1)


def mnist_like(n_train: int = 200, n_test: int = 50, seed: int = 0) -> tuple[dict, dict]:
    """IDX files of random 28x28 images with labels; returns (files by name, arrays)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    files = {
        "train-images-idx3-ubyte.gz": idx_gz(arrays["train_x"]),
        "train-labels-idx1-ubyte.gz": idx_gz(arrays["train_y"]),
        "t10k-images-idx3-ubyte.gz": idx_gz(arrays["test_x"]),
        "t10k-labels-idx1-ubyte.gz": idx_gz(arrays["test_y"]),
    }
    return files, arrays


def cifar_records(per_file: int, rng: np.random.Generator) -> tuple[bytes, tuple]:
    """One CIFAR-10 binary batch: ``per_file`` records of a label byte and 3,072 pixel bytes."""
    y = rng.integers(0, 10, per_file, dtype=np.uint8)
    x = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
    return np.concatenate([y[:, None], x.reshape(per_file, -1)], axis=1).tobytes(), (x, y)


def cifar_like(per_file: int, seed: int = 0, evil: bool = False) -> tuple[bytes, dict]:
    """A cifar-10-binary.tar.gz with six batches of ``per_file`` records each."""
    rng = np.random.default_rng(seed)
    buf, arrays = io.BytesIO(), {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [*standard.CIFAR_FILES["train"], *standard.CIFAR_FILES["test"]]
        members = [(f"{standard.CIFAR_FOLDER}/{n}", n) for n in names]
        if evil:  # a path out of the folder: must never be written anywhere
            members.append(("../evil.bin", "evil"))
        for path, key in members:
            data, arrays[key] = cifar_records(per_file, rng)
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo(f"{standard.CIFAR_FOLDER}/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return buf.getvalue(), arrays


def shakespeare_like(n_chars: int, seed: int = 0) -> bytes:
    """Plain text of ``n_chars`` characters drawn from tiny Shakespeare's 65, every one used."""
    rng = np.random.default_rng(seed)
    chars = np.array(list(SHAKESPEARE_CHARS))
    body = "".join(chars[rng.integers(0, len(chars), max(0, n_chars - len(chars)))])
    return (SHAKESPEARE_CHARS + body).encode()


def pin(monkeypatch, name: str, files: dict[str, bytes]) -> None:
    """Make data set ``name`` expect ``files`` (their own sums; no mirror to reach)."""
    old = standard.SOURCES[name]
    remotes = tuple(Remote(r.name, hashlib.sha256(files[r.name]).hexdigest()) for r in old.files)
    monkeypatch.setitem(standard.SOURCES, name, Source(old.folder, (), remotes))


def place(
    monkeypatch,
    root: Path,
    mnist: int = 200,
    cifar_per_file: int = 40,
    text_chars: int = 20_000,
    seed: int = 0,
) -> Path:
    """Generated MNIST, Fashion-MNIST, CIFAR-10 and Shakespeare files in the cache folder
    ``root`` (``$BLOCKPROP_DATA_DIR``), as a finished download leaves them: the IDX files and
    input.txt under their names with their sums pinned, CIFAR-10's six batches extracted.

    ``mnist`` training images (a fifth as many test images), ``cifar_per_file`` records per
    CIFAR-10 batch file (five training files, one test file), ``text_chars`` characters.
    """
    monkeypatch.setenv(download.DATA_DIR_ENV, str(root))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    sets = {
        "mnist": mnist_like(mnist, max(1, mnist // 5), seed)[0],
        "fashion_mnist": mnist_like(mnist, max(1, mnist // 5), seed + 1)[0],
        "shakespeare": {"input.txt": shakespeare_like(text_chars, seed)},
    }
    for name, files in sets.items():
        folder = root / standard.SOURCES[name].folder
        folder.mkdir(parents=True, exist_ok=True)
        for fname, data in files.items():
            (folder / fname).write_bytes(data)
        pin(monkeypatch, name, files)
    monkeypatch.setattr(standard, "CIFAR_PER_FILE", cifar_per_file)
    folder = root / standard.SOURCES["cifar10"].folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 2)
    for fname in [*standard.CIFAR_FILES["train"], *standard.CIFAR_FILES["test"]]:
        (folder / fname).write_bytes(cifar_records(cifar_per_file, rng)[0])
    return root


def place_for(graph, monkeypatch, root: Path) -> None:
    """``place`` small generated files when ``graph`` trains on a standard data set."""
    ds = (graph.training or {}).get("dataset") or {}
    name = ds if isinstance(ds, str) else ds.get("name")
    if standard.source_of(name) is not None:
        place(monkeypatch, root)
