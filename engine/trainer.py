"""engine.Trainer: mini-batch training as a plain generator of metric events.

``trainer.run()`` yields (``app.py train --log`` writes them, one JSON object a line):
    {"event": "step", "epoch": e, "step": k, "loss": ..., "lr": ..., "grad_rms": {block: ...}}
    {"event": "epoch", "epoch": e, "train_loss", "val_loss", "train_acc", "val_acc", "seconds"}
    {"event": "end", "reason": "finished" | "stopped" | "diverged", ...}
A graph with extra heads (engine.heads) trains on the weighted total loss: "loss",
"train_loss" and "val_loss" are that total, and step events add "heads" {block: its own loss},
epoch events "train_heads" and "val_heads"; accuracy is the main output's.
``epoch`` counts from 1, ``step`` counts every step of the run from 1. Each step: forward
(training), loss (+ L1/L2 penalty), backward, gradient RMS per block, clipping, optimizer step.

A run ends as "diverged" when a step's loss is not finite or explodes (more than
``LOSS_EXPLODES`` times the first step's), when its gradients are not finite, when an update
leaves a weight that is not finite, or when the validation loss does either at an epoch's end
(with no validation data, the loss of one training batch after the last update is looked at).
The bad step is not applied (or is undone), and the weights left are always finite: those of
the last step whose loss was sane, from a copy kept every step for small models and every few
steps for large ones (``snapshot_every``), or the current ones when only the gradients failed.

``stop``, ``pause``, ``resume``, ``step_once`` and ``set_lr`` may be called from any thread
while another thread iterates ``run()``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import data as data_sets
from engine.errors import ConfigError
from engine.heads import HeadLosses, same_heads
from engine.losses import get_loss
from engine.model import Model, build_model
from engine.optim import clip_grad_norm, make_optimizer, regularize
from engine.parallel import (
    HelperLost,
    SplitStep,
    choose_processes,
    requested_processes,
)
from engine.scheduled_sampling import ScheduledSampling
from engine.schedules import make_schedule
from engine.training_data import check_fit, prepare_data
from engine.training_spec import DEFAULT_OPTIMIZER, check_lr, check_mask_padding, check_training

if TYPE_CHECKING:
    from engine.graph import Graph

EVAL_BATCH = 512  # evaluation runs in batches of at least this many samples
SNAPSHOT_EVERY = (
    100  # at most this many steps between copies of the weights kept for a diverged run
)
SNAPSHOT_VALUES = 100_000  # one step between copies per this many weights (a copy stays cheap)
LOSS_EXPLODES = 1e4  # a loss this many times the first step's (and over 1) has diverged
GRADIENT_NOT_FINITE = "gradient not finite"


def _sane(loss: float, limit: float) -> bool:
    """A finite loss no larger than ``limit`` (NaN is not)."""
    return math.isfinite(loss) and loss <= limit


def forward_backward(
    model: Any, loss_fn: Any, X: np.ndarray, y: np.ndarray, classifier: bool, idx: np.ndarray
) -> tuple[float, int]:
    """Forward and loss of the batch ``X[idx]``, then backward unless the loss is not finite
    (the layers then hold its gradients). Returns (loss, correct predictions; 0 when not
    ``classifier``). A step in one process, or either half of a split one (engine.parallel)."""
    yb = y[idx]
    out = model.forward(X[idx], training=True)
    loss = loss_fn.forward(out, yb)
    hits = loss_fn.hits(out, yb) if classifier else 0
    if math.isfinite(loss):
        model.backward(loss_fn.backward(), input_grad=False)
    return loss, hits


def _penalty(params: dict[str, np.ndarray], l1: float, l2: float) -> float:
    """l1 * sum|w| + l2/2 * sum w^2 over weights, the term ``regularize`` adds to the loss."""
    total = 0.0
    for k, w in params.items():
        if k.rsplit(".", 1)[-1].startswith("weight"):
            if l1:
                total += l1 * float(np.abs(w).sum())
            if l2:
                total += 0.5 * l2 * float(np.vdot(w, w))
    return total


class Trainer:
    """Trains ``model`` on ``dataset`` (an ``engine.data.Dataset``); see the module docstring.

    Attributes: ``model`` (the live model), ``train_data`` and ``val_data`` ((X, y) pairs),
    ``last_grad_rms`` {block: float} and ``last_time_grads`` {block: (T,) array} after each
    step (``last_time_grads_reverse`` for the backward direction of bidirectional blocks),
    ``history`` (the epoch events so far), ``spec`` (the normalised settings).
    """

    def __init__(
        self,
        model: Model,
        dataset: Any,
        loss: str = "cross_entropy",
        optimizer: dict | str | None = None,
        batch_size: int = 32,
        epochs: int = 1,
        seed: int = 0,
        val_split: float = 0.2,
        schedule: dict | str | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        clip_norm: float | None = None,
        processes: int | str | None = None,
        augment: dict | None = None,
        test_split: float = 0.0,
        cross_validation: dict | None = None,
        scheduled_sampling: float = 0.0,
        mask_padding: bool = False,
        heads: list | None = None,
    ) -> None:
        self.spec = check_training(
            {
                **({"heads": heads} if heads else {}),
                **({"augment": augment} if augment is not None else {}),
                **({"cross_validation": cross_validation} if cross_validation else {}),
                "test_split": test_split,
                "scheduled_sampling": scheduled_sampling,
                "mask_padding": mask_padding,
                "loss": loss,
                "optimizer": DEFAULT_OPTIMIZER if optimizer is None else optimizer,
                "batch_size": batch_size,
                "epochs": epochs,
                "seed": seed,
                "val_split": val_split,
                "schedule": schedule,
                "l1": l1,
                "l2": l2,
                "clip_norm": clip_norm,
            },
            need_dataset=False,
        )
        # How many processes a step runs in (engine.parallel): "auto", 1 or 2; how the machine
        # runs it, not what it computes, so it is no setting of the graph's file.
        self.processes_requested = requested_processes(processes)
        self.model = model
        self.dataset = dataset
        # mask_padding: targets of class 0 (padding) are not counted (PyTorch's ignore_index)
        self.loss_fn = get_loss(
            self.spec["loss"], **({"ignore_index": 0} if self.spec.get("mask_padding") else {})
        )
        self.optimizer = make_optimizer(self.spec["optimizer"])
        self.schedule = make_schedule(self.spec["schedule"])
        self.lr0 = float(self.spec["optimizer"]["lr"])
        self.batch_size = self.spec["batch_size"]
        self.epochs = self.spec["epochs"]
        self.classifier = self.spec["loss"] != "mse"
        data = prepare_data(dataset, self.spec, model)
        self.train_data, self.val_data, self._test_data = data.train, data.val, data.test
        self._aug, self._n_classes, self._score = data.aug, data.n_classes, data.score
        self._rng = np.random.default_rng([self.spec["seed"], 1])  # the shuffling's own stream
        check_fit(model, self.loss_fn, self.spec["loss"], data)
        check_mask_padding(self.spec, model.output_shape)
        self.last_grad_rms: dict[str, float] = {}
        self.last_time_grads: dict[str, np.ndarray] = {}
        self.last_time_grads_reverse: dict[str, np.ndarray] = {}
        self.history: list[dict] = []
        self._sampled: ScheduledSampling | None = None
        if self.spec.get("scheduled_sampling"):
            self._sampled = ScheduledSampling(
                self._aug if self._aug is not None else self.train_data[0],
                model,
                getattr(dataset, "meta", {}) or {},
                self._n_classes or 0,
                self.spec["scheduled_sampling"],
                np.random.default_rng([self.spec["seed"], 3]),
            )
        # Extra outputs (engine.heads): their losses, weighted. The model carries its heads and
        # weights (from its graph); ``heads`` must agree.
        if heads is not None and not same_heads(self.spec.get("heads", []), model.heads):
            raise ConfigError(
                "training: 'heads' differ from the model's extra outputs "
                f"({', '.join(model.heads) or 'none'}): build the model from the same graph"
            )
        self._heads = (
            HeadLosses(
                model,
                self.spec["loss"],
                **({"ignore_index": 0} if self.spec.get("mask_padding") else {}),
            )
            if model.heads
            else None
        )
        self.last_head_losses: dict[str, float] = {}
        self.last_eval_heads: dict[str, float] = {}
        self.processes, self.processes_reason = choose_processes(
            model, self.batch_size, self.processes_requested
        )
        if self.processes == 2 and (why := self._one_process_reason()):
            self.processes, self.processes_reason = 1, why
        self.split_lost: str | None = None  # why a split run went on in one process
        self._split: SplitStep | None = None
        # Per block with parameters: its layer, (local, full) names, and 1 / number of values.
        self._blocks = [
            (
                n,
                layer,
                [(k, f"{n}.{k}") for k in layer.params],
                1.0 / max(1, sum(v.size for v in layer.params.values())),
            )
            for n, layer in model.layers.items()
            if layer.params
        ]
        self._recurrent = [(n, layer) for n, layer in model.layers.items() if layer.recurrent]
        self._has_buffers = any(layer.buffers for layer in model.layers.values())
        self._flat_grads: np.ndarray | None = None  # see _forward_backward
        # Thread-safe controls.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._paused = False
        self._single = 0
        self._lr_override: float | None = None

    @classmethod
    def from_graph(
        cls, graph: Graph, model: Model | None = None, dataset: Any = None, **overrides: Any
    ) -> Trainer:
        """A Trainer set up from ``graph.training`` (with ``overrides`` on top; ``lr=`` sets the
        optimizer's learning rate). Builds the model and loads the data set unless given;
        ``dataset`` is a loaded Dataset, or a name / spec that replaces the graph's."""
        spec = dict(graph.training or {})
        if isinstance(dataset, (str, dict)):  # a data set's name or spec, not the data itself
            overrides["dataset"], dataset = dataset, None
        lr = overrides.pop("lr", None)
        processes = overrides.pop("processes", None)
        ds = overrides.get("dataset")
        if (
            isinstance(ds, str)
            and isinstance(spec.get("dataset"), dict)
            and spec["dataset"].get("name") == ds
        ):
            overrides["dataset"] = spec["dataset"]  # same data set: keep the graph's options
        spec.update(overrides)
        if lr is not None:
            opt = spec.get("optimizer", DEFAULT_OPTIMIZER)
            if isinstance(opt, str):
                opt = {"name": opt}
            if isinstance(opt, dict):
                spec["optimizer"] = {**opt, "lr": lr}
        spec = check_training(spec, need_dataset=dataset is None)
        if model is None:
            model = build_model(
                graph, seed=spec["seed"], batch_size=spec["batch_size"], training=True
            )
        if dataset is None:
            dataset = data_sets.load_dataset(spec["dataset"], seed=spec["seed"])
        return cls(
            model, dataset, processes=processes, **{k: v for k, v in spec.items() if k != "dataset"}
        )

    def _one_process_reason(self) -> str | None:
        """Why this run cannot split its steps over two processes (engine.parallel), or None:
        each of these needs the whole batch in one place."""
        if self._aug is not None:
            return "augmentation draws its random numbers in one process"
        if self.spec.get("mask_padding"):  # each half would average its own unmasked targets
            return "masked padding averages the loss in one process"
        if self._sampled is not None:
            return "scheduled sampling predicts each batch in one process"
        if self._heads is not None:
            return "a graph with several outputs trains in one process"
        return None

    # --- controls (any thread) ----------------------------------------------------------------
    def stop(self) -> None:
        """End the run after the current step (reason "stopped")."""
        self._stop.set()
        self._go.set()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._go.clear()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._single = 0
            self._go.set()

    def step_once(self) -> None:
        """While paused, let exactly one more step run."""
        with self._lock:
            if self._paused:
                self._single += 1
                self._go.set()

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` from the next step on (the schedule no longer applies)."""
        lr = check_lr(lr)
        with self._lock:
            self._lr_override = lr

    @property
    def paused(self) -> bool:
        return self._paused

    def _wait_while_paused(self) -> None:
        while True:
            with self._lock:
                if self._stop.is_set() or not self._paused:
                    return
                if self._single:
                    self._single -= 1
                    return
                self._go.clear()
            self._go.wait()

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
        """(loss, accuracy) over (X, y) in batches, without training; accuracy is None for
        regression (unless the data set names its own score: the share of samples it counts
        right), both are None for no data (or when stopped meanwhile)."""
        if len(X) == 0:
            return None, None
        head_sums: dict[str, float] = {}
        return self._eval_result(self._eval_sums(X, y, 0, len(X), head_sums), head_sums)

    def _validate(self) -> tuple[float | None, float | None]:
        """``evaluate`` of the validation data; in a two-process run half of it in the helper
        (engine.parallel: the sums differ from one process's by float rounding only). Models
        with buffers (BatchNorm's running statistics) evaluate here: the helper receives the
        parameters, not those."""
        X, y = self.val_data
        if self._split is None or len(X) < 2 or self._has_buffers:
            return self.evaluate(X, y)
        try:
            return self._eval_result(self._split.evaluate(len(X)), {})
        except HelperLost as e:  # as in _forward_backward: go on in one process
            self.split_lost = f"{e}; training went on in one process"
            self._split.close()
            self._split, self.processes = None, 1
            return (None, None) if self._stop.is_set() else self.evaluate(X, y)

    def _eval_sums(
        self, X: np.ndarray, y: np.ndarray, start: int, stop: int, head_sums: dict | None = None
    ) -> tuple[float, float, int, int] | None:
        """(loss x weight summed over batches, weight, correct, counted) over the rows [start,
        stop) in batches, None when stopped meanwhile. ``head_sums`` collects the extra
        outputs' weighted losses (engine.heads)."""
        bs = max(self.batch_size, EVAL_BATCH)
        total, correct, count, weight = 0.0, 0, 0, 0
        masked = bool(self.spec.get("mask_padding"))
        for i in range(start, stop, bs):
            if self._stop.is_set():
                return None
            xb, yb = X[i : min(i + bs, stop)], y[i : min(i + bs, stop)]
            out = self.model.predict(xb)
            # each batch weighs by its samples, or with masked padding by its counted targets
            w = self.loss_fn.counted(yb) if masked else len(xb)
            if self._heads is not None:  # the weighted total; each head's loss kept
                per_head = self._heads.batch_losses(out, yb)
                for h, v in per_head.items():
                    if head_sums is not None:
                        head_sums[h] = head_sums.get(h, 0.0) + v * w
                total += self._heads.total(per_head) * w
            else:
                total += self.loss_fn.forward(out, yb) * w
            weight += w
            if self.classifier:
                correct += self.loss_fn.hits(out, yb)
                count += self.loss_fn.counted(yb)
            elif self._score is not None:
                correct += int(np.count_nonzero(self._score(yb, out)))
                count += len(yb)
        return total, weight, correct, count

    def _eval_result(
        self, sums: tuple[float, float, int, int] | None, head_sums: dict[str, float]
    ) -> tuple[float | None, float | None]:
        """(loss, accuracy) from ``_eval_sums``'s sums (None, None when stopped)."""
        if sums is None:
            return None, None
        total, weight, correct, count = sums
        loss = total / max(weight, 1)
        self.last_eval_heads = {h: v / max(weight, 1) for h, v in head_sums.items()}
        if self.spec["l1"] or self.spec["l2"]:
            loss += _penalty(self.model.params, self.spec["l1"], self.spec["l2"])
        return loss, (correct / count if count else None)

    @property
    def test_size(self) -> int:
        """Samples held out as the test set (0: none)."""
        return int(len(self._test_data[0]))

    def evaluate_test(self) -> dict:
        """The final evaluation on the held-out test set (``test_split``): {"event": "test",
        "test_loss", "test_acc", "n_test"}; ConfigError when the settings hold none out."""
        X, y = self._test_data
        if not len(X):
            raise ConfigError(
                "no test set: set the training setting test_split (e.g. 0.2) and train again"
            )
        loss, acc = self.evaluate(X, y)
        return {"event": "test", "test_loss": loss, "test_acc": acc, "n_test": int(len(X))}

    # --- training ------------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, np.ndarray] | None:
        state = self.model.state()
        return state if all(np.isfinite(v).all() for v in state.values()) else None

    def snapshot_every(self) -> int:
        """Steps between the copies of the weights a diverged run comes back to: every step for
        a small model, up to ``SNAPSHOT_EVERY`` for a large one (a copy costs a pass over the
        weights, as the update itself does)."""
        n = sum(v.size for v in self.model.params.values())
        return min(SNAPSHOT_EVERY, max(1, n // SNAPSHOT_VALUES))

    def _weights_finite(self) -> bool:
        """Are all parameters and buffers finite? A sum of squares (one BLAS call per array)
        first (the parameters as one when they are one flat array); only an array whose sum
        overflowed is looked at value by value."""
        whole = self.model.flat_params
        params = (whole,) if whole is not None else self.model.params.values()
        for v in (*params, *self.model.buffers.values()):
            flat = v.ravel()
            if not math.isfinite(float(flat.dot(flat))) and not np.isfinite(flat).all():
                return False
        return True

    def start_helper(self) -> None:
        """Fork the helper process of a two-process run (engine.parallel) unless there is one,
        the run stays in one process or it was stopped. ``run()`` calls it; a program that
        trains in a thread calls it first, while it has one thread
        (engine.training_process.child_main)."""
        if self.processes == 2 and self._split is None and not self._stop.is_set():
            self._split = SplitStep(
                self.model,
                partial(
                    forward_backward, self.model, self.loss_fn, *self.train_data, self.classifier
                ),
                self.batch_size,
                abandon=self._stop.is_set,  # Stop never waits on it
                evaluate=partial(self._eval_sums, *self.val_data),
            )
            # the update reads the split's flat parameters and gradients where they are
            split = self._split
            self.optimizer.use_flat(
                list(self.model.params.values()),
                split.flat_params,
                split.grad_views,
                split.flat_grads,
            )

    def run(self) -> Iterator[dict]:
        """Train; yields the step, epoch and end events (see the module docstring). With
        ``processes`` 2 a helper process computes half of every batch while the run lasts."""
        self.start_helper()
        try:
            yield from self._run()
        finally:
            if self._split is not None:
                self._split.close()
                self._split = None

    def _run(self) -> Iterator[dict]:
        X, y = self.train_data
        n, bs = len(X), self.batch_size
        n_steps = math.ceil(n / bs)
        grads: dict[str, np.ndarray] = {}
        step = 0
        started = time.perf_counter()
        snapshot = self._snapshot()
        every = self.snapshot_every()
        limit = math.inf  # the loss above which the run has diverged (set by the first step)
        done_epochs = 0

        def end(reason: str, **extra: Any) -> dict:
            ev = {
                "event": "end",
                "reason": reason,
                "epoch": done_epochs,
                "step": step,
                "seconds": time.perf_counter() - started,
                "processes": self.processes,
                **extra,
            }
            if self.split_lost:
                ev["note"] = self.split_lost
            return ev

        for epoch in range(self.epochs):
            t0 = time.perf_counter()
            lr_epoch = self.schedule.lr(self.lr0, epoch)
            perm = self._rng.permutation(n)
            loss_sum, correct, count = 0.0, 0, 0
            head_sums: dict[str, float] = {}
            for i in range(n_steps):
                if self._paused:
                    self._wait_while_paused()
                if self._stop.is_set():
                    yield end("stopped")
                    return
                lr = self._lr_override if self._lr_override is not None else lr_epoch
                idx = perm[i * bs : (i + 1) * bs]
                yb = y[idx]
                # Overflow on the way to a diverged run is expected: it is reported as an event.
                keep = (step + 1) % every == 0
                with np.errstate(all="ignore"):
                    loss, rms, hits, kept = self._train_step(idx, lr, grads, limit, keep)
                if kept is not None:
                    snapshot = kept
                if not isinstance(rms, dict):  # diverged: rms says why
                    yield end("diverged", **self._diverged(snapshot, epoch + 1, step + 1, rms))
                    return
                if step == 0:
                    limit = LOSS_EXPLODES * max(loss, 1 / LOSS_EXPLODES)
                if self.classifier:
                    correct += hits
                    count += self.loss_fn.counted(yb)
                step += 1
                loss_sum += loss
                for rid, layer in self._recurrent:
                    tg = getattr(layer, "time_grad", None)
                    if tg is not None:
                        self.last_time_grads[rid] = np.array(tg, copy=True)
                    tgr = getattr(layer, "time_grad_reverse", None)
                    if tgr is not None:
                        self.last_time_grads_reverse[rid] = np.array(tgr, copy=True)
                self.last_grad_rms = rms
                ev = {
                    "event": "step",
                    "epoch": epoch + 1,
                    "step": step,
                    "loss": loss,
                    "lr": lr,
                    "grad_rms": rms,
                }
                if self._heads is not None:  # each output's own loss (unweighted)
                    ev["heads"] = dict(self.last_head_losses)
                    for h, v in self.last_head_losses.items():
                        head_sums[h] = head_sums.get(h, 0.0) + v
                yield ev
            train_loss = loss_sum / n_steps
            with np.errstate(all="ignore"):
                val_loss, val_acc = self._validate()
            if self._stop.is_set():
                yield end("stopped")
                return
            done_epochs = epoch + 1
            ev = {
                "event": "epoch",
                "epoch": done_epochs,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "train_acc": correct / count if count else None,
                "val_acc": val_acc,
                "seconds": time.perf_counter() - t0,
            }
            if self._heads is not None:
                ev["train_heads"] = {h: v / n_steps for h, v in head_sums.items()}
                ev["val_heads"] = dict(self.last_eval_heads) if val_loss is not None else None
            self.history.append(ev)
            yield ev
            if val_loss is not None and not _sane(val_loss, limit):
                why = self._loss_problem(val_loss, limit, "validation loss")
                yield end("diverged", **self._diverged(snapshot, epoch + 1, step, why))
                return
            if val_loss is not None:  # weights the validation loss found sane
                snapshot = self.model.state()
        if self.epochs and not len(self.val_data[0]):  # no validation judged the last update
            with np.errstate(all="ignore"):
                last = self.evaluate(X[:bs], y[:bs])[0]  # one training batch does
            if last is not None and not _sane(last, limit):
                why = self._loss_problem(last, limit, "loss after the last update")
                yield end("diverged", **self._diverged(snapshot, self.epochs, step, why))
                return
        yield end("finished")

    def _forward_backward(self, idx: np.ndarray) -> tuple[float, int]:
        """Loss and correct predictions of the batch ``idx``; the layers hold its gradients
        afterwards unless the loss is not finite."""
        self._flat_grads = None
        if self._split is not None and len(idx) >= 2:
            try:
                result = self._split.forward_backward(idx)
                if self._split.combined:  # the layers' gradients: views of one flat array
                    self._flat_grads = self._split.flat_grads
                return result
            except HelperLost as e:  # go on in one process: the step is computed again here
                self.split_lost = f"{e}; training went on in one process"
                self._split.close()
                self._split, self.processes = None, 1
        X, y = self.train_data
        X = X if self._aug is None else self._aug  # X[idx]: the batch, augmented
        if self._sampled is not None:  # X[idx]: with some decoder inputs the model's own
            X = self._sampled
        if self._heads is not None:
            loss, hits, self.last_head_losses = self._heads.forward_backward(
                X, y, self.classifier, idx
            )
            return loss, hits
        return forward_backward(self.model, self.loss_fn, X, y, self.classifier, idx)

    def _train_step(
        self, idx: np.ndarray, lr: float, grads: dict[str, np.ndarray], limit: float, keep: bool
    ) -> tuple[float, dict | str, int, dict | None]:
        """One step: forward, loss (+ penalty), backward, gradient RMS per block, clipping,
        update. Returns (loss, grad_rms, correct predictions, copy of the weights or None).
        The copy is of the weights before the update, taken when ``keep`` and the loss was
        sane. When the step diverged grad_rms is the reason, a string: the loss is not finite
        or above ``limit``, or the gradients are not finite (nothing was updated then), or the
        update left a weight that is not finite."""
        model, spec = self.model, self.spec
        loss, hits = self._forward_backward(idx)
        if not _sane(loss, limit):
            return loss, self._loss_problem(loss, limit, "loss"), hits, None
        for _, layer, names, _ in self._blocks:
            lg = layer.grads
            for k, full in names:
                grads[full] = lg[k]
        if spec["l1"] or spec["l2"]:
            loss += regularize(model.params, grads, spec["l1"], spec["l2"])
        rms, total = {}, 0.0
        for bid, _, names, inv_n in self._blocks:
            s = 0.0
            for _, full in names:
                v = grads[full].ravel()
                s += float(v.dot(v))  # sum of g^2: one BLAS call (the method skips dispatch)
            total += s
            rms[bid] = math.sqrt(s * inv_n)
        if not _sane(loss, limit):
            return loss, self._loss_problem(loss, limit, "loss"), hits, None
        if not math.isfinite(total):
            return loss, GRADIENT_NOT_FINITE, hits, None
        kept = model.state() if keep else None
        if spec["clip_norm"] is not None:
            # total: the sum of g^2 above
            clip_grad_norm(grads, spec["clip_norm"], total, self._flat_grads)
        self.optimizer.lr = lr
        self.optimizer.step(model.params, grads)
        if not self._weights_finite():
            return loss, "the update made a weight infinite or NaN", hits, kept
        return loss, rms, hits, kept

    @staticmethod
    def _loss_problem(loss: float, limit: float, what: str) -> str:
        if not math.isfinite(loss):
            return f"{what} {loss}"
        return f"{what} {loss:.4g}, over {LOSS_EXPLODES:.0e} times the first step's"

    def _diverged(self, snapshot: dict | None, epoch: int, step: int, why: str) -> dict:
        """Only when the gradients failed are the current weights good (their loss was sane,
        nothing was updated); otherwise they come back from the last snapshot, the weights
        of a step whose loss was sane."""
        restored = why != GRADIENT_NOT_FINITE and snapshot is not None
        if restored:
            self.model.set_state(snapshot)
        msg = (
            f"training diverged at epoch {epoch}, step {step} ({why}); the weights are "
            f"{'those of an earlier step' if restored else 'the last good ones'}: lower the "
            "learning rate, or set clip_norm"
        )
        return {"message": msg}
