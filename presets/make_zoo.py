"""Writes the architecture zoo, presets/zoo/*.json: the ILSVRC networks of lectures 001 and 004,
block by block, with torchvision's layer sizes, so each has torchvision's parameter count
(tests/test_zoo.py holds them to it).

    python presets/make_zoo.py            # rewrite presets/zoo/*.json

The architectures were read from torchvision/models/{alexnet,vgg,googlenet,resnet,densenet}.py
and the 2012 AlexNet paper (Krizhevsky, Sutskever & Hinton, section 3); nothing here imports
torchvision. Each preset is laid out by the app's auto-layout (gui/layout.py) for a 1600x1000
window, and its training settings (batch 2, no data set: choose image_folder with size
[224, 224] to run it on your own pictures) pass the memory check.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import analyze  # noqa: E402
from engine.graph import Graph  # noqa: E402
from gui.layout import layered_positions  # noqa: E402

OUT = ROOT / "presets" / "zoo"
LAYOUT_DX, LAYOUT_DY, BLOCK_H = 250.0, 110.0, 68.0  # gui/canvas/style.py's (no Qt here)
ASPECT = 1.75  # the canvas of a 1600x1000 window with the default docks: 1048x598 px
# What running one of these needs (inference or a step at batch 2); no data set: the
# ImageNet-sized ones are for looking at, exporting and running on your own images.
TRAINING = {
    "loss": "cross_entropy",
    "optimizer": {"name": "momentum", "lr": 0.01, "momentum": 0.9},
    "batch_size": 2,
    "epochs": 1,
    "seed": 0,
}


class Net:
    """A graph written as a chain: ``add`` wires the new block after ``self.last`` (or the
    blocks given) and makes it the last."""

    def __init__(self, name: str, shape: list[int]):
        self.g = Graph(name)
        self.last = self.g.add_node("Input", {"shape": shape}, node_id="in")

    def add(self, node_id: str, type_name: str, cfg: dict | None = None, inputs=None) -> str:
        self.g.add_node(type_name, cfg or {}, node_id=node_id)
        for port, src in enumerate([self.last] if inputs is None else inputs):
            self.g.add_edge(src, node_id, port)
        self.last = node_id
        return node_id

    def conv(self, nid, filters, k, stride=1, padding=0, bias=True, **cfg) -> str:
        cfg = {"filters": filters, "kernel_size": k, **cfg}
        if stride != 1:
            cfg["stride"] = stride
        if padding:
            cfg["padding"] = padding
        if not bias:
            cfg["bias"] = False
        return self.add(nid, "Conv2D", cfg)

    def relu(self, nid) -> str:
        return self.add(nid, "Activation", {"fn": "relu"})

    def conv_bn_relu(self, nid, filters, k, stride=1, padding=0, eps=1e-5, src=None) -> str:
        """Conv (no bias: BatchNorm's beta is the bias), BatchNorm, ReLU."""
        if src is not None:
            self.last = src
        self.conv(nid, filters, k, stride, padding, bias=False)
        self.add(f"{nid}_bn", "BatchNorm", {} if eps == 1e-5 else {"eps": eps})
        return self.relu(f"{nid}_relu")

    def pool(self, nid, k, stride, padding=0, kind="MaxPool2D", ceil=False) -> str:
        cfg = {"kernel_size": k}
        if stride != k:  # empty stride: the kernel size (as an ONNX import writes it back)
            cfg["stride"] = stride
        if padding:
            cfg["padding"] = padding
        if ceil:
            cfg["ceil_mode"] = True
        return self.add(nid, kind, cfg)

    def classifier(self, sizes: list[int], dropout_first: bool) -> str:
        """Flatten, then Dense layers with ReLU and dropout 0.5 (AlexNet: dropout before each
        hidden Dense; VGG: after each)."""
        self.add("flatten", "Flatten")
        for i, units in enumerate(sizes, start=6):
            last = i == 5 + len(sizes)
            if dropout_first and not last:
                self.add(f"drop{i}", "Dropout", {"rate": 0.5})
            self.add(f"fc{i}", "Dense", {"units": units})
            if not last:
                self.relu(f"fc{i}_relu")
                if not dropout_first:
                    self.add(f"drop{i}", "Dropout", {"rate": 0.5})
        return self.last


# --- the networks -----------------------------------------------------------------------------
def alexnet() -> Graph:
    """torchvision's AlexNet ("One weird trick", 2014): 64-192-384-256-256 maps, one tower."""
    n = Net("AlexNet (torchvision)", [3, 224, 224])
    for i, (f, k, s, p, pool) in enumerate(
        [(64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False)]
        + [(256, 3, 1, 1, False), (256, 3, 1, 1, True)],
        start=1,
    ):
        n.conv(f"conv{i}", f, k, s, p)
        n.relu(f"relu{i}")
        if pool:
            n.pool(f"pool{i}", 3, 2)
    n.classifier([4096, 4096, 1000], dropout_first=True)
    return n.g


def alexnet_2012() -> Graph:
    """The 2012 paper's network: two towers (groups=2 where a layer reads only its own GPU's
    maps: conv2, conv4, conv5), local response normalisation after conv1 and conv2, 227x227."""
    n = Net("AlexNet 2012 (two towers, LRN)", [3, 227, 227])
    lrn = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}
    layers = [(96, 11, 4, 0, 1, True), (256, 5, 1, 2, 2, True), (384, 3, 1, 1, 1, False)]
    layers += [(384, 3, 1, 1, 2, False), (256, 3, 1, 1, 2, False)]
    for i, (f, k, s, p, groups, norm) in enumerate(layers, start=1):
        n.conv(f"conv{i}", f, k, s, p, **({"groups": groups} if groups > 1 else {}))
        n.relu(f"relu{i}")
        if norm:
            n.add(f"norm{i}", "LocalResponseNorm", lrn)
        if i in (1, 2, 5):
            n.pool(f"pool{i}", 3, 2)
    n.classifier([4096, 4096, 1000], dropout_first=True)
    return n.g


