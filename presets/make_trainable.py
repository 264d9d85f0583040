"""Writes the zoo's trainable cousins, presets/{resnet20,vgg_small,densenet_small}.json (and
aux_heads.json, an auxiliary classifier in small, on the 8x8 digits): the
lectures' ideas (residual shortcuts, stacked 3x3 convolutions, dense connections) at a size
this machine trains in minutes, on the built-in digits resized to 32x32 (16x16 for the
DenseNet).

    python presets/make_trainable.py

The outcomes in the descriptions were measured with `python app.py train presets/NAME.json`
(the settings written here) on the project's 2-core machine; rerun it after changing a network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "presets"))

from make_zoo import ASPECT, BLOCK_H, LAYOUT_DX, LAYOUT_DY, Net  # noqa: E402

from engine import analyze  # noqa: E402
from engine.graph import Graph  # noqa: E402
from gui.layout import layered_positions  # noqa: E402

HE = {"init": "he_normal"}


def training(epochs: int, lr: float, size: int = 32, batch_size: int = 64) -> dict:
    return {
        "dataset": {"name": "digits", "resize": [size, size]},
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": lr},
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": 0,
        "val_split": 0.2,
    }


def resnet20() -> Graph:
    """He et al. 2016, section 4.2: 6n + 2 layers with n = 3; 16, 32, 64 maps on 32x32,
    16x16, 8x8; projection shortcuts (option B) where the maps halve."""
    n = Net("ResNet-20 (CIFAR-sized, digits)", [1, 32, 32])
    n.conv("conv1", 16, 3, padding=1, bias=False, **HE)
    n.add("conv1_bn", "BatchNorm")
    n.relu("conv1_relu")
    channels = 16
    for stage, filters in enumerate([16, 32, 64], start=1):
        for block in range(3):
            p = f"s{stage}_{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            src = n.last
            n.conv(f"{p}_conv1", filters, 3, stride, 1, bias=False, **HE)
            n.add(f"{p}_bn1", "BatchNorm")
            n.relu(f"{p}_relu1")
            n.conv(f"{p}_conv2", filters, 3, padding=1, bias=False, **HE)
            main = n.add(f"{p}_bn2", "BatchNorm")
            short = src
            if stride != 1 or channels != filters:
                n.last = src
                n.conv(f"{p}_down", filters, 1, stride, bias=False, **HE)
                short = n.add(f"{p}_down_bn", "BatchNorm")
            n.add(f"{p}_add", "Add", {}, [main, short])
            n.relu(f"{p}_relu")
            channels = filters
    n.add("avgpool", "GlobalAvgPool2D")
    n.add("fc", "Dense", {"units": 10})
    return n.g


def vgg_small() -> Graph:
    """VGG's recipe at a small size: pairs of 3x3 convolutions (16, 32, 64 maps), 2x2 max
    pools, then Dense 128 with dropout; no BatchNorm, He-initialised like the VGG paper's
    deeper nets need."""
    n = Net("Small VGG (3x3 stacks, digits)", [1, 32, 32])
    for stage, filters in enumerate([16, 32, 64], start=1):
        for j in (1, 2):
            n.conv(f"conv{stage}_{j}", filters, 3, padding=1, **HE)
            n.relu(f"relu{stage}_{j}")
        n.pool(f"pool{stage}", 2, 2)
    n.add("flatten", "Flatten")
    n.add("fc1", "Dense", {"units": 128, **HE})
    n.relu("fc1_relu")
    n.add("drop1", "Dropout", {"rate": 0.5})
    n.add("fc2", "Dense", {"units": 10})
    return n.g


def densenet_small() -> Graph:
    """DenseNet-BC at a small size: growth rate 12, three dense blocks of 4 layers (BN, ReLU,
    1x1 to 48, BN, ReLU, 3x3 to 12, joined to everything before), transitions halving the
    channels and the size."""
    n = Net("Small DenseNet (growth 12, digits)", [1, 16, 16])
    n.conv("conv0", 24, 3, padding=1, bias=False, **HE)
    channels = 24
    for b in (1, 2, 3):
        for i in range(1, 5):
            p = f"d{b}_{i}"
            features = n.last
            n.add(f"{p}_bn1", "BatchNorm")
            n.relu(f"{p}_relu1")
            n.conv(f"{p}_conv1", 48, 1, bias=False, **HE)
            n.add(f"{p}_bn2", "BatchNorm")
            n.relu(f"{p}_relu2")
            new = n.conv(f"{p}_conv2", 12, 3, padding=1, bias=False, **HE)
            n.add(f"{p}_cat", "Concat", {}, [features, new])
            channels += 12
        if b < 3:
            n.add(f"t{b}_bn", "BatchNorm")
            n.relu(f"t{b}_relu")
            channels //= 2
            n.conv(f"t{b}_conv", channels, 1, bias=False, **HE)
            n.pool(f"t{b}_pool", 2, 2, kind="AvgPool2D")
    n.add("bn_final", "BatchNorm")
    n.relu("relu_final")
    n.add("avgpool", "GlobalAvgPool2D")
    n.add("fc", "Dense", {"units": 10})
    return n.g


def aux_heads() -> Graph:
    """GoogLeNet's auxiliary classifier in small: four 3x3 convolutions on the 8x8 digits, an
    extra head (Flatten, Dense 10) on the pooled maps halfway up, weight 0.3 in the loss."""
    n = Net("Auxiliary head (digits)", [1, 8, 8])
    for i, f in enumerate([16, 16], start=1):
        n.conv(f"conv{i}", f, 3, padding=1, **HE)
        n.relu(f"relu{i}")
    mid = n.pool("pool", 2, 2)
    n.add("aux_flatten", "Flatten")
    n.add("aux_fc", "Dense", {"units": 10})
    n.last = mid
    for i, f in enumerate([32, 32], start=3):
        n.conv(f"conv{i}", f, 3, padding=1, **HE)
        n.relu(f"relu{i}")
    n.add("gap", "GlobalAvgPool2D")
    n.add("fc", "Dense", {"units": 10})
    return n.g


def aux_training() -> dict:
    spec = training(epochs=8, lr=0.003)
    spec["dataset"] = {"name": "digits"}  # 8x8, as the data set comes
    return spec | {"heads": [{"block": "aux_fc", "weight": 0.3}]}


# (network, training settings, description with its measured outcome)
PRESETS = {
    "resnet20": (
        resnet20,
        training(epochs=4, lr=0.003),
        "ResNet-20 as He et al. (2016) build it for CIFAR-10 (6n + 2 layers, n = 3: a 3x3 "
        "convolution, three stages of three basic blocks with 16, 32 and 64 maps, global "
        "average pooling, 10 outputs): {params:,} parameters, the paper's 0.27M. The "
        "shortcut is the identity inside a stage and a 1x1 convolution of stride 2 with "
        "BatchNorm where the maps halve and the channels double (the paper's option B; "
        "option A pads with zeros instead and has no parameters, 0.27M either way). Trained "
        "on the digits resized to 32x32, one channel. Look at: the Gradients panel (the "
        "shortcuts keep the first stage's gradients as large as the last's), the Add "
        "blocks, ResNet-18 in the zoo for the ImageNet-sized version. Outcome on a 2-core "
        "machine (python app.py train): {outcome}.",
    ),
    "vgg_small": (
        vgg_small,
        training(epochs=6, lr=0.001),
        "VGG's recipe (lecture 001: 'simple but deep', 3x3 convolutions at stride 1, 2x2 "
        "max pooling) at a size that trains here: three stages of two 3x3 convolutions "
        "(16, 32, 64 maps), Dense 128 with dropout: {params:,} parameters, 64% of them in "
        "fc1, as VGG-16 keeps most of its 138 million in fc6. Two stacked 3x3 convolutions "
        "see a 5x5 window with 2 x 9 instead of 25 weights per map pair. He initialisation "
        "(no BatchNorm, like the 2014 paper). Trained on the digits resized to 32x32. "
        "Look at: the Summary (fc1 against the convolutions), the Filters panel. Outcome "
        "on a 2-core machine (python app.py train): {outcome}.",
    ),
    "densenet_small": (
        densenet_small,
        training(epochs=4, lr=0.003, size=16),
        "DenseNet-BC at a small size (growth rate 12, three dense blocks of four layers, "
        "transitions halving channels and size): {params:,} parameters, each layer adding "
        "12 maps to everything before it (24 -> 72 in the first block). Trained on the "
        "digits resized to 16x16 (32x32 takes four times as long a step here). Look at: the "
        "channel counts growing along a block, the "
        "small per-layer counts in the Summary (lecture 001: 'fewer parameters'), "
        "DenseNet-121 in the zoo for the ImageNet-sized version. Outcome on a 2-core "
        "machine (python app.py train): {outcome}.",
    ),
    "aux_heads": (
        aux_heads,
        aux_training(),
        "An auxiliary classifier as GoogLeNet's (Szegedy et al. 2015; lecture 004's "
        "'Auxiliary Classifier at Sublevels'), at a size that trains in seconds: four 3x3 "
        "convolutions on the 8x8 digits, global average pooling and the main output fc; "
        "halfway up, after the 2x2 pool, a second output aux_fc (Flatten, Dense 10) listed in "
        "the training settings as a head of weight 0.3. Training minimises fc's loss + 0.3 x "
        "aux_fc's: the head's gradient enters the trunk at the pool and adds to the main "
        "one's. {params:,} parameters. Look at: each head's loss (the log and app.py train "
        "print both, train/validation), the zoo's googlenet_aux for the full-size heads. "
        "Outcome on a 2-core machine (python app.py train): {outcome}.",
    ),
}
# measured with `python app.py train presets/NAME.json`: the last epoch's val accuracy, time
OUTCOMES = {
    "resnet20": "val acc 98.1% after 4 epochs (96.7% and 93.3% after epochs 2 and 3, "
    "BatchNorm's running statistics still settling), 132 s",
    "vgg_small": "val acc 97.8% after 6 epochs, 29 s",
    "densenet_small": "val acc 97.2% after 4 epochs, 47 s",
    # ranges over training seeds 0-9 (benchmarks/preset_seeds.py): one seed's figures move on
    # another machine's BLAS
    "aux_heads": "val acc 92.5-98.3% after 8 epochs (training seeds 0-9); validation loss of "
    "fc 1.69-2.00 -> 0.064-0.23 and of aux_fc 0.67-1.17 -> 0.060-0.12 from epoch 1 to 8 (the "
    "same seeds), 5 s",
}


def build(name: str) -> Graph:
    make, spec, text = PRESETS[name]
    g = make()
    g.set_meta("training", spec)
    params = analyze(g).total_params
    g.description = text.format(params=params, outcome=OUTCOMES[name])
    for node, pos in layered_positions(g, LAYOUT_DX, LAYOUT_DY, ASPECT, BLOCK_H).items():
        g.move_node(node, pos)
    return g


def main() -> None:
    for name in PRESETS:
        g = build(name)
        g.save(ROOT / "presets" / f"{name}.json")
        print(f"{name}: {len(g.nodes())} blocks, {analyze(g).total_params:,} parameters")


if __name__ == "__main__":
    main()
