"""End to end: ``python app.py train PRESET`` against the preset's own PyTorch export, per epoch.

For each preset the graph is exported once (``app.py export PRESET --to pytorch``: a standalone
script that trains the same network on the same data, batches and settings with PyTorch CPU at
its default threads), then the two commands run in turn, ``--rounds`` times each, with a pause
between runs (idle BLAS/OpenMP threads stop spinning). An epoch's time is the interval between
two consecutive "epoch i/N" lines as they arrive on the program's standard output (training
plus the validation pass; the first epoch is left out, since before it each program imports,
loads its data and builds its model). Reported per side: the median epoch and the fastest; ratio
= engine median / PyTorch median (below 1: the engine is faster); and the whole command's wall
time (start-up included). The engine runs as a user runs it (``--processes`` auto: the batch is
split over two processes where that pays, engine/parallel.py).

The machine's load average is printed with every row: on a shared machine only the ratios of
one run compare.

Run:  .venv/bin/python benchmarks/train_vs_export.py [lenet5 adding_lstm char_lstm]
                                                       [--epochs 4] [--rounds 3]
      ``--markdown`` prints the rows as the README's table; ``--torch-threads 1`` runs the
      export with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PRESETS = ("lenet5", "adding_lstm", "char_lstm")
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\b")


def timed_epochs(
    cmd: list[str], timeout: float, env_extra: dict[str, str] | None = None
) -> tuple[list[float], float]:
    """Run ``cmd``; (seconds between consecutive epoch lines, whole run's seconds)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stamps: list[float] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if EPOCH_LINE.match(line):
            stamps.append(time.perf_counter())
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            break
    _, err = proc.communicate()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-400:]}")
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)], total


def export(preset: str, folder: Path) -> Path:
    out = folder / f"{preset}_torch.py"
    subprocess.run(
        [sys.executable, "app.py", "export", f"presets/{preset}.json", "--to", "pytorch"]
        + ["-o", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out


def bench(
    preset: str, epochs: int, rounds: int, folder: Path, timeout: float, torch_threads: int = 0
) -> dict:
    script = export(preset, folder)
    sides = {
        "engine": [sys.executable, "app.py", "train", f"presets/{preset}.json"]
        + ["--epochs", str(epochs)],
        "torch": [sys.executable, str(script), "--epochs", str(epochs)],
    }
    epochs_s: dict[str, list[float]] = {k: [] for k in sides}
    totals: dict[str, list[float]] = {k: [] for k in sides}
    # PyTorch's threads: its default, or OMP_NUM_THREADS (--torch-threads 1: core for core
    # with a one-process engine; on a busy machine its threads wait for each other)
    envs = {"engine": {}, "torch": {}}
    if torch_threads > 0:
        envs["torch"] = {"OMP_NUM_THREADS": str(torch_threads)}
    for _ in range(rounds):
        for side, cmd in sides.items():
            per_epoch, total = timed_epochs(cmd, timeout, envs[side])
            epochs_s[side] += per_epoch
            totals[side].append(total)
            time.sleep(1.0)
    r = {"preset": preset, "epochs": epochs, "rounds": rounds, "load": os.getloadavg()[0]}
    r["torch_threads"] = torch_threads or "default"
    for side in sides:
        r[f"{side}_s"] = statistics.median(epochs_s[side])
        r[f"{side}_min_s"] = min(epochs_s[side])
        r[f"{side}_run_s"] = statistics.median(totals[side])
    r["ratio"] = r["engine_s"] / r["torch_s"]
    r["ratio_min"] = r["engine_min_s"] / r["torch_min_s"]
    return r


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", default=list(DEFAULT_PRESETS))
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (>= 2)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--markdown", action="store_true", help="rows of the README table")
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="PyTorch's threads (default: its own)"
    )
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bp_e2e_") as tmp:
        for preset in args.presets:
            r = bench(preset, args.epochs, args.rounds, Path(tmp), args.timeout, args.torch_threads)
            rows.append(r)
            print(
                f"{preset:<14} engine {r['engine_s']:7.3f} s/epoch (fastest "
                f"{r['engine_min_s']:.3f}, run {r['engine_run_s']:.1f} s)   torch "
                f"{r['torch_s']:7.3f} s/epoch (fastest {r['torch_min_s']:.3f}, run "
                f"{r['torch_run_s']:.1f} s)   ratio {r['ratio']:.2f} (fastest "
                f"{r['ratio_min']:.2f})   load {r['load']:.1f}",
                flush=True,
            )
    if args.markdown:
        print("| preset, per epoch | engine | PyTorch export | engine / PyTorch |")
        print("|---|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['preset']} | {r['engine_s']:.2f} s | {r['torch_s']:.2f} s | "
                f"{r['ratio']:.2f} (fastest {r['ratio_min']:.2f}) |"
            )
    return rows


if __name__ == "__main__":
    main()
