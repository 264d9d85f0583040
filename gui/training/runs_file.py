"""Keeping runs: every run's settings, curves and final metrics, saved next to the graph.

``<graph>.runs.json`` (for ``lenet5.json``: ``lenet5.runs.json``) is plain JSON written
atomically (temporary file + rename, as graph files). Reading treats it as untrusted: size
limit, ``json.load`` only, every field checked; a bad run is skipped with a message, never a
crash. Long step curves are thinned to ``MAX_POINTS`` evenly spaced points (first and last
kept); epoch events are kept whole.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BlockPropError
from engine.graph_json import save_json_atomic
from engine.safe_io import read_limited
from gui.training.run_data import STEP_CAPACITY, RingBuffer, RunData

FORMAT = "blockprop-runs"
VERSION = 1
MAX_POINTS = 4000
MAX_GRAD_POINTS = 1000  # per-block gradient RMS history (the Runs panel's overlay)
MAX_FILE_BYTES = 64 * 1024 * 1024
EPOCH_KEYS = ("epoch", "step", "train_loss", "val_loss", "train_acc", "val_acc", "seconds")
HEAD_KEYS = ("train_heads", "val_heads")  # engine.heads: each output's loss, {block: loss}
MAX_HEADS = 64
INFO_KEYS = (
    "dataset",
    "task",
    "n_classes",
    "class_names",
    "steps_per_epoch",
    "total_steps",
    "epochs",
    "n_train",
    "n_val",
    "meta",
    "vocab",
    "input_shape",
)


def runs_path(graph_path: str | os.PathLike) -> Path:
    p = Path(graph_path)
    stem = p.name[:-5] if p.name.endswith(".json") else p.name
    return p.with_name(f"{stem}.runs.json")


def _num(v: Any) -> float | None:
    """A JSON-safe number (NaN and infinities become null)."""
    if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def _thin(n: int, most: int = MAX_POINTS) -> np.ndarray:
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


def _grad_curve(run: RunData) -> dict:
    """Each block's gradient RMS over the steps, thinned: {"step": [...], "blocks": {b: [...]}}."""
    if run.grads is None or not len(run.grads):
        return {"step": [], "blocks": {}}
    g = run.grads.data()
    g = g[_thin(len(g), MAX_GRAD_POINTS)]
    return {
        "step": [int(x) for x in g[:, 0]],
        "blocks": {b: [_num(x) for x in g[:, i + 1]] for i, b in enumerate(run.blocks)},
    }


def _head_curve(run: RunData) -> dict:
    """Each output's smoothed loss over the steps, thinned, for a graph with extra heads:
    {"head_curve": {"step": [...], "heads": {block: [...]}}} (nothing for one output)."""
    if run.head_loss is None or not len(run.head_loss):
        return {}
    h = run.head_loss.data()
    h = h[_thin(len(h))]
    return {
        "head_curve": {
            "step": [int(x) for x in h[:, 0]],
            "heads": {b: [_num(x) for x in h[:, i + 1]] for i, b in enumerate(run.heads)},
        }
    }


def _read_head_curve(run: RunData, hc: Any) -> None:
    if hc is None:
        return
    heads = hc.get("heads") if isinstance(hc, dict) else None
    if not isinstance(heads, dict) or not 0 < len(heads) <= MAX_HEADS:
        raise ValueError('"head_curve" must be an object with "heads"')
    steps = _floats(hc.get("step", []), "head_curve.step")
    cols = [steps] + [_floats(v, "head_curve") for v in heads.values()]
    if any(len(c) != len(steps) for c in cols):
        raise ValueError("the head curve's columns differ in length")
    run.heads = [str(b)[:200] for b in heads]
    run.head_loss = RingBuffer(STEP_CAPACITY, len(cols))
    if len(steps):
        run.head_loss.extend(np.stack(cols, axis=1))


