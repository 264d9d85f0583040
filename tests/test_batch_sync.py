"""engine.batch_sync: the two halves of a split step swap their BatchNorm sums through shared
memory, with a spin before sleeping where stores are ordered and one bell byte a message
elsewhere; both ways every message arrives whole and in order, and a half that ends early
leaves the other with zeros, not waiting."""

from __future__ import annotations

import os
import select
import signal
import sys

import numpy as np
import pytest

from engine import batch_sync
from engine.batch_sync import BatchSync, Mailbox

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the exchange forks (Linux)")

STEPS, EXCHANGES, WIDTH = 6, 30, 8


def values(side: int, step: int, i: int) -> np.ndarray:
    return np.arange(2 * WIDTH, dtype=np.float64).reshape(2, WIDTH) + 1000 * side + 100 * i + step


def run_pair(spin: float, helper_stops_at: int | None = None) -> list[list[np.ndarray]]:
    """The parent's received values, step by step, with a forked helper sending its own; the
    helper ends its half after ``helper_stops_at`` exchanges of the last step. A helper that
    got a wrong message exits with code 3."""
    box = Mailbox(2 * WIDTH)
    down, up = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            sync = BatchSync(box, down[0], up[1], first=False, spin=spin)
            code = 0
            for step in range(STEPS):
                sync.begin_step(4, 4)
                last = step == STEPS - 1 and helper_stops_at is not None
                for i in range(helper_stops_at if last else EXCHANGES):
                    a, b = sync.exchange(values(1, step, i))
                    if not (
                        np.array_equal(a, values(0, step, i)) and b[0, 0] == 1000 + 100 * i + step
                    ):
                        code = 3
                sync.end_step()
        finally:
            os._exit(code)
    sync = BatchSync(box, up[0], down[1], first=True, spin=spin)
    got = []
    try:
        for step in range(STEPS):
            sync.begin_step(4, 4)
            got.append([sync.exchange(values(0, step, i))[1] for i in range(EXCHANGES)])
            sync.end_step()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        # every bell byte was read (the helper has ended: nothing more can come)
        assert not select.select([up[0]], [], [], 0)[0]
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        for fd in (*down, *up):
            os.close(fd)
    return got


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("spin", [0.0, 0.001])
def test_every_message_arrives_in_order(monkeypatch, ordered, spin):
    # ordered=False: the way of machines whose stores may be seen out of order (bell bytes)
    monkeypatch.setattr(batch_sync, "ORDERED_STORES", ordered)
    got = run_pair(spin)
    for step in range(STEPS):
        for i in range(EXCHANGES):
            np.testing.assert_array_equal(got[step][i], values(1, step, i))


def test_a_half_that_ends_early_leaves_zeros_and_the_next_step_in_step():
    got = run_pair(batch_sync.SPIN_S, helper_stops_at=7)
    last = got[-1]
    for i in range(7):
        np.testing.assert_array_equal(last[i], values(1, STEPS - 1, i))
    assert all(not v.any() for v in last[7:])


def test_a_message_larger_than_the_mailbox_is_refused():
    r, w = os.pipe()
    sync = BatchSync(Mailbox(4), r, w, first=True)
    with pytest.raises(ValueError, match="do not fit"):
        sync.exchange(np.zeros(5))
    os.close(r)
    os.close(w)
