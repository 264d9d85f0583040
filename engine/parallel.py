"""A training step split over two processes: half the batch each, on the machine's second core.

Why processes: NumPy releases the GIL inside each call, but a training step is hundreds of
calls of 50-200 us, and between them two threads of one process hand the GIL back and forth
(threads made LeNet-5 slower); two processes have no GIL to share (the numbers:
benchmarks/NOTES.md).

How a step goes (``SplitStep.forward_backward``): the parameters live in memory both processes
map (the model's arrays are views of it); this process writes the helper's half of the batch
indices there too, and sends one message; it computes the forward and backward of its own half
while the helper computes the other; the helper copies its gradients into the shared memory and
answers with its loss and correct count. The gradients are combined as the mean loss is,
weighted by the halves' sizes, into one flat array:
    g = (n0 * g0 + n1 * g1) / n,   loss = (n0 * l0 + n1 * l1) / n
which is the full batch's gradient (every loss here is a mean over samples), up to float32
rounding. L1/L2, the gradient RMS, clipping and the update then run once, here, on the combined
gradients (the update on the flat arrays where they are: Optimizer.use_flat): the optimizer
state lives in this process only.
The validation pass at an epoch's end splits the same way (``SplitStep.evaluate``): each
process evaluates half of the validation rows with the current parameters and the helper sends
back its sums (loss x samples, samples, correct, counted), added here.

The helper is a ``fork`` of this process made when a run starts (it shares the training data
and the built model copy-on-write: no pickling, no import, a few ms), and it ends with the run:
``close()``, or when this process dies (it reads end-of-file and exits). It ignores Ctrl-C (the
parent decides), closes every file the parent had open except its own two pipes, and never
returns into the parent's code (``os._exit``). If it dies anyway (the OOM killer), or freezes
while the run is being stopped, ``forward_backward`` raises HelperLost saying how, and
engine.Trainer goes on in one process (its end event's ``note`` says so).

Which models split (``split_blocker``): all with float32 parameters. BatchNorm splits: at each
BatchNorm block, forward and backward, the two processes swap their halves' per-channel sums
(engine.batch_sync: one small message each way, in shared memory), so both normalise with the
whole batch's statistics, as one process does. Recurrent blocks split: the per-time-step
gradient RMS the app plots comes back from the helper and is combined into the whole batch's.
Dropout splits: the
helper's Dropout blocks draw from generators seeded from their forked state (``_reseed_dropout``;
with the forked generators both halves would get the same masks), so a run stays reproducible but
its masks are not those of a one-process run. Under ``processes="auto"`` also only where a step is
long enough to pay the hand-over (~0.1-0.2 ms): at least ``AUTO_MIN_MACS`` multiply-adds in a
batch's forward pass, and only on Linux with two cores free. While a split runs, BLAS runs on one
thread in both processes: OpenBLAS's idle worker threads spin on the core the other process needs.
"""

from __future__ import annotations

import math
import mmap
import os
import select
import signal
import struct
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from engine import blas_threads
from engine.batch_sync import BatchSync, HelperGone, Mailbox
from engine.errors import ConfigError

# A batch's forward pass below this many multiply-adds stays in one process under "auto":
# below it the ~0.15 ms hand-over eats most of the time saved (benchmarks/NOTES.md).
AUTO_MIN_MACS = 4_000_000
# A recurrent block's time step is a chain of small NumPy calls whose fixed cost a half batch
# does not halve: under "auto" a model whose recurrent block does less than this per time
# step and direction stays in one process (benchmarks/NOTES.md).
RECURRENT_MIN_STEP_MACS = 300_000
PROCESSES = ("auto", 1, 2)
STOP_GRACE_S = 2.0  # how long a stopped run waits for a helper that does not answer

# kind, then for _STEP: samples in the helper's half, in the batch; for _EVALUATE: the rows
# [start, stop) of the validation data the helper evaluates (end of the run: end-of-file)
_REQUEST = struct.Struct("<qqq")
_STEP, _EVALUATE = 0, 1
_REPLY = struct.Struct("<qdq")  # status (0 ok, 1 loss not finite, 2 error), loss, correct
# status (0 ok, 2 error), then the sums of engine.trainer.Trainer._eval_sums: loss x weight,
# weight, correct, counted
_EVAL_REPLY = struct.Struct("<qddqq")


