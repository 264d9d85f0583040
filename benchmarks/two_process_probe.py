"""Probe: LeNet-5's training step split over two processes (half the batch each), against the
one-process engine and PyTorch CPU, interleaved as in engine_vs_torch.py.

This is a measurement, not a feature: it shows what using the second core is worth before the
engine is changed to do it (issue 2's LeNet-5 target, <= 1.2x PyTorch at its default 2
threads, is out of reach on one core: 6.1-6.3 ms against PyTorch's 4.4-4.7 ms).

How the split works here: the parameters live in shared memory, seen by both processes' models
(the same graph and seed); each step the helper process computes the forward and backward of
the second half of the batch while this process does the first, the helper's gradients come
back through shared memory and are averaged (the loss is a mean, so the full batch's gradient
is the mean of the two halves' gradients), then SGD updates the shared parameters in place.
One hand-over each way per step: threads in one process could not do this (the GIL hand-overs
between NumPy calls made two threads slower than one; engine/conv_plan.py records it).
BLAS runs on one thread in both processes (threadpoolctl): otherwise OpenBLAS's idle worker
threads spin on the cores the other process needs, and a step took 12-56 ms.

Measured 2026-12-05 (2-core VM, quiet): one process 6.2-6.5 ms, two processes 4.3-4.5 ms,
PyTorch 4.7-4.8 ms: two processes / PyTorch = 0.91-0.92.
Not covered by the probe (a real implementation must): BatchNorm (batch statistics over the
whole batch: one process, or synchronised statistics), Dropout (each process draws its own
masks), the per-layer inspection the app shows (activations, BPTT gradients of the helper's
half), and the helper's life (start with the training process, end with it).

Run:  .venv/bin/python benchmarks/two_process_probe.py   (Linux: uses "fork")
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import threadpoolctl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine_vs_torch as evt  # noqa: E402

import engine  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402
from engine.losses import get_loss  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402

N, HALF = evt.BATCH, evt.BATCH // 2


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(evt.SEED)
    return rng.standard_normal((N, 1, 32, 32), dtype=np.float32), rng.integers(0, 10, N)


def model() -> engine.Model:
    return engine.build_model(evt.lenet5_graph(), seed=evt.SEED)


def shared_views(shm: shared_memory.SharedMemory, like: dict[str, np.ndarray]) -> dict:
    """One float32 view into ``shm`` per array of ``like`` (same names and shapes)."""
    flat = np.ndarray((sum(a.size for a in like.values()),), np.float32, buffer=shm.buf)
    views, offset = {}, 0
    for name, a in like.items():
        views[name] = flat[offset : offset + a.size].reshape(a.shape)
        offset += a.size
    return views


def bind(m: engine.Model, views: dict[str, np.ndarray]) -> None:
    """Make ``m``'s parameters the shared arrays (their values copied in first)."""
    for block, layer in m.layers.items():
        for key in list(layer.params):
            shared = views[f"{block}.{key}"]
            shared[...] = layer.params[key]
            layer.params[key] = shared
    m._params = {f"{b}.{k}": v for b, layer in m.layers.items() for k, v in layer.params.items()}


def helper(conn, p_name: str, g_name: str) -> None:
    threadpoolctl.threadpool_limits(1, "blas")
    keep_freed_memory()
    m = model()
    p_shm, g_shm = shared_memory.SharedMemory(p_name), shared_memory.SharedMemory(g_name)
    bind(m, shared_views(p_shm, m.params))
    grads = shared_views(g_shm, m.params)
    loss = get_loss("cross_entropy")
    x, y = data()
    x, y = x[HALF:].copy(), y[HALF:].copy()
    while conn.recv():
        value = loss.forward(m.forward(x, training=True), y)
        m.backward(loss.backward(), input_grad=False)
        for name, g in m.grads.items():
            np.copyto(grads[name], g)
        conn.send(value)
    p_shm.close()
    g_shm.close()


def main() -> None:
    threadpoolctl.threadpool_limits(1, "blas")
    keep_freed_memory()
    mp.set_start_method("fork")
    m = model()
    size = 4 * sum(a.size for a in m.params.values())
    p_shm = shared_memory.SharedMemory(create=True, size=size)
    g_shm = shared_memory.SharedMemory(create=True, size=size)
    try:
        bind(m, shared_views(p_shm, m.params))
        grads = shared_views(g_shm, m.params)
        conn, child_conn = mp.Pipe()
        proc = mp.Process(target=helper, args=(child_conn, p_shm.name, g_shm.name), daemon=True)
        proc.start()
        loss, opt = get_loss("cross_entropy"), make_optimizer({"name": "sgd", "lr": evt.LR})
        x, y = data()
        x0, y0 = x[:HALF].copy(), y[:HALF].copy()

        def two_process_step() -> None:
            conn.send(True)
            loss.forward(m.forward(x0, training=True), y0)
            m.backward(loss.backward(), input_grad=False)
            conn.recv()
            g = m.grads
            for name in g:
                g[name] += grads[name]
                g[name] *= 0.5
            opt.step(m.params, g)

        one = model()
        loss1, opt1 = get_loss("cross_entropy"), make_optimizer({"name": "sgd", "lr": evt.LR})

        def one_process_step() -> None:
            loss1.forward(one.forward(x, training=True), y)
            one.backward(loss1.backward(), input_grad=False)
            opt1.step(one.params, one.grads)

        # The split computes the same training: after 3 steps from the same weights, the
        # parameters agree with the one-process run's up to float32 rounding.
        for _ in range(3):
            two_process_step()
            one_process_step()
        for name, p in m.params.items():
            if not np.allclose(p, one.params[name], rtol=1e-4, atol=1e-6):
                raise AssertionError(f"two processes trained {name} differently")

        _, torch_step = evt.lenet5_case()
        evt.bench("one process vs two", one_process_step, two_process_step)
        evt.bench("two processes vs torch", two_process_step, torch_step)
        conn.send(False)
        proc.join(5)
    finally:
        for shm in (p_shm, g_shm):
            shm.close()
            shm.unlink()


if __name__ == "__main__":
    main()
