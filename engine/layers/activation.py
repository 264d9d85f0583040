"""Element-wise activations (and softmax over the last axis)."""

from __future__ import annotations

import numpy as np

from engine import functional as F
from engine.layers.base import Layer, TorchBlock, code
from engine.settings import Opt

FUNCTIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow for large |x|: with e = e^-|x| (at most 1), 1 / (1 + e)
    where x >= 0 and e / (1 + e) below, so tiny values keep their precision (1 - 1 / (1 + e)
    would round them to 0). In whole-array passes: selecting each side by a boolean mask was
    18x slower (64 x 6 x 28 x 28 float32: 6.7 -> 0.36 ms)."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    out = np.add(e, 1.0, dtype=x.dtype)
    np.reciprocal(out, out=out)
    np.maximum(e, x >= 0, out=e)  # 1 where x >= 0, e elsewhere
    return np.multiply(out, e, out=out)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum exp(x - max): shifting by the max avoids overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Activation(Layer):
    """out = f(x) element-wise; softmax normalises over the last axis (features).

    Reference: engine.reference.activation.activation_forward / activation_backward.
    Shapes: x (N, *s) -> out (N, *s)
    Derivatives: relu' = [x > 0]; leaky' = 1 or slope; sigmoid' = s(1 - s); tanh' = 1 - t^2;
    softmax: dx = s * (dout - sum(dout * s)).
    """

    type_name = "Activation"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = f(x)$, element-wise",
        r"$\mathrm{relu}(x) = \max(0, x) \qquad \sigma(x) = \frac{1}{1 + e^{-x}}$",
        r"$\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}$",
        r"$\mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$",
        r"$\sigma'(x) = \sigma(x)\,(1 - \sigma(x)) \qquad \tanh'(x) = 1 - \tanh^2(x)$",
    )
    family = "Activation"
    options = {
        "fn": Opt("choice", default="relu", choices=FUNCTIONS, doc="the function"),
        "negative_slope": Opt(
            "float", default=0.01, min=0.0, max=1.0, doc="slope for x < 0 (leaky_relu)"
        ),
    }

    @classmethod
    def summary(cls, cfg):
        fn = cfg.get("fn", "")
        return f"{fn} {cfg.get('negative_slope'):g}" if fn == "leaky_relu" else str(fn)

    def to_torch(self, in_shape):
        fn = self.config["fn"]
        if fn == "leaky_relu":
            module = f"nn.LeakyReLU({code(float(self.config['negative_slope']))})"
        else:
            module = {
                "relu": "nn.ReLU()",
                "sigmoid": "nn.Sigmoid()",
                "tanh": "nn.Tanh()",
                "softmax": "nn.Softmax(dim=-1)",
                "linear": "nn.Identity()",
            }[fn]
        return TorchBlock(module, "{m}({0})")

    @property
    def is_relu(self) -> bool:
        """Whether this block is max(x, 0): engine.inference runs it inside the block before."""
        return self.config["fn"] == "relu"

    def forward(self, x, training=False):
        self.check_input(x)
        fn = self.config["fn"]
        if fn == "relu":
            out = F.relu(x)
            # the mask x > 0 is out > 0: at inference made only if a backward pass asks
            # (explanations), as BatchNorm's inference cache does
            self._cache = x > 0 if training else out
        elif fn == "leaky_relu":
            slope = x.dtype.type(self.config["negative_slope"])
            # with 0 < slope <= 1 x * slope >= x exactly where x <= 0: max(x, x * slope) is
            # where(x > 0, x, x * slope), value for value, and NumPy's np.where runs ~20x
            # slower than np.maximum (benchmarks/NOTES.md). Slope 0 keeps where: inf * 0 is NaN
            if x.dtype.kind == "f" and slope > 0:
                out = np.maximum(x, x * slope)
            else:
                out = np.where(x > 0, x, x * slope)
            self._cache = x > 0
        elif fn == "sigmoid":
            out = sigmoid(x)
            self._cache = out
        elif fn == "tanh":
            out = np.tanh(x)
            self._cache = out
        elif fn == "softmax":
            out = softmax(x)
            self._cache = out
        else:  # linear
            out = x
        return out

    def backward(self, dout):
        fn = self.config["fn"]
        if fn == "relu":
            mask = self._cache
            return dout * (mask if mask.dtype == bool else mask > 0)
        if fn == "leaky_relu":
            # dout times 1 or slope, picked from a two-entry table by the mask (exactly
            # np.where(mask, dout, dout * slope), ~6x faster)
            factor = np.array([self.config["negative_slope"], 1], dout.dtype)
            return dout * np.take(factor, self._cache.view(np.uint8))
        if fn == "sigmoid":
            s = self._cache
            return dout * s * (1 - s)
        if fn == "tanh":
            t = self._cache
            return dout * (1 - t * t)
        if fn == "softmax":
            s = self._cache
            return s * (dout - (dout * s).sum(axis=-1, keepdims=True))
        return dout
