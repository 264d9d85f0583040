"""The headless command line: ``python app.py check | train | export | presets``.

    python app.py check GRAPH.json [--batch-size B]  validate; print the summary table
    python app.py train GRAPH.json [--epochs N] [--dataset NAME] [--seed S]
                        [--log run.jsonl] [--save weights.npz] [--batch-size B] [--lr LR]
                        [--processes auto|1|2] [--test-split F] [--test] [--kfold K]
    python app.py export GRAPH.json --to numpy|pytorch|onnx [--weights w.npz] [-o out.py|out.onnx]
    python app.py import MODEL.onnx -o GRAPH.json [--save-weights W.npz]
    python app.py presets [--long]                   the presets, one line each (--long: described)
    python app.py experiment GRAPH.json --vary lr=0.1,0.01 [--vary BLOCK.KEY=V1,V2]
                        [--random N] [--seed S] [--epochs N] --out DIR   (cli_experiment.py)
    python app.py explain GRAPH.json --weights W.npz --input X.png|X.npy
                        [--method cam|gradcam|saliency|smoothgrad|occlusion] [--class K]
                        [--block ID] -o OUT        OUT.png: the map over the input,
                                                   OUT.npy: the map (float32, input H x W)
                        (cli_explain.py)
    python app.py decode GRAPH.json --weights W.npz --source TEXT [--beam K]
                        greedy and beam-search decoding of a seq2seq graph (cli_decode.py)

A user's mistake (a bad file, a bad setting, a graph with problems) prints one line per problem
on stderr, ``app.py: <message>``, and exits with status 2; never a traceback. A diverged run
exits with 1, a run stopped with Ctrl+C with 130 (after logging its end and saving weights).
Ctrl+C while the weights are saved lets the save finish, then exits with 130; a log that cannot
be written (disk full) is reported once and training goes on. Relative data-set paths in a
graph are taken from the graph file's folder; paths on the command line from the current one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from engine import cli_decode, cli_experiment, cli_explain, cli_splits
from engine.analysis import Problem, analyze, summary_text
from engine.cli_output import out as _out
from engine.cli_output import write_output as _write_output
from engine.data import BUILTIN_DATASETS, dataset_options, needs_download, prepare, resolve_paths
from engine.data.base import check_options
from engine.data.download import text_progress
from engine.errors import BlockPropError, ConfigError
from engine.escaping import printable
from engine.graph import graph_files, load_graph, preset_files
from engine.heap import keep_freed_memory
from engine.trainer import Trainer
from engine.training_spec import check_training
from engine.weights import save_weights, write_atomic

PROG = "app.py"
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
EXIT_USER_ERROR = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # as a tool killed by SIGPIPE (128 + 13)
MAX_REPORTED = 50  # problem lines printed; the rest are counted


class UsageError(Exception):
    """A command line argparse refused (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _err(message: str) -> None:
    print(f"{PROG}: {printable(message)}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="BlockProp without the GUI.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="validate a graph and print its summary table")
    c.add_argument("graph", metavar="GRAPH.json")
    c.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="check memory at this batch size (default: the graph's)",
    )
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
    t.add_argument(
        "--log", metavar="run.jsonl", type=_file_name, help="write every event as one JSON line"
    )
    t.add_argument(
        "--save", metavar="weights.npz", type=_file_name, help="save the trained weights"
    )
    cli_splits.add_train_arguments(t)
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

    cli_explain.add_parser(sub, _file_name)

    cli_experiment.add_parser(sub, _file_name)
    cli_decode.add_parser(sub, _file_name)

    s = sub.add_parser("presets", help="list the presets, one short line each")
    s.add_argument("--long", action="store_true", help="each preset's whole description, wrapped")
    s.set_defaults(func=cmd_presets)
    return p