def vgg16() -> Graph:
    """torchvision's vgg16 (configuration D): 13 3x3 convolutions in five stages, no BatchNorm."""
    n = Net("VGG-16 (torchvision)", [3, 224, 224])
    for stage, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for j in range(1, convs + 1):
            n.conv(f"conv{stage}_{j}", filters, 3, padding=1)
            n.relu(f"relu{stage}_{j}")
        n.pool(f"pool{stage}", 2, 2)
    n.classifier([4096, 4096, 1000], dropout_first=False)
    return n.g


# GoogLeNet's inception modules: (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj),
# the lectures' table and torchvision's; a max pool (3x3/2) after 3b and 4e
INCEPTIONS = [
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
]
GOOGLENET_EPS = 1e-3  # torchvision's BasicConv2d: BatchNorm2d(eps=0.001) after every conv


def inception(n: Net, name: str, c1, c3r, c3, c5r, c5, pp) -> str:
    """Four branches from one input, joined along the channels: 1x1; 1x1 then 3x3; 1x1 then
    the "5x5" (3x3 in torchvision, see the description); 3x3 max pool then 1x1."""
    src, eps = n.last, GOOGLENET_EPS
    b1 = n.conv_bn_relu(f"i{name}_1x1", c1, 1, eps=eps, src=src)
    n.conv_bn_relu(f"i{name}_3x3red", c3r, 1, eps=eps, src=src)
    b2 = n.conv_bn_relu(f"i{name}_3x3", c3, 3, padding=1, eps=eps)
    n.conv_bn_relu(f"i{name}_5x5red", c5r, 1, eps=eps, src=src)
    b3 = n.conv_bn_relu(f"i{name}_5x5", c5, 3, padding=1, eps=eps)
    n.last = src
    n.pool(f"i{name}_pool", 3, 1, 1, ceil=True)
    b4 = n.conv_bn_relu(f"i{name}_poolproj", pp, 1, eps=eps)
    return n.add(f"i{name}", "Concat", {}, [b1, b2, b3, b4])


