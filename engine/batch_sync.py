"""BatchSync: how the two halves of a split training step (engine.parallel) share the sums a
BatchNorm block needs over the whole batch.

BatchNorm normalises with the mean and variance of the whole batch, and its backward pass needs
sum(dout) and sum(dout * xhat) over the whole batch too. In a split step each process holds half
the batch, so at each BatchNorm block, forward and backward, the two processes swap their
halves' per-channel sums: one small message each way (``exchange``). Both then add the two
halves in the same order (the parent's first), so both get the same bits and their running
statistics stay equal.

Protocol on a pair of pipes: a message is a header (number of float64 values, or -1: "my half
of this step is over") and the values. The parent writes then reads, the helper reads then
writes, so a message larger than the pipe's buffer cannot block both. At the end of its half a
process sends -1 and reads until the other's -1 (``end_step``): if one half skipped its
backward pass (its loss was not finite) or failed, the other is not left waiting for sums that
never come: its exchanges then return zeros, and the step's gradients are not used anyway.
"""

from __future__ import annotations

import os
import select
import struct
from collections.abc import Callable

import numpy as np

_HEADER = struct.Struct("<q")
_DONE = -1


class HelperGone(RuntimeError):
    """The other process ended (``how`` "ended": end-of-file, a broken pipe), answered on its
    other pipe mid-step ("failed"), or did not answer after the run was stopped ("stopped")."""

    def __init__(self, message: str, how: str = "failed") -> None:
        super().__init__(message)
        self.how = how


class BatchSync:
    """One process's end of the exchange. ``first``: this is the parent (it writes first, and
    its half comes first in every sum). ``watch`` (the parent only): the helper's reply pipe;
    a reply while an exchange waits means the helper's half ended early (an error), and
    ``abandon()`` turning true (the run was stopped) makes a wait give up after
    ``grace`` seconds."""

    def __init__(
        self,
        read_fd: int,
        write_fd: int,
        first: bool,
        watch: int | None = None,
        abandon: Callable[[], bool] | None = None,
        grace: float = 2.0,
    ) -> None:
        self.r, self.w, self.first = read_fd, write_fd, first
        self.watch, self.abandon, self.grace = watch, abandon, grace
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
        if self._other_done:
            other = np.zeros_like(mine)
        elif self.first:
            self._send(mine)
            other = self._receive(mine.shape)
        else:
            other = self._receive(mine.shape)
            if not self._other_done:
                self._send(mine)
        return (mine, other) if self.first else (other, mine)

    def end_step(self) -> None:
        """Tell the other process this half is over, and read what it still sends until its
        half is over too."""
        self._write(_HEADER.pack(_DONE))
        while not self._other_done:
            self._receive(None)

    # --- the pipes ---------------------------------------------------------------------------
    def _send(self, values: np.ndarray) -> None:
        self._write(_HEADER.pack(values.size) + values.tobytes())

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.w, view) :]
        except (BrokenPipeError, OSError) as e:
            raise HelperGone(f"the other process is gone ({e})", how="ended") from None

    def _receive(self, shape: tuple[int, ...] | None) -> np.ndarray:
        (count,) = struct.unpack("<q", self._read(_HEADER.size))
        if count == _DONE:
            self._other_done = True
            return np.zeros(shape or (0,))
        data = np.frombuffer(self._read(8 * count), np.float64)
        if shape is None:  # draining after this half ended: the values are not used
            return data
        if data.size != int(np.prod(shape)):
            raise HelperGone(f"the two halves disagree: got {data.size} values, not {shape}")
        return data.reshape(shape)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            self._wait()
            chunk = os.read(self.r, n - len(data))
            if not chunk:
                raise HelperGone("the other process ended in the middle of a step", how="ended")
            data += chunk
        return data

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
