"""ConvTranspose2D: the input-gradient of a convolution used as a layer (decoders)."""

from __future__ import annotations

import numpy as np

from engine import conv_plan
from engine import functional as F
from engine.errors import ConfigError, ShapeError
from engine.layers.base import TorchBlock
from engine.layers.conv import MAX_KERNEL, _Conv, _shape_text, _torch_args
from engine.settings import Opt


class ConvTranspose2D(_Conv):
    """Transposed convolution (lecture 001's "transpose convolution" in decoders; PyTorch's
    ConvTranspose2d): the input-gradient of a Conv2D with the same weight, used as a layer.

    Reference: engine.reference.conv.conv_transpose2d_forward / conv_transpose2d_backward.
    Shapes: x (N, C, H, W) -> out (N, filters, Ho, Wo), Ho = (H - 1) * S - 2P + kh;
    weight (C, filters, kh, kw) (PyTorch's layout: input channels first), bias (filters,)

    Lecture 001's rule: it equals a stride-1 convolution, with the kernel flipped, of the input
    with S - 1 zeros inserted between its pixels and kh - 1 - P zeros padded around it.
    """

    type_name = "ConvTranspose2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[f, y, z] = b_f + \sum_{c, i, j, u, v:\ S i + u - P = y,\ S j + v - P = "
        r"z} w[c, f, u, v]\; x[c, i, j]$",
        r"$H_o = (H - 1)\, S - 2P + k_h$",
    )
    options = {
        "filters": Opt("int", min=1, max=100_000, doc="number of output maps"),
        "kernel_size": Opt("size", doc="kernel height and width: k or [kh, kw]"),
        "stride": Opt("size", default=1, doc="spacing of the input pixels in the output"),
        "padding": Opt(
            "padding",
            default=0,
            doc="rows/columns cropped from each side of the output: p or [ph, pw]",
        ),
        "bias": Opt("bool", default=True, doc="add a learned bias per output map"),
    }

    starter = {"filters": 8, "kernel_size": 2, "stride": 2}
    grows_input = True

    def to_torch(self, in_shape):
        args = ", ".join(_torch_args(self.config, int(in_shape[0])))
        return TorchBlock(f"nn.ConvTranspose2d({args})", "{m}({0})")

    def check_settings(self) -> None:
        pad = self.config["padding"]
        if isinstance(pad, str):
            raise ConfigError(
                f"'padding' of ConvTranspose2D must be a number or [ph, pw], not {pad!r} "
                "(0 gives the full output (H - 1) * S + K)",
                block=self.name,
            )
        if max(F.pair(self.config["kernel_size"])) > MAX_KERNEL:
            raise ConfigError(f"'kernel_size' must be at most {MAX_KERNEL}", block=self.name)

    def output_shape(self, in_shape):
        c, h, w = self._check_ndim(in_shape, 3, "an image (channels, height, width)")
        kh, kw = F.pair(self.config["kernel_size"])
        sh, sw = F.pair(self.config["stride"])
        ph, pw = F.pair(self.config["padding"])
        ho = F.conv_transpose_output_size(h, kh, sh, ph)
        wo = F.conv_transpose_output_size(w, kw, sw, pw)
        if ho < 1 or wo < 1:
            raise ShapeError(
                f"output would be {ho}x{wo} for input {_shape_text(in_shape)}: (H - 1) * S - 2P "
                "+ K must be at least 1; use less padding, or a bigger kernel or stride",
                block=self.name,
            )
        return self.config["filters"], ho, wo

    def param_shapes(self, in_shape):
        kh, kw = F.pair(self.config["kernel_size"])
        return self._bias_shape({"weight": (int(in_shape[0]), self.config["filters"], kh, kw)})

    def forward(self, x, training=False):
        self.check_input(x)
        w = self.params["weight"]
        plan = self._plan(
            x,
            lambda: F.conv_transpose2d_plan(
                x.shape, w.shape, self.config["stride"], self.config["padding"], x.dtype
            ),
        )
        self._cache = plan
        return F.conv_transpose_forward(plan, x, w, self.params.get("bias"))

    @conv_plan.plan_threads
    def backward(self, dout):
        # The plan's convolution maps this layer's output space back to its input space, so
        # dx = conv2d(dout, W), and dW = sum over samples of x (that convolution's output
        # gradient) @ cols(dout)^T.
        plan = self._cache
        w = self.params["weight"]
        wm = w.reshape(plan.F, plan.K)
        plan.load_input(dout)
        dw = np.zeros_like(wm)
        dx = np.empty(plan.out_shape, dout.dtype) if self.needs_input_grad else None
        for n0, n1 in plan.chunks:
            cols = plan.columns(n0, n1)
            dw += np.matmul(plan.output_grad(n0, n1), cols.transpose(0, 2, 1)).sum(axis=0)
            if dx is not None:  # dx = W @ cols, without the extra columns of wide rows
                res = plan.product(wm, cols).reshape(n1 - n0, plan.F, plan.OH, plan.OWx)
                np.copyto(dx[n0:n1], res[..., : plan.OW])
        self.grads["weight"] = dw.reshape(w.shape)
        if "bias" in self.params:
            self.grads["bias"] = F.channel_sum(dout)
        return dx
