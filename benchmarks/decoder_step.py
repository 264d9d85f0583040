"""Decoder step time, engine vs PyTorch CPU: greedy decoding of the attention_dates preset.

Each decoder step runs the teacher-forced graph once on the sample with the prefix decoded so
far written behind "go" (engine.decoding.greedy_seq2seq) and reads the next character at the
prefix's position; 10 steps write an ISO date. The PyTorch side is the same graph exported by
``export_code(graph, "pytorch")`` with the engine's weights, run by the same loop
(``torch.no_grad``, default threads). Both decode the same 28-character sources and must agree
on every character; reported: the median time of one decoder step (one forward of the batch)
for batch 1 (one date typed in Try it) and 64, and ratio = engine / torch.

Run:  .venv/bin/python benchmarks/decoder_step.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.decoding import Layout  # noqa: E402
from engine.export import export_code  # noqa: E402


def torch_module(graph: engine.Graph, model: engine.Model, folder: Path):
    engine.save_weights(model, folder / "w.npz")
    path = folder / "dates_net.py"
    path.write_text(export_code(graph, "pytorch", weights=str(folder / "w.npz")), "utf-8")
    spec = importlib.util.spec_from_file_location("dates_net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_model().eval()


def greedy(forward, X: np.ndarray, layout: Layout) -> tuple[np.ndarray, list[float]]:
    """Greedy decoding with ``forward``; returns the ids and each step's seconds."""
    X = X.copy()
    layout.clear(X)
    out = np.zeros((len(X), layout.steps), np.int64)
    times = []
    for t in range(layout.steps):
        t0 = time.perf_counter()
        tok = forward(X)[:, t].argmax(-1)
        times.append(time.perf_counter() - t0)
        out[:, t] = tok
        if t + 1 < layout.steps:
            layout.write(X, t + 1, tok)
    return out, times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    import torch

    graph = engine.load_graph(ROOT / "presets" / "attention_dates.json")
    model = engine.build_model(graph, seed=0)
    ds = load_dataset({"name": "dates", "n": 64}, seed=1)
    layout = Layout.of(ds.meta, ds.n_classes)
    with tempfile.TemporaryDirectory() as tmp:
        net = torch_module(graph, model, Path(tmp))

    def eng(x):
        return model.forward(x, training=False)

    def tor(x):
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    for batch in (1, 64):
        X = np.asarray(ds.X[:batch], np.float32)
        a, _ = greedy(eng, X, layout)
        b, _ = greedy(tor, X, layout)
        assert np.array_equal(a, b), "the engine and PyTorch decode differently"
        times = {"engine": [], "torch": []}
        for _ in range(args.rounds):
            for side, f in (("engine", eng), ("torch", tor)):
                times[side] += greedy(f, X, layout)[1]
        e, t = statistics.median(times["engine"]), statistics.median(times["torch"])
        print(
            f"batch {batch:>2}: decoder step engine {e * 1000:.2f} ms, torch {t * 1000:.2f} ms, "
            f"ratio {e / t:.2f} (median of {len(times['engine'])} steps each)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
