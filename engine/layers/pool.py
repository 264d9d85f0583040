"""Pooling: MaxPool2D, AvgPool2D, GlobalAvgPool2D, Subsample2D, and over sequences
GlobalAvgPool1D and GlobalMaxPool1D (the way back up, Upsample2D and MaxUnpool2D: upsample.py).

The same one window at a time, as the lectures write them: engine/reference/pool.py.

Windows are reduced in two passes over strided slices (engine.functional): along their kw
columns for every input row, then along their kh rows. The backward passes run the other way:
dout spread over the rows of each window, then over its columns, adding where windows overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import functional as F
from engine.errors import ConfigError, ShapeError
from engine.layers.base import Layer, TorchBlock, pad_text, size_text, stride_text, torch_size
from engine.settings import Opt


def shape_text(shape: Any) -> str:
    """A shape as the pooling blocks' messages write it: (C, H, W)."""
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


TORCH_SUBSAMPLE = '''
class Subsample2D(nn.Module):
    """LeNet-5's trainable subsampling: per map, out = weight[c] * sum(window) + bias[c] over
    non-overlapping windows (rows and columns left over are dropped)."""

    def __init__(self, channels, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        s = F.avg_pool2d(x, self.kernel_size, divisor_override=1)  # window sums
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
'''


def image_of(layer: Layer, in_shape: Any) -> tuple[int, int, int]:
    """(C, H, W) of an image input, or ShapeError naming ``layer``."""
    if len(in_shape) != 3:
        raise ShapeError(
            f"{layer.type_name} expects feature maps (channels, height, width), got "
            f"{shape_text(in_shape)}",
            block=layer.name,
        )
    return int(in_shape[0]), int(in_shape[1]), int(in_shape[2])


class _Pool(Layer):
    """MaxPool2D and AvgPool2D: kernel_size, stride (empty: the kernel size), padding."""

    family = "Pooling"
    _rows: np.ndarray | None = None  # scratch for the backward's row stage
    options = {
        "kernel_size": Opt("size", doc="window height and width: k or [kh, kw]"),
        "stride": Opt(
            "size",
            default=None,
            nullable=True,
            doc="step between windows (empty: the kernel size, no overlap)",
        ),
        "padding": Opt("padding", default=0, doc="added on each side: p or [ph, pw]"),
    }
    starter = {"kernel_size": 2}
    torch_class = ""  # nn.MaxPool2d or nn.AvgPool2d

    @classmethod
    def summary(cls, cfg):
        s = cfg.get("stride")
        text = size_text(cfg.get("kernel_size")) + (f" {stride_text(s)}" if s is not None else "")
        pad = cfg.get("padding", 0)
        text += f" {pad_text(pad)}" if pad not in (0, None) else ""
        return text + (" ceil" if cfg.get("ceil_mode") is True else "")

    def to_torch(self, in_shape):
        # MaxPool2d pads with -inf, AvgPool2d counts padded zeros (count_include_pad): the
        # engine's semantics. Padding is at most half the kernel in both (check_settings).
        cfg = self.config
        args = torch_size(cfg["kernel_size"])
        if cfg["stride"] is not None and F.pair(cfg["stride"]) != F.pair(cfg["kernel_size"]):
            args += f", stride={torch_size(cfg['stride'])}"
        if F.pair(cfg["padding"]) != (0, 0):
            args += f", padding={torch_size(cfg['padding'])}"
        if cfg.get("ceil_mode"):
            args += ", ceil_mode=True"
        return TorchBlock(f"{self.torch_class}({args})", "{m}({0})")

    def check_settings(self) -> None:
        pad = self.config["padding"]
        if isinstance(pad, str):
            raise ConfigError(
                f"'padding' of {self.type_name} must be a number or [ph, pw], not {pad!r}",
                block=self.name,
            )
        (kh, kw), (ph, pw) = F.pair(self.config["kernel_size"]), F.pair(pad)
        if 2 * ph > kh or 2 * pw > kw:
            raise ConfigError(
                f"'padding' {pad} is more than half the window {kh}x{kw} (a window could then "
                "hold only padding); use padding at most kernel_size / 2, as PyTorch requires",
                block=self.name,
            )

    def _geometry(self, h: int, w: int):
        cfg = self.config
        ceil = cfg.get("ceil_mode", False)
        return F.pool_geometry(h, w, cfg["kernel_size"], cfg["stride"], cfg["padding"], ceil)

    def output_shape(self, in_shape):
        c, h, w = image_of(self, in_shape)
        try:
            *_, oh, ow = self._geometry(h, w)
        except ShapeError as e:
            raise ShapeError(
                f"{e.message} (input {shape_text(in_shape)})", block=self.name
            ) from None
        return c, oh, ow

    def _backward(self, dout, x_shape, row_part, col_part, picks=None) -> np.ndarray:
        """dx from dout: dout goes to the rows of each window (row_part(dout, i) to row i), the
        result to the columns of each window (col_part(g, j) to column j). ``picks`` (max
        pooling): which row / column of each window had the max, for the 2-wide shortcut."""
        n, c, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw), oh, ow = self._geometry(h, w)
        eh, ew = F.overhang(h, kh, sh, ph, oh), F.overhang(w, kw, sw, pw, ow)  # ceil_mode's
        # the row stage is scratch, reused between calls (a fresh 1 MB array costs page faults)
        shape = (n, c, h + 2 * ph + eh, ow)
        rows = self._rows
        if rows is None or rows.shape != shape or rows.dtype != dout.dtype:
            rows = self._rows = np.empty(shape, dout.dtype)
        g = _spread(dout, rows, 2, kh, sh, oh, row_part, None if picks is None else picks["rows"])
        dxp = np.empty((n, c, h + 2 * ph + eh, w + 2 * pw + ew), dout.dtype)
        _spread(g, dxp, 3, kw, sw, ow, col_part, None if picks is None else picks["cols"])
        return np.ascontiguousarray(dxp[:, :, ph : ph + h, pw : pw + w])


