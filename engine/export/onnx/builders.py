"""How each block becomes ONNX nodes: one builder per layer class, in a registry keyed by it.

A builder is called as ``build(ctx, layer, ins, out)``: ``layer`` the built engine layer (its
config, shapes and weights), ``ins`` the names of the tensors feeding it (batch first, as the
engine holds them), ``out`` the name it must produce (the block id). It adds nodes and weights
through ``ctx`` (``exporter.Context``). A new block type registers its builder beside it:

    @onnx_builder(MyBlock)
    def _my_block(ctx, layer, ins, out): ...

Layouts: the engine keeps PyTorch's layouts, which are ONNX's for Conv/ConvTranspose/Gemm.
The recurrent blocks differ in three ways: ONNX orders the LSTM gates i, o, f, c (PyTorch i, f,
g, o) and the GRU gates z, r, h (PyTorch r, z, n); the two biases go in one row per direction,
[Wb, Rb]; and sequences are time-major, (T, N, F).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine import functional as F
from engine.errors import GraphError
from engine.layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    AdaptiveAvgPool2D,
    Add,
    Attention,
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GaussianNoise,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    Layer,
    LocalResponseNorm,
    MaxPool2D,
    MaxUnpool2D,
    Reshape,
    Slice,
    Subsample2D,
    Transpose,
    Upsample2D,
)

Builder = Callable[[Any, Layer, list[str], str], None]
ONNX_BUILDERS: dict[type[Layer], Builder] = {}

# PyTorch's gate blocks in ONNX's order: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) ->
# (z, r, h). The importer applies the inverse.
LSTM_TO_ONNX = (0, 3, 1, 2)
GRU_TO_ONNX = (1, 0, 2)


def onnx_builder(*classes: type[Layer]) -> Callable[[Builder], Builder]:
    """Register the decorated function as the ONNX builder of ``classes``."""

    def register(fn: Builder) -> Builder:
        for cls in classes:
            ONNX_BUILDERS[cls] = fn
        return fn

    return register


def builder_for(layer: Layer) -> Builder | None:
    for cls in type(layer).__mro__:
        if cls in ONNX_BUILDERS:
            return ONNX_BUILDERS[cls]
    return None


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# --- dense and convolutions -----------------------------------------------------------------------
@onnx_builder(Dense)
def _dense(ctx, layer, ins, out):
    p = layer.params
    if len(layer.in_shape) == 1:  # (N, F): Gemm with the weight as stored, (units, F)
        args = [ins[0], ctx.weight(layer, "weight")]
        if "bias" in p:
            args.append(ctx.weight(layer, "bias"))
        ctx.node("Gemm", args, [out], transB=1)
        return
    # a sequence (N, T, F): the same weights at every step, x @ W^T (+ b)
    wt = ctx.init(f"{layer.name}.weight_t", _f32(p["weight"].T))
    if "bias" not in p:
        ctx.node("MatMul", [ins[0], wt], [out])
        return
    mm = ctx.node("MatMul", [ins[0], wt], [ctx.name(f"{layer.name}/matmul")])[0]
    ctx.node("Add", [mm, ctx.weight(layer, "bias")], [out])


def _conv_pads(layer) -> list[int]:
    if isinstance(layer, Conv1D):
        _, _, left, right = layer._pad()
        return [left, right]
    top, bottom, left, right = layer._pad()
    return [top, left, bottom, right]


@onnx_builder(Conv2D, Conv1D)
def _conv(ctx, layer, ins, out):
    # Conv2D's connection table (LeNet-5's C3) is a mask on the weight: the masked weight holds
    # zeros outside the table, which is what the engine convolves with.
    w = ctx.init(f"{layer.name}.weight", _f32(layer._weight()))
    args = [ins[0], w] + ([ctx.weight(layer, "bias")] if "bias" in layer.params else [])
    kernel = list(layer.params["weight"].shape[2:])
    stride = layer.config["stride"]
    strides = [stride] if isinstance(layer, Conv1D) else list(F.pair(stride))
    # "same" and "valid" as ONNX's auto_pad (SAME_UPPER: the odd padding at the end, as the
    # engine and PyTorch), so an import reads the setting back, not only the numbers
    pad = layer.config["padding"]
    if pad in ("same", "valid"):
        padding = {"auto_pad": "SAME_UPPER" if pad == "same" else "VALID"}
    else:
        padding = {"pads": _conv_pads(layer)}
    if layer.config.get("groups", 1) != 1:
        padding["group"] = int(layer.config["groups"])
    ctx.node("Conv", args, [out], kernel_shape=kernel, strides=strides, **padding)
    if layer.config.get("connections") is not None:
        ctx.extra(layer, connections=layer.config["connections"])


@onnx_builder(ConvTranspose2D)
def _conv_transpose(ctx, layer, ins, out):
    args = [ins[0], ctx.weight(layer, "weight")]
    if "bias" in layer.params:
        args.append(ctx.weight(layer, "bias"))
    ph, pw = F.pair(layer.config["padding"])
    ctx.node(
        "ConvTranspose",
        args,
        [out],
        kernel_shape=list(layer.params["weight"].shape[2:]),
        strides=list(F.pair(layer.config["stride"])),
        pads=[ph, pw, ph, pw],
    )


# --- pooling and resampling -----------------------------------------------------------------------
@onnx_builder(MaxPool2D, AvgPool2D)
def _pool(ctx, layer, ins, out):
    cfg = layer.config
    k = list(F.pair(cfg["kernel_size"]))
    s = list(F.pair(cfg["stride"])) if cfg["stride"] is not None else k
    ph, pw = F.pair(cfg["padding"])
    attrs = {"kernel_shape": k, "strides": s, "pads": [ph, pw, ph, pw]}
    if isinstance(layer, MaxPool2D):
        if cfg["ceil_mode"]:
            attrs["ceil_mode"] = 1
        ctx.node("MaxPool", ins, [out], **attrs)
    else:  # the engine counts padded zeros in the mean, as PyTorch does by default
        ctx.node("AveragePool", ins, [out], count_include_pad=1, **attrs)


@onnx_builder(GlobalAvgPool2D)
def _global_avg_pool(ctx, layer, ins, out):
    g = ctx.node("GlobalAveragePool", ins, [ctx.name(f"{layer.name}/pool")])[0]
    ctx.node("Flatten", [g], [out], axis=1)  # (N, C, 1, 1) -> (N, C)


@onnx_builder(AdaptiveAvgPool2D)
def _adaptive_avg_pool(ctx, layer, ins, out):
    # ONNX has no adaptive pool: its windows are plain ones only when they tile the map
    (_, h, w), (oh, ow) = layer.in_shape, F.pair(layer.config["output_size"])
    if (oh, ow) == (1, 1):
        ctx.node("GlobalAveragePool", ins, [out])
        return
    if h % oh or w % ow:
        raise GraphError(
            f"AdaptiveAvgPool2D to {oh}x{ow} of a {h}x{w} map has no ONNX form (ONNX has no "
            "adaptive pool; its windows overlap unless the output size divides the input "
            "size): choose an output size that divides the input to export to ONNX",
            block=layer.name,
        )
    k = [h // oh, w // ow]
    ctx.node("AveragePool", ins, [out], kernel_shape=k, strides=k)


@onnx_builder(Subsample2D)
def _subsample(ctx, layer, ins, out):
    # w[c] * sum(window) + b[c] over non-overlapping windows: a depthwise convolution whose
    # kernel holds w[c] everywhere (group = C), stride = kernel.
    kh, kw = F.pair(layer.config["kernel_size"])
    w = layer.params["weight"]
    kernel = np.broadcast_to(w[:, None, None, None], (w.shape[0], 1, kh, kw))
    wk = ctx.init(f"{layer.name}.weight_kernel", _f32(kernel))
    ctx.node(
        "Conv",
        [ins[0], wk, ctx.weight(layer, "bias")],
        [out],
        kernel_shape=[kh, kw],
        strides=[kh, kw],
        group=int(w.shape[0]),
    )


@onnx_builder(Upsample2D)
def _upsample(ctx, layer, ins, out):
    sh, sw = F.pair(layer.config["scale"])
    scales = ctx.init(f"{layer.name}.scales", np.array([1, 1, sh, sw], np.float32))
    # asymmetric + floor: output pixel (y, x) reads input (y // sh, x // sw), exactly the
    # engine's block copy.
    ctx.node(
        "Resize",
        [ins[0], "", scales],
        [out],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


# --- shapes, activations, regularisation ----------------------------------------------------------
@onnx_builder(Flatten)
def _flatten(ctx, layer, ins, out):
    ctx.node("Flatten", ins, [out], axis=1)


@onnx_builder(Reshape)
def _reshape(ctx, layer, ins, out):
    shape = ctx.init(f"{layer.name}.shape", np.array([-1, *layer.config["shape"]], np.int64))
    ctx.node("Reshape", [ins[0], shape], [out])


@onnx_builder(Slice)
def _slice(ctx, layer, ins, out):
    bounds = [
        ctx.init(f"{layer.name}.{k}", np.array([v], np.int64))
        for k, v in (("start", layer.config["start"]), ("stop", layer.config["stop"]), ("axis", 1))
    ]
    ctx.node("Slice", [ins[0], *bounds], [out])


ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "linear": "Identity"}


@onnx_builder(Activation)
def _activation(ctx, layer, ins, out):
    fn = layer.config["fn"]
    if fn == "leaky_relu":
        ctx.node("LeakyRelu", ins, [out], alpha=float(layer.config["negative_slope"]))
    elif fn == "softmax":
        ctx.node("Softmax", ins, [out], axis=-1)
    else:
        ctx.node(ACTIVATIONS[fn], ins, [out])


@onnx_builder(Dropout)
def _dropout(ctx, layer, ins, out):
    # Inference form: ONNX's Dropout is the identity unless training_mode is given; the rate
    # rides along so Netron shows it and an import gets it back.
    ratio = ctx.init(f"{layer.name}.ratio", np.array(layer.config["rate"], np.float32))
    ctx.node("Dropout", [ins[0], ratio], [out])


@onnx_builder(GaussianNoise)
def _gaussian_noise(ctx, layer, ins, out):
    # Inference form: the noise is added only while training, so the block is the identity;
    # its std rides along in the node's metadata so an import gets the block back.
    ctx.node("Identity", ins, [out])
    ctx.extra(layer, gaussian_noise_std=float(layer.config["std"]))


@onnx_builder(BatchNorm)
def _batch_norm(ctx, layer, ins, out):
    # Inference form with the running statistics. ONNX's momentum weighs the old statistics
    # (PyTorch's and the engine's the new batch): 1 - momentum.
    args = [
        ctx.weight(layer, "weight"),
        ctx.weight(layer, "bias"),
        ctx.weight(layer, "running_mean"),
        ctx.weight(layer, "running_var"),
    ]
    attrs = {"epsilon": float(layer.config["eps"]), "momentum": 1.0 - layer.config["momentum"]}
    if len(layer.in_shape) != 2:  # (F,) or (C, H, W): channels on axis 1, as ONNX wants
        ctx.node("BatchNormalization", [ins[0], *args], [out], **attrs)
        return
    # (T, F): the engine normalises the last axis; ONNX axis 1, so transpose around it
    t = ctx.node("Transpose", ins, [ctx.name(f"{layer.name}/to_nft")], perm=[0, 2, 1])[0]
    bn = ctx.node("BatchNormalization", [t, *args], [ctx.name(f"{layer.name}/nft")], **attrs)[0]
    ctx.node("Transpose", [bn], [out], perm=[0, 2, 1])


@onnx_builder(LocalResponseNorm)
def _lrn(ctx, layer, ins, out):
    # ONNX's LRN also divides alpha by size; its window is PyTorch's for an odd size only
    # (an even one reaches one map further up in ONNX, one further down in PyTorch).
    cfg = layer.config
    if cfg["size"] % 2 == 0:
        raise GraphError(
            f"LocalResponseNorm of even size {cfg['size']} has no ONNX form (ONNX's LRN window "
            "differs from PyTorch's for an even size): use an odd size to export to ONNX",
            block=layer.name,
        )
    attrs = {"alpha": float(cfg["alpha"]), "beta": float(cfg["beta"]), "bias": float(cfg["k"])}
    ctx.node("LRN", ins, [out], size=int(cfg["size"]), **attrs)


@onnx_builder(Embedding)
def _embedding(ctx, layer, ins, out):
    ids = ctx.as_int64(ins[0])
    ctx.node("Gather", [ctx.weight(layer, "weight"), ids], [out], axis=0)


# --- merges ---------------------------------------------------------------------------------------
@onnx_builder(Add)
def _add(ctx, layer, ins, out):
    ctx.node("Add" if len(ins) == 2 else "Sum", ins, [out])


@onnx_builder(Concat)
def _concat(ctx, layer, ins, out):
    a = layer.config["axis"]
    ctx.node("Concat", ins, [out], axis=a + 1 if a >= 0 else a)


# --- recurrent ------------------------------------------------------------------------------------
@onnx_builder(Attention)
def _attention(ctx, layer, ins, out):
    """Scores (MatMul; concat/additive: Tanh of the two projections broadcast over
    (N, Tq, Tm, A), then MatMul with v), padded steps set to -1e30, Softmax over the memory
    steps, MatMul with the memory. A query whose memory is all padding reads 0, as the block."""
    name, p, score = layer.name, layer.params, layer.config["score"]
    q, m = ins[0], ins[1]

    def mm(a, b, tag):
        return ctx.node("MatMul", [a, b], [ctx.name(f"{name}/{tag}")])[0]

    def t(a, tag):
        return ctx.node("Transpose", [a], [ctx.name(f"{name}/{tag}")], perm=[0, 2, 1])[0]

    if score == "dot":
        s = mm(q, t(m, "memory_t"), "scores")
    elif score == "general":  # (m W^T) is W_a m_s for every s: (N, Tm, Fq)
        wm = mm(m, ctx.init(f"{name}.weight_t", _f32(p["weight"].T)), "memory_w")
        s = mm(q, t(wm, "memory_w_t"), "scores")
    else:
        if score == "concat":
            fq = layer.in_shape[0][1]
            wq, wmem = p["weight"][:, :fq], p["weight"][:, fq:]
        else:
            wq, wmem = p["weight_query"], p["weight_memory"]
        pq = mm(q, ctx.init(f"{name}.weight_query_t", _f32(wq.T)), "query_proj")
        pm = mm(m, ctx.init(f"{name}.weight_memory_t", _f32(wmem.T)), "memory_proj")
        pq4 = ctx.node(
            "Unsqueeze",
            [pq, ctx.init(f"{name}.axis2", np.array([2], np.int64))],
            [ctx.name(f"{name}/q4")],
        )[0]
        pm4 = ctx.node(
            "Unsqueeze",
            [pm, ctx.init(f"{name}.axis1", np.array([1], np.int64))],
            [ctx.name(f"{name}/m4")],
        )[0]
        both = ctx.node("Add", [pq4, pm4], [ctx.name(f"{name}/sum")])[0]
        hidden = ctx.node("Tanh", [both], [ctx.name(f"{name}/tanh")])[0]
        s = mm(hidden, ctx.weight(layer, "v"), "scores")
    keep_any = None
    if len(ins) == 3:
        zero = np.zeros((), np.int64 if ins[2] in ctx.int64 else np.float32)
        pad = ctx.node(
            "Equal", [ins[2], ctx.init(f"{name}.zero", zero)], [ctx.name(f"{name}/pad")]
        )[0]
        pad3 = ctx.node(
            "Unsqueeze",
            [pad, ctx.init(f"{name}.axis_q", np.array([1], np.int64))],
            [ctx.name(f"{name}/pad3")],
        )[0]
        low = ctx.init(f"{name}.masked", np.array(-1e30, np.float32))
        s = ctx.node("Where", [pad3, low, s], [ctx.name(f"{name}/masked_scores")])[0]
        keep = ctx.node("Not", [pad3], [ctx.name(f"{name}/keep")])[0]
        keep_f = ctx.node("Cast", [keep], [ctx.name(f"{name}/keep_f")], to=1)[0]
        keep_any = ctx.node(
            "ReduceMax",
            [keep_f, ctx.init(f"{name}.axis_m", np.array([2], np.int64))],
            [ctx.name(f"{name}/any_kept")],
            keepdims=1,
        )[0]
    a = ctx.node("Softmax", [s], [ctx.name(f"{name}/alignment")], axis=-1)[0]
    if keep_any is not None:
        a = ctx.node("Mul", [a, keep_any], [ctx.name(f"{name}/alignment_kept")])[0]
    ctx.node("MatMul", [a, m], [out])


def _gate_rows(w: np.ndarray, order: tuple[int, ...] | None, hidden: int) -> np.ndarray:
    if order is None:
        return w
    return np.concatenate([w[b * hidden : (b + 1) * hidden] for b in order])


@onnx_builder(RNN, LSTM, GRU)
def _recurrent(ctx, layer, ins, out):
    cfg, p, name = layer.config, layer.params, layer.name
    h = cfg["hidden_size"]
    op, order = {RNN: ("RNN", None), LSTM: ("LSTM", LSTM_TO_ONNX), GRU: ("GRU", GRU_TO_ONNX)}[
        type(layer)
    ]
    sfx = layer.suffixes
    d = len(sfx)
    lecture = cfg.get("convention") == "lecture"
    # the lecture's GRU is ONNX's GRU with linear_before_reset=0 and z' = 1 - z = sigma(-a_z):
    # its z rows (weights and biases) change sign
    flip = np.ones((3 * h, 1), np.float32)
    if lecture:
        flip[h : 2 * h] = -1

    def rows(a):
        a = a * flip if lecture else a
        return _gate_rows(a, order, h)

    W = np.stack([rows(p["weight_ih" + s]) for s in sfx])
    R = np.stack([rows(p["weight_hh" + s]) for s in sfx])
    B = np.stack(
        [
            np.concatenate(
                [
                    rows(p["bias_ih" + s][:, None])[:, 0],
                    # single_bias: ONNX's recurrent bias Rb is 0
                    rows(p.get("bias_hh" + s, np.zeros_like(p["bias_ih" + s]))[:, None])[:, 0],
                ]
            )
            for s in sfx
        ]
    )
    attrs: dict[str, Any] = {
        "hidden_size": h,
        "direction": "bidirectional" if d == 2 else "forward",
    }
    if op == "RNN":
        attrs["activations"] = ["Relu" if cfg["nonlinearity"] == "relu" else "Tanh"] * d
    if op == "GRU":
        # PyTorch's GRU: r * (W_hn h + b_hn); the lecture's: W_hn (r * h)
        attrs["linear_before_reset"] = 0 if lecture else 1
    x_tm = ctx.node("Transpose", ins[:1], [ctx.name(f"{name}/time_major")], perm=[1, 0, 2])[0]
    y, y_h, y_c = ctx.name(f"{name}/Y"), ctx.name(f"{name}/Y_h"), ctx.name(f"{name}/Y_c")
    inputs = [
        x_tm,
        ctx.init(f"{name}.W", _f32(W)),
        ctx.init(f"{name}.R", _f32(R)),
        ctx.init(f"{name}.B", _f32(B)),
    ]
    if len(ins) == 2:  # port 1: the state (N, parts*D*H) -> initial_h (and initial_c) (D, N, H)
        parts = layer.state_parts
        st = ctx.node(
            "Reshape",
            [ins[1], ctx.init(f"{name}.state_shape", np.array([0, parts * d, h], np.int64))],
            [ctx.name(f"{name}/state3")],
        )[0]
        st = ctx.node("Transpose", [st], [ctx.name(f"{name}/state_tm")], perm=[1, 0, 2])[0]
        axis0 = ctx.init(f"{name}.axis0", np.array([0], np.int64))
        for j, key in enumerate(("initial_h", "initial_c")[:parts]):
            bounds = [
                ctx.init(f"{name}.{key}_{e}", np.array([v], np.int64))
                for e, v in (("start", j * d), ("end", (j + 1) * d))
            ]
            inputs += [""] * (5 + j - len(inputs))  # sequence_lens (and initial_h) before it
            inputs.append(ctx.node("Slice", [st, *bounds, axis0], [ctx.name(f"{name}/{key}")])[0])
    if cfg.get("peepholes"):  # P (D, 3H): ONNX's order i, o, f
        P = np.stack([np.concatenate([p[f"weight_c{g}{s}"] for g in "iof"]) for s in sfx])
        inputs += [""] * (7 - len(inputs))
        inputs.append(ctx.init(f"{name}.P", _f32(P)))
    ret_state = cfg.get("return_state")
    ctx.node(op, inputs, [y, y_h, y_c] if ret_state else [y, y_h], **attrs)
    if cfg["return_sequences"]:  # Y (T, D, N, H) -> (N, T, D, H) -> (N, T, D*H)
        t = ctx.node("Transpose", [y], [ctx.name(f"{name}/batch_major")], perm=[2, 0, 1, 3])[0]
        shape = ctx.init(f"{name}.out_shape", np.array([0, 0, d * h], np.int64))
    else:  # Y_h (D, N, H) -> (N, D, H) -> (N, D*H): forward's last state, backward's first
        last = y_h
        if ret_state:  # [Y_h; Y_c] (2D, N, H) -> (N, 2*D*H)
            last = ctx.node("Concat", [y_h, y_c], [ctx.name(f"{name}/state")], axis=0)[0]
        t = ctx.node("Transpose", [last], [ctx.name(f"{name}/batch_major")], perm=[1, 0, 2])[0]
        size = layer.state_size() if ret_state else d * h
        shape = ctx.init(f"{name}.out_shape", np.array([0, size], np.int64))
    ctx.node("Reshape", [t, shape], [out])


# --- max-unpooling and text CNN blocks ------------------------------------------------------------
@onnx_builder(MaxUnpool2D)
def _max_unpool(ctx, layer, ins, out):
    # ONNX's MaxUnpool reads the indices of a MaxPool's second output: the paired pool is run
    # again on its own input for them (as the PyTorch export does), so the pool's node stays a
    # plain MaxPool. Indices are flat over N, C, H, W in both operators.
    pool = next(nd for nd in reversed(ctx.nodes) if nd.op_type == "MaxPool" and
                nd.name == layer.pool.name)  # fmt: skip
    cfg = layer.pool.config
    k = list(F.pair(cfg["kernel_size"]))
    s = list(F.pair(cfg["stride"])) if cfg["stride"] is not None else k
    ph, pw = F.pair(cfg["padding"])
    attrs = {"kernel_shape": k, "strides": s, "pads": [ph, pw, ph, pw]}
    unused, where = ctx.name(f"{layer.name}/values"), ctx.name(f"{layer.name}/indices")
    ctx.node("MaxPool", [pool.input[0]], [unused, where], **attrs)
    size = ctx.node("Shape", [pool.input[0]], [ctx.name(f"{layer.name}/size")])[0]
    ctx.node("MaxUnpool", [ins[0], where, size], [out], **attrs)


@onnx_builder(Transpose)
def _transpose(ctx, layer, ins, out):
    ctx.node("Transpose", ins, [out], perm=[0, 2, 1])


@onnx_builder(GlobalAvgPool1D, GlobalMaxPool1D)
def _global_pool_1d(ctx, layer, ins, out):
    axes = ctx.init(f"{layer.name}.axes", np.array([2], np.int64))
    op = "ReduceMean" if isinstance(layer, GlobalAvgPool1D) else "ReduceMax"
    ctx.node(op, [ins[0], axes], [out], keepdims=0)
