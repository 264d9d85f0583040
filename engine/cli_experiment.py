"""``python app.py experiment``: train a graph with settings varied (engine/experiment.py).

    python app.py experiment GRAPH.json --vary lr=0.1,0.01 --vary dense1.units=32,64
                        [--random N] [--seed S] [--epochs N] --out DIR

One JSONL log per run (``DIR/run_001.jsonl``: an ``experiment`` line naming the run's
settings, then the run's events as ``train --log`` writes them) and ``DIR/summary.csv`` (one
line per run: its settings, status, epochs, steps, final train/val loss and accuracy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import experiment as ex
from engine.analysis import analyze
from engine.errors import ConfigError
from engine.graph import load_graph


def add_parser(sub, file_name) -> None:
    x = sub.add_parser(
        "experiment", help="train a graph with settings varied (grid or random search)"
    )
    x.add_argument("graph", metavar="GRAPH.json")
    x.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="NAME=V1,V2",
        help="a setting and its values: lr, optimizer, batch_size, epochs, seed, l1, l2, "
        "clip_norm, val_split, init, dropout, or BLOCK.KEY (repeat for more)",
    )
    x.add_argument("--random", type=int, metavar="N", help="N random combinations (seeded)")
    x.add_argument("--seed", type=int, default=0, metavar="S", help="the random search's seed")
    x.add_argument("--epochs", type=int, metavar="N", help="epochs of every run")
    x.add_argument("--out", required=True, type=file_name, metavar="DIR", help="logs go here")
    x.set_defaults(func=cmd_experiment)


def cmd_experiment(args: argparse.Namespace, out=print) -> int:
    graph = load_graph(args.graph)
    a = analyze(graph)
    if not a.ok:
        raise ConfigError(f"{args.graph}: {a.problems[0]}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {args.out}: it is a file; give a folder")
    varies = [ex.parse_vary(v) for v in args.vary]
    fixed = {"epochs": args.epochs} if args.epochs is not None else {}
    trials = ex.plan(graph.to_dict(), varies, random=args.random, seed=args.seed, **fixed)
    out(f"{len(trials)} runs, logs in {out_dir}")
    summary = ex.run_experiment(
        trials, out_dir, base_dir=Path(args.graph).resolve().parent, on_line=out
    )
    top = ex.best(trials, "val_acc") or ex.best(trials, "val_loss")
    if top is not None:
        out(f"best: run {top.index} ({top.label})")
    out(f"summary: {summary}")
    return 0 if any(t.result.get("status") == "finished" for t in trials) else 1
