"""A run's outcome in words: its final metrics and its best epoch, for the Training dock's Run
box and the status bar ("run 3 finished: val acc 97.2%, val loss 0.091; best epoch 12 of 15,
val acc 97.8%")."""

from __future__ import annotations

import math
from typing import Any


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def best_epoch(epochs: list[dict]) -> dict | None:
    """The epoch event with the highest validation accuracy (a task without accuracy: the
    lowest validation loss; without validation: the training figures); None if none has one."""
    for key, sign in (("val_acc", -1), ("val_loss", 1), ("train_acc", -1), ("train_loss", 1)):
        scored = [e for e in epochs if _ok(e.get(key))]
        if scored:
            return min(scored, key=lambda e: sign * e[key])
    return None


def _metrics(e: dict) -> str:
    """ "val acc 97.2%, val loss 0.091" of an epoch event (or a run's final metrics)."""
    parts = []
    for split in ("val", "train"):
        acc, loss = e.get(f"{split}_acc"), e.get(f"{split}_loss")
        if _ok(acc):
            parts.append(f"{split} acc {100 * acc:.1f}%")
        if _ok(loss):
            parts.append(f"{split} loss {loss:.3g}")
        if parts:
            break  # the validation figures when there are any, else the training ones
    return ", ".join(parts)


def result_text(run) -> str:
    """The outcome of a finished (or stopped, diverged) ``run``; "" while it has none."""
    epochs = [e for e in run.epochs if isinstance(e, dict)]
    final = epochs[-1] if epochs else run.final_metrics()
    text = _metrics(final)
    if not text:
        last = final.get("last_loss")
        return f"last loss {last:.3g}" if _ok(last) else ""
    best = best_epoch(epochs)
    n = final.get("epoch")
    if best is not None and len(epochs) > 1:
        if best is final:
            text += f"; best epoch {best.get('epoch')} (the last)"
        else:
            of = f" of {n}" if _ok(n) else ""
            text += f"; best epoch {best.get('epoch')}{of}: {_metrics(best)}"
    return text
