"""Atomic file writes: a crash or a full disk never leaves half a file, and the old file
survives a failed save. A save that was killed leaves its temporary file behind; the next save
into that folder removes it (temporary names carry the writer's process id, so a file another
running process is still writing is left alone)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


def file_mode(path: Path) -> int:
    """The existing file's permissions, or the usual ones for a new file (0666 less umask)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# ".<file name>.<pid>-<mkstemp's 8 characters>.tmp"
TEMP_NAME = re.compile(r"\..+\.(\d+)-[a-z0-9_]{8}\.tmp")
ORPHAN_AGE_S = 3600  # where a process's life cannot be asked (Windows): older temp files go


def _writer_gone(pid: int, mtime: float) -> bool:
    if pid == os.getpid():
        return False  # another thread of ours may be writing it
    if os.name == "nt":
        return time.time() - mtime > ORPHAN_AGE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, someone else's
    return False


def remove_orphans(folder: str | os.PathLike) -> list[str]:
    """Remove the temporary files of killed saves in ``folder``; returns their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = TEMP_NAME.fullmatch(e.name)
        if m is None:
            continue
        try:
            if e.is_file(follow_symlinks=False) and _writer_gone(
                int(m.group(1)), e.stat(follow_symlinks=False).st_mtime
            ):
                os.unlink(e.path)
                removed.append(e.name)
        except (OSError, ValueError, OverflowError):
            pass
    return removed


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it over ``path``.
    On any failure the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = str(path.parent) if str(path.parent) else "."
    remove_orphans(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode(path))  # mkstemp makes 0600; keep what a normal save gives
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
