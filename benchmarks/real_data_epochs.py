"""Epoch times and peak memory of the presets on the standard data sets, the engine against the
exported PyTorch script, on generated files of the real sizes and formats (this machine cannot
download the real ones: tests/standard_files.py writes them).

    python benchmarks/real_data_epochs.py                      # every real-data preset
    python benchmarks/real_data_epochs.py mnist_mlp --steps 40 # some, timing 40 steps

Each run is a process of its own (its peak resident memory is the kernel's ru_maxrss). A
preset trains one whole epoch (validation included), except those named by ``--timed`` (an
epoch of many minutes), which time ``--steps`` steps after two warm-up steps and multiplies the
median step by the steps in an epoch (validation left out), and the table says so. The PyTorch
script runs with ``--torch-threads`` threads (1 by default: on a loaded machine torch's two
threads wait for each other, an MLP epoch took 114 s instead of about 10 s), the engine with its
own choice of one or two processes (BLAS on one thread each), as the app and ``app.py train`` do.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PRESETS = [
    "lenet5_mnist",
    "mnist_mlp",
    "fashion_cnn",
    "shakespeare_char_rnn",
    "cifar10_augmentation",
    "cifar10_resnet20",
]
FULL = {"mnist": 60_000, "cifar_per_file": 10_000, "text_chars": 1_115_394}  # the real sizes


def pin_present(mp) -> None:
    """Pin the sums of the generated files in the cache folder (the child's view)."""
    from standard_files import pin

    from engine.data import download, standard

    for name in ("mnist", "fashion_mnist", "shakespeare"):
        folder = download.data_dir() / standard.SOURCES[name].folder
        files = {r.name: (folder / r.name).read_bytes() for r in standard.SOURCES[name].files}
        pin(mp, name, files)


def steps_per_epoch(graph) -> int:
    import engine

    t = engine.Trainer.from_graph(graph)
    return math.ceil(len(t.train_data[0]) / t.spec["batch_size"])


def child_engine(name: str, steps: int | None) -> dict:
    import numpy as np
    import pytest

    import engine
    from engine.heap import keep_freed_memory

    keep_freed_memory()  # as app.py train does
    mp = pytest.MonkeyPatch()
    pin_present(mp)
    g = engine.load_graph(ROOT / "presets" / f"{name}.json")
    g.training["epochs"] = 1
    t0 = time.perf_counter()
    t = engine.Trainer.from_graph(g)
    load = time.perf_counter() - t0
    per_epoch = math.ceil(len(t.train_data[0]) / t.spec["batch_size"])
    stamps, epoch_s = [], None
    for ev in t.run():
        if ev["event"] == "step":
            stamps.append(time.perf_counter())
            if steps is not None and len(stamps) == steps + 2:
                t.stop()
        elif ev["event"] == "epoch":
            epoch_s = ev["seconds"]
    out = {"load_s": load, "processes": t.processes, "steps_per_epoch": per_epoch}
    if steps is None:
        out["epoch_s"] = epoch_s
    else:
        out["step_s"] = float(np.median(np.diff(stamps[1:])))
        out["epoch_s"] = out["step_s"] * per_epoch
    return out


def child_torch(name: str, steps: int | None, threads: int = 0) -> dict:
    import pytest
    import torch

    if threads:
        torch.set_num_threads(threads)

    import engine
    from engine.export import export_code

    pin_present(pytest.MonkeyPatch())
    g = engine.load_graph(ROOT / "presets" / f"{name}.json")
    g.training["epochs"] = 1
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}_torch.py"
        path.write_text(export_code(g, "pytorch"), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"{name}_torch", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        t0 = time.perf_counter()
        X, y = mod.load_data()
        load = time.perf_counter() - t0
        del X, y

        def run(n):
            t = time.perf_counter()
            mod.train(epochs=1, steps=n)
            return time.perf_counter() - t

        out = {"load_s": load, "threads": torch.get_num_threads()}
        if steps is None:
            out["epoch_s"] = run(None) - load
        else:  # two runs that differ by `steps` steps: the difference is their time
            a, b = run(2), run(2 + steps)
            out["step_s"] = (b - a) / steps
            out["epoch_s"] = out["step_s"] * steps_per_epoch(g)
    return out


def measure(name: str, target: str, steps: int | None, env: dict, threads: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", target, name, "--steps", str(steps or 0)]
    cmd += ["--torch-threads", str(threads)]
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{target} {name} failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    result["load_avg"] = (load + os.getloadavg()[0]) / 2  # the machine's, before and after
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("presets", nargs="*", default=PRESETS)
    ap.add_argument("--steps", type=int, default=20, help="steps timed in a long epoch")
    ap.add_argument(
        "--timed", nargs="*", default=["cifar10_resnet20"], help="presets timed by steps"
    )
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch.set_num_threads for the script (0: torch's default, one per core)",
    )
    ap.add_argument("--data", default="/tmp/blockprop_real_sized", help="generated cache folder")
    ap.add_argument("--child", nargs=2, metavar=("TARGET", "PRESET"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.child:
        target, name = args.child
        if target == "engine":
            out = child_engine(name, args.steps or None)
        else:
            out = child_torch(name, args.steps or None, args.torch_threads)
        print(json.dumps(out), flush=True)
        return
    import pytest
    from standard_files import place

    import engine

    data = Path(args.data)
    mp = pytest.MonkeyPatch()
    if not (data / "ready").exists():
        place(mp, data, **FULL)
        (data / "ready").write_text("generated by benchmarks/real_data_epochs.py\n")
    else:
        mp.setenv("BLOCKPROP_DATA_DIR", str(data))
    pin_present(mp)
    env = {**os.environ, "BLOCKPROP_DATA_DIR": str(data)}
    results = {}
    for name in args.presets:
        g = engine.load_graph(ROOT / "presets" / f"{name}.json")
        n = steps_per_epoch(g)
        steps = args.steps if name in args.timed else None
        row = {"steps_per_epoch": n, "timed": "whole epoch" if steps is None else f"{steps} steps"}
        for target in ("engine", "pytorch"):
            row[target] = measure(name, target, steps, env, args.torch_threads)
        results[name] = row
        e, p = row["engine"], row["pytorch"]
        print(
            f"{name:22s} {n:4d} steps/epoch ({row['timed']}): engine {e['epoch_s']:7.1f} s "
            f"({e['peak_mb']:5.0f} MB peak, {e['processes']} proc), PyTorch {p['epoch_s']:7.1f} s "
            f"({p['peak_mb']:5.0f} MB peak, {p['threads']} thread(s)), ratio "
            f"{e['epoch_s'] / p['epoch_s']:.2f}, load {e['load_avg']:.1f} / {p['load_avg']:.1f}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
