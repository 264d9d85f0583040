"""Train every preset with its own settings and print the outcome table the README shows.

    python benchmarks/presets.py                 # all presets
    python benchmarks/presets.py lenet5 xor      # some of them

For each preset: the final epoch's validation (or training, when a preset keeps no validation
set) accuracy or loss, the wall-clock seconds, and the preset's own point where it has one:
the first-steps gradient RMS ratio first/last layer for the deep MLPs, the MSE against the
0.167 baseline for the adding problem.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.data import needs_download  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402


def first_last_ratio(graph: engine.Graph, steps: int = 5) -> float:
    """Mean over the first steps of grad_rms(first Dense) / grad_rms(last Dense)."""
    trainer = engine.Trainer.from_graph(graph)
    dense = [n for n in trainer.model.layers if graph.type_of(n) == "Dense"]
    ratios = []
    for ev in trainer.run():
        if ev["event"] == "step":
            g = ev["grad_rms"]
            ratios.append(g[dense[0]] / g[dense[-1]])
            if len(ratios) == steps:
                trainer.stop()
    return float(np.mean(ratios))


def run(path: Path) -> dict:
    graph = engine.load_graph(path)
    t0 = time.perf_counter()
    trainer = engine.Trainer.from_graph(graph)
    last = {}
    for ev in trainer.run():
        if ev["event"] == "epoch":
            last = ev
        elif ev["event"] == "end":
            end = ev
    row = {
        "preset": path.stem,
        "name": graph.name,
        "epochs": last.get("epoch"),
        "seconds": round(time.perf_counter() - t0, 1),
        "end": end["reason"],
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "train_acc": last.get("train_acc"),
        "val_acc": last.get("val_acc"),
        "params": engine.analyze(graph).total_params,
    }
    if path.stem.startswith("deep_"):
        row["grad_first_over_last"] = first_last_ratio(graph)
    return row


def outcome_text(r: dict) -> str:
    if r["val_acc"] is not None:
        text = f"val acc {100 * r['val_acc']:.1f}%"
    elif r["train_acc"] is not None:
        text = f"train acc {100 * r['train_acc']:.1f}%"
    elif r["val_loss"] is not None:
        text = f"val MSE {r['val_loss']:.4f}"
    else:
        text = f"train loss {r['train_loss']:.4f}"
    if "grad_first_over_last" in r:
        text += f"; first/last layer grad RMS {r['grad_first_over_last']:.2g}"
    return text


def main(argv: list[str]) -> int:
    keep_freed_memory()  # as the command line and the app's training process do
    paths = engine.graph.graph_files(ROOT / "presets")
    # The presets on downloaded data sets: benchmarks/real_data_epochs.py times them on
    # generated files of the real sizes (this machine cannot download the real ones).
    paths = [
        p for p in paths if not needs_download(engine.load_graph(p).training.get("dataset") or {})
    ]
    if argv:
        paths = [p for p in paths if p.stem in argv]
    rows = []
    print("| preset | params | epochs | outcome | seconds |")
    print("|---|---:|---:|---|---:|")
    for p in paths:
        r = run(p)
        rows.append(r)
        print(
            f"| {r['preset']} | {r['params']:,} | {r['epochs']} | {outcome_text(r)} | "
            f"{r['seconds']} |",
            flush=True,
        )
    out = ROOT / "benchmarks" / "presets_results.json"
    if not argv:
        out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