def inception_aux(n: Net, name: str) -> str:
    """torchvision's InceptionAux on the 14x14 maps of ``n.last``: adaptive average pool to 4x4
    (torchvision's windows; the paper's 5x5 window at stride 3 also gives 4x4, from other
    windows), a 1x1 convolution to 128 maps with BatchNorm and ReLU, Flatten (2,048), Dense
    1,024 with ReLU, dropout 0.7, Dense 1,000. Leaves ``n.last``."""
    src = n.last
    n.add(f"{name}_pool", "AdaptiveAvgPool2D", {"output_size": 4})
    n.conv_bn_relu(f"{name}_conv", 128, 1, eps=GOOGLENET_EPS)
    n.add(f"{name}_flatten", "Flatten")
    n.add(f"{name}_fc1", "Dense", {"units": 1024})
    n.relu(f"{name}_fc1_relu")
    n.add(f"{name}_drop", "Dropout", {"rate": 0.7})
    head = n.add(f"{name}_fc2", "Dense", {"units": 1000})
    n.last = src
    return head


AUX_HEADS = [{"block": "aux1_fc2", "weight": 0.3}, {"block": "aux2_fc2", "weight": 0.3}]


def googlenet_aux() -> Graph:
    """torchvision's googlenet with its two auxiliary heads (aux_logits=True), on 4a and 4d."""
    return googlenet(aux=True)


def googlenet(aux: bool = False) -> Graph:
    """torchvision's googlenet without the auxiliary heads (aux_logits=False), or with them."""
    n = Net("GoogLeNet with auxiliary heads" if aux else "GoogLeNet (torchvision)", [3, 224, 224])
    eps = GOOGLENET_EPS
    n.conv_bn_relu("conv1", 64, 7, 2, 3, eps=eps)
    n.pool("pool1", 3, 2, ceil=True)  # torchvision's max pools round up (ceil_mode)
    n.conv_bn_relu("conv2", 64, 1, eps=eps)
    n.conv_bn_relu("conv3", 192, 3, padding=1, eps=eps)
    n.pool("pool2", 3, 2, ceil=True)
    for spec in INCEPTIONS:
        inception(n, *spec)
        if aux and spec[0] in ("4a", "4d"):
            inception_aux(n, "aux1" if spec[0] == "4a" else "aux2")
        if spec[0] == "3b":
            n.pool("pool3", 3, 2, ceil=True)
        if spec[0] == "4e":
            n.pool("pool4", 2, 2, ceil=True)
    n.add("avgpool", "GlobalAvgPool2D")
    n.add("dropout", "Dropout", {"rate": 0.2})
    n.add("fc", "Dense", {"units": 1000})
    return n.g


def resnet18() -> Graph:
    """torchvision's resnet18: a 7x7 stem, four stages of two basic blocks (3x3, 3x3, plus the
    shortcut: the identity, or a 1x1 convolution with BatchNorm where the shape changes)."""
    n = Net("ResNet-18 (torchvision)", [3, 224, 224])
    n.conv_bn_relu("conv1", 64, 7, 2, 3)
    n.pool("maxpool", 3, 2, 1)
    channels = 64
    for stage, filters in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            p = f"l{stage}_{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            src = n.last
            n.conv_bn_relu(f"{p}_conv1", filters, 3, stride, 1)
            n.conv(f"{p}_conv2", filters, 3, padding=1, bias=False)
            main = n.add(f"{p}_bn2", "BatchNorm")
            short = src
            if stride != 1 or channels != filters:
                n.last = src
                n.conv(f"{p}_down", filters, 1, stride, bias=False)
                short = n.add(f"{p}_down_bn", "BatchNorm")
            n.add(f"{p}_add", "Add", {}, [main, short])
            n.relu(f"{p}_relu")
            channels = filters
    n.add("avgpool", "GlobalAvgPool2D")
    n.add("fc", "Dense", {"units": 1000})
    return n.g


