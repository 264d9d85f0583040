"""A training run that reports what the app's live panels show, in a process of its own.

``LiveRun`` wraps ``engine.Trainer``: it loads the data, builds the model from a graph (a dict,
as saved), trains it and hands small messages to a ``send(kind, payload)`` callable:

- ``("prepared", info)``: blocks, shapes, the data set's task and classes, steps per epoch and
  up to ``MAX_VAL_SHOWN`` validation samples (for the activations of a chosen sample);
- ``("steps", [step events + "t"])``: batched, at most ``FLUSH_HZ`` messages a second;
- ``("time_grads", {block: (T,) array})``: the latest BPTT profile of each recurrent block;
- ``("epoch", event [+ "confusion", "samples"])``;
- ``("snapshot", {"step", "filters", "activations", "gates", "sample", "attention",
  "weights"})``: only what
  the visible panels asked for (``set_watch``), at most ``SNAPSHOT_HZ`` times a second;
- ``("finished", end event + "weights" [+ "confusion"])`` or ``("failed", message)``, last.

Every payload is plain Python numbers, strings and NumPy COPIES, so it can be pickled.

Why a process: the GUI paints with pyqtgraph, partly in Python. In one process the painting
holds the GIL while the training thread waits for it between NumPy calls, and training ran
16 % slower with three live panels at 25 Hz (benchmarks/gui_training_overhead.py). In its own
process training has its own interpreter, and a crash or a stuck data load cannot take the
app with it: the app can always end the process. ``child_main`` is the process's entry point;
``gui.training.worker`` starts it and relays the messages as Qt signals.

The controls (stop, pause, resume, step_once, set_lr, set_watch) are thread-safe: in the
training process its main thread reads them from the app while a thread trains.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import BlockPropError, ConfigError
from engine.heap import keep_freed_memory
from engine.training_spec import check_lr

FLUSH_HZ = 10.0
SNAPSHOT_HZ = 5.0
N_SAMPLES = 12  # validation samples shown with their predicted and true labels
MAX_VAL_SHOWN = 1000  # validation samples sent to the app (activations of a chosen one)
CONTROLS = ("stop", "pause", "resume", "step_once", "set_lr", "set_watch")

Send = Callable[[str, Any], None]


def predict_in_batches(model, loss, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """``loss.predict`` of the model's output on ``X`` (evaluation mode), batch by batch."""
    preds = [loss.predict(model.predict(X[i : i + batch])) for i in range(0, len(X), batch)]
    return np.concatenate(preds) if preds else np.zeros((0,), np.int64)


