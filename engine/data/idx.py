"""MNIST's IDX files (images + labels), plain or gzip-compressed, parsed by hand.

The header's claimed dimensions are checked against the bytes in the file (and against the
element limit) before any array is made, so a damaged or hostile header is a DataError, not a
MemoryError.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from engine.data.base import (
    Dataset,
    DatasetSpec,
    check_bytes,
    check_elements,
    to_float32,
    user_file,
)
from engine.data.files import labels_to_targets
from engine.errors import DataError
from engine.settings import Opt

# Samples plus a sample's shape (an Input takes 1 to 4 axes); the byte allows 255, and NumPy
# refuses arrays of more than 64 dimensions.
MAX_DIMS = 5
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzip-compressed, parsed by hand.

    Layout: two zero bytes, a type code (0x08 ubyte ... 0x0E float64), the number of
    dimensions, then each dimension as a big-endian uint32, then the data, big-endian,
    row-major. The claimed size is checked against the bytes in the file before reading.
    """
    raw = user_file(path, what="IDX file")  # a regular file, opened once
    try:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        with raw, f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(
                    "is too short to be an IDX file (no 4-byte magic number)", file=path
                )
            if head[:2] != b"\0\0" or head[2] not in IDX_TYPES or head[3] == 0:
                raise DataError(
                    f"has the magic number {head.hex()}, not an IDX file's "
                    f"(00 00, a type code 08-0e, a dimension count)",
                    file=path,
                )
            dtype, ndim = np.dtype(IDX_TYPES[head[2]]), head[3]
            if ndim > MAX_DIMS:
                raise DataError(
                    f"header claims {ndim} dimensions; an IDX data file has at most "
                    f"{MAX_DIMS} (the samples, then at most 4 per sample)",
                    file=path,
                )
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(
                    f"is truncated inside its header ({ndim} dimensions claimed)", file=path
                )
            dims = struct.unpack(f">{ndim}I", dims_raw)
            count = math.prod(dims)
            nbytes = count * dtype.itemsize
            if not gz:
                have = os.fstat(raw.fileno()).st_size - 4 - 4 * ndim
                if have != nbytes:
                    raise DataError(
                        f"header claims dimensions {list(dims)} ({nbytes:,} bytes "
                        f"of data) but the file holds {have:,}",
                        file=path,
                    )
            check_elements(count, f"the IDX array {list(dims)}", path)
            check_bytes(
                nbytes + 4 * count, f"the IDX array {list(dims)} and its float32 copy", path
            )
            data = f.read(nbytes + 1)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"cannot be read ({type(e).__name__}: {e}); is the gzip file complete?", file=path
        ) from None
    if len(data) != nbytes:
        holds = f"only {len(data):,}" if len(data) < nbytes else "more"
        raise DataError(
            f"header claims dimensions {list(dims)} ({nbytes:,} bytes of data) but "
            f"the file holds {holds}",
            file=path,
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


IDX_OPTIONS = {
    "images": Opt("path", doc="IDX images file, e.g. train-images-idx3-ubyte(.gz)"),
    "labels": Opt("path", doc="IDX labels file, e.g. train-labels-idx1-ubyte(.gz)"),
    "n": Opt("int", default=None, nullable=True, min=1, doc="use only the first n samples"),
    "normalize": Opt("bool", default=True, doc="scale unsigned-byte pixels to [0, 1] (/255)"),
    "flatten": Opt("bool", default=False, doc="X as (N, H*W) vectors for MLPs"),
}


def load_idx(cfg: dict, rng: np.random.Generator) -> Dataset:
    """MNIST-style IDX pair: images (N, H, W) -> X (N, 1, H, W), labels (N,) -> class ids."""
    ipath, lpath = cfg["images"], cfg["labels"]
    images, labels = read_idx(ipath), read_idx(lpath)
    if images.ndim not in (2, 3):
        raise DataError(
            f"images must be (N, H, W) or (N, features), got {images.shape}", file=ipath
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"labels must be one integer per sample, got {labels.dtype} {labels.shape}", file=lpath
        )
    if len(images) != len(labels):
        raise DataError(
            f"has {len(labels)} labels but {ipath} has {len(images)} images", file=lpath
        )
    if len(images) == 0:
        raise DataError("has no samples", file=ipath)
    n = cfg["n"] or len(images)
    images, labels = images[:n], labels[:n]
    X = to_float32(images, "the images", ipath)
    norm = "none (raw values)"
    if cfg["normalize"] and images.dtype == np.uint8:
        X /= 255.0
        norm = "pixel / 255 to [0, 1]"
    if X.ndim == 3:
        X = X.reshape(len(X), -1) if cfg["flatten"] else X[:, None]
    target = labels_to_targets(labels, "classification", lpath)
    return Dataset(
        np.ascontiguousarray(X),
        name="idx",
        normalisation=norm,
        description=DATASETS_HERE["idx"].description,
        meta={"images": ipath, "labels": lpath},
        **target,
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "idx": DatasetSpec(
        "MNIST-format IDX files (images + labels, gzip allowed)", IDX_OPTIONS, load_idx
    ),
}