def densenet121() -> Graph:
    """torchvision's densenet121: growth rate 32, blocks of 6, 12, 24 and 16 layers (BN, ReLU,
    1x1 conv to 128, BN, ReLU, 3x3 conv to 32, joined to everything before), transitions
    halving the channels (BN, ReLU, 1x1 conv, 2x2 average pool)."""
    n = Net("DenseNet-121 (torchvision)", [3, 224, 224])
    n.conv("conv0", 64, 7, 2, 3, bias=False)
    n.add("norm0", "BatchNorm")
    n.relu("relu0")
    n.pool("pool0", 3, 2, 1)
    channels = 64
    for b, layers in enumerate([6, 12, 24, 16], start=1):
        for i in range(1, layers + 1):
            p = f"d{b}_{i}"
            features = n.last
            n.add(f"{p}_bn1", "BatchNorm")
            n.relu(f"{p}_relu1")
            n.conv(f"{p}_conv1", 4 * 32, 1, bias=False)
            n.add(f"{p}_bn2", "BatchNorm")
            n.relu(f"{p}_relu2")
            new = n.conv(f"{p}_conv2", 32, 3, padding=1, bias=False)
            n.add(f"{p}_cat", "Concat", {}, [features, new])
            channels += 32
        if b < 4:
            n.add(f"t{b}_bn", "BatchNorm")
            n.relu(f"t{b}_relu")
            channels //= 2
            n.conv(f"t{b}_conv", channels, 1, bias=False)
            n.pool(f"t{b}_pool", 2, 2, kind="AvgPool2D")
    n.add("norm5", "BatchNorm")
    n.relu("relu5")
    n.add("avgpool", "GlobalAvgPool2D")
    n.add("fc", "Dense", {"units": 1000})
    return n.g


# --- the descriptions (numbers from the built graphs) -----------------------------------------
def _params(g: Graph) -> dict[str, int]:
    return analyze(g, batch_size=2).params


def _sum(params: dict[str, int], prefix: str) -> int:
    return sum(v for k, v in params.items() if k.startswith(prefix))


# The lectures' GoogLeNet table (lecture 001 and 004): params of each inception module, in K
TABLE_K = {"3a": 159, "3b": 380, "4a": 364, "4b": 437, "4c": 463, "4d": 580, "4e": 840}
TABLE_K |= {"5a": 1072, "5b": 1388}


def paper_weights() -> dict[str, int]:
    """Each module's weights as the table's own columns give them (a real 5x5, no biases)."""
    out, c_in = {}, 192
    for name, c1, c3r, c3, c5r, c5, pp in INCEPTIONS:
        out[name] = c_in * (c1 + c3r + c5r + pp) + c3r * 9 * c3 + c5r * 25 * c5
        c_in = c1 + c3 + c5 + pp
    return out


def describe_googlenet(g: Graph) -> str:
    p = _params(g)
    own = paper_weights()
    table = ", ".join(
        f"{m} {t}K / {own[m] / 1000:.0f}K / {_sum(p, f'i{m}_') / 1000:.0f}K"
        for m, t in TABLE_K.items()
    )
    return (
        "GoogLeNet (Szegedy et al. 2015) as torchvision builds it without its auxiliary heads: "
        f"{sum(p.values()):,} parameters, torchvision's count. Lecture 001's and 004's table "
        "against its own columns (a 5x5, weights only) and this preset (weights and "
        f"BatchNorm): conv1 2.7K / 9.4K / {_sum(p, 'conv1') / 1000:.1f}K, conv2+conv3 112K / "
        f"115K / {(_sum(p, 'conv2') + _sum(p, 'conv3')) / 1000:.0f}K, {table}, linear "
        f"1000K / 1024K / {p['fc'] / 1000:.0f}K. The table slips at conv1 (7x7x3x64 is 9,408 "
        "weights, not 2.7K) and at 4c (its own columns give 509K, not 463K); the other rows "
        "are within 5% of their columns. The preset is lower in most rows because each "
        "'5x5' here is a 3x3 (torchvision's known slip, pytorch/vision issue 906, kept for "
        "its count); torchvision also puts BatchNorm (eps 0.001) after every convolution, "
        "drops out 20% (the table 40%) and pools 2x2 before 5a (the table 3x3/2). The max "
        "pools round up as torchvision's do (ceil_mode: 112 -> 56 -> 28 -> 14, where "
        "rounding down gives 55, 27, 13). Look at: the Summary (the 1x1 'reduce' "
        "convolutions keep each module small: compare 4e's 5x5 branch with the lecture's "
        "5x5 from 480 channels), the four branches of each module meeting at its Concat, "
        "the output shapes the table lists. For inspecting, exporting and running at batch "
        "1-2 (no data set: choose image_folder with size [224, 224] for your own images)."
    )


