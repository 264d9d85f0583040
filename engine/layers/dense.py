"""Fully connected layer."""

from __future__ import annotations

import math

import numpy as np

from engine import blas_threads
from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock
from engine.settings import Opt


class Dense(Layer):
    """Fully connected: out = x @ weight.T + bias.

    Reference: engine.reference.dense.dense_forward / dense_backward.
    Shapes: x (N, in_features) -> out (N, units); weight (units, in_features), bias (units,).
    On a sequence x (N, T, in_features) the same weights apply at every time step
    (out (N, T, units)), as PyTorch's Linear and Keras's Dense do: the per-step classifier of
    a many-to-many RNN or a character model.
    """

    type_name = "Dense"
    class_weights = True
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = x W^{\top} + b$",
        r"$\frac{\partial L}{\partial W} = \delta^{\top} x \qquad \frac{\partial L}{\partial b} "
        r"= \sum_n \delta_n \qquad \frac{\partial L}{\partial x} = \delta W$",
    )
    family = "Dense"
    has_weights = True
    options = {
        "units": Opt("int", min=1, max=1_000_000, doc="number of output features"),
        "bias": Opt("bool", default=True, doc="add a learned bias"),
    }
    starter = {"units": 64}

    @classmethod
    def summary(cls, cfg):
        return f"{cfg.get('units')}" + ("" if cfg.get("bias", True) else " no bias")

    def input_problem(self, in_shape, source):
        if len(in_shape) <= 2:
            return None
        return (
            f"Dense needs a flat vector but '{source}' gives "
            f"({', '.join(str(d) for d in in_shape)}): insert Flatten between them",
            {"kind": "insert", "type": "Flatten", "source": source, "target": self.name},
        )

    def macs(self, in_shape, out_shape):
        return math.prod(self.param_shapes(in_shape)["weight"]) * math.prod(out_shape[:-1])

    def to_torch(self, in_shape):
        # on sequences (T, F) the same weights apply at every step
        bias = "" if self.config["bias"] else ", bias=False"
        return TorchBlock(f"nn.Linear({in_shape[-1]}, {self.config['units']}{bias})", "{m}({0})")

    def output_shape(self, in_shape):
        if len(in_shape) not in (1, 2):
            raise ShapeError(
                f"Dense expects a flat vector (features,) or a sequence (T, features), got "
                f"{tuple(in_shape)}: insert Flatten before it",
                block=self.name,
            )
        return (*in_shape[:-1], self.config["units"])

    def param_shapes(self, in_shape):
        shapes = {"weight": (self.config["units"], int(in_shape[-1]))}
        if self.config["bias"]:
            shapes["bias"] = (self.config["units"],)
        return shapes

    @property
    def product_macs(self) -> int:
        """Multiply-adds of the last forward pass's product (BLAS's threads follow it)."""
        return self._cache.size * self.config["units"]

    # BLAS's threads by engine.blas_threads: one for a small product (a batch-1 head's
    # (1, 512) @ (512, 1000) took 0.03 ms on one thread, 0.02-8 ms on two on a busy machine)
    @blas_threads.by_size(lambda self, x, *_: np.size(x) * self.config["units"])
    def forward(self, x, training=False):
        self.check_input(x)
        x2 = x.reshape(-1, x.shape[-1])  # sequences: every (sample, step) is one row
        self._cache = x2
        out = x2 @ self.params["weight"].T
        if "bias" in self.params:
            out += self.params["bias"]
        return out.reshape(*x.shape[:-1], out.shape[-1])

    @blas_threads.by_size(lambda self, *_: self.product_macs)
    def backward(self, dout):
        x2 = self._cache
        d2 = dout.reshape(-1, dout.shape[-1])
        # dL/dW = dout^T x ; dL/db = sum over the batch (and steps) ; dL/dx = dout W
        self.grads["weight"] = d2.T @ x2
        if "bias" in self.params:
            self.grads["bias"] = d2.sum(axis=0)
        dx = d2 @ self.params["weight"]
        return dx.reshape(*dout.shape[:-1], dx.shape[-1])
