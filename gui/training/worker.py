"""The training worker: a QThread that relays a training process's messages as Qt signals.

napari's pattern (a QObject with a ``run`` slot, moved to its own QThread), with the training
itself one step further away: ``run`` hands the run to a process of its own running
``engine.training_process.child_main`` (``multiprocessing``, "spawn": never fork a process
that runs Qt threads) and turns each message of the run into the signal of the same name. Why
a process, measured: see ``engine.training_process``. The process trains a snapshot of the
graph (its saved form), so the user's graph stays editable, and everything that arrives is a
copy.

The controls (stop, pause, resume, step_once, set_lr, set_watch) are called from the GUI thread;
they are sent to the process as ``(name, args, kwargs)`` and applied there to the run.
One process serves a window's runs one after another (``TrainingProcess``), so the second
run starts warm. ``RunThread.shutdown`` asks the run to stop and ends the process if it does
not within the time given, so closing the window never waits for a step, a data load or a
hung process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

import engine
from engine.training_process import child_main, confusion_matrix
from engine.training_spec import check_lr

__all__ = ["RunThread", "TrainingProcess", "TrainingWorker", "confusion_matrix"]

POLL_S = 0.05  # how often the relay looks at the process when no message comes
KINDS = ("prepared", "steps", "time_grads", "epoch", "snapshot", "finished", "failed")


class TrainingProcess:
    """A window's training process: started at its first run and kept for the next ones (a
    warm process starts LeNet-5 on digits in about 0.1 s instead of 1-2 s), replaced when it
    died or was ended. ``send`` may be called from any thread; only one relay reads."""

    def __init__(self) -> None:
        self.proc = None
        self.inbox = None
        self._commands = None
        self._lock = threading.Lock()

    def ensure(self):
        """The process, started now if there is none alive. Raises OSError if it cannot."""
        with self._lock:
            if self.proc is not None and self.proc.is_alive():
                return self.proc
            self._discard()
            ctx = multiprocessing.get_context("spawn")
            inbox, out = ctx.Pipe(duplex=False)
            commands_in, commands = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=child_main, name="blockprop-training", daemon=True, args=(out, commands_in)
            )
            try:
                proc.start()
            except OSError:
                inbox.close()
                commands.close()
                raise
            finally:
                out.close()
                commands_in.close()
            self.proc, self.inbox, self._commands = proc, inbox, commands
            return proc

    def send(self, msg) -> bool:
        with self._lock:
            if self._commands is None:
                return False
            try:
                self._commands.send(msg)
                return True
            except (BrokenPipeError, OSError):
                return False  # it has ended; the relay reports how

    def kill(self) -> None:
        """End it now (a run did not stop when asked)."""
        p = self.proc
        if p is not None and p.is_alive():
            p.kill()

    def close(self) -> None:
        """Ask it to end (it stops a run first); never waits. multiprocessing reaps it."""
        self.send(None)
        with self._lock:
            self._discard(keep_process=True)

    def _discard(self, keep_process: bool = False) -> None:
        for conn in (self.inbox, self._commands):
            if conn is not None:
                conn.close()
        self.inbox = self._commands = None
        if not keep_process and self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        self.proc = None


class TrainingWorker(QObject):
    """Signals carry plain dicts/lists of Python numbers and NumPy arrays (see
    engine.training_process).

    prepared(info), steps(list of step events + "t"), epoch(event + "confusion"/"samples"),
    snapshot({"step", "filters", "activations", "gates", "sample", "weights"}),
    time_grads({block: (T,) array}), finished(end event + "weights"), failed(message).
    """

    prepared = Signal(object)
    steps = Signal(object)
    epoch = Signal(object)
    snapshot = Signal(object)
    time_grads = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    _ids = itertools.count(1)

    def __init__(
        self,
        graph: engine.Graph,
        spec: dict,
        start_paused: bool = False,
        host: TrainingProcess | None = None,
    ) -> None:
        super().__init__()
        self.graph = graph.to_dict()  # the snapshot that trains; the user's graph stays editable
        self.spec = dict(spec)
        self.start_paused = start_paused
        self.host = host if host is not None else TrainingProcess()
        self.run_id = next(self._ids)
        self._lock = threading.Lock()
        self._queued: list[tuple] | None = []  # controls given before the run was sent
        self._stop = False
        self._killed = False

    @property
    def process(self):
        return self.host.proc

    # --- controls (GUI thread) -----------------------------------------------------------------
    def _send(self, name: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            if self._queued is not None:
                self._queued.append((name, args, kwargs))
                return
        self.host.send((name, args, kwargs))

    def stop(self) -> None:
        self._stop = True
        self._send("stop")

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def step_once(self) -> None:
        self._send("step_once")

    def set_lr(self, lr: float) -> None:
        """Use ``lr`` from the next step on; ConfigError (here, at once) if it is not > 0."""
        self._send("set_lr", check_lr(lr))

    def set_watch(self, **watch: Any) -> None:
        """What to snapshot (see engine.training_process.LiveRun.set_watch)."""
        self._send("set_watch", **watch)

    def kill(self) -> None:
        """End the process now (it did not stop when asked)."""
        self._killed = True
        self.host.kill()

    # --- the thread's work -------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            self._run()
        finally:
            # Back to the GUI thread before this thread ends: Python may collect the worker
            # there later, and deleting a QObject that belongs to a finished thread crashed
            # the test process (SIGSEGV in the garbage collector).
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())

    def _run(self) -> None:
        try:
            proc = self.host.ensure()
        except OSError as e:
            self.failed.emit(f"cannot start the training process: {e}")
            return
        inbox = self.host.inbox
        with self._lock:  # the run first, then what was asked before it
            self.host.send(("run", (self.run_id, self.graph, self.spec, self.start_paused), {}))
            for msg in self._queued:
                self.host.send(msg)
            self._queued = None
        if not self._relay(inbox, proc):
            self.host.kill()  # stopped or broken: make sure it is gone (the next run makes one)
            proc.join(1.0)

    def _relay(self, inbox, proc) -> bool:
        """Emit each message of this run as its signal until "finished" or "failed" (True), or
        until the process ends without one (False): then a "failed" that says so, or a
        "finished" when it was stopped or killed."""
        while True:
            try:
                ready = inbox.poll(POLL_S)
                msg = inbox.recv() if ready else None
            except (EOFError, OSError):
                msg, ready = None, True  # the process closed its end: it is gone
            if msg is not None:
                run_id, kind, payload = msg
                if run_id != self.run_id:  # a late message of an earlier run
                    continue
                if kind in KINDS:
                    getattr(self, kind).emit(payload)
                if kind in ("finished", "failed"):
                    return True
                continue
            if ready or not proc.is_alive():
                proc.join(1.0)
                if self._stop or self._killed:
                    self.finished.emit({"event": "end", "reason": "stopped"})
                else:
                    code = proc.exitcode
                    self.failed.emit(
                        "the training process ended unexpectedly (exit code "
                        f"{code}{', out of memory?' if code == -9 else ''})"
                    )
                return False


class RunThread:
    """A worker in its own QThread; ``shutdown`` stops it and waits (bounded) for the thread."""

    def __init__(self, worker: TrainingWorker) -> None:
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("blockprop-training")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI thread,
        # which may itself be waiting for this thread to end.
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        worker.failed.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def running(self) -> bool:
        # At interpreter exit Python may delete the QThread before Qt stops calling us.
        return shiboken6.isValid(self.thread) and self.thread.isRunning()

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """Stop training and wait for the thread; True if it ended within ``timeout_ms``.
        The process gets half the time to stop by itself, then it is ended."""
        if not shiboken6.isValid(self.thread):
            return True
        self.worker.stop()
        if self.thread.wait(timeout_ms // 2):
            return True
        self.worker.kill()
        return self.thread.wait(timeout_ms - timeout_ms // 2)
