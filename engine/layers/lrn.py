"""LocalResponseNorm: the 2012 AlexNet's "brightness normalisation" across neighbouring maps."""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock, code
from engine.settings import Opt


def channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """s[:, c] = sum of a[:, c'] for c - before <= c' <= c + after (maps outside count 0):
    one cumulative sum along the channel axis instead of size additions."""
    n, c = a.shape[:2]
    csum = np.zeros((n, c + 1, *a.shape[2:]), a.dtype)
    np.cumsum(a, axis=1, out=csum[:, 1:])
    hi = np.minimum(np.arange(c) + after + 1, c)
    lo = np.maximum(np.arange(c) - before, 0)
    return csum[:, hi] - csum[:, lo]


class LocalResponseNorm(Layer):
    """Local response normalisation (Krizhevsky, Sutskever & Hinton 2012, section 3.3; PyTorch's
    LocalResponseNorm): each value is divided by a power of the summed squares of the values at
    the same position in ``size`` neighbouring maps,

        out[c] = x[c] / (k + alpha / size * sum_{c'} x[c']^2) ^ beta,
        c' from c - size // 2 to c + (size - 1) // 2 (maps past either end count 0).

    Note alpha is divided by ``size``, as PyTorch does; the paper writes alpha alone (its
    alpha = 1e-4 with n = 5 is alpha = 5e-4 here). Backward, with D[c] = k + alpha/size * S[c]:
        dx[j] = dout[j] D[j]^-beta
                - 2 alpha beta / size * x[j] * sum_{c: j in c's window} dout[c] x[c] D[c]^(-beta-1)

    Reference: engine.reference.norm.lrn_forward / lrn_backward.
    Shapes: x (N, C, H, W) -> same; no parameters.
    """

    type_name = "LocalResponseNorm"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}_c = x_c \left/ \left(k + \frac{\alpha}{n} "
        r"\sum_{c' = c - \lfloor n/2 \rfloor}^{c + \lfloor (n-1)/2 \rfloor} x_{c'}^2 "
        r"\right)^{\beta} \right.$ ($n$ = size)",
    )
    family = "Normalisation and regularisation"
    options = {
        "size": Opt("int", default=5, min=1, max=10_000, doc="number of neighbouring maps summed"),
        "alpha": Opt("float", default=1e-4, min=0.0, doc="scale of the sum (divided by size)"),
        "beta": Opt("float", default=0.75, min=0.0, doc="exponent of the divisor"),
        "k": Opt("float", default=1.0, min=0.0, min_exclusive=True, doc="added to the sum"),
    }
    starter = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}

    @classmethod
    def summary(cls, cfg):
        return f"n{cfg.get('size')} a{cfg.get('alpha', 1e-4):g} b{cfg.get('beta', 0.75):g}"

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(
                f"LocalResponseNorm normalises across the maps of an image (C, H, W), got "
                f"{tuple(in_shape)}",
                block=self.name,
            )
        return tuple(in_shape)

    def to_torch(self, in_shape):
        cfg = self.config
        args = f"{cfg['size']}, alpha={code(float(cfg['alpha']))}"
        args += f", beta={code(float(cfg['beta']))}, k={code(float(cfg['k']))}"
        return TorchBlock(f"nn.LocalResponseNorm({args})", "{m}({0})")

    def macs(self, in_shape, out_shape):
        return 0

    def _window(self) -> tuple[int, int]:
        size = self.config["size"]
        return size // 2, (size - 1) // 2

    def forward(self, x, training=False):
        self.check_input(x)
        cfg = self.config
        before, after = self._window()
        base = channel_window_sum(x * x, before, after)
        base *= cfg["alpha"] / cfg["size"]
        base += cfg["k"]
        scale = base ** -cfg["beta"]  # D^-beta
        self._cache = (x, base, scale)
        return x * scale

    def backward(self, dout):
        x, base, scale = self._cache
        cfg = self.config
        before, after = self._window()
        # dout[c] x[c] D[c]^(-beta-1), summed over the windows holding j: the window mirrored
        t = channel_window_sum(dout * x * scale / base, after, before)
        return dout * scale - (2 * cfg["alpha"] * cfg["beta"] / cfg["size"]) * x * t
