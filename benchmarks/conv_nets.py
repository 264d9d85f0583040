"""Engine vs PyTorch CPU on CIFAR-sized convolutional nets (issue 20), plus a per-block profile.

Cases (``--case``, repeatable; default all):
- ``resnet20``: one training step of a ResNet-20 (He et al. 2016's CIFAR net: 3x32x32 input,
  a 3x3 conv to 16 maps, three stages of three basic blocks at 16/32/64 channels, 3x3 convs
  without bias, each followed by BatchNorm, ReLU; a 1x1 stride-2 conv + BatchNorm on the
  shortcut where the size halves; global average pool, dense 10), batch 64: forward,
  softmax cross-entropy, backward, SGD update.
- ``vgg_block``: one training step of a VGG-style block at batch 64: input 64x32x32, two 3x3
  convs 64->64 (padding 1) each with ReLU, 2x2 max pool, flatten, dense 10.
- ``resnet20_1proc``, ``vgg_block_1proc``: the same in one process (``resnet20`` and
  ``vgg_block`` run as engine.Trainer does by default: on two cores half the batch in a helper
  process, engine/parallel.py).
- ``resnet18_infer``: inference of a ResNet-18 (ImageNet layout: 7x7/2 conv 64, 3x3/2 max
  pool, stages of two basic blocks at 64/128/256/512, global average pool, dense 1000) on one
  3x224x224 image (the zoo's explain / Try it path).

The PyTorch side is the graph's own PyTorch export (engine.export) with the engine's starting
weights loaded, so both sides run the same network; the first steps' outputs are compared
before timing. Timing as benchmarks/engine_vs_torch.py: the two sides alternate in blocks of
steps with a pause between blocks (idle BLAS/OpenMP threads stop spinning), the first step of a
block is a warm-up. Reported per side: the median step and the fastest; ratio = engine median /
torch median. On a shared machine the load average printed first says how far to trust them;
``--idle SECONDS`` keeps only the rounds during which the other processes left the cores idle
(their CPU time from /proc/stat, engine.blas_threads.others_since), waiting up to SECONDS for
enough of them.

``--profile``: the engine's forward and backward CPU time per block of the ResNet-20 step
(median over steps), grouped by stage and by block type; ``--profile --blocks`` also per block;
``--profile --split`` of the step split over two processes (this process's half; BatchNorm's
exchanges with the other half apart from its own work);
``--profile --case resnet18_infer``: wall ms per block of the ResNet-18 inference, the
plain forward pass and Model.predict (which the case times).

Run:  .venv/bin/python benchmarks/conv_nets.py [--case resnet20] [--rounds 5] [--block 3]
                                              [--torch-threads 1] [--idle 600]
      .venv/bin/python benchmarks/conv_nets.py --profile
``resnet20_graph()``, ``vgg_block_graph()``, ``resnet18_graph()`` give the graphs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine  # noqa: E402
from engine import blas_threads  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402
from engine.losses import get_loss  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402

LR, SEED = 0.01, 0
Step = Callable[[], object]


# --- graphs ------------------------------------------------------------------------------------
class _Builder:
    """Nodes and edges of a graph built block by block."""

    def __init__(self, shape: list[int]):
        self.nodes = [{"id": "in", "type": "Input", "config": {"shape": shape}}]
        self.edges: list[dict] = []

    def add(self, nid: str, kind: str, config: dict, *sources: str) -> str:
        self.nodes.append({"id": nid, "type": kind, "config": config})
        self.edges += [{"source": s, "target": nid} for s in sources]
        return nid

    def conv_bn(self, nid: str, src: str, filters: int, k: int, stride: int, relu: bool) -> str:
        pad = k // 2
        c = self.add(
            nid,
            "Conv2D",
            {
                "filters": filters,
                "kernel_size": k,
                "stride": stride,
                "padding": pad,
                "bias": False,
                "init": "he_normal",
            },
            src,
        )
        out = self.add(f"{nid}_bn", "BatchNorm", {}, c)
        if relu:
            out = self.add(f"{nid}_relu", "Activation", {"fn": "relu"}, out)
        return out

    def basic_block(self, nid: str, src: str, filters: int, stride: int, project: bool) -> str:
        a = self.conv_bn(f"{nid}_a", src, filters, 3, stride, True)
        b = self.conv_bn(f"{nid}_b", a, filters, 3, 1, False)
        short = self.conv_bn(f"{nid}_proj", src, filters, 1, stride, False) if project else src
        s = self.add(f"{nid}_add", "Add", {}, b, short)
        return self.add(f"{nid}_relu", "Activation", {"fn": "relu"}, s)

    def graph(self, name: str) -> engine.Graph:
        return engine.Graph.from_dict(
            {
                "format": "blockprop-graph",
                "version": 1,
                "name": name,
                "nodes": self.nodes,
                "edges": self.edges,
            }
        )


def resnet20_graph() -> engine.Graph:
    g = _Builder([3, 32, 32])
    x = g.conv_bn("stem", "in", 16, 3, 1, True)
    channels = 16
    for stage, filters in enumerate((16, 32, 64), 1):
        for i in range(3):
            stride = 2 if stage > 1 and i == 0 else 1
            x = g.basic_block(f"s{stage}b{i}", x, filters, stride, filters != channels)
            channels = filters
    x = g.add("gap", "GlobalAvgPool2D", {}, x)
    g.add("fc", "Dense", {"units": 10}, x)
    return g.graph("ResNet-20")


def vgg_block_graph() -> engine.Graph:
    g = _Builder([64, 32, 32])
    conv = {"filters": 64, "kernel_size": 3, "padding": 1, "init": "he_normal"}
    x = g.add("c1", "Conv2D", conv, "in")
    x = g.add("r1", "Activation", {"fn": "relu"}, x)
    x = g.add("c2", "Conv2D", conv, x)
    x = g.add("r2", "Activation", {"fn": "relu"}, x)
    x = g.add("pool", "MaxPool2D", {"kernel_size": 2}, x)
    x = g.add("flat", "Flatten", {}, x)
    g.add("fc", "Dense", {"units": 10}, x)
    return g.graph("VGG block")


def resnet18_graph() -> engine.Graph:
    g = _Builder([3, 224, 224])
    x = g.conv_bn("stem", "in", 64, 7, 2, True)
    x = g.add("pool", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, x)
    channels = 64
    for stage, filters in enumerate((64, 128, 256, 512), 1):
        for i in range(2):
            stride = 2 if stage > 1 and i == 0 else 1
            x = g.basic_block(f"s{stage}b{i}", x, filters, stride, filters != channels)
            channels = filters
    x = g.add("gap", "GlobalAvgPool2D", {}, x)
    g.add("fc", "Dense", {"units": 1000}, x)
    return g.graph("ResNet-18")


# --- the two sides -----------------------------------------------------------------------------
def torch_module(graph: engine.Graph, model: engine.Model):
    """The graph's PyTorch export with ``model``'s weights loaded."""
    from engine.export import export_code

    tmp = Path(tempfile.mkdtemp(prefix="bp_bench_"))
    engine.save_weights(model, tmp / "w.npz")
    path = tmp / "net.py"
    path.write_text(export_code(graph, "pytorch", weights=str(tmp / "w.npz")), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bp_bench_net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_model()


def training_case(
    graph: engine.Graph, batch: int, classes: int, processes: int | str = "auto"
) -> tuple[Step, Step]:
    """One training step each side; the engine's as engine.Trainer runs it with ``processes``
    ("auto": on two cores these nets split the batch over two processes, engine/parallel.py;
    BatchNorm blocks swap their sums between the halves)."""
    import torch

    from engine.parallel import SplitStep, choose_processes
    from engine.trainer import forward_backward

    rng = np.random.default_rng(SEED)
    model = engine.build_model(graph, seed=SEED)
    x = rng.standard_normal((batch, *model.input_shape), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    loss = get_loss("cross_entropy")
    opt = make_optimizer({"name": "sgd", "lr": LR})
    net = torch_module(graph, model).train()
    topt = torch.optim.SGD(net.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    tloss = torch.nn.CrossEntropyLoss()
    n_proc, why = choose_processes(model, batch, processes)
    print(f"{graph.name}: engine in {n_proc} process{'es' * (n_proc > 1)} ({why})", flush=True)
    idx = np.arange(batch)
    split = (
        SplitStep(model, lambda i: forward_backward(model, loss, x, y, True, i), batch)
        if n_proc == 2
        else None
    )
    if split is not None:
        _CLOSE.append(split.close)

    def engine_step() -> float:
        if split is not None:
            value, _ = split.forward_backward(idx)
        else:
            value, _ = forward_backward(model, loss, x, y, True, idx)
        opt.step(model.params, model.grads)
        return value

    def torch_step() -> float:
        topt.zero_grad()
        value = tloss(net(tx), ty)
        value.backward()
        topt.step()
        return float(value.detach())

    for _ in range(2):  # the second step after one update: the gradients agree too
        a, b = engine_step(), torch_step()
        if not abs(a - b) <= 1e-3 * max(1.0, abs(b)):
            raise AssertionError(f"{graph.name}: engine loss {a:.6f} != torch loss {b:.6f}")
    return engine_step, torch_step


def inference_case(graph: engine.Graph, batch: int) -> tuple[Step, Step]:
    import torch

    rng = np.random.default_rng(SEED)
    model = engine.build_model(graph, seed=SEED)
    x = rng.standard_normal((batch, *model.input_shape), dtype=np.float32)
    net = torch_module(graph, model).eval()
    tx = torch.from_numpy(x)

    def engine_step():
        return model.predict(x)

    def torch_step():
        with torch.no_grad():
            return net(tx).numpy()

    a, b = engine_step(), torch_step()
    scale = float(np.abs(b).max())
    if not np.abs(a - b).max() <= 1e-3 * max(1.0, scale):
        raise AssertionError(f"{graph.name}: outputs differ by {np.abs(a - b).max():.3g}")
    return engine_step, torch_step


_CLOSE: list[Callable[[], None]] = []  # helper processes to end after their case
CASES: dict[str, Callable[[], tuple[Step, Step]]] = {
    "resnet20": lambda: training_case(resnet20_graph(), 64, 10),
    "resnet20_1proc": lambda: training_case(resnet20_graph(), 64, 10, processes=1),
    "vgg_block": lambda: training_case(vgg_block_graph(), 64, 10),
    "vgg_block_1proc": lambda: training_case(vgg_block_graph(), 64, 10, processes=1),
    "resnet18_infer": lambda: inference_case(resnet18_graph(), 1),
}


# --idle: a round counts only while the other processes keep at most this much of a core busy
IDLE_CORE = 0.15


def _wait_for_quiet(deadline: float) -> bool:
    """Wait until the other processes have left the cores idle for a second, long enough for
    the engine's own look at the machine (engine.blas_threads, once a second) to see it too;
    False at ``deadline``."""
    big = blas_threads.BIG_PRODUCT_MACS
    while time.monotonic() < deadline:
        blas_threads.threads_for(big)  # the engine looks now if it has not for a second
        mark = blas_threads.cpu_mark()
        time.sleep(blas_threads.CHECK_EVERY + 0.05)
        quiet = (blas_threads.others_since(mark) or 0.0) <= IDLE_CORE
        if blas_threads.threads_for(big) > 1 and quiet:  # (its look over the same second)
            return True
    return False


def bench(
    name: str, engine_step: Step, torch_step: Step, rounds: int, block: int, idle: float = 0
) -> dict:
    """Alternating blocks with pauses; medians, fastest steps and the ratio of the medians.
    ``idle`` > 0: a round (a block each side, the order alternating) is kept only if the other
    processes left the cores idle while it ran (engine.blas_threads.others_since), waiting up to
    ``idle`` seconds in all for the quiet moments; on a shared machine the other jobs otherwise
    decide the medians (both sides' threads wait for cores)."""
    times: dict[str, list[float]] = {"engine": [], "torch": []}
    kept = dropped = 0
    deadline = time.monotonic() + idle
    sides = [("engine", engine_step), ("torch", torch_step)]
    while kept < rounds:
        if idle and not _wait_for_quiet(deadline):
            break
        mark = blas_threads.cpu_mark()
        got: dict[str, list[float]] = {"engine": [], "torch": []}
        for side, step in sides if kept % 2 == 0 or not idle else sides[::-1]:
            step()  # warm-up
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                got[side].append(time.perf_counter() - t0)
            time.sleep(0.3)
        if idle and (blas_threads.others_since(mark) or 0.0) > IDLE_CORE:
            dropped += 1
            continue
        kept += 1
        for side in times:
            times[side] += got[side]
    if not times["engine"]:
        raise SystemExit(f"{name}: no quiet {idle:g} s for a round ({dropped} dropped)")
    if idle:
        print(f"{name}: {kept} rounds on an idle machine, {dropped} dropped", flush=True)
    r = {"case": name, "steps": len(times["engine"])}
    for side in ("engine", "torch"):
        r[f"{side}_ms"] = 1e3 * statistics.median(times[side])
        r[f"{side}_min_ms"] = 1e3 * min(times[side])
    r["ratio"] = r["engine_ms"] / r["torch_ms"]
    r["ratio_min"] = r["engine_min_ms"] / r["torch_min_ms"]
    print(
        f"{name:<15} engine {r['engine_ms']:8.1f} ms (fastest {r['engine_min_ms']:7.1f})   "
        f"torch {r['torch_ms']:7.1f} ms (fastest {r['torch_min_ms']:7.1f})   "
        f"ratio {r['ratio']:4.2f} (fastest {r['ratio_min']:4.2f})   "
        f"{r['steps']} steps each, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return r


# --- per-block profile -------------------------------------------------------------------------
def profile(
    steps: int = 8, blocks: bool = False, split: bool = False
) -> dict[str, tuple[float, float]]:
    """Median forward and backward ms per block of the ResNet-20 training step (CPU time of
    this thread: one process, BLAS on one thread inside the convolutions; on a shared machine
    the wall clock adds whatever the other jobs take), printed grouped by stage (stem, s1..,
    head) and by block type. ``split``: the step as the ``resnet20`` case runs it, half the
    batch in a helper process (engine/parallel.py); the times are this process's half, and
    BatchNorm's are its own work: its exchanges with the helper (engine/batch_sync.py), the
    spin on the helper's message counted as CPU, are taken out and reported on their own
    (CPU and wall a step, and per stage)."""
    from engine.batch_sync import BatchSync
    from engine.parallel import SplitStep
    from engine.trainer import forward_backward

    graph = resnet20_graph()
    model = engine.build_model(graph, seed=SEED)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    loss = get_loss("cross_entropy")
    times: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    # the exchanges inside the block running now: CPU (the spin) and wall, this step's
    inside = [0.0, 0.0]
    waits: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])  # block -> [cpu, wall]

    def timed(*a, _f, _id, _d, **k):
        inside[:] = 0.0, 0.0
        t0 = time.thread_time()
        out = _f(*a, **k)
        times[_id][_d].append(time.thread_time() - t0 - inside[0])
        if inside[1]:
            waits[_id][0].append(inside[0])
            waits[_id][1].append(inside[1])
        return out

    for layer_id, layer in model.layers.items():
        timed_f = functools.partial(timed, _f=layer.forward, _id=layer_id, _d=0)
        timed_b = functools.partial(timed, _f=layer.backward, _id=layer_id, _d=1)

        layer.forward, layer.backward = timed_f, timed_b
    idx = np.arange(64)
    halves = (
        SplitStep(model, lambda i: forward_backward(model, loss, x, y, True, i), 64)
        if split
        else None
    )
    if halves is not None:  # after the fork: the parent's exchanges only
        exchange = BatchSync.exchange

        def timed_exchange(sync, mine):
            t0, w0 = time.thread_time(), time.perf_counter()
            out = exchange(sync, mine)
            inside[0] += time.thread_time() - t0
            inside[1] += time.perf_counter() - w0
            return out

        BatchSync.exchange = timed_exchange
    totals, walls = [], []
    try:
        for _ in range(steps + 1):
            t0, w0 = time.thread_time(), time.perf_counter()
            if halves is not None:
                halves.forward_backward(idx)
            else:
                loss.forward(model.forward(x, training=True), y)
                model.backward(loss.backward(), input_grad=False)
            totals.append(time.thread_time() - t0)
            walls.append(time.perf_counter() - w0)
    finally:
        if halves is not None:
            BatchSync.exchange = exchange
            halves.close()
    med = {
        k: (1e3 * statistics.median(f[1:]), 1e3 * statistics.median(b[1:]) if b[1:] else 0.0)
        for k, (f, b) in times.items()
    }
    how = "split over two processes, this half's" if split else "one process,"
    print(
        f"ResNet-20 batch 64, {how} forward+backward {1e3 * statistics.median(totals[1:]):.1f} "
        f"ms CPU, {1e3 * statistics.median(walls[1:]):.1f} ms wall (median of {steps}; "
        f"load {os.getloadavg()[0]:.1f})"
    )
    _print_groups(graph, med, blocks, ("forward ms", "backward ms"))
    if waits:
        _print_waits(waits, steps)
    return med


