"""Conv1D: a 1-D convolution over sequences, run as a 2-D convolution of height 1 on the
machinery Conv2D's module shares (_Conv, engine/layers/conv.py).

The same sums one output value at a time, as the lectures write them: engine/reference/conv.py.
"""

from __future__ import annotations

from engine import functional as F
from engine.errors import ConfigError
from engine.layers.base import TorchBlock
from engine.layers.conv import MAX_KERNEL, _Conv, _torch_even_same
from engine.settings import SIZE_LIMIT, Opt


class Conv1D(_Conv):
    """1-D convolution over sequences laid out channels first, as PyTorch's Conv1d (run as a
    2-D convolution of height 1).

    Reference: engine.reference.conv.conv1d_forward / conv1d_backward.
    Shapes: x (N, C, L) -> out (N, filters, OL), OL = floor((L + 2P - k) / S) + 1;
    weight (filters, C, k), bias (filters,)
    """

    type_name = "Conv1D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[f, i] = b_f + \sum_{c} \sum_{u=0}^{k - 1} w[f, c, u]\; x[c, S i + u - P]$",
        r"$O_L = \left\lfloor \frac{L + 2P - k}{S} \right\rfloor + 1$",
    )
    kernel_text = staticmethod(str)  # 5 -> '5'
    options = {
        "filters": Opt("int", min=1, max=100_000, doc="number of output channels (kernels)"),
        "kernel_size": Opt("int", min=1, max=MAX_KERNEL, doc="kernel length"),
        "stride": Opt("int", default=1, min=1, max=SIZE_LIMIT, doc="step between windows"),
        "padding": Opt(
            "padding", default=0, doc='zeros added at each end: p, "valid" (0) or "same"'
        ),
        "bias": Opt("bool", default=True, doc="add a learned bias per output channel"),
    }

    def check_settings(self) -> None:
        pad = self.config["padding"]
        if isinstance(pad, list):
            raise ConfigError(
                f'\'padding\' of Conv1D is one number, "same" or "valid"; got {pad}',
                block=self.name,
            )
        if pad == "same" and self.config["stride"] != 1:
            raise ConfigError(
                'padding "same" keeps the length only at stride 1: set stride 1, '
                "or give the padding as a number",
                block=self.name,
            )

    def to_torch(self, in_shape):
        kernel = (int(self.config["kernel_size"]),)
        args, forward = _torch_even_same(self.config, int(in_shape[0]), kernel)
        return TorchBlock(f"nn.Conv1d({', '.join(args)})", forward)

    def _pad(self) -> F.Pad4:
        pad = self.config["padding"]
        if pad in ("same", "valid"):
            return F.padding4(pad, (1, self.config["kernel_size"]), (1, self.config["stride"]))
        return 0, 0, pad, pad

    def output_shape(self, in_shape):
        c, length = self._check_ndim(in_shape, 2, "a sequence laid out (channels, length)")
        k, s = self.config["kernel_size"], self.config["stride"]
        _, _, pl, pr = self._pad()
        self._check_kernel(in_shape, length, k, pl + pr, "length")
        return self.config["filters"], F.conv_output_size(length, k, s, pl, pr)

    def param_shapes(self, in_shape):
        k = self.config["kernel_size"]
        return self._bias_shape({"weight": (self.config["filters"], int(in_shape[0]), k)})

    def forward(self, x, training=False):
        self.check_input(x)
        w4 = self.params["weight"][:, :, None, :]
        out = self._conv_forward(x[:, :, None, :], w4, (1, self.config["stride"]), self._pad())
        return out[:, :, 0, :]

    def backward(self, dout):
        dw, dx = self._conv_backward(dout[:, :, None, :])
        if dw is not None:
            self.grads["weight"] = dw[:, :, 0, :]
        return None if dx is None else dx[:, :, 0, :]
