"""Engine vs PyTorch CPU: one training step of a recurrent block.

One step = forward (batch 32, T 50 steps, 32 input features, hidden 128), MSE loss of the final
hidden state against a fixed target, backward (full BPTT), SGD update. PyTorch runs with its
default threads. Engine and torch alternate in short blocks (interleaved, so machine noise hits
both; see ``compare``) and the medians are compared: ratio = engine ms / torch ms (below 1: the
engine is faster).

Each cell is timed in one process (the block's own forward and backward), and, where
engine.Trainer would split the step over two processes by default (engine/parallel.py
``choose_processes``: here the LSTM and the GRU), also as the Trainer runs it then: the same
block in a model, half the batch in a helper process ("2 proc" rows).

Run: .venv/bin/python benchmarks/bench_recurrent.py [--blocks 12] [--cells rnn,lstm,gru]
Importable: rnn_case(), lstm_case(), gru_case() return (engine_step, torch_step) callables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.layers import GRU, LSTM, RNN  # noqa: E402

N, T, F, H = 32, 50, 32, 128
LR = 0.01

Step = Callable[[], float]


def _engine_step(layer_cls, seed: int = 0) -> Step:
    rng = np.random.default_rng(seed)
    layer = layer_cls(hidden_size=H).build((T, F), rng)
    x = rng.standard_normal((N, T, F), dtype=np.float32)
    y = rng.standard_normal((N, H), dtype=np.float32)
    lr = np.float32(LR)

    def step() -> float:
        out = layer.forward(x, training=True)
        diff = out - y
        loss = float(np.mean(diff * diff))
        layer.backward(diff * np.float32(2.0 / diff.size))  # d mean((out - y)^2) / d out
        for k, p in layer.params.items():
            p -= lr * layer.grads[k]
        return loss

    return step


def _split_step(layer_cls, seed: int = 0) -> tuple[Step, Callable[[], None]] | None:
    """The step as engine.Trainer runs it by default, or None where it stays in one process:
    Input (T, F) -> block -> MSE, half the batch in a helper process. Returns (step, close)."""
    import engine
    from engine.losses import get_loss
    from engine.parallel import SplitStep, choose_processes
    from engine.trainer import forward_backward

    g = engine.Graph(name=layer_cls.type_name)
    g.add_node("Input", {"shape": [T, F]}, node_id="in")
    g.add_node(layer_cls.type_name, {"hidden_size": H}, node_id="cell")
    g.add_edge("in", "cell")
    model = engine.build_model(g, seed=seed)
    if choose_processes(model, N, "auto")[0] != 2:
        return None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, F), dtype=np.float32)
    y = rng.standard_normal((N, H), dtype=np.float32)
    loss = get_loss("mse")
    split = SplitStep(model, lambda i: forward_backward(model, loss, x, y, False, i), N)
    idx = np.arange(N)
    lr = np.float32(LR)

    def step() -> float:
        loss, _ = split.forward_backward(idx)
        for layer in model.layers.values():
            for k, p in layer.params.items():
                p -= lr * layer.grads[k]
        return loss

    return step, split.close


def _torch_step(torch_cls, seed: int = 0) -> Step:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = torch_cls(F, H, batch_first=True)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x = torch.from_numpy(rng.standard_normal((N, T, F), dtype=np.float32))
    y = torch.from_numpy(rng.standard_normal((N, H), dtype=np.float32))

    def step() -> float:
        opt.zero_grad()
        out, _ = model(x)
        loss = torch.nn.functional.mse_loss(out[:, -1], y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def rnn_case() -> tuple[Step, Step]:
    """(engine_step, torch_step) for a vanilla tanh RNN."""
    import torch

    return _engine_step(RNN), _torch_step(torch.nn.RNN)


def lstm_case() -> tuple[Step, Step]:
    """(engine_step, torch_step) for an LSTM."""
    import torch

    return _engine_step(LSTM), _torch_step(torch.nn.LSTM)


def gru_case() -> tuple[Step, Step]:
    """(engine_step, torch_step) for a GRU."""
    import torch

    return _engine_step(GRU), _torch_step(torch.nn.GRU)


CASES = {"rnn": rnn_case, "lstm": lstm_case, "gru": gru_case}


def compare(
    engine_step: Step,
    torch_step: Step,
    blocks: int = 12,
    block: int = 5,
    pause: float = 0.25,
    warmup: int = 1,
) -> dict:
    """Interleaved timing; returns medians in ms and their ratio engine / torch.

    The two libraries alternate in blocks of ``block`` consecutive steps. Each block starts
    after ``pause`` seconds so that the other library's worker threads (OpenBLAS's and
    PyTorch's spin while waiting for work) have gone idle and do not steal its CPUs, and its
    first ``warmup`` steps (cold caches) are not counted. Machine noise still reaches both
    libraries alike.

    A step split over two processes is timed with ``pause`` 0.01 and ``warmup`` 3: after
    0.25 s idle its steps stay slow for dozens of steps (RNN h128: median 3.6 ms a step
    against 2.0-2.2 ms without long pauses, and 2.2 ms in engine.Trainer's continuous
    training), which training never sees. The short pause is still fair to PyTorch: while a
    split runs, the engine's BLAS has no worker threads to spin and the helper sleeps in a
    blocking read (PyTorch's median was the same at 0.25 s and 0.01 s pauses).
    """
    engine_step()
    torch_step()
    times: dict[str, list[float]] = {"engine": [], "torch": []}
    for _ in range(blocks):
        for name, step in (("engine", engine_step), ("torch", torch_step)):
            time.sleep(pause)
            for _ in range(warmup):
                step()
            for _ in range(block - warmup):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
    e_ms = 1e3 * float(np.median(times["engine"]))
    t_ms = 1e3 * float(np.median(times["torch"]))
    best = min(times["engine"]) / min(times["torch"])
    return {"engine_ms": e_ms, "torch_ms": t_ms, "ratio": e_ms / t_ms, "best_ratio": best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=12, help="alternations engine/torch")
    ap.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated: rnn, lstm, gru")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare against.", file=sys.stderr)
        return 2
    print(
        f"one SGD step, batch {N}, T {T}, input {F}, hidden {H}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; medians over {args.blocks} interleaved blocks"
    )
    print(
        f"load average {os.getloadavg()[0]:.2f} (other busy programs slow both sides and make "
        "the ratio noisy; 'best' compares the fastest steps)"
    )
    print(f"{'cell':6} {'engine ms':>10} {'torch ms':>10} {'engine/torch':>13} {'best':>6}")
    cells = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
    for name in (c.strip() for c in args.cells.split(",")):
        engine_step, torch_step = CASES[name]()
        r = compare(engine_step, torch_step, blocks=args.blocks)
        print(
            f"{name:6} {r['engine_ms']:10.2f} {r['torch_ms']:10.2f} {r['ratio']:13.2f} "
            f"{r['best_ratio']:6.2f}",
            flush=True,
        )
        split = _split_step(cells[name])
        if split is not None:
            try:
                r = compare(
                    split[0], torch_step, blocks=args.blocks, block=10, warmup=3, pause=0.01
                )
            finally:
                split[1]()  # the helper ends, BLAS gets its threads back
            label = f"{name} 2 proc"
            print(
                f"{label:6} {r['engine_ms']:10.2f} {r['torch_ms']:10.2f} {r['ratio']:13.2f} "
                f"{r['best_ratio']:6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
