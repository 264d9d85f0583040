"""``app.py train``'s splits (engine/splits.py): ``--test-split F`` holds out a test set,
``--test`` reports on it once after training, ``--kfold K`` cross-validates (K runs, the
mean and the spread of their final validation metrics)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.errors import ConfigError
from engine.splits import cross_validate, summary_lines


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument(
        "--test-split",
        type=float,
        metavar="F",
        help="hold out this fraction as a test set (default: the graph's test_split)",
    )
    t.add_argument(
        "--test",
        action="store_true",
        help="after training, evaluate once on the held-out test set and report it",
    )
    t.add_argument(
        "--kfold",
        type=int,
        metavar="K",
        help="k-fold cross-validation: K runs, each validating on one fold; reports the mean "
        "and standard deviation of their final validation metrics",
    )


def overrides(args: argparse.Namespace) -> dict:
    if args.kfold is not None and args.test:
        raise ConfigError("--kfold and --test: cross-validate first, test the chosen model once")
    return {"test_split": args.test_split} if args.test_split is not None else {}


def test_line(result: dict) -> str:
    acc = result.get("test_acc")
    text = f"test ({result['n_test']} samples, evaluated once): test_loss {result['test_loss']:.4f}"
    return text + (f"  test_acc {acc:.4f}" if acc is not None else "")


def report_test(trainer: Any, log_path: str | None, out) -> None:
    """The final evaluation on the test set: one line, and a ``test`` event in the log."""
    result = trainer.evaluate_test()
    out(test_line(result))
    if log_path:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


def kfold(graph: Any, over: dict, args: argparse.Namespace, out) -> int:
    from engine.trainer import Trainer

    k = args.kfold
    log = open(args.log, "w", encoding="utf-8") if args.log else None

    def on_event(fold: int, ev: dict) -> None:
        if log is not None:
            log.write(json.dumps({**ev, "fold": fold + 1}) + "\n")
        if ev["event"] == "epoch":
            acc = ev.get("val_acc")
            out(
                f"fold {fold + 1}/{k} epoch {ev['epoch']}  val_loss {_num(ev.get('val_loss'))}"
                f"  val_acc {_num(acc)}"
            )

    try:
        result = cross_validate(
            lambda cv: Trainer.from_graph(graph, **over, cross_validation=cv), k, on_event
        )
    finally:
        if log is not None:
            log.close()
    for line in summary_lines(result):
        out(line)
    return 0 if all(f["status"] == "finished" for f in result["folds"]) else 1


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"
