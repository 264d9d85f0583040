"""BatchSync: how the two halves of a split training step (engine.parallel) share the sums a
BatchNorm block needs over the whole batch.

BatchNorm normalises with the mean and variance of the whole batch, and its backward pass needs
sum(dout) and sum(dout * xhat) over the whole batch too. In a split step each process holds half
the batch, so at each BatchNorm block, forward and backward, the two processes swap their
halves' per-channel sums: one small message each way (``exchange``). Both then add the two
halves in the same order (the parent's first), so both get the same bits and their running
statistics stay equal.

Protocol: the messages go through memory both processes map (``Mailbox``, made before the
fork), a pipe each way only rings a bell. A ResNet-20 step makes ~44 exchanges, and each
waited ~0.1 ms when it went through pipes alone: a process asleep in read() takes that long to
be woken and scheduled again, even when the other half arrives at the same moment
(benchmarks/NOTES.md). So each side writes its message (values, count, then the message's
number), rings the bell (one byte), and first spins briefly on the other side's message number
(``SPIN_S``: the halves run the same layers on the same shapes, so the other's message is
usually that close) before it sleeps reading the bell. Both sides write before they read, and
each direction has two slots used in turn: a side writes message k + 2 only after it read the
other's k + 1, which the other wrote after it read message k, so a slot is never overwritten
before it was read. Spinning relies on stores becoming visible in program order (x86); elsewhere
a side takes a message only after reading its bell byte (a pipe read orders memory), one byte a
message. The bytes a spinning side did not read are read at the end of the step, so the pipes
are empty between steps.

At the end of its half a process sends "my half of this step is over" (count -1) and reads
until the other's (``end_step``): if one half skipped its backward pass (its loss was not
finite) or failed, the other is not left waiting for sums that never come: its exchanges then
return zeros, and the step's gradients are not used anyway.
"""

from __future__ import annotations

import mmap
import os
import platform
import select
import time
from collections.abc import Callable

import numpy as np

_DONE = -1
# How long a side spins on the other's message before it sleeps on the bell pipe: the
# halves' arrivals at a BatchNorm block are mostly within this of each other, and a wake-up
# from read() costs ~0.1 ms; a longer wait (one half started late) sleeps.
SPIN_S = 0.0003
# Stores become visible to the other core in program order (total store order): spinning on
# the message number is safe. Elsewhere every message waits for its bell byte.
ORDERED_STORES = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


class HelperGone(RuntimeError):
    """The other process ended (``how`` "ended": end-of-file, a broken pipe), answered on its
    other pipe mid-step ("failed"), or did not answer after the run was stopped ("stopped")."""

    def __init__(self, message: str, how: str = "failed") -> None:
        super().__init__(message)
        self.how = how


class Mailbox:
    """The shared memory of one exchange: per direction (0: parent to helper, 1: back) a
    message counter and two slots of a count and ``capacity`` float64 values. Make it before
    the fork; each side's BatchSync views it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.mem = mmap.mmap(-1, 8 * (2 + 2 * 2 * (1 + capacity)))

    def views(self, direction: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(message counter (1,), counts (2,), values (2, capacity)) of one direction."""
        cap = self.capacity
        seq = np.frombuffer(self.mem, np.int64, 1, offset=8 * direction)
        base = 8 * (2 + direction * 2 * (1 + cap))
        counts = np.frombuffer(self.mem, np.int64, 2, offset=base)
        values = np.frombuffer(self.mem, np.float64, 2 * cap, offset=base + 16)
        return seq, counts, values.reshape(2, cap)


