"""Keep freed array memory in the process for the next training step (glibc only).

A training step allocates and frees the same large arrays every time (each layer's output and
its gradient: 1.2 MB each for LeNet-5's first layers at batch 64). By default glibc's malloc
gives memory like that back to the system when it is freed (``mmap`` for large blocks, and a
trimmed heap top), so the next step page-faults every 4 KB page of it in again: a LeNet-5
step a quarter slower (benchmarks/NOTES.md).

``keep_freed_memory()`` makes malloc serve blocks up to 32 MB (glibc's upper limit) from its
heap and keep up to 128 MB of freed memory there instead of returning it. The process keeps
its peak memory in use (a training process does not shrink between steps anyway); arrays over
32 MB still come from and go back to the system. The settings are the environment variables
MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and MALLOC_TOP_PAD_ set from code, so a user's
own values of those variables win. On other C libraries (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt's parameter numbers (glibc <malloc.h>)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3

SETTINGS = (
    (M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 32 << 20),
    (M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 128 << 20),
    (M_TOP_PAD, "MALLOC_TOP_PAD_", 16 << 20),
)

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says, once per process. True if glibc took
    the settings (or the user's environment had already set them), False where there is no
    glibc."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 -- present in glibc only (not musl)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = True
    for param, env_name, value in SETTINGS:
        if env_name not in os.environ:
            ok = bool(mallopt(param, value)) and ok
    _done = ok
    return ok
