"""Blocks with several inputs: Add (residual connections) and Concat."""

from __future__ import annotations

import numpy as np

from engine import elementwise
from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock
from engine.settings import Opt


class Add(Layer):
    """Element-wise sum of two or more inputs of equal shape (ResNet's shortcut, lecture 001).

    Reference: engine.reference.merge.add_forward / add_backward.
    Shapes: xs [(N, *s), (N, *s), ...] -> out (N, *s); each input's gradient is dout.
    """

    type_name = "Add"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = x_1 + x_2 + \ldots \qquad \frac{\partial L}{\partial x_k} = "
        r"\frac{\partial L}{\partial \mathrm{out}}$",
        r"$y = F(x) + x$ (a residual block)",
    )
    family = "Merge"
    arity = (2, None)

    def to_torch(self, in_shape):
        return TorchBlock(None, " + ".join(f"{{{i}}}" for i in range(len(in_shape))))

    def output_shape(self, in_shape):
        shapes = [tuple(s) for s in in_shape]
        if len(shapes) < 2:
            raise ShapeError(f"Add needs two or more inputs, got {len(shapes)}", block=self.name)
        if any(s != shapes[0] for s in shapes):
            raise ShapeError(
                "Add needs inputs of equal shape, got " + ", ".join(map(str, shapes)),
                block=self.name,
            )
        return shapes[0]

    def check_input(self, xs):
        if len(xs) != len(self.in_shape):
            raise ShapeError(
                f"Add expects {len(self.in_shape)} inputs, got {len(xs)}", block=self.name
            )

    def forward(self, xs, training=False):
        self.check_input(xs)
        self._cache = len(xs)
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        return out

    def backward(self, dout):
        return [dout] * self._cache

    # What Model.predict may run inside this block's pass over its output (engine.inference).
    epilogue = ("relu",)

    def fused_forward(self, xs, affine=None, relu=False):
        """Inference only (engine.inference): the sum, then max(sum, 0) in its own array if
        ``relu`` (a ResNet block's ReLU after the shortcut)."""
        if affine is not None:
            raise ValueError("Add takes no affine epilogue")
        self.check_input(xs)
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        if relu:
            elementwise.relu(out, out=out)
        return out


class Concat(Layer):
    """Concatenates inputs along ``axis`` (0: channels of images, features of vectors); the
    other axes must match. For sequences (T, F) join features with axis -1.

    Reference: engine.reference.merge.concat_forward / concat_backward.
    Shapes: xs [(N, a1, ...), (N, a2, ...)] -> out (N, a1 + a2, ...) for axis 0.
    ``axis`` counts sample axes (the batch excluded); -1 is the last.
    """

    type_name = "Concat"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = [x_1; x_2; \ldots]$ along the chosen axis",
    )
    family = "Merge"
    arity = (2, None)
    options = {"axis": Opt("int", default=0, min=-4, max=3, doc="sample axis to join along")}

    @classmethod
    def summary(cls, cfg):
        return f"axis {cfg.get('axis', 0)}"

    def to_torch(self, in_shape):
        args = ", ".join(f"{{{i}}}" for i in range(len(in_shape)))
        return TorchBlock(None, f"torch.cat([{args}], dim={self._axis(len(in_shape[0])) + 1})")

    def _axis(self, ndim: int) -> int:
        a = self.config["axis"]
        a = a + ndim if a < 0 else a
        if not 0 <= a < ndim:
            raise ShapeError(
                f"axis {self.config['axis']} does not exist for {ndim}-D inputs", block=self.name
            )
        return a

    def output_shape(self, in_shape):
        shapes = [tuple(s) for s in in_shape]
        if len(shapes) < 2:
            raise ShapeError(f"Concat needs two or more inputs, got {len(shapes)}", block=self.name)
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise ShapeError(
                "Concat needs inputs with the same number of axes, got "
                + ", ".join(map(str, shapes)),
                block=self.name,
            )
        a = self._axis(len(shapes[0]))
        rest = [s[:a] + s[a + 1 :] for s in shapes]
        if any(r != rest[0] for r in rest):
            raise ShapeError(
                f"Concat along axis {a} needs the other axes equal, got "
                + ", ".join(map(str, shapes)),
                block=self.name,
            )
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    def check_input(self, xs):
        if len(xs) != len(self.in_shape):
            raise ShapeError(
                f"Concat expects {len(self.in_shape)} inputs, got {len(xs)}", block=self.name
            )

    def forward(self, xs, training=False):
        self.check_input(xs)
        a = self._axis(xs[0].ndim - 1) + 1
        self._cache = (a, np.cumsum([x.shape[a] for x in xs])[:-1])
        return np.concatenate(xs, axis=a)

    def backward(self, dout):
        a, splits = self._cache
        return np.split(dout, splits, axis=a)
