"""How much engine.Trainer adds to a bare forward/backward/update loop (the budget is 10%).

    .venv/bin/python benchmarks/trainer_overhead.py [--epochs 10] [--threads]

Both loops train the same freshly built model on the same batches with the same optimizer; the
Trainer also computes the per-block gradient RMS, running accuracy, checks for divergence,
honours pause/stop and yields one event per step. The two run side by side, one step each in
turn, so a busy machine slows both alike; the medians of the step times are compared. Models:
an MLP on scikit-learn's digits (8x8, small steps where Python overhead shows most) and, when
the conv layers exist, LeNet-5 on digits resized to 32x32.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# One BLAS thread: then all the work runs on this thread, and its CPU clock (time.thread_time)
# measures it without the noise of other processes taking the cores. --threads changes this.
if "--threads" not in sys.argv:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine  # noqa: E402
from engine.data.base import Dataset  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402
from engine.losses import get_loss  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

CLOCK = time.thread_time


def digits(size: int | None = None) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    if size is None:
        X = X.reshape(len(X), -1)
    else:
        pad = (size - 8) // 2  # centre the 8x8 digit on a size x size canvas, as MNIST for LeNet
        X = np.pad(X, ((0, 0), (0, 0), (pad, size - 8 - pad), (pad, size - 8 - pad)))
    return Dataset(X=X, y=d.target, task="classification", n_classes=10, name="digits")


def mlp() -> engine.Graph:
    g = engine.Graph("MLP")
    g.add_node("Input", {"shape": [64]}, node_id="in")
    prev = "in"
    for i, units in enumerate((128, 64), 1):
        g.add_node("Dense", {"units": units}, node_id=f"d{i}")
        g.add_node("Activation", {"fn": "relu"}, node_id=f"a{i}")
        g.add_edge(prev, f"d{i}")
        g.add_edge(f"d{i}", f"a{i}")
        prev = f"a{i}"
    g.add_node("Dense", {"units": 10}, node_id="out")
    g.add_edge(prev, "out")
    return g


def lenet5() -> engine.Graph:
    return engine.load_graph(Path(__file__).resolve().parent.parent / "presets" / "lenet5.json")


def bare_steps(graph: engine.Graph, X: np.ndarray, y: np.ndarray, epochs: int, bs: int, seed: int):
    """forward, loss, backward, update: nothing else (a generator, one item per step)."""
    model = build_model(graph, seed=seed)
    loss_fn = get_loss("cross_entropy")
    opt = make_optimizer({"name": "adam", "lr": 1e-3})
    rng = np.random.default_rng(seed)
    params = model.params
    n = len(X)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for i in range(math.ceil(n / bs)):
            idx = perm[i * bs : (i + 1) * bs]
            out = model.forward(X[idx], training=True)
            loss_fn.forward(out, y[idx])
            model.backward(loss_fn.backward())
            opt.step(params, model.grads)
            yield


def trainer_steps(graph: engine.Graph, ds: Dataset, epochs: int, bs: int, seed: int):
    """The same training through engine.Trainer (val_split 0: no validation to time)."""
    tr = Trainer(
        build_model(graph, seed=seed), ds, epochs=epochs, batch_size=bs, seed=seed, val_split=0.0
    )
    return tr, tr.run()


def measure(name: str, graph: engine.Graph, ds: Dataset, epochs: int, bs: int = 32) -> float:
    """Alternate one bare step and one Trainer step, timing each on this thread's CPU clock;
    compare the medians (robust to bursts from other processes) and the totals."""
    tr, run = trainer_steps(graph, ds, epochs, bs, 0)
    X, y = tr.train_data
    bare = bare_steps(graph, X, y, epochs, bs, 0)
    tb, tt = [], []
    while True:
        t0 = CLOCK()
        try:
            next(bare)
        except StopIteration:
            break
        t1 = CLOCK()
        ev = next(run)
        while ev["event"] != "step":  # epoch ends are part of the Trainer's cost
            ev = next(run)
        t2 = CLOCK()
        tb.append(t1 - t0)
        tt.append(t2 - t1)
    b, t = np.median(tb), np.median(tt)
    overhead = (t - b) / b * 100
    total = (sum(tt) - sum(tb)) / sum(tb) * 100
    print(
        f"{name:8s} {len(tb):6d} steps  bare {b * 1e6:7.1f} us/step  trainer {t * 1e6:7.1f} "
        f"us/step  (medians)  overhead {overhead:+5.1f}%  (totals {total:+5.1f}%)"
    )
    return overhead


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument(
        "--threads",
        action="store_true",
        help="keep BLAS's default threads and time the wall clock instead",
    )
    args = ap.parse_args()
    keep_freed_memory()  # both loops reuse freed memory, as app.py train does
    if args.threads:
        global CLOCK
        CLOCK = time.perf_counter
    print(f"clock: {CLOCK.__name__}")
    measure("MLP", mlp(), digits(), args.epochs)
    if "Conv2D" in engine.layers.LAYER_TYPES and "MaxPool2D" in engine.layers.LAYER_TYPES:
        measure("LeNet-5", lenet5(), digits(32), max(1, args.epochs // 3))
    else:
        print("LeNet-5  skipped: the Conv2D / MaxPool2D layers are not there yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
