"""Fully connected layer."""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import Layer
from engine.layers.options import Opt


class Dense(Layer):
    """Fully connected: out = x @ weight.T + bias.

    Shapes: x (N, in_features) -> out (N, units); weight (units, in_features), bias (units,)
    """

    type_name = "Dense"
    family = "Dense"
    has_weights = True
    options = {
        "units": Opt("int", min=1, max=1_000_000, doc="number of output features"),
        "bias": Opt("bool", default=True, doc="add a learned bias"),
    }

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ShapeError(
                f"Dense expects a flat vector (features,), got {tuple(in_shape)}: "
                "insert Flatten before it",
                block=self.name,
            )
        return (self.config["units"],)

    def param_shapes(self, in_shape):
        shapes = {"weight": (self.config["units"], int(in_shape[0]))}
        if self.config["bias"]:
            shapes["bias"] = (self.config["units"],)
        return shapes

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x
        out = x @ self.params["weight"].T
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout):
        x = self._cache
        # dL/dW = dout^T x ; dL/db = sum over the batch ; dL/dx = dout W
        self.grads["weight"] = dout.T @ x
        if "bias" in self.params:
            self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["weight"]
