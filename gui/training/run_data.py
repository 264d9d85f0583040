"""What one training run leaves behind, kept in fixed-size NumPy buffers in the GUI thread.

The worker's signals only append here (cheap: a few array writes); the panels read from here
when the redraw timer fires. ``RunData.version`` grows with every append so a panel can skip a
redraw when nothing changed since it last drew.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class RingBuffer:
    """A table of float64 rows holding at most ``capacity`` rows; when full, the oldest rows
    are overwritten. Storage starts small and doubles up to ``capacity`` (a short run does
    not pay for a long one's memory).

    Shapes: rows of ``width`` columns; ``data()`` returns (n, width) oldest first, a view
    until the buffer wraps, then one copy.
    """

    START_ROWS = 1024

    def __init__(self, capacity: int, width: int = 1) -> None:
        if capacity < 1 or width < 1:
            raise ValueError("capacity and width must be positive")
        self._cap = int(capacity)
        self._a = np.full((min(self._cap, self.START_ROWS), width), np.nan)
        self._n = 0  # rows ever appended

    @property
    def width(self) -> int:
        return self._a.shape[1]

    def __len__(self) -> int:
        return min(self._n, self._cap)

    @property
    def total(self) -> int:
        """Rows appended since creation (also those already overwritten)."""
        return self._n

    def _grow(self, rows: int) -> None:
        """Make room for ``rows`` in total while below capacity (never after wrapping)."""
        size = self._a.shape[0]
        if rows <= size or size >= self._cap:
            return
        new = np.full((min(self._cap, max(2 * size, rows)), self.width), np.nan)
        new[: self._n] = self._a[: self._n]
        self._a = new

    def append(self, row: Any) -> None:
        self._grow(self._n + 1)
        self._a[self._n % self._a.shape[0]] = row
        self._n += 1

    def extend(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, self.width)
        self._grow(self._n + len(rows))
        size = self._a.shape[0]
        if len(rows) >= size:
            rows = rows[-size:]
            self._n += len(rows)
            self._a[:] = np.roll(rows, self._n % size, axis=0)
            return
        start = self._n % size
        end = start + len(rows)
        if end <= size:
            self._a[start:end] = rows
        else:
            k = size - start
            self._a[start:] = rows[:k]
            self._a[: end - size] = rows[k:]
        self._n += len(rows)

    def data(self) -> np.ndarray:
        size = self._a.shape[0]
        if self._n <= size:
            return self._a[: self._n]
        i = self._n % size
        return np.concatenate([self._a[i:], self._a[:i]])

    def last(self) -> np.ndarray | None:
        return None if self._n == 0 else self._a[(self._n - 1) % self._a.shape[0]]


class Ema:
    """Exponential moving average with bias correction (Adam's): s_t / (1 - (1-alpha)^t).

    Kept incrementally so a redraw never recomputes it over the whole history. Non-finite
    values (a diverged step) are skipped, not propagated.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self._s = 0.0
        self._w = 0.0

    def update(self, v: float) -> float:
        if math.isfinite(v):
            self._s = (1 - self.alpha) * self._s + self.alpha * v
            self._w = (1 - self.alpha) * self._w + self.alpha
        return self._s / self._w if self._w > 0 else float("nan")


STEP_CAPACITY = 200_000  # steps of loss/lr per run; older ones roll off (a very long run)
GRAD_CAPACITY = 20_000  # steps of per-block gradient history


@dataclass
class RunData:
    """Everything the panels show about one run (live or finished).

    ``grads``: column 0 the step, then one column per
    block in ``blocks`` (input to output; NaN when a block had no value at that step).
    ``epochs``: the log's epoch events. Latest-only snapshots: ``time_grads``, ``filters``,
    ``activations``, ``gates``, ``attention``, ``confusion`` and ``samples`` (see
    ``worker.TrainingWorker``).
    """

    run_id: int
    name: str
    settings: dict
    blocks: list[str] = field(default_factory=list)
    block_types: dict[str, str] = field(default_factory=dict)
    steps: RingBuffer = field(default_factory=lambda: RingBuffer(STEP_CAPACITY, 5))
    loss_ema: Ema = field(default_factory=Ema)
    grads: RingBuffer | None = None
    # A graph with extra outputs (engine.heads): each output's loss per step, EMA-smoothed
    # (column 0 the step, then one column per name in ``heads``, the main output first).
    heads: list[str] = field(default_factory=list)
    head_loss: RingBuffer | None = None
    head_ema: dict[str, Ema] = field(default_factory=dict)
    epochs: list[dict] = field(default_factory=list)
    time_grads: dict[str, np.ndarray] = field(default_factory=dict)
    time_grads_avg: dict[str, np.ndarray] = field(default_factory=dict)
    filters: dict[str, np.ndarray] = field(default_factory=dict)
    filters_step: int = -1
    activations: dict[str, np.ndarray] = field(default_factory=dict)
    gates: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    sample: dict = field(default_factory=dict)
    attention: dict = field(default_factory=dict)  # engine.training_process.attention_of
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # all params (Try it)
    confusion: np.ndarray | None = None
    samples: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    status: str = "preparing"
    end: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    version: int = 0  # grows with every change
    snapshots: int = 0  # grows with every snapshot (filters, activations, weights)
    epoch_version: int = 0  # grows with every epoch event or end (confusion matrix)
    # The graph it trained (the Runs table's "graph"), and where it is kept: ``history_key``
    # in the run history (gui/training/history.py; ``loaded`` False until its curves are
    # read, ``stored_final`` meanwhile its final metrics), ``graph_token`` the window's graph
    # it belongs to (its runs file holds the runs of that token only).
    graph_name: str = ""
    graph_path: str | None = None
    history_key: str | None = None
    loaded: bool = True
    stored_final: dict = field(default_factory=dict)
    graph_token: int | None = None

    # --- appends (called from the worker's signals) -----------------------------------------
    def set_blocks(self, blocks: list[str], types: dict[str, str]) -> None:
        self.blocks = list(blocks)
        self.block_types = dict(types)
        self.grads = RingBuffer(GRAD_CAPACITY, 1 + len(self.blocks))
        self.version += 1

    def add_steps(self, events: list[dict]) -> None:
        if not events:
            return
        rows = np.empty((len(events), 5))
        for r, e in enumerate(events):
            loss = _num(e.get("loss"))
            rows[r] = (
                _num(e.get("step")),
                _num(e.get("epoch")),
                loss,
                _num(e.get("lr")),
                self.loss_ema.update(loss),
            )
        self.steps.extend(rows)
        if self.grads is not None and self.blocks:
            col = {b: i + 1 for i, b in enumerate(self.blocks)}
            g = np.full((len(events), self.grads.width), np.nan)
            for r, e in enumerate(events):
                g[r, 0] = e.get("step", np.nan)
                for b, v in (e.get("grad_rms") or {}).items():
                    if b in col:
                        g[r, col[b]] = _num(v)
            self.grads.extend(g)
        self._add_head_losses(events)
        self.version += 1

    def _add_head_losses(self, events: list[dict]) -> None:
        first = next((e["heads"] for e in events if isinstance(e.get("heads"), dict)), None)
        if first is None:
            return
        if self.head_loss is None:
            self.heads = [str(h) for h in first]
            self.head_loss = RingBuffer(STEP_CAPACITY, 1 + len(self.heads))
            self.head_ema = {h: Ema() for h in self.heads}
        rows = np.full((len(events), 1 + len(self.heads)), np.nan)
        for r, e in enumerate(events):
            rows[r, 0] = _num(e.get("step"))
            losses = e.get("heads") if isinstance(e.get("heads"), dict) else {}
            for i, h in enumerate(self.heads, start=1):
                if h in losses:
                    rows[r, i] = self.head_ema[h].update(_num(losses[h]))
        self.head_loss.extend(rows)

    def add_epoch(self, event: dict) -> None:
        e = dict(event)
        last = self.steps.last()
        e.setdefault("step", int(last[0]) if last is not None else 0)
        self.epochs.append(e)
        self.epoch_version += 1
        self.version += 1

    def set_time_grads(self, tg: dict[str, np.ndarray], alpha: float = 0.2) -> None:
        """The latest BPTT profiles, and a geometric running mean of them (profiles span
        decades, so they are averaged in log space) for a steadier picture."""
        self.time_grads = tg
        for b, v in tg.items():
            lv = np.log(np.maximum(np.asarray(v, dtype=np.float64), 1e-30))
            old = self.time_grads_avg.get(b)
            if old is None or old.shape != lv.shape:
                self.time_grads_avg[b] = np.exp(lv)
            else:
                self.time_grads_avg[b] = np.exp((1 - alpha) * np.log(old) + alpha * lv)
        self.version += 1

    def drop_heavy(self) -> None:
        """Forget the big arrays of a run no longer shown (curves and metrics stay)."""
        for k in ("val_X", "val_y"):
            self.info.pop(k, None)
        self.filters, self.activations, self.gates, self.weights = {}, {}, {}, {}
        self.sample = {}

    def last_grad_rms(self) -> dict[str, float]:
        """The latest step's gradient RMS of each block (the log's ``grad_rms``)."""
        if self.grads is None or len(self.grads) == 0:
            return {}
        row = self.grads.last()
        return {
            b: float(row[i + 1]) for i, b in enumerate(self.blocks) if math.isfinite(row[i + 1])
        }

    def final_metrics(self) -> dict:
        if not self.loaded:
            return dict(self.stored_final)
        out: dict[str, Any] = {}
        last = self.steps.last()
        if last is not None:
            out["steps"] = int(last[0])
            out["last_loss"] = float(last[2])
        if self.epochs:
            e = self.epochs[-1]
            for k in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc"):
                if e.get(k) is not None:
                    out[k] = e[k]
        test = self.end.get("test")  # the final evaluation on the test set (test_eval.py)
        if isinstance(test, dict):
            out.update({k: test[k] for k in ("test_loss", "test_acc") if k in test})
        return out


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