def _file_name(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError(f"needs a file name, got {value!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except UsageError as e:
            _err(str(e))
            return EXIT_USER_ERROR
        except SystemExit as e:  # --help
            return e.code if isinstance(e.code, int) else 0
        return _run(args)
    except KeyboardInterrupt:  # Ctrl+C outside training (start-up, loading, export)
        _err("interrupted")
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # the reader left (`app.py presets | head`): end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        return EXIT_BROKEN_PIPE
    except BlockPropError as e:
        _err(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _err(f"{where}{e.strerror or e}")
    except MemoryError:
        _err("not enough memory: use a smaller model, data set or batch size")
    return EXIT_USER_ERROR


def _report(path: str, problems: list[Problem]) -> int:
    for p in problems[:MAX_REPORTED]:
        _err(f"{path}: {p}")
    if len(problems) > MAX_REPORTED:
        _err(f"{path}: and {len(problems) - MAX_REPORTED:,} more problems (fix these first)")
    return EXIT_USER_ERROR


def _batch_size(args: argparse.Namespace) -> int | None:
    """``--batch-size``, checked as the training settings check it (None: not given)."""
    if args.batch_size is not None:
        try:
            check_training({"batch_size": args.batch_size}, need_dataset=False)
        except ConfigError:
            raise ConfigError(
                f"--batch-size must be a whole number from 1 to 1,000,000, got {args.batch_size}"
            ) from None
    return args.batch_size


def cmd_check(args: argparse.Namespace) -> int:
    batch_size = _batch_size(args)
    graph = load_graph(args.graph)
    a = analyze(graph, batch_size=batch_size)
    _out(summary_text(a))
    problems = list(a.problems)
    if graph.training:
        try:
            ds = check_training(graph.training, need_dataset=False)["dataset"]
            if ds is not None:  # the data set's own options, as train checks them
                check_options(ds["name"], ds, dataset_options(ds["name"]))
        except ConfigError as e:
            if not any(p.message == e.message for p in problems):  # "heads": analysis said it
                problems.append(Problem(None, e.message))
    if problems:
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)}")
        return _report(args.graph, problems)
    print("no problems")
    return 0


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _progress(ev: dict, epochs: int) -> str:
    line = (
        f"epoch {ev['epoch']}/{epochs}  train_loss {_fmt(ev['train_loss'])}  "
        f"val_loss {_fmt(ev['val_loss'])}  train_acc {_fmt(ev['train_acc'], 3)}  "
        f"val_acc {_fmt(ev['val_acc'], 3)}  {ev['seconds']:.1f}s"
    )
    if ev.get("train_heads"):  # engine.heads: each output's own loss (train / val)
        val = ev.get("val_heads") or {}
        line += "  heads " + " ".join(
            f"{printable(h)} {_fmt(v)}/{_fmt(val.get(h))}" for h, v in ev["train_heads"].items()
        )
    return line


def cmd_train(args: argparse.Namespace) -> int:
    keep_freed_memory()  # engine.heap: steps reuse freed memory instead of page-faulting it in
    batch_size = _batch_size(args)
    graph = load_graph(args.graph)
    a = analyze(graph, batch_size=batch_size)  # memory at the batch this run will use
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
    ds = (graph.training or {}).get("dataset")
    name = ds.get("name") if isinstance(ds, dict) else ds
    if isinstance(ds, dict) and args.dataset in (None, name):  # the graph's own data set
        overrides["dataset"] = resolve_paths(ds, Path(args.graph).parent)
    # Refuse outputs that cannot work before training, not after.
    if args.save:
        _check_output(args.save, "save the weights", args.graph)
    if args.log:
        _check_output(args.log, "write the log", args.graph, args.save, beside=False)
    overrides.update(cli_splits.overrides(args))
    spec = overrides.get("dataset", ds)
    if spec is not None and needs_download(spec):  # first use: a progress bar on stderr
        prepare(spec, progress=text_progress(sys.stderr))
    if args.kfold is not None:
        return cli_splits.kfold(graph, overrides, args, _out)
    trainer = Trainer.from_graph(graph, **overrides)
    if args.test and not trainer.test_size:  # refused before training, not after
        raise ConfigError("--test needs a test set: pass --test-split F or set test_split")
    if trainer.processes == 2:
        print(f"training in 2 processes ({trainer.processes_reason})", flush=True)
    log = open(args.log, "w", encoding="utf-8") if args.log else None
    with _CtrlC(trainer) as ctrl_c:
        try:
            end = _train_loop(trainer, log)
        finally:
            ctrl_c.saving = bool(args.save)  # from here on Ctrl+C waits for the weights
            if log:
                try:
                    log.close()
                except OSError:
                    pass  # its failure was reported when it happened
        if args.save:
            try:
                save_weights(trainer.model, args.save)
            except KeyboardInterrupt:
                _err(f"the save was abandoned: {args.save} was not written")
                return EXIT_INTERRUPTED
            finally:
                ctrl_c.saving = False
            _out(f"saved the weights to {args.save}")
    if end.get("note"):
        _err(end["note"])
    if end["reason"] == "diverged":
        _err(end.get("message", "training diverged"))
        status = EXIT_DIVERGED
    elif end["reason"] == "stopped":
        _err(f"training stopped after {end['epoch']} epochs ({end['step']} steps)")
        status = EXIT_INTERRUPTED
    else:
        print(f"finished: {end['epoch']} epochs, {end['step']} steps in {end['seconds']:.1f}s")
        status = 0
        if args.test:
            cli_splits.report_test(trainer, args.log, _out)
    if ctrl_c.during_save and status != EXIT_INTERRUPTED:
        _err("interrupted while the weights were saved; the save was finished first")
        status = EXIT_INTERRUPTED
    return status


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Two names of one file (a hard link too)?"""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _check_output(
    path: str, what: str, graph: str, other: str | None = None, beside: bool = True
) -> None:
    """Refuse, before training, a file the run cannot write: a folder, a missing folder, the
    graph file itself (or the other output), and when the file is written ``beside`` itself
    and renamed (atomically, as weights are) a folder that takes no new file."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"cannot {what} to {path}: it is a folder; give a file name")
    full = p.resolve()
    if full == Path(graph).resolve() or _same_file(full, graph):
        raise ConfigError(f"cannot {what} to {path}: it is the graph file; choose another file")
    if other is not None and full == Path(other).expanduser().resolve():
        raise ConfigError(f"--save and --log name the same file {path}; give two files")
    folder = full.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot {what} to {path}: no folder {folder}")
    try:  # what the save will do: a file of its own in that folder
        if beside:
            tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise ConfigError(
            f"cannot {what} to {path}: cannot write in {folder} ({e.strerror or e})"
        ) from None


class _CtrlC:
    """Ctrl+C while the run trains stops it at the next step (a second one interrupts at
    once); while the weights are saved (``saving``) the save finishes first, and only a
    second Ctrl+C then abandons it. Only in the main thread (signals arrive there)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.saving = False
        self.during_save = 0  # Ctrl+C pressed while saving
        self.stopped = False
        self.previous: Any = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        if self.saving:
            self.during_save += 1
            if self.during_save == 1:
                _err("finishing the save of the weights first (Ctrl+C again abandons it)")
                return
            raise KeyboardInterrupt
        if self.stopped:
            raise KeyboardInterrupt
        self.stopped = True
        self.trainer.stop()


def _train_loop(trainer: Trainer, log: TextIO | None) -> dict:
    """Run the trainer, printing a line per epoch and logging every event (a log that fails is
    reported once and dropped: the run goes on). Ctrl+C: see ``_CtrlC``."""
    end: dict | None = None
    step = 0

    def write(ev: dict) -> None:
        nonlocal log
        if log:
            try:
                log.write(json.dumps(ev) + "\n")
                log.flush()
            except OSError as e:
                _err(
                    f"cannot write the log {getattr(log, 'name', '')} ({e.strerror or e}); "
                    "training goes on without it"
                )
                log = None

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
    if args.output is not None:
        _write_output(args.output, code.encode("ascii"))
        print(f"wrote {printable(args.output)}")
    else:
        sys.stdout.write(code)
    return 0


def _export_onnx(graph: Any, args: argparse.Namespace) -> int:
    from engine.export.onnx import export_onnx

    if not args.output:
        raise ConfigError("an ONNX model is binary: give the file to write with -o MODEL.onnx")
    data = export_onnx(graph, weights=args.weights)
    _write_output(args.output, data)
    print(f"wrote {printable(args.output)} ({len(data):,} bytes)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from engine.export.onnx import import_onnx

    for out in (args.output, args.save_weights):  # refuse a path that cannot work before work
        folder = Path(out).expanduser().resolve().parent if out else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"cannot write {printable(out)}: no folder {printable(folder)}")
    graph, arrays = import_onnx(args.model)
    graph.save(args.output)
    print(f"wrote {printable(args.output)} ({len(graph)} blocks)")
    if args.save_weights:
        write_atomic(args.save_weights, lambda f: np.savez(f, **arrays))
        print(f"saved the weights to {printable(args.save_weights)}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    files = sorted(graph_files(PRESETS_DIR), key=lambda p: p.stem.lower())
    files += preset_files(PRESETS_DIR)[len(files) :]  # then the zoo, as zoo/NAME
    if not files:
        print(f"no presets in {PRESETS_DIR}")
        return 0
    names = [f.relative_to(PRESETS_DIR).with_suffix("").as_posix() for f in files]
    width = max(len(n) for n in names) + 2
    status = 0
    for f, stem in zip(files, names, strict=True):
        try:
            g = load_graph(f)
        except BlockPropError as e:
            _err(str(e))
            status = EXIT_USER_ERROR
            continue
        if getattr(args, "long", False):
            _out(f"{stem}: {g.name}")
            for para in g.description.strip().splitlines():
                _out(textwrap.fill(para, LINE, initial_indent="    ", subsequent_indent="    "))
            _out("")
            continue
        line = f"{stem:<{width}}{g.name}"
        gist = first_sentence(g.description)
        if gist:
            line += ": " + gist
        _out(line if len(line) <= LINE else line[: LINE - 1].rstrip() + "…")
    return status


LINE = 100  # the presets listing's line width


def first_sentence(text: str) -> str:
    """The first sentence of a description's first line ("" if none)."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    m = re.match(r"(.+?[.!?:])(\s|$)", first)
    return (m.group(1) if m else first).rstrip(":")
