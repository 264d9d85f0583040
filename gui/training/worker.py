"""The training worker: runs ``engine.Trainer`` in a QThread on a snapshot of the graph.

napari's pattern: a QObject with a ``run`` slot, moved to its own QThread. It trains a compiled
copy of the graph (``graph.copy()`` -> ``build_model``), so the user's graph is never touched
from this thread, and it only ever sends COPIES of arrays to the GUI. To keep the GUI thread
cheap whatever the step rate, step events are batched (at most ``FLUSH_HZ`` signals a second)
and the heavier snapshots (filters, activations of one sample, all weights) are taken at most
``SNAPSHOT_HZ`` times a second, and only those the visible panels asked for (``set_watch``).

The controls (stop, pause, resume, step_once, set_lr) are called from the GUI thread and go
straight to the trainer, whose controls are thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

import engine
from engine.errors import BlockPropError

FLUSH_HZ = 10.0
SNAPSHOT_HZ = 5.0
CONV_TYPES = ("Conv2D", "Conv1D", "ConvTranspose2D")
RECURRENT_TYPES = ("RNN", "LSTM", "GRU")
N_SAMPLES = 12  # validation samples shown with their predicted and true labels
MAX_VAL_SHOWN = 1000  # validation samples copied to the GUI (activations of a chosen one)


def block_outputs(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Forward ``x`` (evaluation mode) and keep every block's output.

    Shapes: x (N, *input_shape) -> {block id: (N, *out_shape)}. The same walk as
    ``Model.forward`` (topological order, ``model.inputs`` wiring) without freeing outputs.
    """
    outs: dict[str, np.ndarray] = {}
    for bid, layer in model.layers.items():
        srcs = model.inputs[bid]
        if not srcs:
            inp: Any = x
        elif type(layer).arity[1] == 1:
            inp = outs[srcs[0]]
        else:
            inp = [outs[s] for s in srcs]
        outs[bid] = layer.forward(inp, training=False)
    return outs