def describe_googlenet_aux(g: Graph) -> str:
    p = _params(g)
    aux = [_sum(p, "aux1_"), _sum(p, "aux2_")]
    return (
        "GoogLeNet (Szegedy et al. 2015) with its two auxiliary classifiers, as torchvision "
        f"builds it with aux_logits=True: {sum(p.values()):,} parameters, torchvision's "
        f"count ({sum(p.values()) - sum(aux):,} in the main network, {aux[0]:,} and "
        f"{aux[1]:,} in the heads on inception 4a and 4d). The graph has three outputs: "
        "fc is the main one, aux1_fc2 and aux2_fc2 are listed in the training settings as "
        "heads of weight 0.3 each (the paper's discount weight; lecture 004's 'Auxiliary "
        "Classifier at Sublevels'), so training minimises fc's loss + 0.3 x each head's and "
        "reports each head's loss. Each head: an average pool to 4x4, a "
        "1x1 convolution to 128 maps with BatchNorm, Dense 2,048 -> 1,024 with ReLU, dropout "
        "0.7, Dense 1,024 -> 1,000. The pool is torchvision's adaptive one "
        "(AdaptiveAvgPool2D, 14 -> 4: 4x4 windows at 0, 3, 7, 10, neighbours sharing a row), "
        "so with torchvision's weights the heads compute torchvision's outputs; the paper's "
        "5x5 window at stride 3 would also give 4x4, from other windows. ONNX has no adaptive "
        "pool, so the ONNX export refuses the heads (googlenet, without them, exports). Look at: "
        "how much the heads weigh (fc1 alone 2.1M each: together nearly as many parameters as "
        "the main network), and the extra gradient they bring to the middle of the network "
        "(the gradient panel). For inspecting and exporting; at inference only fc matters "
        "(torchvision skips the heads in eval mode)."
    )


