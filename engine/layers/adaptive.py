"""Adaptive pooling: AdaptiveAvgPool2D, average pooling to a chosen output size (PyTorch's
nn.AdaptiveAvgPool2d; torchvision's InceptionAux and AlexNet/VGG heads).

The windows follow from the sizes, not from a kernel: window i along an axis of length H with
``oh`` outputs covers rows [floor(i H / oh), ceil((i + 1) H / oh)). They tile the map when H is
a multiple of oh (plain average pooling, kernel = stride = H / oh), overlap by a row where it
is not (14 -> 4: rows 0-3, 3-6, 7-10, 10-13), and repeat rows when oh > H (3 -> 5).

Because each window is a product of a row range and a column range, the mean over it is a
mean over its rows of means over its columns: out = P_h x P_w^T, with P_h[i, r] = 1 / (its
length) for r in window i and 0 elsewhere (P_w the same for columns). Forward is two matrix
products, backward the transposed ones: dx = P_h^T dout P_w. The same one window at a time,
as the lectures write pooling: engine/reference/adaptive.py.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from engine import functional as F
from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock, size_text, torch_size
from engine.settings import Opt


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows along one axis: [floor(i size / out), ceil((i+1) size / out))
    for i < out."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


@cache
def _pool_matrix(size: int, out: int) -> np.ndarray:
    """P (out, size): row i averages window i (1 / its length over it, 0 elsewhere)."""
    p = np.zeros((out, size))
    for i, (a, b) in enumerate(adaptive_windows(size, out)):
        p[i, a:b] = 1.0 / (b - a)
    p.flags.writeable = False  # shared between layers through the cache
    return p


def _sandwich(x: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ x[n, c] @ right.T for every map, as two large matrix products (all maps' rows
    at once, then all maps' columns) rather than N x C small ones."""
    n, c, h, w = x.shape
    t = x.reshape(-1, w) @ right.T  # (N C H, ow)
    t = t.reshape(n * c, h, -1).transpose(0, 2, 1).reshape(-1, h) @ left.T  # (N C ow, oh)
    return np.ascontiguousarray(t.reshape(n, c, -1, left.shape[0]).transpose(0, 1, 3, 2))


class AdaptiveAvgPool2D(Layer):
    """Mean of each of oh x ow windows that cover the map, whatever its size (PyTorch's
    AdaptiveAvgPool2d): window (i, j) spans rows [floor(i H / oh), ceil((i + 1) H / oh)) and
    columns [floor(j W / ow), ceil((j + 1) W / ow)), overlapping by one where H is not a
    multiple of oh (torchvision's InceptionAux: 14 -> 4 takes rows 0-3, 3-6, 7-10, 10-13).

    Reference: engine.reference.adaptive.adaptive_avg_pool2d_forward /
    adaptive_avg_pool2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C, oh, ow)
    Every input of a window gets dout / (the window's size), added up where windows overlap.
    """

    type_name = "AdaptiveAvgPool2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, i, j] = \frac{1}{|R_i| |C_j|} \sum_{u \in R_i,\ v \in C_j} x[c, u, v]$",
        r"$R_i = \left[\left\lfloor \frac{i H}{o_h} \right\rfloor,\ "
        r"\left\lceil \frac{(i + 1) H}{o_h} \right\rceil\right)$",
    )
    family = "Pooling"
    options = {
        "output_size": Opt("size", doc="output height and width: s or [oh, ow] (PyTorch's)"),
    }
    starter = {"output_size": 4}

    @classmethod
    def summary(cls, cfg):
        size = cfg.get("output_size")
        return f"to {size_text(size)}" if size is not None else ""

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(
                "AdaptiveAvgPool2D expects feature maps (channels, height, width), got "
                f"({', '.join(str(int(d)) for d in in_shape)}): put it after a convolution",
                block=self.name,
            )
        oh, ow = F.pair(self.config["output_size"])
        return int(in_shape[0]), oh, ow

    def _matrices(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        oh, ow = F.pair(self.config["output_size"])
        return _pool_matrix(h, oh), _pool_matrix(w, ow)

    def forward(self, x, training=False):
        self.check_input(x)
        ph, pw = self._matrices(*x.shape[2:])
        self._cache = x.shape
        return _sandwich(x, ph.astype(x.dtype), pw.astype(x.dtype))

    def backward(self, dout):
        n, c, h, w = self._cache
        ph, pw = self._matrices(h, w)
        # dL/dx = P_h^T dout P_w: each window's dout, divided by its size, back over it
        return _sandwich(dout, ph.T.astype(dout.dtype), pw.T.astype(dout.dtype))

    def to_torch(self, in_shape):
        return TorchBlock(
            f"nn.AdaptiveAvgPool2d({torch_size(self.config['output_size'])})", "{m}({0})"
        )
