"""Time each explanation method (engine.explain) on one image, batch 1, float32.

    .venv/bin/python benchmarks/explain_timing.py [--resnet] [--occlusion-patch P]

LeNet-5 (presets/lenet5.json, 32x32) always; with --resnet also a ResNet-18-sized graph on a
224x224 RGB image (torchvision's resnet18 layout: 7x7/2 stem, max pool, four stages of two
basic blocks with BatchNorm, 1x1/2 projections, GlobalAvgPool2D -> Dense 1000: 11.7 M
parameters), whose end also allows CAM. The weights are the initial ones: the time does not
depend on them. Each method runs once after one warm-up forward pass.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.explain import explain, methods_for  # noqa: E402


def resnet18() -> engine.Graph:
    g = engine.Graph("ResNet-18 (224x224)")
    last = g.add_node("Input", {"shape": [3, 224, 224]}, node_id="in")

    def add(type_name, cfg, src, node_id):
        g.add_node(type_name, cfg, node_id=node_id)
        for port, s in enumerate(src if isinstance(src, list) else [src]):
            g.add_edge(s, node_id, port=port)
        return node_id

    last = add("Conv2D", {"filters": 64, "kernel_size": 7, "stride": 2, "padding": 3,
                          "bias": False}, "in", "conv1")  # fmt: skip
    last = add("BatchNorm", {}, last, "bn1")
    last = add("Activation", {"fn": "relu"}, last, "relu")
    last = add("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, last, "maxpool")
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"layer{stage}.{b}"
            stride = 2 if stage > 1 and b == 0 else 1
            h = add("Conv2D", {"filters": width, "kernel_size": 3, "stride": stride,
                               "padding": 1, "bias": False}, last, f"{p}.conv1")  # fmt: skip
            h = add("BatchNorm", {}, h, f"{p}.bn1")
            h = add("Activation", {"fn": "relu"}, h, f"{p}.relu1")
            h = add("Conv2D", {"filters": width, "kernel_size": 3, "padding": 1, "bias": False},
                    h, f"{p}.conv2")  # fmt: skip
            h = add("BatchNorm", {}, h, f"{p}.bn2")
            skip = last
            if stride != 1 or channels != width:
                skip = add("Conv2D", {"filters": width, "kernel_size": 1, "stride": stride,
                                      "bias": False}, last, f"{p}.down")  # fmt: skip
                skip = add("BatchNorm", {}, skip, f"{p}.down_bn")
            h = add("Add", {}, [h, skip], f"{p}.add")
            last = add("Activation", {"fn": "relu"}, h, f"{p}.relu2")
            channels = width
    last = add("GlobalAvgPool2D", {}, last, "avgpool")
    add("Dense", {"units": 1000}, last, "fc")
    return g


def time_methods(name: str, model: engine.Model, x: np.ndarray, settings: dict) -> None:
    model.forward(x[None])  # warm-up (convolution plans, caches)
    print(f"{name}: {model.n_params:,} parameters, input {x.shape}")
    for method in methods_for(model):
        t0 = time.perf_counter()
        e = explain(model, x, method, **settings.get(method, {}))
        took = time.perf_counter() - t0
        extra = ", ".join(f"{k} {v}" for k, v in e.settings.items() if k != "sigma")
        print(f"  {method:<11} {took * 1000:9.0f} ms  {extra}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resnet", action="store_true", help="also the 224x224 ResNet-18")
    p.add_argument("--occlusion-patch", type=int, default=None, help="ResNet occlusion patch")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    lenet = engine.build_model(engine.load_graph(ROOT / "presets" / "lenet5.json"))
    time_methods("LeNet-5", lenet, rng.random((1, 32, 32), np.float32), {})
    if args.resnet:
        m = engine.build_model(resnet18())
        patch = args.occlusion_patch
        occ = {"patch": patch, "stride": patch} if patch else {}
        time_methods("ResNet-18", m, rng.random((3, 224, 224), np.float32), {"occlusion": occ})
    return 0


if __name__ == "__main__":
    sys.exit(main())