def _print_waits(waits: dict[str, list[list[float]]], steps: int) -> None:
    """The split's BatchNorm exchanges, this half's: CPU (the spin) and wall a step, in total
    and per stage (the first step, a warm-up, left out)."""
    by_stage: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for k, (cpu, wall) in waits.items():
        per_step = len(cpu) // (steps + 1)  # a block's calls a step (forward and backward)
        stage = k.split("b")[0] if k.startswith("s") and k[1].isdigit() else k.split("_")[0]
        for i, v in enumerate((cpu, wall)):
            by_stage[stage][i] += 1e3 * sum(v[per_step:]) / steps
    total = [sum(v[i] for v in by_stage.values()) for i in (0, 1)]
    print(
        f"BatchNorm exchanges (taken out of BatchNorm above), ms a step: "
        f"{total[0]:.2f} CPU (spin), {total[1]:.2f} wall"
    )
    print("| stage | exchange CPU ms | exchange wall ms |\n|---|---:|---:|")
    for k, (cpu, wall) in by_stage.items():
        print(f"| {k} | {cpu:.2f} | {wall:.2f} |")


def _print_groups(
    graph: engine.Graph, med: dict[str, tuple[float, ...]], blocks: bool, heads: tuple[str, ...]
) -> None:
    """Tables of ``med`` (block -> times) summed by stage (stem, s1.., head) and by block type
    (convolutions by kernel size); ``blocks``: every block too."""
    by_stage: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(heads))
    by_type: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(heads))
    for k, values in med.items():
        stage = k.split("b")[0] if k.startswith("s") and k[1].isdigit() else k.split("_")[0]
        kind = graph.type_of(k)
        if kind == "Conv2D":
            size = graph.config_of(k)["kernel_size"]
            kind += f" {size}x{size}"
        for d in (by_stage[stage], by_type[kind]):
            for i, v in enumerate(values):
                d[i] += v
    tables = [("stage", by_stage), ("block type", by_type)]
    if blocks:
        tables.append(("block", {k: v for k, v in med.items() if sum(v) >= 0.05}))
    for title, table in tables:
        print(f"| {title} | {' | '.join(heads)} |\n|---|{'---:|' * len(heads)}")
        for k, values in table.items():
            print(f"| {k} | {' | '.join(f'{v:.2f}' for v in values)} |")


