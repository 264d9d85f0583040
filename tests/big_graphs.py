"""Large graphs shaped like the zoo's networks, for the canvas tests and benchmarks (the canvas
must stay readable and fast with them): a 141-block GoogLeNet (nine inception modules of four
branches, convolution and ReLU as separate blocks, as the 2014 paper draws it) and a
DenseNet-121-shaped stack (58 dense layers, each a BN-ReLU-conv pair concatenated to its
input). All blocks sit at (0, 0): lay them out before showing them."""

from __future__ import annotations

from engine.graph import Graph

# GoogLeNet's table: (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTIONS = [
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("pool",),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("pool",),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
]


class _Builder:
    def __init__(self, name: str) -> None:
        self.g = Graph(name=name)

    def add(self, node_id: str, type_name: str, cfg: dict, *inputs: str) -> str:
        self.g.add_node(type_name, cfg, node_id=node_id)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, node_id, port)
        return node_id

    def conv_relu(self, node_id: str, src: str, filters: int, k: int, stride: int = 1) -> str:
        pad = "same" if stride == 1 else k // 2
        c = self.add(
            node_id,
            "Conv2D",
            {"filters": filters, "kernel_size": k, "stride": stride, "padding": pad},
            src,
        )
        return self.add(f"{node_id}_relu", "Activation", {"fn": "relu"}, c)


def googlenet(size: int = 224) -> Graph:
    """GoogLeNet without its auxiliary heads: 141 blocks."""
    b = _Builder("GoogLeNet (test shape)")
    x = b.add("input", "Input", {"shape": [3, size, size]})
    x = b.conv_relu("conv1", x, 64, 7, 2)
    x = b.add("pool1", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, x)
    x = b.conv_relu("conv2r", x, 64, 1)
    x = b.conv_relu("conv2", x, 192, 3)
    x = b.add("pool2", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, x)
    npool = 3
    for row in INCEPTIONS:
        if row[0] == "pool":
            x = b.add(f"pool{npool}", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, x)
            npool += 1
            continue
        name, c1, r3, c3, r5, c5, pp = row
        p = f"i{name}"
        b1 = b.conv_relu(f"{p}_1x1", x, c1, 1)
        b2 = b.conv_relu(f"{p}_3x3", b.conv_relu(f"{p}_3x3r", x, r3, 1), c3, 3)
        b3 = b.conv_relu(f"{p}_5x5", b.conv_relu(f"{p}_5x5r", x, r5, 1), c5, 5)
        pool = b.add(f"{p}_pool", "MaxPool2D", {"kernel_size": 3, "stride": 1, "padding": 1}, x)
        b4 = b.conv_relu(f"{p}_proj", pool, pp, 1)
        x = b.add(f"{p}_cat", "Concat", {"axis": 0}, b1, b2, b3, b4)
    x = b.add("avgpool", "GlobalAvgPool2D", {}, x)
    x = b.add("dropout", "Dropout", {"rate": 0.4}, x)
    b.add("fc", "Dense", {"units": 1000}, x)
    return b.g


def densenet121(size: int = 224, growth: int = 32) -> Graph:
    """DenseNet-121's blocks (6, 12, 24, 16 dense layers; transitions halve the channels):
    BatchNorm, ReLU and convolution are separate blocks, as torchvision's modules are."""
    b = _Builder("DenseNet-121 (test shape)")
    x = b.add("input", "Input", {"shape": [3, size, size]})
    x = b.add("conv0", "Conv2D", {"filters": 64, "kernel_size": 7, "stride": 2, "padding": 3}, x)
    x = b.add("norm0", "BatchNorm", {}, x)
    x = b.add("relu0", "Activation", {"fn": "relu"}, x)
    x = b.add("pool0", "MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}, x)
    channels = 64
    for bi, layers in enumerate((6, 12, 24, 16), start=1):
        for li in range(1, layers + 1):
            p = f"d{bi}_{li}"
            y = b.add(f"{p}_bn1", "BatchNorm", {}, x)
            y = b.add(f"{p}_relu1", "Activation", {"fn": "relu"}, y)
            y = b.add(f"{p}_conv1", "Conv2D", {"filters": 4 * growth, "kernel_size": 1}, y)
            y = b.add(f"{p}_bn2", "BatchNorm", {}, y)
            y = b.add(f"{p}_relu2", "Activation", {"fn": "relu"}, y)
            y = b.add(
                f"{p}_conv2", "Conv2D", {"filters": growth, "kernel_size": 3, "padding": 1}, y
            )
            x = b.add(f"{p}_cat", "Concat", {"axis": 0}, x, y)
            channels += growth
        if bi < 4:
            channels //= 2
            p = f"t{bi}"
            x = b.add(f"{p}_bn", "BatchNorm", {}, x)
            x = b.add(f"{p}_relu", "Activation", {"fn": "relu"}, x)
            x = b.add(f"{p}_conv", "Conv2D", {"filters": channels, "kernel_size": 1}, x)
            x = b.add(f"{p}_pool", "AvgPool2D", {"kernel_size": 2}, x)
    x = b.add("norm5", "BatchNorm", {}, x)
    x = b.add("relu5", "Activation", {"fn": "relu"}, x)
    x = b.add("avgpool", "GlobalAvgPool2D", {}, x)
    b.add("fc", "Dense", {"units": 1000}, x)
    return b.g