def _spread(g, out, axis, k, s, o, part, pick=None) -> np.ndarray:
    """Fill ``out`` so that its k window slices along ``axis`` (2: rows, 3: columns) receive
    part(g, offset): written directly when windows do not overlap, added when they do."""
    tiled = s == k and out.shape[axis] == o * k  # every element is in exactly one window
    views = F.row_views if axis == 2 else F.column_views
    if tiled and k == 2 and pick is not None:
        # Max pooling's 2-wide windows: slice 1 gets g where the max was the second (pick is 0
        # or 1), slice 0 the rest, g - slice 1 (exact: g - g = 0, g - 0 = g). Two operations
        # instead of four (benchmarks/NOTES.md).
        first, second = views(out, k, s, o)
        np.multiply(g, pick.view(np.bool_), out=second)
        np.subtract(g, second, out=first)
        return out
    if not tiled:
        out.fill(0)
    for offset, view in enumerate(views(out, k, s, o)):
        if s >= k:
            part(g, offset, view)
        else:
            view += part(g, offset, None)
    return out


class MaxPool2D(_Pool):
    """Max over each window; padding counts as -inf (PyTorch's MaxPool2d).

    Reference: engine.reference.pool.max_pool2d_forward / max_pool2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C, OH, OW), OH = floor((H + 2P - k) / S) + 1
    (``ceil_mode``: rounded up, the last window running past the input, as PyTorch's).
    The gradient of each window goes to its maximum only, and to the FIRST one in row-major
    order when several are equal (as PyTorch; zero-background images tie all the time).
    """

    type_name = "MaxPool2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, i, j] = \max_{0 \leq u < k_h,\ 0 \leq v < k_w} x[c, S i + u, S j + v]$",
        r"$O_H = \left\lfloor \frac{H + 2P - k}{S} \right\rfloor + 1$",
    )
    torch_class = "nn.MaxPool2d"
    options = {
        **_Pool.options,
        "ceil_mode": Opt(
            "bool",
            default=False,
            doc="round the output size up: a last, partial window (GoogLeNet's pools)",
        ),
    }

    def forward(self, x, training=False):
        self.check_input(x)
        cfg = self.config
        if not training:
            # inference: the maxima alone (a sixth of the time, ResNet-18's stem pool); where
            # they came from is found from x only if asked (engine.explain's gradients,
            # MaxUnpool2D), as BatchNorm's inference cache does
            self._cache = (x.shape, x)
            return F.max_pool2d(
                x, cfg["kernel_size"], cfg["stride"], cfg["padding"], False, cfg["ceil_mode"]
            )
        out, picks = F.max_pool2d(
            x, cfg["kernel_size"], cfg["stride"], cfg["padding"], True, cfg["ceil_mode"]
        )
        self._cache = (x.shape, picks)
        return out

    def _picks(self) -> dict:
        """Where the last forward's maxima came from (F.max_pool2d's choices)."""
        x_shape, picks = self._cache
        if isinstance(picks, np.ndarray):  # an inference forward kept x: find them now
            cfg = self.config
            _, picks = F.max_pool2d(
                picks, cfg["kernel_size"], cfg["stride"], cfg["padding"], True, cfg["ceil_mode"]
            )
            self._cache = (x_shape, picks)
        return picks

    def backward(self, dout):
        x_shape, picks = self._cache[0], self._picks()

        def chosen(which):  # g where the max came from that row/column, else 0
            return lambda g, i, out: np.multiply(g, picks[which] == i, out=out)

        return self._backward(dout, x_shape, chosen("rows"), chosen("cols"), picks)

    def argmax_indices(self) -> np.ndarray:
        """Where the last forward took each maximum: (N, C, OH, OW) int64 indices into the
        flattened H x W of its input (PyTorch's ``return_indices``; MaxUnpool2D reads them)."""
        if self._cache is None:
            raise ShapeError("has not run forward yet: no maxima to unpool", block=self.name)
        h, w = self._cache[0][2:]
        picks = self._picks()
        (kh, kw), (sh, sw), (ph, pw), oh, ow = self._geometry(h, w)
        rows = np.arange(oh)[:, None] * sh + picks["rows"].astype(np.int64)  # padded row
        cols = np.take_along_axis(picks["cols"], rows, axis=2).astype(np.int64)
        cols += np.arange(ow) * sw  # padded column
        return (rows - ph) * w + (cols - pw)


