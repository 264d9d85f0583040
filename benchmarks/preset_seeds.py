"""The spread over training seeds of every figure tests/test_preset_claims.py checks.

Trains each preset in its CLAIMS with seeds 0..N-1 (its other settings unchanged) and prints,
per claim, the quoted figure, each seed's measurement, their median and range: the tolerances
there and the figures in the descriptions are chosen from these (benchmarks/NOTES.md).

    python benchmarks/preset_seeds.py [--seeds 5] [preset ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402


def claims_module():
    path = ROOT / "tests" / "test_preset_claims.py"
    spec = importlib.util.spec_from_file_location("preset_claims", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    mod = claims_module()
    names = args.names or sorted(mod.CLAIMS)
    for name in names:
        text = engine.load_graph(ROOT / "presets" / f"{name}.json").description
        rows = [[] for _ in mod.CLAIMS[name]]
        for seed in range(args.seeds):
            t0 = time.process_time()
            run = mod.train(name, seed=seed)
            for row, (_, measure, _) in zip(rows, mod.CLAIMS[name], strict=True):
                row.append(float(measure(run)))
            cpu = time.process_time() - t0
            print(f"# {name} seed {seed}: {cpu:.1f} s CPU", file=sys.stderr, flush=True)
        for row, (pattern, _, tol) in zip(rows, mod.CLAIMS[name], strict=True):
            m = re.search(pattern, text)
            quoted = [float(g) for g in m.groups() if g is not None] if m else None
            vals = np.array(row)
            print(
                json.dumps(
                    {
                        "preset": name,
                        "pattern": pattern,
                        "quoted": quoted,
                        "tolerance": list(tol),
                        "seeds": [float(f"{v:.4g}") for v in row],
                        "median": float(f"{np.median(vals):.4g}"),
                        "min": float(f"{vals.min():.4g}"),
                        "max": float(f"{vals.max():.4g}"),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
