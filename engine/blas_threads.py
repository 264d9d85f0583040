"""How many threads NumPy's BLAS may use for a product: the one place the engine decides it
(the convolutions of engine/conv_plan.py and engine/layers/conv.py, Dense, the recurrent
blocks' steps; engine/parallel.py pins one thread while it splits a batch).

OpenBLAS splits a large product over one thread per core. On a busy machine that is a trap:
its threads wait (spinning) for each other on every product, and a ResNet-20 step took 15x
longer (benchmarks/NOTES.md). On an idle machine it is the second core for free: ResNet-18
inference at batch 1 (the explain / Try it path) runs in one process, and one BLAS thread leaves
a core idle. So the rule (``choose_threads``, a pure function the tests check):

- one thread while engine/parallel.py splits the batch over two processes (each process has
  its core) and for products below ``BIG_PRODUCT_MACS`` multiply-adds (a thread hand-over
  costs more than half of such a product saves);
- else as many threads as there are cores free: cores minus the CPU the OTHER processes used
  since the last look, a core counting as free while they use at most ``FREE_CORE_USE`` of
  it. Cautious on purpose: a second thread on an idle core at best halves a product, one on
  a busy core made products 20-40x slower (benchmarks/NOTES.md).

The signal: the machine's busy CPU time (/proc/stat) minus this process's own (os.times), over
the time since the last look, looked at most once every ``CHECK_EVERY`` seconds. Unlike the
load average it reacts within a second, not a minute, and it leaves out this process itself:
its own BLAS threads spinning after a product would raise the load average and switch it back
to one thread on an idle machine, which then would switch to two again a minute later. Where
/proc/stat is missing (not Linux) the 1-minute load average minus one (this process) is used.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# Products below this many multiply-adds run on one thread (~0.15 ms on one core here; waking
# a second thread costs tens of microseconds). benchmarks/NOTES.md.
BIG_PRODUCT_MACS = 1 << 23
# A core counts as free while the other processes use at most this much of it.
FREE_CORE_USE = 0.3
# Seconds between looks at the machine's CPU use.
CHECK_EVERY = 1.0


def choose_threads(cores: int, others_busy: float, macs: int, pinned: bool) -> int:
    """BLAS threads for one product of ``macs`` multiply-adds on a machine of ``cores`` cores
    whose other processes keep ``others_busy`` cores busy (module docstring).

    >>> choose_threads(2, 0.1, 10**8, False), choose_threads(2, 0.5, 10**8, False)
    (2, 1)
    """
    if pinned or macs < BIG_PRODUCT_MACS or cores <= 1:
        return 1
    free = cores - max(0.0, others_busy)
    return max(1, min(cores, math.floor(free + FREE_CORE_USE + 1e-9)))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (/proc/stat), None if unknown."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != b"cpu":
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy (steal:
    # another virtual machine has the core)
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def cpu_mark() -> tuple[float, float | None, float]:
    """Now, for ``others_since``: (monotonic time, the machine's busy seconds, this process's)."""
    return time.monotonic(), _busy_seconds(), _own_seconds()


def others_since(mark: tuple[float, float | None, float]) -> float | None:
    """Cores the OTHER processes kept busy on average since ``cpu_mark()`` gave ``mark`` (the
    signal ``choose_threads`` reads; the benchmarks time only while it is near 0); None where
    /proc/stat is missing."""
    t0, busy0, own0 = mark
    t1, busy1, own1 = cpu_mark()
    if busy0 is None or busy1 is None or t1 <= t0:
        return None
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)


class _Machine:
    """The other processes' CPU use, looked at most once every CHECK_EVERY seconds."""

    def __init__(self) -> None:
        self.cores = _cores()
        self._lock = threading.Lock()
        self._last = (time.monotonic(), _busy_seconds(), _own_seconds())
        self._others = float(self.cores)  # until the first look: busy (one thread)
        self._checked = -math.inf

    def others_busy(self) -> float:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return self._others
        with self._lock:
            self._checked = now
            busy, own = _busy_seconds(), _own_seconds()
            t0, busy0, own0 = self._last
            if busy is None or busy0 is None:
                try:
                    self._others = max(0.0, os.getloadavg()[0] - 1.0)
                except OSError:
                    self._others = float(self.cores)
            elif now - t0 > 0.05:  # a window too short says nothing (jiffies of 10 ms)
                self._others = max(0.0, (busy - busy0) - (own - own0)) / (now - t0)
                self._last = (now, busy, own)
            return self._others