def check_processes(value: Any) -> int | str:
    """``"auto"``, 1 or 2 (also as text, from the command line), else ConfigError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in PROCESSES:
        raise ConfigError(f"processes must be 'auto', 1 or 2, got {value!r}")
    return value


def requested_processes(value: Any = None) -> int | str:
    """The processes setting: ``value``, else the environment variable BLOCKPROP_PROCESSES,
    else "auto"; checked (a bad one raises ConfigError, naming the variable if it came from
    there)."""
    from_env = value is None
    if from_env:
        value = os.environ.get("BLOCKPROP_PROCESSES", "auto")
    try:
        return check_processes(value)
    except ConfigError as e:
        where = " (environment variable BLOCKPROP_PROCESSES)" if from_env else ""
        raise ConfigError(e.message + where) from None


def free_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def forward_macs(model: Any, batch_size: int) -> int:
    """Multiply-adds of a batch's forward pass (each layer's estimate, ``Layer.macs``:
    transposed convolutions are counted at their output positions, an overestimate by
    stride^2)."""
    a = model.analysis
    return batch_size * sum(
        layer.macs(a.in_shapes[n], a.shapes[n]) for n, layer in model.layers.items()
    )


def split_blocker(model: Any) -> str | None:
    """Why ``model`` cannot be split over two processes (a sentence naming the block), or
    None."""
    for n, layer in model.layers.items():
        if layer.whole_batch:
            return f"block '{n}' ({layer.type_name}) {layer.whole_batch}"
        for k, p in layer.params.items():
            if p.dtype != np.float32:
                return f"block '{n}' has {p.dtype} parameters (the split shares float32)"
            g = layer.grads.get(k)
            if g is not None and g.shape != p.shape:
                return f"block '{n}' keeps a gradient for {k!r} of another shape"
    if sys.platform != "linux":
        return "splitting a step over processes needs Linux (fork)"
    return None


def choose_processes(model: Any, batch_size: int, processes: int | str) -> tuple[int, str]:
    """(1 or 2, why) for a run of ``model`` at ``batch_size``; a forced 2 that cannot be
    honoured raises ConfigError naming the block."""
    processes = check_processes(processes)
    if processes == 1:
        return 1, "processes=1"
    blocker = split_blocker(model)
    if processes == 2:
        if blocker:
            raise ConfigError(f"processes=2: {blocker}; train it with processes 1 or auto")
        if batch_size < 2:
            raise ConfigError("processes=2 needs a batch of at least 2 samples")
        return 2, "processes=2"
    if blocker:
        return 1, blocker
    if free_cores() < 2:
        return 1, "one core"
    for n, layer in model.layers.items():
        if layer.recurrent:
            per_step = batch_size * sum(
                p.size
                for k, p in layer.params.items()
                if k.startswith("weight") and not k.endswith("_reverse")
            )
            if per_step < RECURRENT_MIN_STEP_MACS:
                return 1, (
                    f"block '{n}' ({layer.type_name}): a time step of "
                    f"{per_step / 1e3:.0f} k multiply-adds is too short to split"
                )
    macs = forward_macs(model, batch_size)
    if macs < AUTO_MIN_MACS:
        return 1, f"a step of {macs / 1e6:.1f} M multiply-adds is too short to split"
    return 2, f"{macs / 1e6:.0f} M multiply-adds a batch: half in a helper process"


class HelperLost(RuntimeError):
    """The helper process is gone; the message says how."""


def _read_exact(fd: int, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _close_other_files(keep: tuple[int, ...]) -> None:
    """Close every descriptor above 2 except ``keep``: the helper must not hold the parent's
    pipes open (the app would not see its training process end)."""
    try:
        top = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        top = 4096
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, top)


class SplitStep:
    """Forward and backward of a batch, half here and half in a forked helper process.

    ``model`` is the live model (its parameters are sent each step, so set_state and
    optimizer steps need nothing else); ``step(idx)`` the one-process step of the batch
    ``idx`` (engine.trainer.forward_backward: loss and correct count, the model's layers then
    hold its gradients), run on each half, in the helper on its forked copy of ``model``;
    ``abandon``: see ``_wait_for_reply``. ``evaluate(start, stop)``, if given, returns the
    validation pass's sums over the rows [start, stop) (engine.trainer.Trainer._eval_sums):
    ``evaluate(n)`` then splits that pass too. Make it while this process runs one thread: the
    helper is a fork, and a fork copies only the calling thread (a lock another thread holds
    stays locked in the helper for ever).
    """

    def __init__(
        self,
        model: Any,
        step: Callable[[np.ndarray], tuple[float, int]],
        batch_size: int,
        abandon: Callable[[], bool] | None = None,
        evaluate: Callable[[int, int], tuple[float, float, int, int] | None] | None = None,
    ) -> None:
        self.model, self.step, self.evaluate_rows = model, step, evaluate
        # Returns True once the run is stopping (the Trainer's stop flag): see _wait_for_reply.
        self.abandon = abandon
        self._names = [(layer, k) for layer in model.layers.values() for k in layer.params]
        sizes = [layer.params[k].size for layer, k in self._names]
        n_floats = sum(sizes)
        half = batch_size - batch_size // 2
        # Recurrent blocks' per-time-step gradient RMS (forward, reverse direction) of the
        # helper's half, combined here into the whole batch's (the app's BPTT panel).
        # (a block with its initial state wired reads [sequence, state]: T from the sequence)
        seqs = {n: model.analysis.in_shapes[n] for n, layer in model.layers.items()}
        self._recurrent = [
            (layer, int((s[0] if isinstance(s, list) else s)[0]))
            for n, layer in model.layers.items()
            if layer.recurrent and (s := seqs[n]) is not None
        ]
        n_time = sum(2 * t for _, t in self._recurrent)
        # One anonymous shared mapping made before the fork: parameters, the helper's
        # gradients, indices, time-step gradients.
        self._mem = mmap.mmap(-1, 8 * n_floats + 8 * half + 8 * n_time + 8)
        floats = np.frombuffer(self._mem, np.float32, 2 * n_floats)
        # The parameters live there, in both processes: the model's own arrays become views of
        # it (Model.move_params), so a step copies none of them to the helper, and the
        # optimizer updates them in place as one flat array (Optimizer.use_flat). Only this
        # process writes them, while the helper waits for its next request.
        self.flat_params = floats[:n_floats]
        # The combined gradient (this process only), as one flat array: the layers' gradients
        # become its views after each split step.
        self.flat_grads = np.empty(n_floats, np.float32)
        self.grad_views: list[np.ndarray] = []
        # True while the layers' gradients are the views of flat_grads (after a split step
        # whose halves were combined)
        self.combined = False
        self._idx = np.frombuffer(self._mem, np.int64, half, offset=8 * n_floats)
        times = np.frombuffer(self._mem, np.float64, n_time, offset=8 * (n_floats + half))
        self._t, off = [], 0
        for _, t in self._recurrent:
            self._t.append((times[off : off + t], times[off + t : off + 2 * t]))
            off += 2 * t
        shared, self._g, off = {}, [], 0
        for (layer, k), size, name in zip(self._names, sizes, model.params, strict=True):
            shape = layer.params[k].shape
            shared[name] = floats[off : off + size].reshape(shape)
            self._g.append(floats[n_floats + off : n_floats + off + size].reshape(shape))
            self.grad_views.append(self.flat_grads[off : off + size].reshape(shape))
            off += size
        model.move_params(shared, flat=self.flat_params)
        self._pinned = False
        # Blocks that need statistics over the whole batch (BatchNorm) swap them through a
        # second pair of pipes (engine.batch_sync), made only for them.
        self._synced = [layer for layer in model.layers.values() if layer.batch_statistics]
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        sums = (*os.pipe(), *os.pipe()) if self._synced else ()  # (to helper r, w, back r, w)
        # the largest message: a block's two sums per channel
        box = (
            Mailbox(2 * max(layer.params["weight"].size for layer in self._synced))
            if sums
            else None
        )
        pid = os.fork()
        if pid == 0:  # the helper
            code = 1
            try:
                for fd in (down_w, up_r, *sums[1:3]):
                    os.close(fd)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _close_other_files((down_r, up_w, *sums[::3]))
                _reseed_dropout(model)
                self._sync = BatchSync(box, sums[0], sums[3], first=False) if box else None
                self._serve(down_r, up_w)
                code = 0
            finally:
                os._exit(code)
        for fd in (down_r, up_w, *sums[::3]):
            os.close(fd)
        self._sync = (
            BatchSync(box, sums[2], sums[1], first=True, watch=up_r, abandon=abandon)
            if box
            else None
        )
        self.pid, self._w, self._r = pid, down_w, up_r
        self._finalizer = weakref.finalize(self, _end_helper, pid, down_w, up_r, *sums[1:3])
        self._limit_blas()

    # --- this process --------------------------------------------------------------------------
    def _limit_blas(self) -> None:
        blas_threads.pin_one_thread(True)  # every product of this process on one thread
        self._pinned = True

    def forward_backward(self, idx: np.ndarray) -> tuple[float, int]:
        """Loss and correct count of the batch ``X[idx]``; the model's layers hold the
        gradients of the whole batch afterwards (unless the loss is not finite).
        Raises HelperLost if the helper died (this process's half is then wasted)."""
        self.combined = False
        n = len(idx)
        n1 = n // 2
        n0 = n - n1
        self._idx[:n1] = idx[n0:]
        self._request(_STEP, n1, n)
        try:
            loss0, hits = self._synced_step(idx[:n0], n0, n1)
        except HelperGone as e:  # while exchanging BatchNorm sums
            if e.how == "ended":
                raise HelperLost(self._how_lost(None)) from None
            if e.how == "stopped":  # as _wait_for_reply: Stop never waits on it
                _reap(self.pid, wait=0.0)
                self._finalizer.detach()
            raise HelperLost(str(e)) from None
        finite = math.isfinite(loss0)
        status, loss1, hits1 = self._reply(_REPLY)
        if status == 2:
            raise HelperLost("the helper process failed on its half of the batch")
        loss = (n0 * loss0 + n1 * loss1) / n
        hits += hits1
        if not finite or status != 0:
            return math.inf if math.isfinite(loss) else loss, hits
        self._combine_time_grads(n0, n1)
        # into flat_grads, its views then the layers' gradients: the last scaling is one call
        combined = zip(self._names, self._g, self.grad_views, strict=True)
        if n0 == n1:
            for (layer, k), g1, g in combined:
                np.add(layer.grads[k], g1, out=g)
                layer.grads[k] = g
            self.flat_grads *= 0.5
        else:
            w0, w1 = n0 / n, n1 / n
            for (layer, k), g1, g in combined:
                np.multiply(layer.grads[k], w0 / w1, out=g)
                g += g1
                layer.grads[k] = g
            self.flat_grads *= w1
        self.combined = True
        return loss, hits

    def _reply(self, fmt: struct.Struct) -> tuple:
        """The helper's reply to the last request, unpacked with ``fmt``; HelperLost when it
        is gone instead."""
        self._wait_for_reply()
        try:
            reply = _read_exact(self._r, fmt.size)
        except OSError as e:
            raise HelperLost(self._how_lost(e)) from None
        if reply is None:
            raise HelperLost(self._how_lost(None))
        return fmt.unpack(reply)

    def evaluate(self, n: int) -> tuple[float, float, int, int] | None:
        """The validation pass over its ``n`` rows, the first half here and the second in the
        helper (with the current parameters): the two halves' sums added (``evaluate``'s, see
        the class), None if this process's half was stopped. Raises HelperLost as
        ``forward_backward`` does."""
        if self.evaluate_rows is None:
            raise TypeError("this SplitStep was made without an evaluate function")
        n0 = n - n // 2
        self._request(_EVALUATE, n0, n)
        mine = self.evaluate_rows(0, n0)
        # the helper's answer is read even when stopped: the next reply is ours
        status, *theirs = self._reply(_EVAL_REPLY)
        if status == 2:
            raise HelperLost("the helper process failed on its half of the validation data")
        if mine is None:
            return None
        total, weight, correct, count = (a + b for a, b in zip(mine, theirs, strict=True))
        return total, weight, int(correct), int(count)

    def _request(self, kind: int, a: int, b: int) -> None:
        """Send one request to the helper (it reads the parameters in the shared memory)."""
        try:
            os.write(self._w, _REQUEST.pack(kind, a, b))
        except OSError as e:
            raise HelperLost(self._how_lost(e)) from None

    def _synced_step(self, idx: np.ndarray, n0: int, n1: int) -> tuple[float, int]:
        """``step(idx)`` with the BatchNorm blocks exchanging their sums with the other half
        (both processes run this, the parent on the first ``n0`` samples)."""
        if self._sync is None:
            return self.step(idx)
        self._sync.begin_step(n0, n1)
        for layer in self._synced:
            layer.batch_sync = self._sync
        try:
            result = self.step(idx)
            self._sync.end_step()
            return result
        finally:
            for layer in self._synced:
                layer.batch_sync = None

    def _wait_for_reply(self) -> None:
        """Return when the helper's answer (or end-of-file) is there. A helper that has not
        answered ``STOP_GRACE_S`` after ``abandon()`` turned true (the run was stopped) is
        killed: a frozen helper must not keep Stop from ending the run."""
        waited_since_stop = 0.0
        while not select.select([self._r], [], [], 0.25)[0]:
            if self.abandon is not None and self.abandon():
                waited_since_stop += 0.25
                if waited_since_stop >= STOP_GRACE_S:
                    _reap(self.pid, wait=0.0)
                    self._finalizer.detach()
                    raise HelperLost(
                        f"the helper process training half of each batch did not "
                        f"answer within {STOP_GRACE_S:g} s of Stop and was ended"
                    )

    def _combine_time_grads(self, n0: int, n1: int) -> None:
        """The whole batch's per-time-step RMS of dL/dh_t from the two halves'. Each half's
        loss is a mean over its own n_i samples, so a sample's gradient there is n/n_i times
        its share of the whole batch's: RMS^2 = (n0^3 r0^2 + n1^3 r1^2) / n^3."""
        n = n0 + n1
        # as hypot(a0 r0, a1 r1) with a_i = (n_i / n)^1.5: three NumPy calls, in float64
        a0, a1 = (n0 / n) ** 1.5, (n1 / n) ** 1.5
        for (layer, _), (fwd, rev) in zip(self._recurrent, self._t, strict=True):
            for r1, attr in ((fwd, "time_grad"), (rev, "time_grad_reverse")):
                r0 = getattr(layer, attr, None)
                if r0 is not None and not math.isnan(r1[0]):  # NaN: the helper had none
                    r = np.multiply(r0, a0, dtype=np.float64)
                    setattr(layer, attr, np.hypot(r, r1 * a1))

    def _how_lost(self, error: OSError | None) -> str:
        code = _reap(self.pid, wait=0.5)
        self._finalizer.detach()
        what = f"exit code {code}" if code is not None else (str(error) if error else "gone")
        if code == -signal.SIGKILL:
            what += ", out of memory?"
        return f"the helper process training half of each batch ended unexpectedly ({what})"

    def close(self) -> None:
        """End the helper (it exits on end-of-file) and give BLAS its threads back."""
        if self._pinned:
            blas_threads.pin_one_thread(False)
            self._pinned = False
        self._finalizer()

    # --- the helper ----------------------------------------------------------------------------
    def _serve_evaluate(self, start: int, stop: int) -> bytes:
        """The reply to an _EVALUATE request: the sums over validation rows [start, stop)."""
        try:
            with np.errstate(all="ignore"):
                sums = self.evaluate_rows(start, stop) if self.evaluate_rows else None
        except Exception:  # noqa: BLE001 - reported to the parent, which falls back
            return _no_sums()
        return _no_sums() if sums is None else _EVAL_REPLY.pack(0, *sums)

    def _serve(self, r: int, w: int) -> None:
        blas_threads.pin_one_thread(True)  # one core each: every product of the helper
        while True:
            request = _read_exact(r, _REQUEST.size)
            if request is None:  # end-of-file: the run (or this process's parent) ended
                return
            kind, n1, n = _REQUEST.unpack(request)
            if kind == _EVALUATE:
                os.write(w, self._serve_evaluate(n1, n))
                continue
            try:
                with np.errstate(all="ignore"):
                    loss, hits = self._synced_step(self._idx[:n1].copy(), n - n1, n1)
                    status = 0 if math.isfinite(loss) else 1
                    if status == 0:
                        for (layer, k), shared in zip(self._names, self._g, strict=True):
                            np.copyto(shared, layer.grads[k])
                        for (layer, _), (fwd, rev) in zip(self._recurrent, self._t, strict=True):
                            for a, attr in ((fwd, "time_grad"), (rev, "time_grad_reverse")):
                                v = getattr(layer, attr, None)
                                a[...] = v if v is not None else np.nan
            except Exception:  # noqa: BLE001 - reported to the parent, which falls back
                status, loss, hits = 2, math.nan, 0
                if self._sync is not None:  # the parent may wait for this half's sums
                    try:
                        self._sync.end_step()
                    except HelperGone:
                        return
            os.write(w, _REPLY.pack(status, loss, hits))


def _no_sums() -> bytes:
    return _EVAL_REPLY.pack(2, math.nan, 0.0, 0, 0)


def _reseed_dropout(model: Any) -> None:
    """Give the helper's blocks that draw from a generator of their own (``layer.rng``:
    Dropout) new ones: seeded from the forked generator's next draw (hashed by SeedSequence,
    so unrelated to the parent's next masks), hence the same for the same run, but not the
    masks the parent draws."""
    for layer in model.layers.values():
        rng = getattr(layer, "rng", None)
        if rng is not None:
            layer.rng = np.random.default_rng([int(rng.integers(2**63)), 0x5EED])


def _reap(pid: int, wait: float) -> int | None:
    """The helper's exit code (negative: the signal that ended it), waiting up to ``wait`` s,
    then killing it; None if it could not be collected."""
    deadline = time.monotonic() + wait
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)


def _end_helper(pid: int, *fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _reap(pid, wait=2.0)
