"""Blocks that only move data around: Input, Flatten, Reshape, Transpose."""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError, ShapeError
from engine.layers.base import Layer, TorchBlock, shape_text
from engine.settings import Opt

TORCH_RESHAPE = '''
class Reshape(nn.Module):
    """Each sample to ``shape`` (BlockProp's Reshape; the batch axis stays)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
'''


class Input(Layer):
    """The graph's entry point; passes its data through.

    Shapes: x (N, *shape) -> out (N, *shape)
    """

    type_name = "Input"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = x$",
    )
    family = "Input"
    arity = (0, 0)
    options = {"shape": Opt("shape", doc="shape of one sample, without the batch axis")}
    starter = {"shape": [1, 28, 28]}

    @classmethod
    def summary(cls, cfg):
        return shape_text(cfg.get("shape"))

    def to_torch(self, in_shape):
        return TorchBlock(None, "x")

    def output_shape(self, in_shape=None):
        return tuple(self.config["shape"])

    def build(self, in_shape=None, rng=None):
        self.in_shape = self.out_shape = tuple(self.config["shape"])
        return self

    def forward(self, x, training=False):
        self.check_input(x)
        return x

    def backward(self, dout):
        return dout


class Flatten(Layer):
    """Flattens every axis but the batch: (N, C, H, W) -> (N, C*H*W), in C order.

    Reference: engine.reference.shape.flatten_forward / flatten_backward.
    Shapes: x (N, *s) -> out (N, prod(s))
    """

    type_name = "Flatten"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$(N, C, H, W) \rightarrow (N, C \cdot H \cdot W)$",
    )
    family = "Reshape"

    def to_torch(self, in_shape):
        return TorchBlock("nn.Flatten()", "{m}({0})")

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._cache)


class Reshape(Layer):
    """Reshapes each sample to ``shape`` (explicit sizes, no -1, so the canvas can show them).

    Reference: engine.reference.shape.reshape_forward / reshape_backward.
    Shapes: x (N, *s) -> out (N, *shape) with prod(shape) == prod(s)
    """

    type_name = "Reshape"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$(N, s_1, \ldots, s_k) \rightarrow (N, \mathrm{shape})$, $\prod s = \prod "
        r"\mathrm{shape}$",
    )
    family = "Reshape"
    options = {"shape": Opt("shape", doc="target shape of one sample")}

    @classmethod
    def summary(cls, cfg):
        return "to " + shape_text(cfg.get("shape"))

    def to_torch(self, in_shape):
        dims = ", ".join(str(int(d)) for d in self.config["shape"])
        return TorchBlock(f"Reshape({dims})", "{m}({0})", {"Reshape": TORCH_RESHAPE})

    def output_shape(self, in_shape):
        target = tuple(self.config["shape"])
        if int(np.prod(target)) != int(np.prod(in_shape)):
            raise ShapeError(
                f"cannot reshape {tuple(in_shape)} ({int(np.prod(in_shape))} values) to "
                f"{target} ({int(np.prod(target))} values): the counts must match",
                block=self.name,
            )
        return target

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape
        return x.reshape((x.shape[0], *self.config["shape"]))

    def backward(self, dout):
        return dout.reshape(self._cache)


class Transpose(Layer):
    """Swaps the last two axes of each sample: a sequence of word vectors (T, E) from an
    Embedding becomes E channels of length T, (E, T), the layout Conv1D reads (PyTorch's
    ``x.transpose(1, 2)``, the text CNN's usual step).

    Reference: engine.reference.shape.transpose_forward / transpose_backward.
    Shapes: x (N, A, B) -> out (N, B, A)
    """

    type_name = "Transpose"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[n, b, a] = x[n, a, b]$",
    )
    family = "Reshape"

    @classmethod
    def summary(cls, cfg):
        return "swap last two axes"

    def to_torch(self, in_shape):
        return TorchBlock(None, "{0}.transpose(1, 2)")

    def output_shape(self, in_shape):
        if len(in_shape) != 2:
            raise ShapeError(
                f"Transpose swaps the two axes of a sequence (T, features), got "
                f"{shape_text(in_shape)}",
                block=self.name,
            )
        return int(in_shape[1]), int(in_shape[0])

    def forward(self, x, training=False):
        self.check_input(x)
        return np.ascontiguousarray(x.transpose(0, 2, 1))

    def backward(self, dout):
        return np.ascontiguousarray(dout.transpose(0, 2, 1))


class Slice(Layer):
    """Steps ``start`` .. ``stop - 1`` of each sample's first axis (the time axis of a sequence):
    PyTorch's ``x[:, start:stop]``, Keras's Cropping1D.

    Reference: engine.reference.shape.slice_forward / slice_backward.
    Shapes: x (N, T, *s) -> out (N, stop - start, *s). One Input may so carry two sequences
    side by side, e.g. a seq2seq source and the decoder's shifted target (teacher forcing).
    """

    type_name = "Slice"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[n, t] = x[n, \mathrm{start} + t], \quad 0 \leq t < \mathrm{stop} - "
        r"\mathrm{start}$",
    )
    family = "Reshape"
    options = {
        "start": Opt("int", default=0, min=0, max=1 << 30, doc="first step kept"),
        "stop": Opt("int", min=1, max=1 << 30, doc="the step after the last one kept"),
    }
    starter = {"start": 0, "stop": 1}

    @classmethod
    def summary(cls, cfg):
        return f"[{cfg.get('start')}:{cfg.get('stop')}]"

    def check_settings(self):
        if self.config["stop"] <= self.config["start"]:
            raise ConfigError(
                f"'stop' ({self.config['stop']}) must be greater than 'start' "
                f"({self.config['start']})",
                block=self.name,
            )

    def to_torch(self, in_shape):
        return TorchBlock(None, f"{{0}}[:, {self.config['start']}:{self.config['stop']}]")

    def output_shape(self, in_shape):
        stop = self.config["stop"]
        if len(in_shape) < 1 or stop > int(in_shape[0]):
            have = int(in_shape[0]) if len(in_shape) else 0
            raise ShapeError(
                f"cannot keep steps {self.config['start']}..{stop - 1} of an input with "
                f"{have} (shape {tuple(in_shape)}): lower 'stop' to at most {have}",
                block=self.name,
            )
        return (stop - self.config["start"], *(int(d) for d in in_shape[1:]))

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x.shape, x.dtype
        return x[:, self.config["start"] : self.config["stop"]].copy()

    def backward(self, dout):
        shape, dtype = self._cache
        dx = np.zeros(shape, dout.dtype if np.issubdtype(dtype, np.integer) else dtype)
        dx[:, self.config["start"] : self.config["stop"]] = dout
        return dx