class AvgPool2D(_Pool):
    """Mean of each window; padded zeros count in the mean (PyTorch's count_include_pad).

    Reference: engine.reference.pool.avg_pool2d_forward / avg_pool2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C, OH, OW), OH = floor((H + 2P - k) / S) + 1
    Every input of a window gets dout / (kh * kw).
    """

    type_name = "AvgPool2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, i, j] = \frac{1}{k_h k_w} \sum_{u, v} x[c, S i + u, S j + v]$",
    )
    torch_class = "nn.AvgPool2d"

    def forward(self, x, training=False):
        self.check_input(x)
        cfg = self.config
        self._cache = x.shape
        return F.avg_pool2d(x, cfg["kernel_size"], cfg["stride"], cfg["padding"])

    def backward(self, dout):
        kh, kw = F.pair(self.config["kernel_size"])
        share = dout * (1.0 / (kh * kw))

        def same(g, i, out):  # every row/column of a window gets the same share
            return g if out is None else np.copyto(out, g)

        return self._backward(share, self._cache, same, same)


class GlobalAvgPool2D(Layer):
    """Mean of each feature map (the classifier head of GoogLeNet/ResNet, lecture 001).

    Reference: engine.reference.pool.global_avg_pool2d_forward / global_avg_pool2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C)
    """

    type_name = "GlobalAvgPool2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c] = \frac{1}{H W} \sum_{i, j} x[c, i, j]$",
    )
    family = "Pooling"
    global_average = True  # Dense after it makes a class activation map (engine.explain.cam)

    def to_torch(self, in_shape):
        return TorchBlock(None, "{0}.mean(dim=(2, 3))")

    def output_shape(self, in_shape):
        return (image_of(self, in_shape)[0],)

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape
        return F.global_avg_pool2d(x)

    def backward(self, dout):
        n, c, h, w = self._cache
        share = dout * (1.0 / (h * w))
        return np.broadcast_to(share[:, :, None, None], self._cache).copy()


