"""Experiments (lecture 000): train one graph with some settings varied, one run after another.

A setting to vary is ``NAME=V1,V2,...``: a training setting (``lr``, ``optimizer``,
``batch_size``, ``epochs``, ``seed``, ``l1``, ``l2``, ``clip_norm``, ``val_split``), ``init``
(the initialiser of every block that has one), ``dropout`` (the rate of every Dropout block),
or any block setting as ``BLOCK.KEY`` (``dense1.units=32,64``). Values are JSON (numbers,
``true``, ``null``, ``[3,3]``) or plain words (``adam``). ``plan`` makes the runs: the grid
(every combination) or a seeded random search of ``n`` distinct combinations; each run is
checked before any trains (a bad value is refused naming the block and the setting).
``run_experiment`` trains them (the command line: one JSONL log per run and a summary CSV);
the app queues the same runs (gui/training/experiment_runs.py).
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BlockPropError, ConfigError
from engine.layers import LAYER_TYPES, Dropout
from engine.training_spec import TRAINING_OPTIONS, check_training

TRAINING_VARIES = ("lr", "optimizer", *TRAINING_OPTIONS)
GROUPS = ("init", "dropout")  # one setting of many blocks
MAX_RUNS = 10_000
METRICS = ("train_loss", "val_loss", "train_acc", "val_acc")


@dataclass
class Vary:
    """One setting to vary: its name as given and the values to try."""

    name: str
    values: list


@dataclass
class Trial:
    """One run of an experiment: the settings it varies, and the graph and spec it trains."""

    index: int
    settings: dict
    graph: dict
    spec: dict
    label: str = ""
    result: dict = field(default_factory=dict)


def _value(text: str) -> Any:
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return text if isinstance(v, dict) else v


def _split_values(text: str) -> list[str]:
    """Split at commas outside brackets: ``[3,3],[5,5]`` is two values."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_vary(text: str) -> Vary:
    """``NAME=V1,V2`` as a Vary, or ConfigError saying what is wrong with it."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"--vary {text!r}: write NAME=V1,V2 (e.g. lr=0.1,0.01)")
    name, _, rest = text.partition("=")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z_][\w\-]*(\.[A-Za-z_]\w*)?", name):
        raise ConfigError(f"--vary {text!r}: {name!r} is not a setting name or BLOCK.KEY")
    parts = _split_values(rest)
    if not rest.strip() or any(not p for p in parts):
        raise ConfigError(f"--vary {name}: give the values to try after '=', separated by commas")
    values = [_value(p) for p in parts]
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise ConfigError(f"--vary {name}: a value is given twice")
    return Vary(name, values)


def _has_init(cls: type) -> bool:
    return hasattr(cls, "all_options") and "init" in cls.all_options()


def _blocks_with(graph: dict, test: Callable[[type], bool]) -> list[dict]:
    return [
        n
        for n in graph.get("nodes", [])
        if isinstance(n, dict) and test(LAYER_TYPES.get(n.get("type"), type(None)))
    ]


def check_vary(graph: dict, vary: Vary) -> None:
    """Refuse a setting the graph does not have, naming the block and the key."""
    name = vary.name
    if "." in name:
        block, key = name.split(".", 1)
        node = next((n for n in graph.get("nodes", []) if n.get("id") == block), None)
        if node is None:
            ids = ", ".join(str(n.get("id")) for n in graph.get("nodes", [])[:30])
            raise ConfigError(f"--vary {name}: the graph has no block {block!r} (blocks: {ids})")
        cls = LAYER_TYPES.get(node.get("type"))
        if cls is None or key not in cls.all_options():
            known = ", ".join(cls.all_options()) if cls is not None else "none"
            raise ConfigError(
                f"--vary {name}: block {block!r} ({node.get('type')}) has no setting {key!r} "
                f"(its settings: {known})"
            )
        return
    if name == "init":
        if not _blocks_with(graph, _has_init):
            raise ConfigError("--vary init: no block in the graph has an initialiser")
        return
    if name == "dropout":
        if not _blocks_with(graph, lambda c: isinstance(c, type) and issubclass(c, Dropout)):
            raise ConfigError("--vary dropout: the graph has no Dropout block")
        return
    if name not in TRAINING_VARIES:
        raise ConfigError(
            f"--vary {name}: not a setting to vary; use one of "
            f"{', '.join((*TRAINING_VARIES, *GROUPS))}, or BLOCK.KEY for a block's setting"
        )


def apply(graph: dict, spec: dict, settings: dict) -> tuple[dict, dict]:
    """Copies of ``graph`` and its training ``spec`` with ``settings`` ({name: value}) set."""
    graph, spec = copy.deepcopy(graph), copy.deepcopy(spec)
    for name, v in settings.items():
        if "." in name:
            block, key = name.split(".", 1)
            for n in graph["nodes"]:
                if n.get("id") == block:
                    n["config"] = {**(n.get("config") or {}), key: v}
        elif name == "init":
            for n in _blocks_with(graph, _has_init):
                n["config"] = {**(n.get("config") or {}), "init": v}
        elif name == "dropout":
            for n in _blocks_with(graph, lambda c: isinstance(c, type) and issubclass(c, Dropout)):
                n["config"] = {**(n.get("config") or {}), "rate": v}
        elif name == "lr":
            opt = spec.get("optimizer") or {"name": "adam"}
            opt = {"name": opt} if isinstance(opt, str) else dict(opt)
            spec["optimizer"] = {**opt, "lr": v}
        elif name == "optimizer":
            opt = spec.get("optimizer") or {}
            lr = opt.get("lr") if isinstance(opt, dict) else None
            spec["optimizer"] = {"name": v, **({"lr": lr} if lr is not None else {})}
        else:
            spec[name] = v
    graph["training"] = spec
    return graph, spec


def combinations(varies: list[Vary], random: int | None = None, seed: int = 0) -> list[dict]:
    """Every combination (grid), or ``random`` distinct ones drawn with ``seed``."""
    names = [v.name for v in varies]
    total = math.prod(len(v.values) for v in varies)
    if random is None:
        if total > MAX_RUNS:
            raise ConfigError(f"the grid has {total:,} runs; use --random N (at most {MAX_RUNS:,})")
        return [
            dict(zip(names, c, strict=True)) for c in itertools.product(*(v.values for v in varies))
        ]
    if random < 1 or random > MAX_RUNS:
        raise ConfigError(f"--random must be from 1 to {MAX_RUNS:,}, got {random}")
    rng = np.random.default_rng(seed)
    if random >= total:  # every combination, in a seeded order
        picks = rng.permutation(total)
    else:
        picks = rng.choice(total, size=random, replace=False)
    sizes = [len(v.values) for v in varies]
    out = []
    for p in picks:
        idx = np.unravel_index(int(p), sizes)
        out.append({n: v.values[int(i)] for n, v, i in zip(names, varies, idx, strict=True)})
    return out


def label(settings: dict) -> str:
    return " ".join(
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings.items()
    )


def plan(
    graph: dict, varies: list[Vary], random: int | None = None, seed: int = 0, **fixed: Any
) -> list[Trial]:
    """The runs of an experiment, each checked (ConfigError naming the run, block and key).

    ``fixed`` training settings (e.g. ``epochs=2``) apply to every run."""
    from engine.analysis import analyze
    from engine.graph import Graph

    if not varies:
        raise ConfigError("an experiment needs a setting to vary (--vary NAME=V1,V2)")
    names = [v.name for v in varies]
    if len(set(names)) != len(names):
        raise ConfigError("a setting is varied twice; give each --vary once")
    for v in varies:
        check_vary(graph, v)
    spec = {**copy.deepcopy(graph.get("training") or {}), **fixed}
    trials = []
    for i, settings in enumerate(combinations(varies, random, seed)):
        g, s = apply(graph, spec, settings)
        what = f"run {i + 1} ({label(settings)})"
        try:
            s = check_training(s)
            built = Graph.from_dict(g)
        except BlockPropError as e:
            raise ConfigError(f"{what}: {e}") from None
        problems = analyze(built, batch_size=s["batch_size"]).problems
        if problems:
            raise ConfigError(f"{what}: {problems[0]}")
        trials.append(Trial(i + 1, settings, g, s, label(settings)))
    return trials


def final_metrics(events: list[dict]) -> dict:
    """A run's summary from its events: the last epoch's metrics, the end's reason."""
    out: dict[str, Any] = {"status": "failed", "epochs": 0, "steps": 0, "seconds": None}
    for ev in events:
        if ev.get("event") == "epoch":
            out["epochs"] = ev.get("epoch", 0)
            out.update({k: ev.get(k) for k in METRICS})
        elif ev.get("event") == "end":
            out["status"] = ev.get("reason", "finished")
            out["steps"] = ev.get("step", out["steps"])
            out["seconds"] = ev.get("seconds")
        elif ev.get("event") == "step":
            out["steps"] = ev.get("step", out["steps"])
    return out