def profile_inference(
    steps: int = 30, blocks: bool = False, idle: float = 0
) -> dict[str, tuple[float, float]]:
    """Median wall ms per block of the ResNet-18 inference at batch 1 (the ``resnet18_infer``
    case), printed as ``profile``'s tables: the plain forward (Model.forward, the reference)
    and Model.predict (what the case times: a convolution's BatchNorm and ReLU inside it,
    engine.inference; those blocks then take no time of their own). Wall time, since BLAS may
    run a product on two threads here (engine.blas_threads); the two alternate. ``idle`` > 0:
    only pairs run while the other processes left the cores idle (``bench``'s)."""
    graph = resnet18_graph()
    model = engine.build_model(graph, seed=SEED)
    x = np.random.default_rng(SEED).standard_normal((1, *model.input_shape), dtype=np.float32)
    times: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    pending: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])  # this pair's
    side = [0]  # 0: forward, 1: predict

    def timed(*a, _f, _id, **k):
        t0 = time.perf_counter()
        out = _f(*a, **k)
        pending[_id][side[0]].append(time.perf_counter() - t0)
        return out

    for layer_id, layer in model.layers.items():
        for method in ("forward", "fused_forward"):
            if hasattr(layer, method):
                f = functools.partial(timed, _f=getattr(layer, method), _id=layer_id)
                setattr(layer, method, f)
    walls: list[list[float]] = [[], []]
    deadline = time.monotonic() + idle
    kept = dropped = 0
    while kept < steps + 1:  # the first pair warms up
        if idle and kept and not _wait_for_quiet(deadline):
            break
        mark, wall = blas_threads.cpu_mark(), [0.0, 0.0]
        for s in (0, 1):
            side[0] = s
            t0 = time.perf_counter()
            (model.predict if s else model.forward)(x)
            wall[s] = time.perf_counter() - t0
        if idle and kept and (blas_threads.others_since(mark) or 0.0) > IDLE_CORE:
            dropped += 1
        elif kept := kept + 1:
            for k, ts in pending.items():
                for s in (0, 1):
                    times[k][s] += ts[s] if kept > 1 else []
            for s in (0, 1):
                walls[s] += [wall[s]] if kept > 1 else []
        pending.clear()
    if not walls[0]:
        raise SystemExit(f"no quiet {idle:g} s for a forward and a predict ({dropped} dropped)")
    med = {
        k: tuple(1e3 * statistics.median(t) if t else 0.0 for t in ts) for k, ts in times.items()
    }
    fwd, pred = (1e3 * statistics.median(w) for w in walls)
    print(
        f"ResNet-18 inference, batch 1: forward {fwd:.1f} ms, predict {pred:.1f} ms wall "
        f"(medians of {len(walls[0])}"
        + (f" on an idle machine, {dropped} dropped" if idle else "")
        + f"; load {os.getloadavg()[0]:.1f})"
    )
    _print_groups(graph, med, blocks, ("forward ms", "predict ms"))
    return med


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--rounds", type=int, default=5, help="blocks per side")
    parser.add_argument("--block", type=int, default=3, help="timed steps per block")
    parser.add_argument(
        "--idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="keep only rounds the other processes left idle, waiting up to SECONDS for them",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="the ResNet-20 per-block profile (with --case resnet18_infer: that forward's)",
    )
    parser.add_argument("--blocks", action="store_true", help="--profile: every block too")
    parser.add_argument(
        "--split",
        action="store_true",
        help="--profile: the step split over two processes (the resnet20 case), this half",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="PyTorch's threads (default: its own choice, as a user gets; 1: core for core)",
    )
    args = parser.parse_args(argv)
    keep_freed_memory()  # the Trainer's malloc settings (benchmarks/engine_vs_torch.py)
    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    print(
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}, "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}",
        flush=True,
    )
    if args.profile and args.case == ["resnet18_infer"]:
        profile_inference(blocks=args.blocks, idle=args.idle)
        return []
    if args.profile:
        profile(blocks=args.blocks, split=args.split)
        return []
    results = []
    for name in args.case or list(CASES):
        engine_step, torch_step = CASES[name]()
        results.append(bench(name, engine_step, torch_step, args.rounds, args.block, args.idle))
        while _CLOSE:
            _CLOSE.pop()()
    return results


if __name__ == "__main__":
    main()