class Subsample2D(Layer):
    """LeNet-5's trainable subsampling (S2, S4): per map, out = w[c] * sum(window) + b[c] over
    non-overlapping k x k windows (LeCun 1998 then applies a sigmoid: add an Activation).

    Reference: engine.reference.pool.subsample2d_forward / subsample2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C, H // kh, W // kw); weight (C,), bias (C,)
    Starts as average pooling: weight 1 / (kh * kw), bias 0 (an ``init`` setting replaces the
    weight's start).
    """

    type_name = "Subsample2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, i, j] = w_c \sum_{u, v} x[c, k i + u, k j + v] + b_c$",
    )
    family = "Pooling"
    has_weights = True
    options = {"kernel_size": Opt("size", default=2, doc="window height and width: k or [kh, kw]")}

    @classmethod
    def summary(cls, cfg):
        return size_text(cfg.get("kernel_size", 2))

    def output_shape(self, in_shape):
        c, h, w = image_of(self, in_shape)
        kh, kw = F.pair(self.config["kernel_size"])
        if kh > h or kw > w:
            raise ShapeError(
                f"window {kh}x{kw} is larger than the input {shape_text(in_shape)}"
                ": use a smaller kernel",
                block=self.name,
            )
        return c, h // kh, w // kw

    def param_shapes(self, in_shape):
        c = int(in_shape[0])
        return {"weight": (c,), "bias": (c,)}

    def init_rule(self, key, shape):
        if key == "weight" and not self.config["init"]:
            kh, kw = F.pair(self.config["kernel_size"])
            return "constant", {"value": 1.0 / (kh * kw)}  # average pooling
        return super().init_rule(key, shape)

    def to_torch(self, in_shape):
        size = torch_size(self.config["kernel_size"])
        return TorchBlock(
            f"Subsample2D({int(in_shape[0])}, {size})", "{m}({0})", {"Subsample2D": TORCH_SUBSAMPLE}
        )

    def forward(self, x, training=False):
        self.check_input(x)
        s = F.window_sum2d(x, self.config["kernel_size"])
        self._cache = (x.shape, s)
        w, b = self.params["weight"], self.params["bias"]
        return s * w[:, None, None] + b[:, None, None]

    def backward(self, dout):
        x_shape, s = self._cache
        n, c, h, w = x_shape
        kh, kw = F.pair(self.config["kernel_size"])
        oh, ow = s.shape[2], s.shape[3]
        self.grads["weight"] = (dout * s).sum(axis=(0, 2, 3))
        self.grads["bias"] = dout.sum(axis=(0, 2, 3))
        ds = dout * self.params["weight"][:, None, None]  # d out / d sum = w[c]
        # every input of a window gets its window's ds; rows/columns left over get nothing
        spread = np.broadcast_to(ds[:, :, :, None, :, None], (n, c, oh, kh, ow, kw))
        dx = np.zeros(x_shape, dout.dtype)
        dx[:, :, : oh * kh, : ow * kw] = spread.reshape(n, c, oh * kh, ow * kw)
        return dx


def _sequence(layer: Layer, in_shape: Any) -> int:
    if len(in_shape) != 2:
        raise ShapeError(
            f"{layer.type_name} expects sequences (channels, length), as Conv1D makes, got "
            f"{shape_text(in_shape)}",
            block=layer.name,
        )
    return int(in_shape[0])


class GlobalAvgPool1D(Layer):
    """Mean of each channel over the sequence (a text CNN's pooling; with a Dense after it,
    a class activation map over the words: engine.explain.cam).

    Reference: engine.reference.pool.global_avg_pool1d_forward / global_avg_pool1d_backward.
    Shapes: x (N, C, L) -> out (N, C)
    """

    type_name = "GlobalAvgPool1D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c] = \frac{1}{L} \sum_{t} x[c, t]$",
    )
    family = "Pooling"
    global_average = True

    def to_torch(self, in_shape):
        return TorchBlock(None, "{0}.mean(dim=2)")

    def output_shape(self, in_shape):
        return (_sequence(self, in_shape),)

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape
        return x.mean(axis=2)

    def backward(self, dout):
        n, c, length = self._cache
        return np.broadcast_to((dout * (1.0 / length))[:, :, None], self._cache).copy()


class GlobalMaxPool1D(Layer):
    """Max of each channel over the sequence (Kim 2014's text CNN: a filter fires where its
    n-gram occurs, wherever that is). The gradient goes to the first maximum only.

    Reference: engine.reference.pool.global_max_pool1d_forward / global_max_pool1d_backward.
    Shapes: x (N, C, L) -> out (N, C)
    """

    type_name = "GlobalMaxPool1D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c] = \max_{t} x[c, t]$",
    )
    family = "Pooling"

    def to_torch(self, in_shape):
        return TorchBlock(None, "{0}.amax(dim=2)")

    def output_shape(self, in_shape):
        return (_sequence(self, in_shape),)

    def forward(self, x, training=False):
        self.check_input(x)
        where = x.argmax(axis=2)
        self._cache = (x.shape, where)
        return np.take_along_axis(x, where[:, :, None], axis=2)[:, :, 0]

    def backward(self, dout):
        shape, where = self._cache
        dx = np.zeros(shape, dout.dtype)
        np.put_along_axis(dx, where[:, :, None], dout[:, :, None], axis=2)
        return dx
