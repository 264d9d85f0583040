"""The way back up: Upsample2D (nearest neighbour) and MaxUnpool2D (SegNet's unpooling, which
puts each value back where its paired MaxPool2D found the maximum; zeros elsewhere).

The same one window at a time: engine/reference/pool.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import functional as F
from engine.errors import ConfigError, ShapeError
from engine.layers.base import Layer, TorchBlock, torch_size
from engine.layers.pool import MaxPool2D, image_of, shape_text
from engine.settings import Opt


class Upsample2D(Layer):
    """Nearest-neighbour upsampling: each pixel becomes an sh x sw block (decoders, lecture
    001's convolutional autoencoder).

    Reference: engine.reference.pool.upsample2d_forward / upsample2d_backward.
    Shapes: x (N, C, H, W) -> out (N, C, H*sh, W*sw)
    The gradient of a pixel is the sum over its block.
    """

    type_name = "Upsample2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, i, j] = x[c, \lfloor i / s_h \rfloor, \lfloor j / s_w \rfloor]$",
    )
    family = "Reshape"
    options = {"scale": Opt("size", default=2, doc="size factor: s or [sh, sw]")}

    @classmethod
    def summary(cls, cfg):
        return f"×{cfg.get('scale', 2)}"

    def to_torch(self, in_shape):
        sh, sw = F.pair(self.config["scale"])
        scale = f"{float(sh)!r}" if sh == sw else f"({float(sh)!r}, {float(sw)!r})"
        return TorchBlock(f'nn.Upsample(scale_factor={scale}, mode="nearest")', "{m}({0})")

    def output_shape(self, in_shape):
        c, h, w = image_of(self, in_shape)
        sh, sw = F.pair(self.config["scale"])
        return c, h * sh, w * sw

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape
        return F.upsample2d(x, self.config["scale"])

    def backward(self, dout):
        n, c, h, w = self._cache
        sh, sw = F.pair(self.config["scale"])
        return dout.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5))


class MaxUnpool2D(Layer):
    """Max-unpooling (lecture 001, SegNet's decoder): each value goes back to the position its
    paired MaxPool2D (setting ``pool``) took the maximum of its window from; zeros elsewhere.

    Reference: engine.reference.pool.max_unpool2d_forward / max_unpool2d_backward.
    Shapes: x (N, C, OH, OW), the pool's output -> out (N, C, H, W), the pool's input
    The gradient of each value is the output gradient at the position it went to. The pool must
    run first (it is upstream), have non-overlapping windows (stride = kernel size: every
    position takes at most one value) and output this block's input shape.
    """

    type_name = "MaxUnpool2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[c, \pi(q)] = x[c, q]$, $\pi(q)$: where the pool found window $q$'s max",
        r"$\mathrm{out} = 0$ elsewhere",
    )
    family = "Pooling"
    links = ("pool",)
    options = {
        "pool": Opt(
            "block",
            default=None,
            nullable=True,
            doc="the MaxPool2D whose maxima's positions it uses",
        )
    }

    def __init__(self, name: str | None = None, **config: Any):
        super().__init__(name, **config)
        self.pool: MaxPool2D | None = None

    @classmethod
    def summary(cls, cfg):
        return f"from {cfg.get('pool')}" if cfg.get("pool") else "no pool"

    def bind(self, key, other):
        pool_id = self.config["pool"]
        if not isinstance(other, MaxPool2D):
            raise ConfigError(
                f"'pool' is block '{pool_id}', a {other.type_name}; max-unpooling needs the "
                "MaxPool2D whose maxima it puts back",
                block=self.name,
            )
        cfg = other.config
        if cfg["stride"] is not None and F.pair(cfg["stride"]) != F.pair(cfg["kernel_size"]):
            raise ConfigError(
                f"pool '{pool_id}' has overlapping windows (stride {cfg['stride']}, kernel "
                f"{cfg['kernel_size']}); unpooling needs stride = kernel size",
                block=self.name,
            )
        self.pool = other

    def output_shape(self, in_shape):
        image_of(self, in_shape)
        pool = self.pool
        if pool is None:
            raise ConfigError(
                "choose the MaxPool2D it undoes: set 'pool' to that block's id", block=self.name
            )
        if tuple(in_shape) != tuple(pool.out_shape):
            raise ShapeError(
                f"its input {shape_text(in_shape)} is not the output "
                f"{shape_text(pool.out_shape)} of its pool '{pool.name}': unpool what that "
                "pool made (same channels and size)",
                block=self.name,
            )
        return tuple(pool.in_shape)

    def to_torch(self, in_shape):
        cfg = self.pool.config if self.pool is not None else None
        if cfg is None:
            return None
        args = torch_size(cfg["kernel_size"])
        if F.pair(cfg["padding"]) != (0, 0):
            args += f", padding={torch_size(cfg['padding'])}"
        # the indices: the pool's maxima again (return_indices), from the pool's input
        where = f"F.max_pool2d({{pool_in}}, {args}, return_indices=True)[1]"
        return TorchBlock(
            f"nn.MaxUnpool2d({args})",
            f"{{m}}({{0}}, {where}, output_size={{pool_in}}.shape[-2:])",
            refs={"pool": self.config["pool"]},
        )

    def forward(self, x, training=False):
        self.check_input(x)
        idx = self.pool.argmax_indices()
        if idx.shape != x.shape:
            raise ShapeError(
                f"got {tuple(x.shape)} but pool '{self.pool.name}' last made {idx.shape}",
                block=self.name,
            )
        n, c = x.shape[:2]
        h, w = self.out_shape[1:]
        flat = idx.reshape(n, c, -1)
        self._cache = flat
        out = np.zeros((n, c, h * w), x.dtype)
        np.put_along_axis(out, flat, x.reshape(n, c, -1), axis=2)
        return out.reshape(n, c, h, w)

    def backward(self, dout):
        flat = self._cache
        n, c = dout.shape[:2]
        dx = np.take_along_axis(dout.reshape(n, c, -1), flat, axis=2)
        return dx.reshape(n, c, *self.in_shape[1:])
