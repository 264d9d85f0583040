"""Each block type as PyTorch: the module that computes what the engine's layer computes.

``torch_block(block)`` returns a ``TorchBlock``: the module's constructor (source), how forward
calls it, the helper classes it needs (source in HELPERS), how the engine's parameter names map
to the module's (``ENGINE_NAMES``) and how the engine initialises each parameter. A block type
missing here raises GraphError naming the block: export never writes a script that cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import GraphError
from engine.export.naming import literal
from engine.export.plan import Block
from engine.layers import LAYER_TYPES
from engine.layers.base import Layer

HELPERS: dict[str, str] = {
    "Reshape": '''
class Reshape(nn.Module):
    """Each sample to ``shape`` (BlockProp's Reshape; the batch axis stays)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
''',
    "SequenceBatchNorm": '''
class SequenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last axis of (N, T, F) sequences (BlockProp normalises features)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)
''',
    "Recurrent": '''
class Recurrent(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU (batch_first, zero initial state) returning what BlockProp's
    block returns: every step (N, T, D*H) with return_sequences, else the final hidden state
    (N, D*H): forward's after the last step, then backward's after the first (PyTorch's h_n)."""

    CELLS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}

    def __init__(self, cell, input_size, hidden_size, return_sequences=False,
                 bidirectional=False, **kw):
        super().__init__()
        self.rnn = self.CELLS[cell](input_size, hidden_size, batch_first=True,
                                    bidirectional=bidirectional, **kw)
        self.return_sequences = return_sequences
        # BlockProp's names -> this module's ("weight_ih" -> "rnn.weight_ih_l0", ...)
        self.ENGINE_NAMES = {f"{w}{s}": f"rnn.{w}_l0{s}" for s in ("", "_reverse")
                             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def forward(self, x):
        out, h = self.rnn(x)
        if self.return_sequences:
            return out
        h_n = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n); h_n (D, N, H)
        return torch.cat(list(h_n), dim=1)
''',
    "MaskedConv2d": '''
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
''',
    "Subsample2D": '''
class Subsample2D(nn.Module):
    """LeNet-5's trainable subsampling: per map, out = weight[c] * sum(window) + bias[c] over
    non-overlapping windows (rows and columns left over are dropped)."""

    def __init__(self, channels, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        s = F.avg_pool2d(x, self.kernel_size, divisor_override=1)  # window sums
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
''',
}


@dataclass
class TorchBlock:
    # constructor source, e.g. "nn.Linear(64, 10)", or (class, [argument sources..., last
    # argument's value]) when it may need several lines; None: no module
    module: str | tuple | None
    forward: str  # expression; "{m}" is the module (self.<attr>), "{0}", "{1}"... the inputs
    helpers: tuple[str, ...] = ()
    names: dict[str, str] = field(default_factory=dict)  # engine name -> module's name
    init_after: list[str] = field(default_factory=list)  # lines, "{m}" = model.<attr>


def _t(shape: Any) -> tuple:
    return tuple(int(d) for d in shape)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _act(block: Block) -> TorchBlock:
    fn = block.full["fn"]
    module = {
        "relu": "nn.ReLU()",
        "sigmoid": "nn.Sigmoid()",
        "tanh": "nn.Tanh()",
        "softmax": "nn.Softmax(dim=-1)",
        "linear": "nn.Identity()",
        "leaky_relu": f"nn.LeakyReLU({literal(float(block.full['negative_slope']))})",
    }[fn]
    return TorchBlock(module, "{m}({0})")


def _dense(block: Block) -> TorchBlock:
    n_in = _t(block.in_shape)[-1]  # on sequences (T, F) the same weights apply at every step
    bias = "" if block.full["bias"] else ", bias=False"
    return TorchBlock(f"nn.Linear({n_in}, {block.full['units']}{bias})", "{m}({0})")


def _concat(block: Block) -> TorchBlock:
    ndim = len(_t(block.in_shape[0]))
    axis = block.full["axis"]
    axis = axis + ndim if axis < 0 else axis
    args = ", ".join(f"{{{i}}}" for i in range(len(block.inputs)))
    return TorchBlock(None, f"torch.cat([{args}], dim={axis + 1})")


def _batchnorm(block: Block) -> TorchBlock:
    s = _t(block.in_shape)
    kw = (
        f"eps={literal(float(block.full['eps']))}, "
        f"momentum={literal(float(block.full['momentum']))}"
    )
    if len(s) == 3:
        return TorchBlock(f"nn.BatchNorm2d({s[0]}, {kw})", "{m}({0})")
    if len(s) == 2:
        return TorchBlock(f"SequenceBatchNorm({s[1]}, {kw})", "{m}({0})", ("SequenceBatchNorm",))
    return TorchBlock(f"nn.BatchNorm1d({s[0]}, {kw})", "{m}({0})")


def _recurrent(block: Block) -> TorchBlock:
    cfg = block.full
    feats = _t(block.in_shape)[1]
    h = cfg["hidden_size"]
    args = [literal(block.type), str(feats), str(h)]
    if cfg["return_sequences"]:
        args.append("return_sequences=True")
    if cfg["bidirectional"]:
        args.append("bidirectional=True")
    if block.type == "RNN" and cfg["nonlinearity"] != "tanh":
        args.append(f"nonlinearity={literal(cfg['nonlinearity'])}")
    sfx = ("", "_reverse") if cfg["bidirectional"] else ("",)
    names = {
        f"{w}{s}": f"rnn.{w}_l0{s}"
        for s in sfx
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    after = []
    if block.type == "LSTM" and cfg.get("init") != "zeros":
        # the engine starts the forget gate open: rows H..2H of bias_ih are 1
        after += [f"{{m}}.rnn.bias_ih_l0{s}[{h}:{2 * h}] = 1.0" for s in sfx]
    return TorchBlock(f"Recurrent({', '.join(args)})", "{m}({0})", ("Recurrent",), names, after)


def _size(v: Any) -> str:
    a, b = _pair(v)
    return str(a) if a == b else f"({a}, {b})"


def _conv_padding(pad: Any) -> list[str]:
    if pad == "same":
        return ['padding="same"']  # K - 1 in total, the odd one at the end, as the engine
    if pad == "valid" or _pair(pad) == (0, 0):
        return []
    return [f"padding={_size(pad)}"]


def _conv_args(block: Block) -> list[str]:
    cfg = block.full
    args = [str(_t(block.in_shape)[0]), str(cfg["filters"]), _size(cfg["kernel_size"])]
    if _pair(cfg["stride"]) != (1, 1):
        args.append(f"stride={_size(cfg['stride'])}")
    args += _conv_padding(cfg["padding"])
    if not cfg["bias"]:
        args.append("bias=False")
    return args


def _even_same(block: Block, kernel: tuple[int, ...]) -> tuple[list[str], str]:
    """(constructor args, forward) for padding "same": with an even kernel the engine (and
    PyTorch) pads K - 1, the odd row/column at the end; written as an explicit F.pad, which
    PyTorch otherwise does with a warning and an extra copy."""
    args = _conv_args(block)
    if all(k % 2 for k in kernel) or block.full["padding"] != "same":
        return args, "{m}({0})"
    args = [a for a in args if a != 'padding="same"']
    pads: list[int] = []
    for k in reversed(kernel):  # F.pad lists the last axis first: (left, right, top, bottom)
        pads += [(k - 1) // 2, k - 1 - (k - 1) // 2]
    return args, f"{{m}}(F.pad({{0}}, {tuple(pads)}))"


def _conv2d(block: Block) -> TorchBlock:
    args, forward = _even_same(block, _pair(block.full["kernel_size"]))
    table = block.full["connections"]
    if table is None:
        return TorchBlock(f"nn.Conv2d({', '.join(args)})", forward)
    return TorchBlock(
        ("MaskedConv2d", [*args, table]),
        forward,
        ("MaskedConv2d",),
        init_after=["{m}.weight.mul_({m}.mask)"],
    )


def _conv1d(block: Block) -> TorchBlock:
    args, forward = _even_same(block, (int(block.full["kernel_size"]),))
    return TorchBlock(f"nn.Conv1d({', '.join(args)})", forward)


def _conv_transpose(block: Block) -> TorchBlock:
    return TorchBlock(f"nn.ConvTranspose2d({', '.join(_conv_args(block))})", "{m}({0})")


def _pool(block: Block) -> TorchBlock:
    # MaxPool2d pads with -inf, AvgPool2d counts padded zeros (count_include_pad): the engine's
    # semantics. Padding is at most half the kernel in both (the engine checks it).
    cfg = block.full
    args = _size(cfg["kernel_size"])
    if cfg["stride"] is not None and _pair(cfg["stride"]) != _pair(cfg["kernel_size"]):
        args += f", stride={_size(cfg['stride'])}"
    if _pair(cfg["padding"]) != (0, 0):
        args += f", padding={_size(cfg['padding'])}"
    cls = "nn.MaxPool2d" if block.type == "MaxPool2D" else "nn.AvgPool2d"
    return TorchBlock(f"{cls}({args})", "{m}({0})")


def _upsample(block: Block) -> TorchBlock:
    sh, sw = _pair(block.full["scale"])
    scale = f"{float(sh)!r}" if sh == sw else f"({float(sh)!r}, {float(sw)!r})"
    return TorchBlock(f'nn.Upsample(scale_factor={scale}, mode="nearest")', "{m}({0})")


BUILDERS = {
    "Input": lambda b: TorchBlock(None, "x"),
    "Dense": _dense,
    "Activation": _act,
    "Flatten": lambda b: TorchBlock("nn.Flatten()", "{m}({0})"),
    "Reshape": lambda b: TorchBlock(
        f"Reshape({', '.join(str(int(d)) for d in b.full['shape'])})", "{m}({0})", ("Reshape",)
    ),
    "Add": lambda b: TorchBlock(None, " + ".join(f"{{{i}}}" for i in range(len(b.inputs)))),
    "Concat": _concat,
    "Dropout": lambda b: TorchBlock(f"nn.Dropout({literal(float(b.full['rate']))})", "{m}({0})"),
    "BatchNorm": _batchnorm,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "Conv2D": _conv2d,
    "Conv1D": _conv1d,
    "ConvTranspose2D": _conv_transpose,
    "MaxPool2D": _pool,
    "AvgPool2D": _pool,
    "GlobalAvgPool2D": lambda b: TorchBlock(None, "{0}.mean(dim=(2, 3))"),
    "Subsample2D": lambda b: TorchBlock(
        f"Subsample2D({_t(b.in_shape)[0]}, {_size(b.full['kernel_size'])})",
        "{m}({0})",
        ("Subsample2D",),
    ),
    "Upsample2D": _upsample,
    "Embedding": lambda b: TorchBlock(
        f"nn.Embedding({b.full['num_embeddings']}, {b.full['embedding_dim']})", "{m}({0})"
    ),
}


def torch_block(block: Block) -> TorchBlock:
    """The PyTorch form of ``block`` (GraphError naming it if there is none)."""
    build = BUILDERS.get(block.type)
    if build is None:
        raise GraphError(
            f"{block.type} has no PyTorch export yet; export to numpy (engine "
            "code) instead, or replace the block",
            block=block.id,
        )
    return build(block)


def init_methods(block: Block) -> list[tuple[str, str, dict]]:
    """(engine parameter name, method, its settings): how the engine initialises each parameter
    (the layer's usual initialiser, the block's ``init`` for weights, or the layer's own start;
    see each layer's init_param)."""
    cls = LAYER_TYPES[block.type]
    if not cls.has_weights:
        return []
    layer = cls(name=block.id, **block.config)
    shapes = layer.param_shapes(block.in_shape)
    chosen = block.full.get("init")
    out = []
    for key, shape in shapes.items():
        if chosen and (not key.startswith("bias") or chosen == "zeros"):
            method = chosen
        else:
            method = layer.default_init(key)
        settings: dict[str, Any] = {}
        if method == "normal":
            settings["std"] = float(block.full["init_std"])
        if method == "uniform":
            settings["limit"] = float(block.full["init_limit"])
        if not chosen and block.type == "BatchNorm" and key == "weight":
            method = "ones"  # gamma starts at 1
        elif not chosen and block.type == "Embedding":
            method = "standard_normal"  # PyTorch's N(0, 1)
        elif not chosen and block.type == "Subsample2D" and key == "weight":
            kh, kw = _pair(block.full["kernel_size"])
            method, settings = "constant", {"value": 1.0 / (kh * kw)}  # average pooling
        elif block.type == "Conv2D" and key == "weight" and block.full["connections"]:
            # with a connection table a unit's fans count only its connected maps
            links = sum(len(row) for row in block.full["connections"])
            area = int(shape[2]) * int(shape[3])
            settings["fan_in"] = max(1, round(links / int(shape[0]))) * area
            settings["fan_out"] = max(1, round(links / int(shape[1]))) * area
        out.append((key, method, settings))
    return out


def overrides_init_param(type_name: str) -> bool:
    """Whether a layer type starts its parameters in its own way (tests check they are known)."""
    cls = LAYER_TYPES[type_name]
    return cls.init_param is not Layer.init_param