_machine = _Machine()
_pinned = 0  # > 0: one thread (engine/parallel.py's split is running)


_saved_threads: list[int] = []  # NumPy's BLAS threads before the first pin


def pin_one_thread(on: bool) -> None:
    """One BLAS thread for every product from now on (``on``), until as many calls with
    ``on=False``: engine/parallel.py while it splits a batch over two processes. Products
    outside ``limited`` (reductions, the optimizers, small layers) are held to one thread
    too: NumPy's BLAS is set to one thread at the first pin and given back at the last unpin."""
    global _pinned, _saved_threads
    was = _pinned
    _pinned = max(0, _pinned + (1 if on else -1))
    libs = numpy_blas()
    if not was and _pinned:
        _saved_threads = [lib.get_num_threads() for lib in libs]
        for lib in libs:
            lib.set_num_threads(1)
    elif was and not _pinned:
        for lib, n in zip(libs, _saved_threads, strict=False):
            lib.set_num_threads(n)


def threads_for(macs: int) -> int:
    """The threads ``choose_threads`` gives a product of ``macs`` multiply-adds now."""
    if _pinned or macs < BIG_PRODUCT_MACS:
        return 1  # without looking at the machine
    return choose_threads(_machine.cores, _machine.others_busy(), macs, False)


class _NumpyBlas:
    """NumPy's own BLAS through threadpoolctl's controller of it (found once): setting its
    threads costs ~2 us; other libraries' BLAS (PyTorch's) are left alone. Without
    threadpoolctl, or when NumPy's BLAS is not one it knows, nothing is changed."""

    libs: list | None = None

    @classmethod
    def get(cls) -> list:
        if cls.libs is None:
            try:
                from threadpoolctl import ThreadpoolController

                ctl = ThreadpoolController()
            except Exception:  # not installed, or a library it cannot read: leave BLAS as is
                cls.libs = []
                return cls.libs
            blas = [c for c in ctl.lib_controllers if c.user_api == "blas"]
            here = os.path.dirname(np.__file__)  # .../numpy; its bundled BLAS is in numpy.libs
            own = [c for c in blas if str(c.filepath).startswith(here)]
            cls.libs = own or blas[:1]
        return cls.libs


def numpy_blas() -> list:
    """threadpoolctl's controllers of NumPy's own BLAS (empty if it cannot see it)."""
    return _NumpyBlas.get()


class limited:
    """Context manager: NumPy's BLAS on ``threads_for(macs)`` threads inside, its setting
    restored after."""

    def __init__(self, macs: int):
        self.threads = threads_for(macs)

    def __enter__(self) -> limited:
        libs = numpy_blas()
        self._saved = [lib.get_num_threads() for lib in libs]
        for lib, n in zip(libs, self._saved, strict=True):
            if n != self.threads:
                lib.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        for lib, n in zip(numpy_blas(), self._saved, strict=True):
            if n != self.threads:
                lib.set_num_threads(n)


def by_size(macs_of: Callable[..., int]) -> Callable:
    """Decorator: ``func(*args)`` runs inside ``limited(macs_of(*args))``: ``macs_of`` gives
    the multiply-adds of the largest single product the call makes."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with limited(macs_of(*args)):
                return func(*args, **kwargs)

        return wrapper

    return decorate