def predict_in_batches(model, loss, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """``loss.predict`` of the model's output on ``X`` (evaluation mode), batch by batch."""
    preds = [loss.predict(model.forward(X[i:i + batch], training=False))
             for i in range(0, len(X), batch)]
    return np.concatenate(preds) if preds else np.zeros((0,), np.int64)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class. Shapes: (N,) or (N, T) -> (n, n)."""
    t, p = np.ravel(true).astype(np.int64), np.ravel(pred).astype(np.int64)
    ok = (t >= 0) & (t < n) & (p >= 0) & (p < n)
    return np.bincount(t[ok] * n + p[ok], minlength=n * n).reshape(n, n)


class TrainingWorker(QObject):
    """Signals carry plain dicts/lists of Python numbers and NumPy copies.

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

    def __init__(self, graph: engine.Graph, spec: dict, start_paused: bool = False) -> None:
        super().__init__()
        self.graph = graph.copy()  # the compiled snapshot; the user's graph stays editable
        self.spec = dict(spec)
        self.trainer = None
        self.model = None
        self.loss = None
        self._lock = threading.Lock()
        self._stop = False
        self._paused = start_paused
        self._steps_wanted = 0
        self._watch: dict = {"filters": False, "activations": False, "weights": False,
                             "confusion": False, "sample": 0}
        self._snapshot_now = False
        self._pending: list[dict] = []
        self._last_flush = 0.0
        self._last_snapshot = 0.0
        self._val: tuple[np.ndarray, np.ndarray] | None = None
        self._data = None
        self._step = 0
        self._confusion_step = -1  # the step the last confusion matrix was computed at

    # --- controls (GUI thread) -----------------------------------------------------------------
    def stop(self) -> None:
        with self._lock:
            self._stop = True
            t = self.trainer
        if t is not None:
            t.stop()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            t = self.trainer
        if t is not None:
            t.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            t = self.trainer
        if t is not None:
            t.resume()

    def step_once(self) -> None:
        with self._lock:
            t = self.trainer
            if t is None:
                self._steps_wanted += 1
        if t is not None:
            t.step_once()

    def set_lr(self, lr: float) -> None:
        t = self.trainer
        if t is not None:
            t.set_lr(float(lr))

    def set_watch(self, **watch: Any) -> None:
        """What to snapshot: filters, activations, weights (all weights, for Try it), confusion
        (the confusion matrix at every epoch end, not only the last) as bools; sample (int)."""
        w = dict(self._watch)
        w.update(watch)
        self._watch = w  # one rebinding: the worker thread reads either the old or the new dict
        self._snapshot_now = True

    @property
    def stopping(self) -> bool:
        return self._stop

    # --- the thread's work -------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            self._prepare()
        except BlockPropError as e:
            self.failed.emit(str(e))
            return
        except Exception as e:  # a bug, not a user error: still never kill the GUI
            self.failed.emit(f"cannot start training: {type(e).__name__}: {e}\n\n"
                             + traceback.format_exc(limit=6))
            return
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
        except BlockPropError as e:
            self._flush()
            self.failed.emit(str(e))
            return
        except Exception as e:
            self._flush()
            self.failed.emit(f"training stopped by an error: {type(e).__name__}: {e}\n\n"
                             + traceback.format_exc(limit=6))
            return
        self._flush()
        self._take_snapshot(force_all=True)
        end["weights"] = {k: v.copy() for k, v in self.model.params.items()}
        if self._confusion_step != self._step:
            end.update(self._confusion())
        self.finished.emit(end)

    def _prepare(self) -> None:
        from engine.data import load_dataset
        from engine.losses import get_loss
        from engine.model import build_model
        from engine.trainer import Trainer

        spec, seed = self.spec, int(self.spec.get("seed", 0))
        if not spec.get("dataset"):
            raise engine.ConfigError("choose a data set in the Training panel")
        data = load_dataset(dict(spec["dataset"]), seed=seed)
        model = build_model(self.graph, seed=seed)
        kw = {k: spec[k] for k in ("loss", "optimizer", "batch_size", "epochs", "val_split",
                                   "schedule", "l1", "l2", "clip_norm") if k in spec}
        trainer = Trainer(model, data, seed=seed, **kw)
        with self._lock:
            self.trainer, self.model, self._data = trainer, model, data
            stop, paused, wanted = self._stop, self._paused, self._steps_wanted
        self.loss = get_loss(kw.get("loss", "cross_entropy"))
        if stop:
            trainer.stop()
        if paused:
            trainer.pause()
        for _ in range(wanted):
            trainer.step_once()
        Xv, yv = trainer.val_data
        self._val = (Xv, yv)
        self.prepared.emit(self._info(data, model, trainer))

    def _info(self, data, model, trainer) -> dict:
        blocks = [b for b, layer in model.layers.items() if layer.params]
        n_train = len(data) - len(self._val[0])
        spe = getattr(trainer, "steps_per_epoch", None) or max(
            1, math.ceil(n_train / int(self.spec.get("batch_size", 32))))
        epochs = int(self.spec.get("epochs", 1))
        Xv, yv = self._val
        return {
            "blocks": blocks,
            "all_blocks": list(model.layers),
            "block_types": {b: type(layer).type_name for b, layer in model.layers.items()},
            "out_shapes": {b: tuple(layer.out_shape or ()) for b, layer in model.layers.items()},
            "in_channels": {b: int(layer.params["weight"].shape[1])
                            for b, layer in model.layers.items()
                            if type(layer).type_name in CONV_TYPES and "weight" in layer.params},
            "task": data.task, "n_classes": data.n_classes,
            "class_names": list(data.class_names) if data.class_names else None,
            "input_shape": tuple(data.input_shape), "dataset": data.name,
            "normalisation": data.normalisation,
            "vocab": list(data.vocab) if data.vocab else None,
            "meta": {k: v for k, v in data.meta.items()
                     if isinstance(v, (int, float, str, bool, type(None)))},
            "steps_per_epoch": int(spe), "total_steps": int(spe) * epochs, "epochs": epochs,
            "n_train": int(n_train), "n_val": int(len(Xv)),
            "val_X": np.array(Xv[:MAX_VAL_SHOWN], copy=True),
            "val_y": np.array(yv[:MAX_VAL_SHOWN], copy=True),
            "n_val_shown": int(min(len(Xv), MAX_VAL_SHOWN)),
            "graph": self.graph.to_dict(),
        }

    def _on_step(self, ev: dict) -> None:
        e = dict(ev)
        e["grad_rms"] = dict(ev.get("grad_rms") or {})
        e["t"] = time.perf_counter()
        self._step = int(e.get("step", self._step + 1))
        self._pending.append(e)
        now = e["t"]
        if self._paused or now - self._last_flush >= 1.0 / FLUSH_HZ:
            self._flush()
        w = self._watch
        wants = w["filters"] or w["activations"] or w["weights"]
        if wants and (self._paused or self._snapshot_now
                      or now - self._last_snapshot >= 1.0 / SNAPSHOT_HZ):
            self._take_snapshot()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._last_flush = time.perf_counter()
        tg = getattr(self.trainer, "last_time_grads", None) or {}
        if tg:
            self.time_grads.emit({b: np.array(v, dtype=np.float64, copy=True)
                                  for b, v in tg.items()})
        self.steps.emit(batch)

    def _take_snapshot(self, force_all: bool = False) -> None:
        self._snapshot_now = False
        self._last_snapshot = time.perf_counter()
        w = self._watch
        model = self.model
        snap: dict[str, Any] = {"step": self._step}
        if w["filters"] or force_all:
            snap["filters"] = {b: layer.params["weight"].copy()
                               for b, layer in model.layers.items()
                               if type(layer).type_name in CONV_TYPES and "weight" in layer.params}
        if (w["activations"] or force_all) and self._val is not None and len(self._val[0]):
            i = int(min(max(0, w["sample"]), len(self._val[0]) - 1))
            x = self._val[0][i:i + 1]
            outs = block_outputs(model, x)
            snap["activations"] = {b: np.array(o[0], copy=True) for b, o in outs.items()
                                   if isinstance(o, np.ndarray)}
            snap["gates"] = {b: {g: np.array(a[0], copy=True) for g, a in layer.gates.items()}
                             for b, layer in model.layers.items()
                             if isinstance(getattr(layer, "gates", None), dict)}
            snap["sample"] = {"index": i, "x": np.array(x[0], copy=True),
                              "y": np.array(self._val[1][i], copy=True)}
        if w["weights"] and not force_all:
            snap["weights"] = {k: v.copy() for k, v in model.params.items()}
        self.snapshot.emit(snap)

    def _on_epoch(self, ev: dict) -> None:
        e = dict(ev)
        last = int(ev.get("epoch", 0)) >= int(self.spec.get("epochs", 1))
        if self._watch["confusion"] or last:
            e.update(self._confusion())
        self.epoch.emit(e)

    def _confusion(self) -> dict:
        """{"confusion": (C, C) counts, "samples": {"pred": first predictions}} on the
        validation set, for classifiers; {} otherwise."""
        if self._val is None or self.loss is None:
            return {}
        Xv, yv = self._val
        n = self._n_classes()
        if not n or not len(Xv):
            return {}
        pred = predict_in_batches(self.model, self.loss, Xv)
        self._confusion_step = self._step
        return {"confusion": confusion_matrix(yv, pred, n),
                "samples": {"pred": np.array(pred[:N_SAMPLES], copy=True)}}

    def _n_classes(self) -> int | None:
        data = self._data
        if data is None or data.task == "regression":
            return None
        return data.n_classes


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
        """Stop training and wait for the thread; True if it ended within ``timeout_ms``."""
        if not shiboken6.isValid(self.thread):
            return True
        self.worker.stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