def describe(name: str, g: Graph) -> str:
    total = sum(_params(g).values())
    run = (
        " For inspecting, exporting and running at batch 1-2 (no data set: choose "
        "image_folder with size [{0}, {0}] for your own images)."
    )
    texts = {
        "alexnet": (
            f"AlexNet as torchvision builds it: {total:,} parameters, the lectures' '60 "
            "millions' (lecture 001) and '60M params' (lecture 004). Five convolutions (11x11 "
            "stride 4 first: 'large filter sizes with wide strides in the lower layers', 3x3 "
            "at the top) and three Dense layers with dropout. torchvision follows Krizhevsky's "
            "later one-tower version (64-192-384-256-256 maps, no response normalisation); "
            "'AlexNet 2012' is the paper's two towers. torchvision's AdaptiveAvgPool2d((6, 6)) "
            "is the identity at 224x224 and is left out. Look at: the Summary, where fc6 alone "
            "holds 37.8 million of the parameters (9,216 x 4,096) and the five convolutions "
            "2.5 million; the shapes shrinking 224 -> 55 -> 27 -> 13 -> 6." + run.format(224)
        ),
        "alexnet_2012": (
            f"AlexNet as the 2012 paper draws it: {total:,} parameters (lecture 004: '60M "
            "params', 'two GPUs for a week'). Input 227x227 (the paper's figure says 224, but "
            "only 227 gives its 55x55 maps). The two GPUs are the towers: conv2, conv4 and "
            "conv5 read only the maps on their own GPU (groups=2, half the weights), conv3 and "
            "the Dense layers read both. LocalResponseNorm after conv1 and conv2 with the "
            "paper's k = 2, n = 5, beta = 0.75 and alpha = 1e-4 on the sum, which is alpha = "
            "5e-4 here (PyTorch divides alpha by the size). torchvision's AlexNet has "
            f"{61_100_840:,}: 64/192 maps in conv1/conv2 and no towers. Look at: conv2's "
            "parameters (256 x 48 x 5 x 5: each filter sees 48 maps, not 96), the 'g2' on the "
            "grouped blocks, the Summary's totals against the one-tower AlexNet." + run.format(227)
        ),
        "vgg16": (
            f"VGG-16 (configuration D) as torchvision builds it: {total:,} parameters, "
            "lecture 001's '138 million'. 'Simple but deep': only 3x3 convolutions at stride "
            "1 with padding 1 and 2x2 max pools, 64 -> 512 maps in five stages. Look at: "
            "the Summary, where fc6 holds 102.8 million of the parameters (25,088 x 4,096) "
            "and the 13 convolutions 14.7 million, while nearly all the computation is in the "
            "convolutions (torchvision's AdaptiveAvgPool2d((7, 7)), the identity at 224x224, is "
            "left out); the memory line (inference at batch 2 fits, training a batch of 64 "
            "would not on most machines)." + run.format(224)
        ),
        "resnet18": (
            f"ResNet-18 as torchvision builds it: {total:,} parameters. Lecture 001's "
            "'deeper, deeper, deeper' network, at 18 layers: a 7x7 stem, then four stages of "
            "two basic blocks (3x3, 3x3, and a shortcut added before the last ReLU). The "
            "shortcut is the identity where the shape stays, a 1x1 convolution of stride 2 "
            "with BatchNorm where the maps halve and the channels double (torchvision's "
            "'option B'). Look at: the Add blocks and their two inputs, the three 1x1 "
            "'down' convolutions (8,192 + 32,768 + 131,072 weights), the Summary: most "
            "parameters are in the last stage." + run.format(224)
        ),
        "densenet121": (
            f"DenseNet-121 as torchvision builds it: {total:,} parameters, fewer than "
            "ResNet-18's 11.7 million with 121 layers (lecture 001: 'fewer parameters'). Four "
            "dense blocks of 6, 12, 24 and 16 layers; each layer (BatchNorm, ReLU, a 1x1 "
            "'bottleneck' convolution to 128 maps, BatchNorm, ReLU, a 3x3 convolution to 32 "
            "maps, the growth rate) is joined by a Concat to everything before it, so a "
            "block's maps grow by 32 a layer (64 -> 256, 128 -> 512, 256 -> 1,024, 512 -> "
            "1,024); transitions halve the channels (1x1) and the size (2x2 average pool). "
            "The chain of two-input Concats is the same as each layer reading all earlier "
            "outputs (lecture 001's 'DenseNet connectivity'). Look at: the channel counts "
            "growing along a block, the Summary's small per-layer counts." + run.format(224)
        ),
    }
    return texts[name]


ZOO: dict[str, Callable[[], Graph]] = {
    "alexnet": alexnet,
    "alexnet_2012": alexnet_2012,
    "vgg16": vgg16,
    "googlenet": googlenet,
    "googlenet_aux": googlenet_aux,
    "resnet18": resnet18,
    "densenet121": densenet121,
}


def build(name: str) -> Graph:
    """The preset ``name`` with its description, training settings and layout."""
    g = ZOO[name]()
    special = {"googlenet": describe_googlenet, "googlenet_aux": describe_googlenet_aux}
    g.description = special[name](g) if name in special else describe(name, g)
    g.set_meta(
        "training", {**TRAINING, **({"heads": AUX_HEADS} if name == "googlenet_aux" else {})}
    )
    for node, pos in layered_positions(g, LAYOUT_DX, LAYOUT_DY, ASPECT, BLOCK_H).items():
        g.move_node(node, pos)
    return g


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name in ZOO:
        g = build(name)
        g.save(OUT / f"{name}.json")
        print(f"{name}: {len(g.nodes())} blocks, {analyze(g).total_params:,} parameters")


if __name__ == "__main__":
    main()
