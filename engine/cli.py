"""The headless command line: ``python app.py check | train | export | presets``.

    python app.py check GRAPH.json                   validate; print the summary table
    python app.py train GRAPH.json [--epochs N] [--dataset NAME] [--seed S]
                        [--log run.jsonl] [--save weights.npz] [--batch-size B] [--lr LR]
                        [--processes auto|1|2]
    python app.py export GRAPH.json --to numpy|pytorch|onnx [--weights w.npz] [-o out.py|out.onnx]
    python app.py import MODEL.onnx -o GRAPH.json [--save-weights W.npz]
    python app.py presets                            list the presets with one line each

A user's mistake (a bad file, a bad setting, a graph with problems) prints one line per problem
on stderr, ``app.py: <message>``, and exits with status 2; never a traceback. A diverged run
exits with 1, a run stopped with Ctrl+C with 130 (after logging its end and saving weights).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from engine.analysis import Problem, analyze, summary_text
from engine.data import BUILTIN_DATASETS
from engine.errors import BlockPropError, ConfigError
from engine.graph import graph_files, load_graph
from engine.trainer import Trainer, check_training
from engine.weights import save_weights, write_atomic

PROG = "app.py"
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
EXIT_USER_ERROR = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line argparse refused (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="BlockProp without the GUI.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="validate a graph and print its summary table")
    c.add_argument("graph", metavar="GRAPH.json")
    c.set_defaults(func=cmd_check)

    t = sub.add_parser("train", help="train a graph headless")
    t.add_argument("graph", metavar="GRAPH.json")
    t.add_argument("--epochs", type=int, metavar="N")
    t.add_argument("--dataset", metavar="NAME", help="data set name (default: the graph's)")
    t.add_argument("--seed", type=int, metavar="S")
    t.add_argument("--batch-size", type=int, metavar="B")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    t.add_argument(
        "--processes",
        metavar="auto|1|2",
        help="split each step over two processes, half the batch each (default: "
        "auto, where the model allows and a step is long enough; also "
        "environment variable BLOCKPROP_PROCESSES)",
    )
    t.add_argument("--log", metavar="run.jsonl", help="write every event as one JSON line")
    t.add_argument("--save", metavar="weights.npz", help="save the trained weights")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="export a graph as Python code or an ONNX model")
    e.add_argument("graph", metavar="GRAPH.json")
    e.add_argument("--to", required=True, choices=("numpy", "pytorch", "onnx"))
    e.add_argument("--weights", metavar="w.npz", help="weights to include")
    e.add_argument(
        "-o", "--output", metavar="out.py|out.onnx", help="write here (default: print code)"
    )
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="turn an ONNX model into a graph file and weights")
    i.add_argument("model", metavar="MODEL.onnx")
    i.add_argument("-o", "--output", required=True, metavar="GRAPH.json")
    i.add_argument("--save-weights", metavar="W.npz", help="write the model's weights here")
    i.set_defaults(func=cmd_import)

    s = sub.add_parser("presets", help="list the presets")
    s.set_defaults(func=cmd_presets)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        _err(str(e))
        return EXIT_USER_ERROR
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    try:
        return args.func(args)
    except BlockPropError as e:
        _err(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _err(f"{where}{e.strerror or e}")
    except MemoryError:
        _err("not enough memory: use a smaller model, data set or batch size")
    return EXIT_USER_ERROR


def _report(path: str, problems: list[Problem]) -> int:
    for p in problems:
        _err(f"{path}: {p}")
    return EXIT_USER_ERROR


def cmd_check(args: argparse.Namespace) -> int:
    graph = load_graph(args.graph)
    a = analyze(graph)
    print(summary_text(a))
    problems = list(a.problems)
    if graph.training:
        try:
            check_training(graph.training, need_dataset=False)
        except ConfigError as e:
            problems.append(Problem(None, e.message))
    if problems:
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)}")
        return _report(args.graph, problems)
    print("no problems")
    return 0


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _progress(ev: dict, epochs: int) -> str:
    return (
        f"epoch {ev['epoch']}/{epochs}  train_loss {_fmt(ev['train_loss'])}  "
        f"val_loss {_fmt(ev['val_loss'])}  train_acc {_fmt(ev['train_acc'], 3)}  "
        f"val_acc {_fmt(ev['val_acc'], 3)}  {ev['seconds']:.1f}s"
    )


def cmd_train(args: argparse.Namespace) -> int:
    graph = load_graph(args.graph)
    a = analyze(graph)
    if not a.ok:
        return _report(args.graph, a.problems)
    if args.dataset is None and not (graph.training or {}).get("dataset"):
        raise ConfigError(
            "the graph names no data set to train on: pass --dataset NAME "
            f"(built in: {', '.join(BUILTIN_DATASETS)})"
        )
    overrides: dict[str, Any] = {}
    for key in ("epochs", "dataset", "seed", "batch_size", "lr", "processes"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.save:  # refuse a save path that cannot work before training, not after
        folder = Path(args.save).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigError(f"cannot save the weights to {args.save}: no folder {folder}")
    trainer = Trainer.from_graph(graph, **overrides)
    if trainer.processes == 2:
        print(f"training in 2 processes ({trainer.processes_reason})", flush=True)
    log = open(args.log, "w", encoding="utf-8") if args.log else None
    try:
        end = _train_loop(trainer, log)
    finally:
        if log:
            log.close()
    if args.save:
        save_weights(trainer.model, args.save)
        print(f"saved the weights to {args.save}")
    if end.get("note"):
        _err(end["note"])
    if end["reason"] == "diverged":
        _err(end.get("message", "training diverged"))
        return EXIT_DIVERGED
    if end["reason"] == "stopped":
        _err(f"training stopped after {end['epoch']} epochs ({end['step']} steps)")
        return EXIT_INTERRUPTED
    print(f"finished: {end['epoch']} epochs, {end['step']} steps in {end['seconds']:.1f}s")
    return 0


def _train_loop(trainer: Trainer, log: TextIO | None) -> dict:
    """Run the trainer, printing a line per epoch and logging every event. Ctrl+C stops the
    run cleanly at the next step (a second Ctrl+C interrupts at once)."""
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_interrupt(signum: int, frame: Any) -> None:
            trainer.stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, on_interrupt)
    end: dict | None = None
    step = 0

    def write(ev: dict) -> None:
        if log:
            log.write(json.dumps(ev) + "\n")
            log.flush()

    try:
        for ev in trainer.run():
            write(ev)
            if ev["event"] == "step":
                step = ev["step"]
            elif ev["event"] == "epoch":
                print(_progress(ev, trainer.epochs), flush=True)
            else:
                end = ev
    except KeyboardInterrupt:
        trainer.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if end is None:  # interrupted inside a step: the generator could not say goodbye itself
        done = trainer.history[-1]["epoch"] if trainer.history else 0
        end = {"event": "end", "reason": "stopped", "epoch": done, "step": step}
        write(end)
    return end


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_code

    graph = load_graph(args.graph)
    if args.to == "onnx":
        return _export_onnx(graph, args)
    code = export_code(graph, args.to, weights=args.weights)
    if args.output:
        write_atomic(args.output, lambda f: f.write(code.encode("utf-8")))
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(code)
    return 0


def _export_onnx(graph: Any, args: argparse.Namespace) -> int:
    from engine.export.onnx import export_onnx

    if not args.output:
        raise ConfigError("an ONNX model is binary: give the file to write with -o MODEL.onnx")
    data = export_onnx(graph, weights=args.weights)
    write_atomic(args.output, lambda f: f.write(data))
    print(f"wrote {args.output} ({len(data):,} bytes)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from engine.export.onnx import import_onnx

    for out in (args.output, args.save_weights):  # refuse a path that cannot work before work
        folder = Path(out).expanduser().resolve().parent if out else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"cannot write {out}: no folder {folder}")
    graph, arrays = import_onnx(args.model)
    graph.save(args.output)
    print(f"wrote {args.output} ({len(graph)} blocks)")
    if args.save_weights:
        write_atomic(args.save_weights, lambda f: np.savez(f, **arrays))
        print(f"saved the weights to {args.save_weights}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    files = sorted(graph_files(PRESETS_DIR), key=lambda p: p.stem.lower())
    if not files:
        print(f"no presets in {PRESETS_DIR}")
        return 0
    width = max(len(f.stem) for f in files) + 2
    status = 0
    for f in files:
        try:
            g = load_graph(f)
        except BlockPropError as e:
            _err(str(e))
            status = EXIT_USER_ERROR
            continue
        first = g.description.strip().splitlines()[0] if g.description.strip() else ""
        print(f"{f.stem:<{width}}{g.name}" + (f": {first}" if first else ""))
    return status
