"""Engine vs PyTorch CPU: the time of one training step, case by case.

LeNet-5 case: batch 64 of 1x32x32 images; conv 6@5x5, ReLU, max pool 2, conv 16@5x5, ReLU,
max pool 2, flatten, dense 120, ReLU, dense 84, ReLU, dense 10; softmax cross-entropy; backward;
SGD update. The engine runs the real path (engine.Graph -> build_model, engine.losses,
engine.optim); PyTorch runs the same network, with the same starting weights, on its default
threads. The first step's losses are compared, so both sides are known to compute the same thing.
As in PyTorch, where the data does not require grad, the first convolution computes no input
gradient: ``model.backward(..., input_grad=False)``, as engine.Trainer calls it. (Setting the
layer's ``needs_input_grad`` by hand is not enough: ``Model.backward`` sets it from
``input_grad`` on every call, and until this was fixed the benchmark timed an input gradient
for C1 that torch skipped, about 1.3 ms of the engine's step.) The engine runs its products
on one thread each (engine.conv_plan.Conv2dPlan explains why); PyTorch uses its default thread
count. Both sides run with the malloc settings engine.Trainer sets (engine.heap: freed memory
is kept for the next step instead of being page-faulted back in; 20 % of the engine's LeNet-5
step without them).

Timing: the two sides run in alternating blocks of steps (interleaved, so machine noise hits
both), with a short pause between blocks: BLAS and OpenMP worker threads keep spinning for a
while after their last job, and a pause stops one side's idle spinners from stealing the other
side's cores. The first step of each block is a warm-up and is not counted. Reported: the median
step time of each side and ratio = engine / torch (below 1: the engine is faster).

Run:  .venv/bin/python benchmarks/engine_vs_torch.py [--rounds 10] [--block 10] [--case lenet5]
Other cases join through ``add_case(name, factory)``: factory() returns (engine_step,
torch_step), two callables that each run one full training step (and may return the loss), and
optionally a third called after the case (to end a helper process).

``lenet5`` times the engine as engine.Trainer runs it by default (``processes="auto"``: on two
cores the batch is split over two processes, engine/parallel.py), ``lenet5_1proc`` in one
process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402
from engine.losses import get_loss  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402

Step = Callable[[], object]
Factory = Callable[[], tuple[Step, Step]]

CASES: list[tuple[str, Factory]] = []

BATCH, LR, SEED = 64, 0.01, 0


def add_case(name: str, factory: Factory) -> None:
    """Register a benchmark case (the recurrent cases join this way)."""
    CASES.append((name, factory))


def bench(
    name: str,
    engine_step: Step,
    torch_step: Step,
    rounds: int = 10,
    block: int = 10,
    pause: float = 0.2,
) -> dict:
    """Time both steps in alternating blocks; print and return the medians (ms) and the ratio."""
    times: dict[str, list[float]] = {"engine": [], "torch": []}
    for _ in range(rounds):
        for side, step in (("engine", engine_step), ("torch", torch_step)):
            step()  # warm-up: caches, buffers, waking threads
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                times[side].append(time.perf_counter() - t0)
            time.sleep(pause)
    e_ms = 1e3 * statistics.median(times["engine"])
    t_ms = 1e3 * statistics.median(times["torch"])
    result = {
        "case": name,
        "engine_ms": e_ms,
        "torch_ms": t_ms,
        "ratio": e_ms / t_ms,
        "steps": len(times["engine"]),
    }
    print(
        f"{name:<12} engine {e_ms:7.2f} ms   torch {t_ms:7.2f} ms   "
        f"ratio {e_ms / t_ms:5.2f}   ({result['steps']} steps each)",
        flush=True,
    )
    return result


# --- LeNet-5 ------------------------------------------------------------------------------------
def lenet5_graph() -> engine.Graph:
    return engine.load_graph(Path(__file__).resolve().parent.parent / "presets" / "lenet5.json")


def lenet5_case(processes: int | str = "auto") -> tuple[Step, Step, Callable[[], None]]:
    """LeNet-5's step as engine.Trainer runs it: ``processes`` as its setting ("auto" splits
    the batch over two processes where engine.parallel.choose_processes says so: here, on two
    cores). Returns (engine_step, torch_step, close)."""
    import torch

    from engine.parallel import SplitStep, choose_processes
    from engine.trainer import forward_backward

    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, 1, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)

    model = engine.build_model(lenet5_graph(), seed=SEED)
    loss = get_loss("cross_entropy")
    opt = make_optimizer({"name": "sgd", "lr": LR})
    n_proc, why = choose_processes(model, BATCH, processes)
    print(f"lenet5 engine in {n_proc} process{'es' * (n_proc > 1)} ({why})", flush=True)
    split = None
    if n_proc == 2:
        split = SplitStep(model, lambda i: forward_backward(model, loss, x, y, True, i), BATCH)
        # as Trainer.start_helper: the update reads the split's flat arrays where they are
        params = list(model.params.values())
        opt.use_flat(params, split.flat_params, split.grad_views, split.flat_grads)
    idx = np.arange(BATCH)

    def engine_step() -> float:
        if split is not None:  # half the batch in a helper process, gradients combined
            value, _ = split.forward_backward(idx)
        else:
            value = loss.forward(model.forward(x, training=True), y)
            model.backward(loss.backward(), input_grad=False)  # as torch: x needs no gradient
        opt.step(model.params, model.grads)
        return value

    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(400, 120),
        torch.nn.ReLU(),
        torch.nn.Linear(120, 84),
        torch.nn.ReLU(),
        torch.nn.Linear(84, 10),
    )
    with torch.no_grad():  # the same starting weights on both sides
        for block_id, module in zip(
            [n for n, layer in model.layers.items() if layer.type_name in ("Conv2D", "Dense")],
            [m for m in tnet if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))],
            strict=True,
        ):
            module.weight.copy_(torch.from_numpy(model.params[f"{block_id}.weight"]))
            module.bias.copy_(torch.from_numpy(model.params[f"{block_id}.bias"]))
    topt = torch.optim.SGD(tnet.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    tloss = torch.nn.CrossEntropyLoss()

    def torch_step() -> float:
        topt.zero_grad()
        value = tloss(tnet(tx), ty)
        value.backward()
        topt.step()
        return float(value.detach())

    first_e, first_t = engine_step(), torch_step()
    second_e, second_t = engine_step(), torch_step()  # after one update: gradients agree too
    for a, b in ((first_e, first_t), (second_e, second_t)):
        if not abs(a - b) <= 1e-4 * max(1.0, abs(b)):
            raise AssertionError(f"LeNet-5: engine loss {a:.6f} != torch loss {b:.6f}")
    return engine_step, torch_step, (split.close if split is not None else lambda: None)


add_case("lenet5", lenet5_case)
add_case("lenet5_1proc", lambda: lenet5_case(processes=1))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="blocks per side")
    parser.add_argument("--block", type=int, default=10, help="timed steps per block")
    parser.add_argument("--case", action="append", help="run only these cases (repeatable)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="PyTorch's threads (default: its own choice, as a user gets)",
    )
    args = parser.parse_args(argv)
    # The engine runs with the malloc settings the Trainer uses (engine.heap), set before
    # anything runs: without them the engine's speed would depend on whether PyTorch happened
    # to free a large buffer first (which raises glibc's adaptive mmap threshold).
    keep_freed_memory()
    import torch

    if args.torch_threads > 0:  # e.g. 1: both sides on one core each
        torch.set_num_threads(args.torch_threads)

    print(
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads);"
        f" load average {os.getloadavg()[0]:.2f} (other busy processes slow both sides and make"
        " the ratio noisy)",
        flush=True,
    )
    results = []
    for name, factory in CASES:
        if args.case and name not in args.case:
            continue
        engine_step, torch_step, *close = factory()
        results.append(bench(name, engine_step, torch_step, args.rounds, args.block))
        for done in close:  # a split case ends its helper and gives BLAS its threads back
            done()
    return results


if __name__ == "__main__":
    main()