def attention_of(model, val: tuple, sample: int, step: int | None = None) -> dict:
    """The alignments (N=1: (Tq, Tm) each) of every Attention-like block (one that keeps an
    ``alignment``) for validation sample ``sample``: {"weights": {block: array}, "index", "x",
    "y", "step"}, all copies (the Attention panel's snapshot)."""
    X, y = val
    i = int(min(max(0, sample), len(X) - 1))
    model.forward(X[i : i + 1], training=False)
    weights = {
        b: np.array(layer.alignment[0], copy=True)
        for b, layer in model.layers.items()
        if layer.shows_alignment and getattr(layer, "alignment", None) is not None
    }
    return {
        "weights": weights,
        "index": i,
        "x": np.array(X[i], copy=True),
        "y": np.array(y[i], copy=True),
        "step": step,
    }


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class. Shapes: (N,) or (N, T) -> (n, n)."""
    t, p = np.ravel(true).astype(np.int64), np.ravel(pred).astype(np.int64)
    ok = (t >= 0) & (t < n) & (p >= 0) & (p < n)
    return np.bincount(t[ok] * n + p[ok], minlength=n * n).reshape(n, n)


class LiveRun:
    """One run: ``run()`` trains and reports through ``send`` (see the module docstring)."""

    def __init__(self, graph: dict, spec: dict, send: Send, start_paused: bool = False) -> None:
        self.graph_dict = graph
        self.spec = dict(spec)
        self.send = send
        self.trainer = None
        self.prepared = False  # prepare() succeeded: train() may run
        self.model = None
        self.loss = None
        self._lock = threading.Lock()
        self._stop = False
        self._paused = start_paused
        self._steps_wanted = 0
        self._watch: dict = {
            "filters": False,
            "activations": False,
            "weights": False,
            "confusion": False,
            "sample": 0,
            "attention": False,
            "attention_sample": 0,
        }
        self._snapshot_now = False
        self._pending: list[dict] = []
        self._last_flush = 0.0
        self._last_snapshot = 0.0
        self._val: tuple[np.ndarray, np.ndarray] | None = None
        self._data = None
        self._step = 0
        self._confusion_step = -1  # the step the last confusion matrix was computed at

    # --- controls (any thread) -----------------------------------------------------------------
    def _control(self, method: str, **state: bool) -> None:
        """Record ``state`` (for a trainer not made yet), then call ``trainer.method()``."""
        with self._lock:
            for name, value in state.items():
                setattr(self, name, value)
            t = self.trainer
        if t is not None:
            getattr(t, method)()

    def stop(self) -> None:
        self._control("stop", _stop=True)

    def pause(self) -> None:
        self._control("pause", _paused=True)

    def resume(self) -> None:
        self._control("resume", _paused=False)

    def step_once(self) -> None:
        with self._lock:
            t = self.trainer
            if t is None:
                self._steps_wanted += 1
        if t is not None:
            t.step_once()

    def set_lr(self, lr: float) -> None:
        lr = check_lr(lr)
        t = self.trainer
        if t is not None:
            t.set_lr(lr)

    def set_watch(self, **watch: Any) -> None:
        """What to snapshot: filters, activations, weights (all weights, for Try it), confusion
        (the confusion matrix at every epoch end, not only the last) as bools; sample (int)."""
        w = dict(self._watch)
        w.update(watch)
        self._watch = w  # one rebinding: the training thread reads either the old or the new
        self._snapshot_now = True

    # --- training ------------------------------------------------------------------------------
    def run(self) -> None:
        """Train to the end (or a stop); the last message is "finished" or "failed"."""
        if self.prepare():
            self.train()

    def prepare(self) -> bool:
        """Load the data, build the model and the trainer and send "prepared"; False (and a
        "failed" message) if that failed."""
        try:
            self._prepare()
            self.prepared = True
            return True
        except BlockPropError as e:
            self.send("failed", str(e))
        except Exception as e:  # a bug, not a user error: say what it was
            self.send(
                "failed",
                f"cannot start training: {type(e).__name__}: {e}\n\n"
                + traceback.format_exc(limit=6),
            )
        return False

    def start_helper(self) -> bool:
        """Fork the helper process of a two-process run (``Trainer.start_helper``); False (and
        a "failed" message) if that failed. Call it after ``prepare``, with one thread."""
        try:
            self.trainer.start_helper()
            return True
        except Exception as e:  # noqa: BLE001 - fork or the shared memory refused
            self.send("failed", f"cannot start training: {type(e).__name__}: {e}")
        return False

    def train(self) -> None:
        """Train the prepared run to the end (or a stop); the last message is "finished" or
        "failed"."""
        end: dict = {"event": "end", "reason": "stopped"}
        try:
            for ev in self.trainer.run():
                kind = ev.get("event")
                if kind == "step":
                    self._on_step(ev)
                elif kind == "epoch":
                    self._flush()
                    self._on_epoch(ev)
                elif kind == "end":
                    end = dict(ev)
            self._flush()
            self._take_snapshot(force_all=True)
            end["weights"] = {k: v.copy() for k, v in self.model.params.items()}
            if self._confusion_step != self._step:
                end.update(self._confusion())
        except BlockPropError as e:
            self._flush()
            self.send("failed", str(e))
            return
        except Exception as e:
            self._flush()
            self.send(
                "failed",
                f"training stopped by an error: {type(e).__name__}: {e}\n\n"
                + traceback.format_exc(limit=6),
            )
            return
        self.send("finished", end)

    def _prepare(self) -> None:
        from engine.graph import Graph
        from engine.trainer import Trainer

        if not self.spec.get("dataset"):
            raise ConfigError("choose a data set in the Training panel")
        graph = Graph.from_dict(self.graph_dict)
        graph.training = self.spec
        trainer = Trainer.from_graph(graph)
        model, data = trainer.model, trainer.dataset
        with self._lock:
            self.trainer, self.model, self._data = trainer, model, data
            stop, paused, wanted = self._stop, self._paused, self._steps_wanted
        self.loss = trainer.loss_fn
        if stop:
            trainer.stop()
        if paused:
            trainer.pause()
        for _ in range(wanted):
            trainer.step_once()
        self._val = trainer.val_data
        self.send("prepared", self._info(data, model, trainer))

    def _info(self, data, model, trainer) -> dict:
        blocks = [b for b, layer in model.layers.items() if layer.params]
        n_train = len(trainer.train_data[0])
        spe = max(1, math.ceil(n_train / trainer.batch_size))
        epochs = trainer.epochs
        Xv, yv = self._val
        return {
            "blocks": blocks,
            "all_blocks": list(model.layers),
            "block_types": {b: type(layer).type_name for b, layer in model.layers.items()},
            "block_params": {
                b: sum(v.size for v in model.layers[b].params.values()) for b in blocks
            },
            "out_shapes": {b: tuple(layer.out_shape or ()) for b, layer in model.layers.items()},
            "in_channels": {
                b: int(layer.params["weight"].shape[1])
                for b, layer in model.layers.items()
                if layer.shows_filters and "weight" in layer.params
            },
            "task": data.task,
            "n_classes": data.n_classes,
            "class_names": list(data.class_names) if data.class_names else None,
            "input_shape": tuple(data.input_shape),
            "dataset": data.name,
            "normalisation": data.normalisation,
            "vocab": list(data.vocab) if data.vocab else None,
            # a seq2seq sample's layout (engine.decoding.Layout): the Attention panel's token
            # labels, Try it's decoding
            "seq2seq": data.meta.get("seq2seq"),
            "meta": {
                k: v
                for k, v in data.meta.items()
                if isinstance(v, (int, float, str, bool, type(None)))
            },
            "steps_per_epoch": int(spe),
            "total_steps": int(spe) * epochs,
            "epochs": epochs,
            "n_train": int(n_train),
            "n_val": int(len(Xv)),
            "val_X": np.array(Xv[:MAX_VAL_SHOWN], copy=True),
            "val_y": np.array(yv[:MAX_VAL_SHOWN], copy=True),
            "n_val_shown": int(min(len(Xv), MAX_VAL_SHOWN)),
            "graph": self.graph_dict,
            # engine.parallel: 2 when each step trains half the batch in a helper process
            "processes": trainer.processes,
            "processes_reason": trainer.processes_reason,
        }

    def _on_step(self, ev: dict) -> None:
        e = dict(ev)
        e["grad_rms"] = dict(ev.get("grad_rms") or {})
        e["t"] = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process
        self._step = int(e.get("step", self._step + 1))
        self._pending.append(e)
        now = e["t"]
        if self._paused or now - self._last_flush >= 1.0 / FLUSH_HZ:
            self._flush()
        w = self._watch
        wants = w["filters"] or w["activations"] or w["weights"] or w["attention"]
        if wants and (
            self._paused or self._snapshot_now or now - self._last_snapshot >= 1.0 / SNAPSHOT_HZ
        ):
            self._take_snapshot()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._last_flush = time.perf_counter()
        tg = self.trainer.last_time_grads
        if tg:
            self.send(
                "time_grads", {b: np.array(v, dtype=np.float64, copy=True) for b, v in tg.items()}
            )
        self.send("steps", batch)

    def _take_snapshot(self, force_all: bool = False) -> None:
        self._snapshot_now = False
        self._last_snapshot = time.perf_counter()
        w = self._watch
        model = self.model
        snap: dict[str, Any] = {"step": self._step}
        if w["filters"] or force_all:
            snap["filters"] = {
                b: layer.params["weight"].copy()
                for b, layer in model.layers.items()
                if layer.shows_filters and "weight" in layer.params
            }
        if (w["activations"] or force_all) and self._val is not None and len(self._val[0]):
            i = int(min(max(0, w["sample"]), len(self._val[0]) - 1))
            x = self._val[0][i : i + 1]
            outs = model.block_outputs(x)
            snap["activations"] = {
                b: np.array(o[0], copy=True) for b, o in outs.items() if isinstance(o, np.ndarray)
            }
            snap["gates"] = {
                b: {g: np.array(a[0], copy=True) for g, a in layer.gates.items()}
                for b, layer in model.layers.items()
                if isinstance(getattr(layer, "gates", None), dict)
            }
            snap["sample"] = {
                "index": i,
                "x": np.array(x[0], copy=True),
                "y": np.array(self._val[1][i], copy=True),
            }
        if (w["attention"] or force_all) and self._val is not None and len(self._val[0]):
            snap["attention"] = attention_of(model, self._val, w["attention_sample"], self._step)
        if w["weights"] and not force_all:
            snap["weights"] = {k: v.copy() for k, v in model.params.items()}
        self.send("snapshot", snap)

    def _on_epoch(self, ev: dict) -> None:
        e = dict(ev)
        last = int(ev.get("epoch", 0)) >= self.trainer.epochs
        if self._watch["confusion"] or last:
            e.update(self._confusion())
        self.send("epoch", e)

    def _confusion(self) -> dict:
        """{"confusion": (C, C) counts, "samples": {"pred": first predictions}} on the
        validation set, for classifiers; {} otherwise."""
        if self._val is None or self.loss is None:
            return {}
        Xv, yv = self._val
        data = self._data
        n = None if data is None or data.task == "regression" else data.n_classes
        if not n or not len(Xv):
            return {}
        pred = predict_in_batches(self.model, self.loss, Xv)
        self._confusion_step = self._step
        keep = np.asarray(yv) != 0 if self.trainer.spec.get("mask_padding") else slice(None)
        return {  # with mask_padding, padding positions (class 0) are not counted
            "confusion": confusion_matrix(np.asarray(yv)[keep], np.asarray(pred)[keep], n),
            "samples": {"pred": np.array(pred[:N_SAMPLES], copy=True)},
        }


def warm_up() -> None:
    """Import what a run will need (a first import of scikit-learn takes about a second)."""
    import engine.data  # noqa: F401
    import engine.trainer  # noqa: F401

    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:  # only the built-in data sets that need it will say so
        pass


def _run_guarded(run: LiveRun, part: str = "run") -> None:
    """``run.run()`` (or another ``part``: "prepare", "train"), and a "failed" message if even
    that raised (say, a payload that could not be sent): the app waits for the run's last
    message and must get one."""
    try:
        getattr(run, part)()
    except Exception as e:
        try:
            run.send("failed", f"training stopped by an error: {type(e).__name__}: {e}")
        except Exception:
            pass  # the pipe is gone: the app sees the process end


def child_main(out, commands) -> None:
    """The training process: it serves runs one after another, so the second run starts
    warm (NumPy, the engine and the data sets' libraries already imported).

    ``commands`` (a ``multiprocessing`` Connection) brings ``(name, args, kwargs)`` tuples:
    ``("warm", (), {})`` imports what runs need (``warm_up``);
    ``("run", (run_id, graph, spec, start_paused), {})`` starts a LiveRun; the controls
    (CONTROLS) go to the current run; ``None`` or a closed pipe stops it and ends the
    process. Each message of a run goes out through ``out`` as ``(run_id, kind, payload)``.
    The pipe keeps the order: a control sent for a run that has just ended reaches that run,
    never the next one.

    A run is prepared (data, model) in one thread and trained in another, so this thread
    keeps reading the controls meanwhile. Between the two, with this thread alone, it forks
    the helper process of a two-process run (engine.parallel): a fork copies only the
    calling thread, and one made beside a running thread may inherit a lock held for ever.
    """
    keep_freed_memory()  # engine.heap: steps reuse freed memory instead of page-faulting it in
    lock = threading.Lock()
    current: LiveRun | None = None
    worker: threading.Thread | None = None
    preparing = False  # worker is preparing current; training starts when it is done

    def start(part: str) -> threading.Thread:
        thread = threading.Thread(
            target=_run_guarded, args=(current, part), name=f"blockprop-{part}", daemon=True
        )
        thread.start()
        return thread

    def train_prepared() -> threading.Thread | None:
        """Once ``worker`` has prepared ``current``: fork its helper, then train it."""
        worker.join()
        if not current.prepared or not current.start_helper():
            return None  # "failed" was sent
        return start("train")

    def sender(run_id: int) -> Send:
        def send(kind: str, payload: Any) -> None:
            with lock:
                try:
                    out.send((run_id, kind, payload))
                except (BrokenPipeError, EOFError, OSError):  # the app is gone
                    if current is not None:
                        current.stop()

        return send

    while True:
        if preparing and not worker.is_alive():
            preparing = False
            worker = train_prepared()
        try:
            if preparing and not commands.poll(0.02):
                continue
            msg = commands.recv()
        except (EOFError, OSError):
            msg = None
        if msg is None:
            break
        name, args, kwargs = msg
        if name == "run":  # the app waits for the current run's "finished"
            if preparing:
                current.stop()
                preparing = False
                worker = train_prepared()  # stopped: it ends at once, without a helper
            if worker is not None and worker.is_alive():
                current.stop()
                worker.join()
            run_id, graph, spec, paused = args
            current = LiveRun(graph, spec, sender(run_id), start_paused=paused)
            worker, preparing = start("prepare"), True
        elif name == "warm":
            warm_up()
        elif name in CONTROLS and current is not None:
            try:
                getattr(current, name)(*args, **kwargs)
            except BlockPropError:
                pass  # the app checks the values it sends; a bad one changes nothing
    if current is not None:
        current.stop()
    if worker is not None:
        worker.join(5.0)
        if preparing and not worker.is_alive():
            worker = train_prepared()  # stopped: sends its "finished" at once
            if worker is not None:
                worker.join(5.0)
    out.close()