def best(trials: list[Trial], metric: str = "val_acc") -> Trial | None:
    """The run with the highest accuracy (or, for a loss, the lowest); finished runs only."""
    done = [
        t
        for t in trials
        if t.result.get("status") == "finished" and isinstance(t.result.get(metric), (int, float))
    ]
    if not done:
        return None
    sign = -1 if metric.endswith("loss") else 1
    return max(done, key=lambda t: sign * t.result[metric])


def _events(trial: Trial, base_dir: Path | None, **kw: Any) -> Iterator[dict]:
    from engine.data import resolve_paths
    from engine.graph import Graph
    from engine.trainer import Trainer

    spec = dict(trial.spec)
    if base_dir is not None and isinstance(spec.get("dataset"), dict):
        spec["dataset"] = resolve_paths(spec["dataset"], base_dir)
    trainer = Trainer.from_graph(Graph.from_dict(trial.graph), dataset=spec["dataset"], **kw)
    yield from trainer.run()


def run_experiment(
    trials: list[Trial],
    out_dir: str | Path,
    base_dir: Path | None = None,
    on_line: Callable[[str], None] = print,
    **trainer_kw: Any,
) -> Path:
    """Train the runs one after another, each logged to ``run_NNN.jsonl`` in ``out_dir``;
    write ``summary.csv`` (one line per run) and return its path. A run that fails to start
    (e.g. the data do not fit) is a line with status ``failed`` and its message."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.csv"
    try:
        _run_all(trials, out, base_dir, on_line, **trainer_kw)
    finally:  # Ctrl+C too: the runs done so far are summed up
        write_summary([t for t in trials if t.result], path)
    return path


def _run_all(trials, out: Path, base_dir, on_line, **trainer_kw: Any) -> None:
    width = max(3, len(str(len(trials))))
    for t in trials:
        log_path = out / f"run_{t.index:0{width}d}.jsonl"
        events: list[dict] = []
        message = ""
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(
                json.dumps({"event": "experiment", "run": t.index, "settings": t.settings}) + "\n"
            )
            try:
                for ev in _events(t, base_dir, **trainer_kw):
                    log.write(json.dumps(ev) + "\n")
                    if ev["event"] != "step" or not events or events[-1]["event"] != "step":
                        events.append(ev)
                    else:
                        events[-1] = ev  # only the last step matters for the summary
            except BlockPropError as e:
                message = str(e)
                log.write(
                    json.dumps({"event": "end", "reason": "failed", "message": message}) + "\n"
                )
        t.result = {**final_metrics(events), "log": log_path.name}
        if message:
            t.result["message"] = message
        on_line(f"run {t.index}/{len(trials)} {t.label}: {_result_text(t.result)}")


def _result_text(r: dict) -> str:
    if r.get("status") == "failed":
        return f"failed: {r.get('message', '')}"
    parts = [r["status"]]
    for k in METRICS:
        v = r.get(k)
        if isinstance(v, (int, float)):
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)


def write_summary(trials: list[Trial], path: str | Path) -> None:
    names = list(dict.fromkeys(k for t in trials for k in t.settings))
    header = ["run", *names, "status", "epochs", "steps", *METRICS, "seconds", "log", "message"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in trials:
            r = t.result
            w.writerow(
                [
                    t.index,
                    *(_cell(t.settings.get(n)) for n in names),
                    *(_cell(r.get(k)) for k in ("status", "epochs", "steps", *METRICS, "seconds")),
                    r.get("log", ""),
                    r.get("message", ""),
                ]
            )


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict, bool)):
        return json.dumps(v)
    return str(v)
