"""Convolutions: Conv2D (with LeNet-5's connection table and groups); what it shares (_Conv)
also runs Conv1D (engine/layers/conv1d.py) and ConvTranspose2D (conv_transpose.py).

The same sums one output value at a time, as the lectures write them: engine/reference/conv.py.

Forward passes run in engine.conv_plan (im2col + one matrix product per chunk of the batch);
the backward passes below use the same columns:

    out = W @ cols               (W: weight.reshape(F, C*kh*kw))
    dW  = dout @ cols^T          (every patch times the gradient of the output it made)
    db  = sum of dout over batch and positions
    dx  = col2im(W^T @ dout)     (each patch's gradient added back where the patch came from)

At stride 1 the same sums can run "folded" (engine.conv_plan.Conv2dPlan): smaller columns,
and kh additions instead of col2im's kh*kw; that is chosen when it means less data to move.
Wide 3x3 stride-1 layers run by Winograd (engine/winograd.py) where that measured faster:
forward and dx by F(2x2, 3x3) (16 multiplies per 2x2 outputs instead of 36), dW by F(3x3, 2x2)
on the same input transform.

Weights use PyTorch's layouts and Keras's default start (Glorot/Xavier uniform weights, zero
bias), the same rule as Dense, so a user comparing initialisers sees one default everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import conv_plan, winograd
from engine import functional as F
from engine.errors import ConfigError, ShapeError
from engine.layers.base import Layer, TorchBlock, pad_text, size_text, stride_text, torch_size
from engine.settings import Opt

MAX_KERNEL = 1024


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


TORCH_MASKED_CONV = '''
class MaskedConv2d(nn.Conv2d):
    """Conv2d whose output map o reads only the input maps connections[o] (LeNet-5's C3 table):
    the weight is multiplied by a fixed 0/1 mask, so weights outside it stay zero."""

    def __init__(self, in_channels, out_channels, kernel_size, connections, **kw):
        super().__init__(in_channels, out_channels, kernel_size, **kw)
        mask = torch.zeros(out_channels, in_channels, 1, 1)
        for o, maps in enumerate(connections):
            mask[o, list(maps)] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.mask, self.bias)
'''


def _torch_args(cfg: dict, in_channels: int) -> list[str]:
    """nn.Conv*d's arguments for ``cfg`` (defaults left out)."""
    args = [str(in_channels), str(cfg["filters"]), torch_size(cfg["kernel_size"])]
    if F.pair(cfg["stride"]) != (1, 1):
        args.append(f"stride={torch_size(cfg['stride'])}")
    pad = cfg["padding"]
    if pad == "same":
        args.append('padding="same"')  # K - 1 in total, the odd one at the end, as the engine
    elif pad != "valid" and F.pair(pad) != (0, 0):
        args.append(f"padding={torch_size(pad)}")
    if cfg.get("groups", 1) != 1:
        args.append(f"groups={cfg['groups']}")
    if not cfg["bias"]:
        args.append("bias=False")
    return args


def _torch_even_same(cfg: dict, in_channels: int, kernel: tuple[int, ...]):
    """(constructor args, forward) for padding "same": with an even kernel the engine (and
    PyTorch) pads K - 1, the odd row/column at the end; written as an explicit F.pad, which
    PyTorch otherwise does with a warning and an extra copy."""
    args = _torch_args(cfg, in_channels)
    if all(k % 2 for k in kernel) or cfg["padding"] != "same":
        return args, "{m}({0})"
    args = [a for a in args if a != 'padding="same"']
    pads: list[int] = []
    for k in reversed(kernel):  # F.pad lists the last axis first: (left, right, top, bottom)
        pads += [(k - 1) // 2, k - 1 - (k - 1) // 2]
    return args, f"{{m}}(F.pad({{0}}, {tuple(pads)}))"


class _Conv(Layer):
    """What the convolutions share: one plan (geometry + scratch arrays) per input shape, and the
    forward/backward of a 2-D cross-correlation on (N, C, H, W) arrays."""

    family = "Convolution"
    has_weights = True
    shows_filters = True
    starter = {"filters": 8, "kernel_size": 3}

    kernel_text = staticmethod(size_text)  # in the summary: 5 -> '5x5'

    @classmethod
    def summary(cls, cfg):
        ks = cls.kernel_text(cfg.get("kernel_size"))
        text = f"{cfg.get('filters')}@{ks} {stride_text(cfg.get('stride', 1))}"
        text += f" {pad_text(cfg.get('padding', 0))}"
        if isinstance(cfg.get("groups"), int) and cfg["groups"] > 1:
            text += f" g{cfg['groups']}"
        return text + (" table" if cfg.get("connections") else "")

    def __init__(self, name: str | None = None, **config: Any):
        super().__init__(name, **config)
        # False skips dx (backward then returns None): a block fed straight by the data needs
        # no input gradient, as PyTorch skips it for inputs that do not require grad.
        self.needs_input_grad = True
        # False skips dW (its grads["weight"] keeps its old value): explanations that only go
        # back to the input (saliency, SmoothGrad; Model.backward(weights=False)).
        self.needs_weight_grad = True
        self._plans: dict[tuple, F.Conv2dPlan] = {}
        self._weight_mask: np.ndarray | None = None
        self._winos: dict[tuple, winograd.WinogradConv] = {}

    def _plan(self, x: np.ndarray, make) -> F.Conv2dPlan:
        key = (x.shape, x.dtype)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 4:  # a few batch sizes (train, last batch, validation)
                self._plans.clear()
            plan = self._plans[key] = make()
        return plan

    def _check_ndim(self, in_shape: Any, ndim: int, what: str) -> tuple[int, ...]:
        if len(in_shape) != ndim:
            raise ShapeError(
                f"{self.type_name} expects {what}, got {_shape_text(in_shape)}", block=self.name
            )
        return tuple(int(d) for d in in_shape)

    def _check_kernel(self, in_shape: Any, size: int, kernel: int, pad: int, axis: str) -> None:
        if kernel > size + pad:
            raise ShapeError(
                f"kernel {axis} {kernel} is larger than the padded input {axis} {size + pad} "
                f"(input {_shape_text(in_shape)}): use padding or a smaller kernel",
                block=self.name,
            )

    def _bias_shape(self, shapes: dict) -> dict:
        if self.config["bias"]:
            shapes["bias"] = (self.config["filters"],)
        return shapes

    def _weight(self) -> np.ndarray:
        w = self.params["weight"]
        return w if self._weight_mask is None else w * self._weight_mask.astype(w.dtype)

    def _conv_forward(
        self,
        x4: np.ndarray,
        w4: np.ndarray,
        stride: tuple[int, int],
        pad: F.Pad4,
        training: bool = False,
    ) -> np.ndarray:
        """The convolution of x4 with w4, one plan per group of ``groups`` (Conv2D's setting;
        1 elsewhere): group g's filters read only its C / groups input maps, so each group is
        a convolution of its own (out = concat over g of conv(x[group g], w[group g]))."""
        groups = self.config.get("groups", 1)
        n, c, h, w = x4.shape
        cg, fg = c // groups, w4.shape[0] // groups
        plans = self._plan(
            x4,
            lambda: [
                F.Conv2dPlan((n, cg, h, w), (fg, *w4.shape[1:]), stride, pad, x4.dtype)
                for _ in range(groups)
            ],
        )
        b = self.params.get("bias")
        wino = winograd.choose(self._winos, x4, w4, stride, pad) if groups == 1 else None
        # the Winograd weight gradient reads x's transform, kept by a training pass, or x
        self._cache = (plans, w4, wino, x4 if wino is not None else None)
        if wino is not None:
            return wino.forward(x4, w4, b, training=training)
        if groups == 1:
            return F.conv2d(x4, w4, b, plan=plans[0])
        out = np.empty((n, w4.shape[0], plans[0].OH, plans[0].OW), x4.dtype)
        for g, plan in enumerate(plans):
            f = slice(g * fg, (g + 1) * fg)
            bg = None if b is None else b[f]
            out[:, f] = F.conv2d(x4[:, g * cg : (g + 1) * cg], w4[f], bg, plan=plan)
        return out

    @property
    def product_macs(self) -> int:
        """Multiply-adds of the largest per-sample product of the last forward pass (BLAS's
        threads follow it: engine.blas_threads)."""
        cache = self._cache
        plans = [cache] if isinstance(cache, F.Conv2dPlan) else cache[0]
        return max(plan.product_macs for plan in plans)

    @conv_plan.plan_threads
    def _conv_backward(self, dout4: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(dW in the 4-D layout or None, dx or None); sets the bias gradient. Grouped: each
        group's sums over its own filters and input maps, put side by side."""
        plans, w4, wino, x4 = self._cache
        if wino is not None:
            dw = wino.weight_grad(x4, dout4) if self.needs_weight_grad else None
            db = F.channel_sum(dout4) if "bias" in self.params else None
            dx = wino.input_grad(dout4, w4) if self.needs_input_grad else None
        elif len(plans) == 1:
            dw, db, dx = self._group_backward(plans[0], w4, dout4)
        else:
            fg = w4.shape[0] // len(plans)
            parts = [
                self._group_backward(
                    plan, w4[g * fg : (g + 1) * fg], dout4[:, g * fg : (g + 1) * fg]
                )
                for g, plan in enumerate(plans)
            ]
            dw = None if parts[0][0] is None else np.concatenate([p[0] for p in parts])
            db = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
            dx = None if parts[0][2] is None else np.concatenate([p[2] for p in parts], axis=1)
        if db is not None:
            self.grads["bias"] = db
        if self._weight_mask is not None and dw is not None:
            dw *= self._weight_mask.astype(dw.dtype)
        return dw, dx

    def _group_backward(self, plan, w4, dout4, input_grad=True):
        """(dW or None, db or None, dx or None) of one plan's convolution; dx only if
        ``input_grad`` and the layer needs it, dW only if it needs that."""
        has_bias = "bias" in self.params
        want_dx, want_dw = input_grad and self.needs_input_grad, self.needs_weight_grad
        long_rows = not plan.wide or plan.OW >= conv_plan.WIDE_FORWARD_BELOW
        if not want_dx and not plan.folded and long_rows:
            # dout summed over (N, OH, OW) is the bias gradient
            return (
                self._weight_grad(plan, w4, dout4) if want_dw else None,
                F.channel_sum(dout4) if has_bias else None,
                None,
            )
        plan.load_output_grad(dout4)
        dxpad = plan.new_input_grad() if want_dx else None
        if plan.folded or (plan.wide and dxpad is not None):
            dw = self._backward_folded(plan, w4, dxpad, want_dw)
        else:
            dw = self._backward_im2col(plan, w4, dxpad, want_dw)
        db = plan.output_grad_sum() if has_bias else None
        return dw, db, (None if dxpad is None else plan.input_grad(dxpad))

    @staticmethod
    def _weight_grad(plan, w4, dout4):
        # dW alone (no dx: the first layer): dout @ cols^T with the columns of the valid
        # positions only, so dout is used as it is, without the copy into the wide layout.
        # Used for long rows only (short runs of OW copy slowly, see WIDE_FORWARD_BELOW).
        d = dout4.reshape(plan.N, plan.F, plan.OH * plan.OW)
        dw = np.zeros((plan.F, plan.K), w4.dtype)
        for n0, n1 in plan.chunks:
            cols = plan.columns(n0, n1, wide=False)
            dw += np.matmul(d[n0:n1], cols.transpose(0, 2, 1)).sum(axis=0)
        return dw.reshape(w4.shape)

    @staticmethod
    def _backward_im2col(plan, w4, dxpad, want_dw=True):
        # dW = sum over samples of dout @ cols^T; dx = col2im(W^T @ dout), chunk by chunk (the
        # columns are rebuilt per chunk, which keeps them in cache).
        wm = w4.reshape(plan.F, plan.K)
        dw = np.zeros_like(wm) if want_dw else None
        for n0, n1 in plan.chunks:
            if dw is not None:
                g = plan.output_grad(n0, n1)
                dw += np.matmul(g, plan.columns(n0, n1).transpose(0, 2, 1)).sum(axis=0)
            if dxpad is not None:
                plan.add_columns(plan.input_grad_columns(wm, n0, n1), n0, n1, dxpad)
        return None if dw is None else dw.reshape(w4.shape)

    @staticmethod
    def _backward_folded(plan, w4, dxpad, want_dw=True):
        # The same sums, regrouped (engine.conv_plan.Conv2dPlan, "stride 1, folded"): the input
        # shifted by kernel rows X, the output gradient shifted by kernel columns G, then
        # dW = sum over samples of G @ X^T, and dx = W' @ G added at each kernel row's offset.
        # A chunk's samples lie side by side in G and X, so each is one product (the sum over
        # samples inside it, X^T read transposed by BLAS: no transposed copy).
        wf = plan.fold_weight(w4)
        dwt = np.zeros((plan.F * plan.kw, plan.C * plan.kh), w4.dtype) if want_dw else None
        for n0, n1 in plan.fold_chunks:
            g = plan.shifted_grads(n0, n1)
            if dwt is not None:
                dwt += g @ plan.shifted_inputs_cm(n0, n1).T
            if dxpad is not None:
                plan.add_row_shifted(plan.input_grad_rows(wf, g), n0, n1, dxpad)
        return None if dwt is None else plan.unfold_weight_grad(dwt)


class Conv2D(_Conv):
    """2-D convolution (cross-correlation, as PyTorch's Conv2d and the lectures' examples).

    Reference: engine.reference.conv.conv2d_forward / conv2d_backward.
    Shapes: x (N, C, H, W) -> out (N, filters, OH, OW), OH = floor((H + 2P - kh) / S) + 1;
    weight (filters, C, kh, kw), bias (filters,)

    ``connections`` (LeNet-5's C3 table): for each output map, the input maps it reads. Weights
    outside the table are held at zero (masked after init, in forward and in the gradient) and
    are not counted as parameters. padding "same" (stride 1 only) pads K - 1 in total, the odd
    one at the end for an even kernel, as PyTorch does.

    ``groups`` (PyTorch's Conv2d groups; the 2012 AlexNet's two towers are groups=2): the input
    maps and the filters are cut into that many groups, and group g's filters read only group
    g's C / groups maps: weight (filters, C / groups, kh, kw), 1 / groups of the weights and
    multiply-adds. groups = C = filters is a depthwise convolution (one filter per map).
    """

    type_name = "Conv2D"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[f, i, j] = b_f + \sum_{c} \sum_{u=0}^{k_h - 1} \sum_{v=0}^{k_w - 1} "
        r"w[f, c, u, v]\; x[c, S i + u - P, S j + v - P]$",
        r"$O_H = \left\lfloor \frac{H + 2P - k_h}{S} \right\rfloor + 1$",
    )
    options = {
        "filters": Opt("int", min=1, max=100_000, doc="number of output maps (kernels)"),
        "kernel_size": Opt("size", doc="kernel height and width: k or [kh, kw]"),
        "stride": Opt("size", default=1, doc="step between windows: s or [sh, sw]"),
        "padding": Opt(
            "padding", default=0, doc='zeros added on each side: p, [ph, pw], "valid" (0) or "same"'
        ),
        "bias": Opt("bool", default=True, doc="add a learned bias per output map"),
        "connections": Opt(
            "connections",
            default=None,
            nullable=True,
            doc="for each output map, the input maps it reads (LeNet-5 C3); empty: all",
        ),
        "groups": Opt(
            "int",
            default=1,
            min=1,
            max=100_000,
            doc="filters and input maps cut into groups; each group reads only its own maps",
        ),
    }

    def check_settings(self) -> None:
        groups = self.config["groups"]
        if self.config["filters"] % groups:
            raise ConfigError(
                f"'filters' ({self.config['filters']}) must be a multiple of 'groups' ({groups}): "
                "each group makes filters / groups maps",
                block=self.name,
            )
        if groups > 1 and self.config["connections"] is not None:
            raise ConfigError(
                "'groups' and 'connections' both choose the maps a filter reads: use one of them",
                block=self.name,
            )
        kh, kw = F.pair(self.config["kernel_size"])
        if max(kh, kw) > MAX_KERNEL:
            raise ConfigError(f"'kernel_size' must be at most {MAX_KERNEL}", block=self.name)
        if self.config["padding"] == "same" and F.pair(self.config["stride"]) != (1, 1):
            raise ConfigError(
                'padding "same" keeps the size only at stride 1: set stride 1, '
                "or give the padding as a number",
                block=self.name,
            )
        table = self.config["connections"]
        if table is None:
            return
        if len(table) != self.config["filters"]:
            raise ConfigError(
                f"'connections' has {len(table)} rows but there are {self.config['filters']} "
                "filters: give one list of input maps per filter",
                block=self.name,
            )
        for f, row in enumerate(table):
            if len(set(row)) != len(row):
                raise ConfigError(
                    f"'connections' row {f} lists an input map twice: {row}", block=self.name
                )

    def _pad(self) -> F.Pad4:
        k = F.pair(self.config["kernel_size"])
        return F.padding4(self.config["padding"], k, F.pair(self.config["stride"]))

    def output_shape(self, in_shape):
        c, h, w = self._check_ndim(
            in_shape,
            3,
            "an image (channels, height, width): give Input a shape [C, H, W], or Reshape to one",
        )
        kh, kw = F.pair(self.config["kernel_size"])
        sh, sw = F.pair(self.config["stride"])
        pt, pb, pl, pr = self._pad()
        self._check_kernel(in_shape, h, kh, pt + pb, "height")
        self._check_kernel(in_shape, w, kw, pl + pr, "width")
        groups = self.config["groups"]
        if c % groups:
            raise ShapeError(
                f"the input has {c} maps, which do not split into {groups} groups "
                f"(input {_shape_text(in_shape)}): make 'groups' divide the input's channels",
                block=self.name,
            )
        table = self.config["connections"]
        bad = sorted({i for row in table or [] for i in row if i >= c})
        if bad:
            raise ConfigError(
                f"'connections' reads input map {bad[0]} but the input has only "
                f"{c} maps (numbered 0 to {c - 1})",
                block=self.name,
            )
        return (
            self.config["filters"],
            F.conv_output_size(h, kh, sh, pt, pb),
            F.conv_output_size(w, kw, sw, pl, pr),
        )

    def kept_scratch_bytes(self, in_shape, training):
        if not training or self.config["groups"] != 1:
            return 0
        c, h, w = in_shape
        f = self.config["filters"]
        stride, pad = F.pair(self.config["stride"]), self._pad()
        if not winograd.applies((f, c, *F.pair(self.config["kernel_size"])), stride, pad):
            return 0
        return winograd.kept_bytes_bound(c, f, h, w, pad)

    def param_shapes(self, in_shape):
        kh, kw = F.pair(self.config["kernel_size"])
        per_group = int(in_shape[0]) // self.config["groups"]
        return self._bias_shape({"weight": (self.config["filters"], per_group, kh, kw)})

    def param_count(self, in_shape):
        table = self.config["connections"]
        if table is None:
            return super().param_count(in_shape)
        kh, kw = F.pair(self.config["kernel_size"])
        bias = self.config["filters"] if self.config["bias"] else 0
        return sum(len(row) for row in table) * kh * kw + bias

    def init_rule(self, key, shape):
        method, settings = super().init_rule(key, shape)
        table = self.config["connections"]
        if key == "weight" and table is not None:
            # With a connection table a unit reads only its connected maps: count those in the
            # fans.
            area = int(shape[2]) * int(shape[3])
            links = sum(len(row) for row in table)
            settings = {
                **settings,
                "fan_in": max(1, round(links / int(shape[0]))) * area,
                "fan_out": max(1, round(links / int(shape[1]))) * area,
            }
        return method, settings

    def to_torch(self, in_shape):
        args, forward = _torch_even_same(
            self.config, int(in_shape[0]), F.pair(self.config["kernel_size"])
        )
        table = self.config["connections"]
        if table is None:
            return TorchBlock(f"nn.Conv2d({', '.join(args)})", forward)
        return TorchBlock(
            ("MaskedConv2d", [*args, table]),
            forward,
            {"MaskedConv2d": TORCH_MASKED_CONV},
            init_after=["{m}.weight.mul_({m}.mask)"],
        )

    def after_init(self, rng):
        table = self.config["connections"]
        if table is None:
            self._weight_mask = None
            return
        mask = np.zeros((self.config["filters"], int(self.in_shape[0]), 1, 1), np.float32)
        for f, row in enumerate(table):
            mask[f, row] = 1.0
        self._weight_mask = mask
        self.params["weight"] *= mask

    def forward(self, x, training=False):
        self.check_input(x)
        stride, pad = F.pair(self.config["stride"]), self._pad()
        return self._conv_forward(x, self._weight(), stride, pad, training)

    # What Model.predict may run inside this block's pass over its output (engine.inference).
    epilogue = ("affine", "relu")

    def fused_forward(
        self,
        x: np.ndarray,
        affine: tuple[np.ndarray, np.ndarray] | None = None,
        relu: bool = False,
    ) -> np.ndarray:
        """Inference only (engine.inference: no backward pass follows, none is prepared):
        relu(conv(x) * scale + shift), ``affine`` = (scale, shift) per filter (the BatchNorm
        after this block), ``relu`` the ReLU after that, done to each chunk of the output while
        it is in cache (engine.conv_plan.epilogue). The scale multiplies the weights where they
        are fewer values than the output (C*kh*kw <= N*OH*OW: one image's stem and first
        stage), else the output; (conv + b) * scale + shift = conv * scale + (b * scale +
        shift) either way."""
        self.check_input(x)
        w, b = self._weight(), self.params.get("bias")
        stride, pad = F.pair(self.config["stride"]), self._pad()
        scale, shift = (None, None) if affine is None else affine
        if self.config["groups"] != 1:  # the groups' plans as forward, then the epilogue
            out = self._conv_forward(x, w, stride, pad)
            conv_plan.epilogue(out, scale, shift, relu)
            return out
        (plan,) = self._plan(x, lambda: [F.Conv2dPlan(x.shape, w.shape, stride, pad, x.dtype)])
        if scale is not None:
            b = shift if b is None else shift + b * scale
            if w[0].size <= plan.N * plan.OH * plan.OW:
                w, scale = w * scale.reshape(-1, 1, 1, 1), None
        wino = winograd.choose(self._winos, x, w, stride, pad)
        if wino is not None:
            return wino.forward(x, w, b, scale, relu)
        return plan.forward(x, w, b, scale, relu)

    def backward(self, dout):
        dw, dx = self._conv_backward(dout)
        if dw is not None:
            self.grads["weight"] = dw
        return dx
