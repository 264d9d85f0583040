"""Reading the user's files: regular files only, and never more bytes than a limit.

Every graph, weights and data file is untrusted. A path may be a symlink to ``/dev/zero`` or
``/dev/urandom`` (endless bytes), a FIFO (an open that never returns), a folder, or a file far
larger than anything BlockProp reads. ``open_regular`` opens a path only when it is a regular
file after following links: it checks with ``os.stat`` first (so a device is never opened), then
opens without blocking (a FIFO swapped in meanwhile cannot hang the open) and checks the opened
file again with ``fstat``. ``read_limited`` reads at most ``limit + 1`` bytes, so the limit holds
for what is read even where the size the OS reports is wrong (``/proc`` files report 0).

Failures raise the caller's error type (GraphError, WeightsError, DataError) naming the file,
so the user sees one line that says what is wrong.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO, NamedTuple

import numpy as np

from engine.errors import BlockPropError

# Open flags: no blocking on a FIFO, no controlling terminal from a tty, not inherited by
# helper processes (the flags are 0 where the OS has no such thing).
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def fmt_size(n: int) -> str:
    """Bytes in binary units, as the limits are written: 512 bytes, 1.5 KiB, 50 MiB, 2 GiB."""
    if n < 1024:
        return f"{n:,} byte{'s' * (n != 1)}"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:,.3g} {unit}" if n < 1000 else f"{n:,.0f} {unit}"
    return f"{n:,.0f} GiB"  # pragma: no cover - the loop always returns


def _check_mode(mode: int, path: str, error: type[BlockPropError], what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise error(f"is a folder, not a {what}", file=path)
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise error(f"is {kind}, not a {what}: only regular files are read", file=path)


def check_size(size: int, limit: int, path: str, error: type[BlockPropError], what: str) -> None:
    """Refuse ``size`` bytes over ``limit`` with a message naming both (``limit + 1`` is what
    ``read_limited`` saw of a file it stopped reading: larger, by how much unknown)."""
    if size > limit:
        how_big = "holds more than" if size == limit + 1 else f"is {fmt_size(size)}, more than"
        raise error(f"the {what} {how_big} the limit of {fmt_size(limit)}", file=path)


def open_regular(
    path: str | os.PathLike,
    error: type[BlockPropError] = BlockPropError,
    what: str = "file",
    limit: int | None = None,
) -> BinaryIO:
    """``path`` opened for reading bytes, if it is a regular file (after following links) of
    at most ``limit`` bytes as the OS reports it; otherwise ``error`` naming the file.

    Callers still bound what they read: use ``read_limited``, or check a header's claims.
    """
    shown = os.fspath(path)
    p = os.path.expanduser(shown)
    try:
        _check_mode(os.stat(p).st_mode, shown, error, what)  # never open a device or FIFO
        fd = os.open(p, _OPEN_FLAGS)
    except FileNotFoundError:
        raise error(f"{what} not found (no such file); check the path", file=shown) from None
    except IsADirectoryError:
        raise error(f"is a folder, not a {what}", file=shown) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise error(f"cannot read it ({reason})", file=shown) from None
    try:
        st = os.fstat(fd)
        _check_mode(st.st_mode, shown, error, what)  # swapped for something else meanwhile
        if limit is not None:
            check_size(st.st_size, limit, shown, error, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: reads are plain reads again
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(
    path: str | os.PathLike,
    limit: int,
    error: type[BlockPropError] = BlockPropError,
    what: str = "file",
) -> bytes:
    """All bytes of the regular file ``path``, refused (``error``) past ``limit`` bytes: at
    most ``limit + 1`` bytes are ever read, whatever size the OS reports."""
    shown = os.fspath(path)
    with open_regular(path, error, what, limit) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise error(f"cannot read it ({e.strerror or e})", file=shown) from None
    check_size(len(data), limit, shown, error, what)
    return data


# ------------------------------------------------------------------------------- .npz archives
# An .npz is a zip of .npy members. np.load would trust each member's header (a 2 MB archive
# can claim, and inflate to, gigabytes) and its zip directory (millions of members). Here the
# directory size, then every member's header, are checked before any array is allocated; the
# caller decides from the headers (names, shapes, dtypes) whether to read the data at all.

MAX_ZIP_DIRECTORY = 16 * 1024**2  # about 150,000 members; the zip module builds an object each

NPZ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    OverflowError,
    IndexError,
    SyntaxError,  # a .npy header that is not a Python literal
)


class NpyEntry(NamedTuple):
    """One member of an .npz as its header describes it (nothing of the data read yet)."""

    member: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: exact however absurd


@contextmanager
def open_npz(
    path: str | os.PathLike, error: type[BlockPropError], what: str, limit: int
) -> Iterator[zipfile.ZipFile]:
    """``with open_npz(...) as zf``: the regular file ``path`` (at most ``limit`` bytes) as a
    zip archive whose directory is of sane size. Any zip error inside the block becomes
    ``error`` naming the file."""
    shown = os.fspath(path)
    with open_regular(path, error, what, limit) as f:
        try:
            # The directory's size, read before the zip module builds an object per member.
            end = zipfile._EndRecData(f)
            if end and end[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY:
                raise error(
                    f"its zip directory is {fmt_size(end[zipfile._ECD_SIZE])}, more than the "
                    f"limit of {fmt_size(MAX_ZIP_DIRECTORY)} (damaged, or far too many arrays)",
                    file=shown,
                )
            f.seek(0)
            if f.read(6) == b"\x93NUMPY":
                raise error(
                    "is a single .npy array, not a readable .npz archive of named arrays "
                    "(np.savez)",
                    file=shown,
                )
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                yield zf
        except BlockPropError:
            raise
        except NPZ_ERRORS as e:
            raise error(
                f"is not a readable .npz archive ({type(e).__name__}: {e})", file=shown
            ) from None


def _npy_header(f: IO[bytes], name: str, path: str, error: type[BlockPropError]) -> tuple:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise error(
        f"array {name!r} has .npy format version {version}, which BlockProp does not read; "
        "save with a plain np.savez",
        file=path,
    )


def npz_entries(
    zf: zipfile.ZipFile,
    path: str,
    error: type[BlockPropError],
    only: Iterable[str] | None = None,
) -> dict[str, NpyEntry]:
    """Every array of the archive by name (without ``.npy``), from the headers alone; with
    ``only``, just the arrays of those names that are there.

    Refused (``error``): a member that is not an .npy array, object arrays (np.save pickles
    them: never loaded, unpickling can run code), negative dimensions, and a header that
    claims more bytes than the member holds (its size in the zip directory, which also bounds
    how much the zip module will ever inflate)."""
    out = {}
    wanted = None if only is None else set(only)
    for info in zf.infolist():
        name = info.filename.removesuffix(".npy")
        if wanted is not None and name not in wanted:
            continue
        if not info.filename.endswith(".npy") or info.is_dir():
            raise error(f"member {info.filename!r} is not an .npy array", file=path)
        with zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f, name, path, error)
            header_bytes = f.tell()
        if dtype.hasobject:
            raise error(
                f"array {name!r} holds Python objects, which would need unpickling "
                "(never done, it can run code); save numeric arrays",
                file=path,
            )
        if any(d < 0 for d in shape):
            raise error(f"array {name!r} has a negative dimension in {shape}", file=path)
        entry = NpyEntry(info.filename, tuple(shape), bool(fortran), dtype)
        if entry.nbytes > info.file_size - header_bytes:
            raise error(
                f"array {name!r} claims shape {entry.shape} ({entry.nbytes:,} bytes) but the "
                f"archive holds only {max(0, info.file_size - header_bytes):,}: the file is "
                "truncated or corrupt",
                file=path,
            )
        out[name] = entry
    return out


def npz_read(
    zf: zipfile.ZipFile, name: str, entry: NpyEntry, path: str, error: type[BlockPropError]
) -> np.ndarray:
    """The array ``entry`` describes: exactly its ``nbytes`` read (check them first)."""
    with zf.open(entry.member) as f:
        _npy_header(f, name, path, error)
        buf = f.read(entry.nbytes)
    if len(buf) != entry.nbytes:
        raise error(
            f"array {name!r} is truncated ({len(buf):,} of {entry.nbytes:,} bytes)", file=path
        )
    a = np.frombuffer(buf, dtype=entry.dtype)
    return a.reshape(entry.shape, order="F" if entry.fortran else "C")