class BatchSync:
    """One process's end of the exchange. ``first``: this is the parent (its half comes first
    in every sum); ``read_fd``/``write_fd``: the bell pipes from and to the other side.
    ``watch`` (the parent only): the helper's reply pipe; a reply while an exchange waits means
    the helper's half ended early (an error), and ``abandon()`` turning true (the run was
    stopped) makes a wait give up after ``grace`` seconds. ``spin``: seconds to spin before
    sleeping (SPIN_S; only where stores are ordered)."""

    def __init__(
        self,
        mailbox: Mailbox,
        read_fd: int,
        write_fd: int,
        first: bool,
        watch: int | None = None,
        abandon: Callable[[], bool] | None = None,
        grace: float = 2.0,
        spin: float = SPIN_S,
    ) -> None:
        self.r, self.w, self.first = read_fd, write_fd, first
        self.watch, self.abandon, self.grace = watch, abandon, grace
        self.spin = spin if ORDERED_STORES else 0.0
        self._out = mailbox.views(0 if first else 1)
        self._in = mailbox.views(1 if first else 0)
        self.capacity = mailbox.capacity
        self._sent = self._received = self._bells = 0
        self.n_first = self.n_second = 0
        self._other_done = False

    # --- a step ------------------------------------------------------------------------------
    def begin_step(self, n_first: int, n_second: int) -> None:
        """The samples in the parent's and the helper's halves of this step."""
        self.n_first, self.n_second = n_first, n_second
        self._other_done = False

    @property
    def n(self) -> int:
        return self.n_first + self.n_second

    @property
    def n_local(self) -> int:
        return self.n_first if self.first else self.n_second

    def exchange(self, mine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(parent's values, helper's values): ``mine`` sent, the other half's received
        (float64, the same shape). Zeros for the other half once it has ended its step."""
        mine = np.ascontiguousarray(mine, np.float64)
        if mine.size > self.capacity:
            raise ValueError(f"{mine.size} values do not fit the exchange's {self.capacity}")
        other = None
        if not self._other_done:
            self._post(mine)
            other = self._take()
        if other is None:
            other = np.zeros_like(mine)
        elif other.size != mine.size:
            raise HelperGone(f"the two halves disagree: got {other.size} values, not {mine.size}")
        other = other.reshape(mine.shape)
        return (mine, other) if self.first else (other, mine)

    def end_step(self) -> None:
        """Tell the other process this half is over, read what it still sends until its half
        is over too, then the bell bytes not read yet."""
        self._post(None)
        while not self._other_done:
            self._take()
        while self._bells < self._received:
            self._ring_in(self._received - self._bells)

    # --- the mailbox -------------------------------------------------------------------------
    def _post(self, values: np.ndarray | None) -> None:
        seq, counts, slots = self._out
        slot = self._sent % 2
        if values is None:
            counts[slot] = _DONE
        else:
            slots[slot, : values.size] = values.reshape(-1)
            counts[slot] = values.size
        self._sent += 1
        seq[0] = self._sent  # last: the other side reads the message once it sees this
        try:
            os.write(self.w, b"\0")
        except OSError as e:  # BrokenPipeError among them
            raise HelperGone(f"the other process is gone ({e})", how="ended") from None

    def _take(self) -> np.ndarray | None:
        """The other side's next message (a copy), or None: its half is over."""
        k = self._received + 1
        seq, counts, slots = self._in
        if self.spin and seq[0] < k:
            deadline = time.perf_counter() + self.spin
            while seq[0] < k and time.perf_counter() < deadline:
                pass
        while (seq[0] if ORDERED_STORES else self._bells) < k:
            self._ring_in(4096)
        self._received = k
        slot = (k - 1) % 2
        count = int(counts[slot])
        if count == _DONE:
            self._other_done = True
            return None
        return slots[slot, :count].copy()

    def _ring_in(self, most: int) -> None:
        """Sleep until bell bytes come, and read up to ``most`` of them."""
        self._wait()
        data = os.read(self.r, most)
        if not data:
            raise HelperGone("the other process ended in the middle of a step", how="ended")
        self._bells += len(data)

    def _wait(self) -> None:
        """Return when there is something to read (the parent: or raise HelperGone)."""
        if self.watch is None:
            return  # the helper blocks in read: end-of-file wakes it if the parent ends
        waited_since_stop = 0.0
        while True:
            ready = select.select([self.r, self.watch], [], [], 0.25)[0]
            if self.r in ready:
                return
            if ready:
                raise HelperGone("the helper process failed on its half of the batch")
            if self.abandon is not None and self.abandon():
                waited_since_stop += 0.25
                if waited_since_stop >= self.grace:
                    raise HelperGone(
                        f"the helper process training half of each batch did not answer "
                        f"within {self.grace:g} s of Stop and was ended",
                        how="stopped",
                    )