def _head_losses(v: Any) -> dict | None:
    """An epoch's {block: loss} from a runs file, or None when it is not one."""
    if not isinstance(v, dict) or len(v) > MAX_HEADS:
        return None
    if not all(isinstance(x, (int, float)) or x is None for x in v.values()):
        return None
    return {str(k)[:200]: x for k, x in v.items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (bool, str)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(v)
    return str(v)


def run_to_dict(run: RunData) -> dict:
    d = run.steps.data()
    keep = _thin(len(d))
    d = d[keep]
    return {
        "name": run.name,
        "started": run.started,
        "status": run.status,
        "settings": _jsonable(run.settings),
        "blocks": list(run.blocks),
        "block_types": dict(run.block_types),
        "info": _jsonable({k: run.info[k] for k in INFO_KEYS if k in run.info}),
        "final": _jsonable(run.final_metrics()),
        "end": _jsonable(
            {k: run.end.get(k) for k in ("reason", "message", "seconds", "test") if k in run.end}
        ),
        "epochs": [
            _jsonable({k: e.get(k) for k in (*EPOCH_KEYS, *HEAD_KEYS) if k in e})
            for e in run.epochs
        ],
        "curve": {
            "step": [int(x) for x in d[:, 0]],
            "epoch": [int(x) for x in d[:, 1]],
            "loss": [_num(x) for x in d[:, 2]],
            "lr": [_num(x) for x in d[:, 3]],
            "loss_ema": [_num(x) for x in d[:, 4]],
        },
        "time_grads": {b: [_num(x) for x in v] for b, v in run.time_grads_avg.items()},
        "grad_curve": _grad_curve(run),
        **_head_curve(run),
        "confusion": None if run.confusion is None else np.asarray(run.confusion).tolist(),
    }


def _floats(v: Any, what: str) -> np.ndarray:
    if not isinstance(v, list) or len(v) > 10_000_000:
        raise ValueError(f"{what} must be a list of numbers")
    return np.array([np.nan if x is None else float(x) for x in v], dtype=np.float64)


def run_from_dict(d: Any, run_id: int) -> RunData:
    """Rebuild a finished run; ValueError/TypeError on anything malformed."""
    if not isinstance(d, dict):
        raise ValueError("a run must be an object")
    name = d.get("name")
    settings = d.get("settings", {})
    if not isinstance(name, str) or not isinstance(settings, dict):
        raise ValueError('a run needs a "name" string and a "settings" object')
    run = RunData(run_id, name[:200], settings)
    run.status = str(d.get("status", "finished"))[:40]
    started = d.get("started")
    run.started = float(started) if isinstance(started, (int, float)) else 0.0
    blocks = d.get("blocks", [])
    types = d.get("block_types", {})
    if (
        not isinstance(blocks, list)
        or not all(isinstance(b, str) for b in blocks)
        or not isinstance(types, dict)
    ):
        raise ValueError('"blocks" must be a list of block ids')
    run.set_blocks(blocks, {str(k): str(v) for k, v in types.items()})
    info = d.get("info", {})
    run.info = dict(info) if isinstance(info, dict) else {}
    end = d.get("end", {})
    run.end = dict(end) if isinstance(end, dict) else {}
    epochs = d.get("epochs", [])
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise ValueError('"epochs" must be a list of objects')
    run.epochs = [
        {k: e[k] for k in EPOCH_KEYS if k in e and (e[k] is None or isinstance(e[k], (int, float)))}
        | {k: h for k in HEAD_KEYS if (h := _head_losses(e.get(k))) is not None}
        for e in epochs
    ]
    c = d.get("curve", {})
    if not isinstance(c, dict):
        raise ValueError('"curve" must be an object')
    cols = [
        _floats(c.get(k, []), f"curve.{k}") for k in ("step", "epoch", "loss", "lr", "loss_ema")
    ]
    n = len(cols[0])
    if any(len(col) not in (0, n) for col in cols):
        raise ValueError("the curve's columns differ in length")
    cols = [col if len(col) == n else np.full(n, np.nan) for col in cols]
    if n:
        run.steps.extend(np.stack(cols, axis=1))
    _read_grad_curve(run, d.get("grad_curve"))
    _read_head_curve(run, d.get("head_curve"))
    tg = d.get("time_grads", {})
    if isinstance(tg, dict):
        run.time_grads_avg = {str(b): _floats(v, "time_grads") for b, v in tg.items()}
    cm = d.get("confusion")
    if cm is not None:
        a = np.array(cm, dtype=np.float64)
        if a.ndim == 2 and a.shape[0] == a.shape[1]:
            run.confusion = a.astype(np.int64)
    return run


def _read_grad_curve(run: RunData, gc: Any) -> None:
    """The per-block gradient history (files before it was kept have none)."""
    if gc is None:
        return
    if not isinstance(gc, dict) or not isinstance(gc.get("blocks", {}), dict):
        raise ValueError('"grad_curve" must be an object')
    steps = _floats(gc.get("step", []), "grad_curve.step")
    cols = [steps]
    for b in run.blocks:
        v = gc["blocks"].get(b)
        col = _floats(v, "grad_curve") if v is not None else np.full(len(steps), np.nan)
        if len(col) != len(steps):
            raise ValueError("the gradient curve's columns differ in length")
        cols.append(col)
    if len(steps) and run.grads is not None:
        run.grads.extend(np.stack(cols, axis=1))


def save_runs(path: str | os.PathLike, runs: list[RunData]) -> None:
    save_json_atomic(
        {"format": FORMAT, "version": VERSION, "runs": [run_to_dict(r) for r in runs]}, path
    )


def load_runs(path: str | os.PathLike, first_id: int = 1) -> tuple[list[RunData], list[str]]:
    """(runs, problems). A missing file is no runs and no problem."""
    p = Path(path)
    if not p.exists():
        return [], []
    try:
        data = json.loads(read_limited(p, MAX_FILE_BYTES, what="runs file").decode("utf-8"))
    except BlockPropError as e:  # not a regular file, or too large: not read
        return [], [str(e)]
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSON,
        return [], [f"{p}: cannot read the runs ({e})"]  # or an int of over 4,300 digits
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return [], [f"{p}: not a BlockProp runs file"]
    if data.get("version") != VERSION:
        return [], [f"{p}: runs file version {data.get('version')!r} is not supported"]
    items = data.get("runs", [])
    if not isinstance(items, list):
        return [], [f'{p}: "runs" must be a list']
    runs, problems = [], []
    for i, d in enumerate(items):
        try:
            runs.append(run_from_dict(d, first_id + len(runs)))
        except (ValueError, TypeError, OverflowError) as e:
            problems.append(f"{p}: run #{i + 1} skipped ({e})")
    return runs, problems
