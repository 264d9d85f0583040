"""ONNX operators onto blocks: one mapper per operator type (``MAPPERS``), called by the
importer as ``mapper(imp, node, inputs, outputs, attributes)``. A mapper reads its tensors
through ``imp`` (``imp.ref`` for data, ``imp.const`` for weights), adds blocks with
``imp.add_block`` and sets its outputs' Refs; an operator use no block expresses raises
``Unsupported`` with a short label ("Conv (groups)"), which the importer counts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from engine import functional as F
from engine.export.onnx.builders import GRU_TO_ONNX, LSTM_TO_ONNX
from engine.export.onnx.evaluate import (
    NeedSequences,
    Ref,
    Unsupported,
    _f32_text,
    _pair_or_int,
)


def _pads(imp, node, a, kernel, strides, allow_same=True):
    """The engine padding of a Conv/pool node: an int, [ph, pw], or "same"."""
    n = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return "valid" if allow_same else 0
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        odd = all(k % 2 for k in kernel)
        if allow_same and all(s == 1 for s in strides) and (auto == "SAME_UPPER" or odd):
            return "same"
        raise Unsupported(f"{node.op_type} (auto_pad {auto})")
    pads = list(a.get("pads", [0] * (2 * n)))
    begin, end = pads[:n], pads[n:]
    if begin == end:
        return _pair_or_int(begin) if any(begin) else 0
    same = [F.same_padding(k) for k in kernel]
    if allow_same and all(s == 1 for s in strides) and list(zip(begin, end, strict=True)) == same:
        return "same"
    raise Unsupported(f"{node.op_type} (uneven padding)")


def _no_dilation(node, a):
    if any(d != 1 for d in a.get("dilations", [])):
        raise Unsupported(f"{node.op_type} (dilation)")


def _set_outputs(imp, outs, ref):
    imp.refs[outs[0]] = ref


def _conv(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    w = imp.const(node, ins[1], "weights")
    b = imp.bias(node, ins, 2)
    _no_dilation(node, a)
    if w.ndim not in (3, 4):
        raise Unsupported(f"Conv ({w.ndim - 2}-D)")
    kernel = [int(k) for k in w.shape[2:]]
    strides = list(a.get("strides", [1] * len(kernel)))
    group = a.get("group", 1)
    src = imp.plain(node, x)
    c = imp.shapes[src][0]
    if group != 1:
        flat = w.reshape(w.shape[0], -1)
        if (
            w.ndim == 4
            and group == c == w.shape[0]
            and w.shape[1] == 1
            and strides == kernel
            and _pads(imp, node, a, kernel, strides, False) == 0
            and b is not None
            and np.all(flat == flat[:, :1])
        ):
            weights = {"weight": flat[:, 0], "bias": b}
            cfg = {"kernel_size": _pair_or_int(kernel)}
            bid = imp.add_block(node, "Subsample2D", cfg, [src], weights)
            return _set_outputs(imp, outs, imp.out_ref(bid))
        if w.ndim != 4 or c % group or w.shape[0] % group or w.shape[1] * group != c:
            raise Unsupported("Conv (1-D groups, or groups not dividing the channels)")
    pad = _pads(imp, node, a, kernel, strides)
    cfg: dict[str, Any] = {"filters": int(w.shape[0]), "kernel_size": _pair_or_int(kernel)}
    if group != 1:
        cfg["groups"] = int(group)
    if any(s != 1 for s in strides):
        cfg["stride"] = _pair_or_int(strides)
    if pad != 0:
        cfg["padding"] = pad
    weights = {"weight": w}
    if b is None:
        cfg["bias"] = False
    else:
        weights["bias"] = b
    typ = "Conv2D" if w.ndim == 4 else "Conv1D"
    bid = imp.add_block(node, typ, cfg, [src], weights)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _conv_transpose(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    w = imp.const(node, ins[1], "weights")
    b = imp.bias(node, ins, 2)
    _no_dilation(node, a)
    if w.ndim != 4 or a.get("group", 1) != 1:
        raise Unsupported("ConvTranspose (1-D, 3-D or groups)")
    if any(a.get("output_padding", [])) or "output_shape" in a:
        raise Unsupported("ConvTranspose (output_padding or output_shape)")
    kernel = [int(k) for k in w.shape[2:]]
    strides = list(a.get("strides", [1, 1]))
    pad = _pads(imp, node, a, kernel, strides, False)
    src = imp.plain(node, x)
    cfg: dict[str, Any] = {"filters": int(w.shape[1]), "kernel_size": _pair_or_int(kernel)}
    if any(s != 1 for s in strides):
        cfg["stride"] = _pair_or_int(strides)
    if pad != 0:
        cfg["padding"] = pad
    weights = {"weight": w}
    if b is None:
        cfg["bias"] = False
    else:
        weights["bias"] = b
    bid = imp.add_block(node, "ConvTranspose2D", cfg, [src], weights)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _dense(imp, node, src, weight, bias):
    cfg: dict[str, Any] = {"units": int(weight.shape[0])}
    weights = {"weight": weight}
    if bias is None:
        cfg["bias"] = False
    else:
        weights["bias"] = bias
    return imp.add_block(node, "Dense", cfg, [src], weights)


def _bias_vector(c: np.ndarray, units: int) -> np.ndarray | None:
    c = np.asarray(c, np.float32)
    if c.size == units and c.shape[-1:] == (units,) or c.size == 1:
        return np.broadcast_to(c.ravel(), (units,)).copy() if c.size == 1 else c.reshape(units)
    return None


def _gemm(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    bmat = imp.const(node, ins[1], "weights")
    if a.get("transA", 0) or bmat.ndim != 2:
        raise Unsupported("Gemm (transA)")
    w = (bmat if a.get("transB", 0) else bmat.T) * np.float32(a.get("alpha", 1.0))
    bias = None
    c = imp.bias(node, ins, 2)
    if c is not None:
        bias = _bias_vector(c * a.get("beta", 1.0), w.shape[0])
        if bias is None:
            raise Unsupported("Gemm (bias per sample)")
    src = imp.plain(node, x)
    bid = _dense(imp, node, src, w, bias)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _matmul(imp, node, ins, outs, a):
    if ins[0] not in imp.refs or ins[1] not in imp.consts:
        raise Unsupported("MatMul (of two computed tensors)")
    w = imp.consts[ins[1]]
    if w.ndim != 2:
        raise Unsupported("MatMul (batched weights)")
    src = imp.plain(node, imp.refs[ins[0]])
    bid = _dense(imp, node, src, w.T, None)
    imp.pending_bias[outs[0]] = bid
    _set_outputs(imp, outs, imp.out_ref(bid))


def _add(imp, node, ins, outs, a):
    if node.op_type == "Add" and len(ins) == 2:
        for r_name, c_name in ((ins[0], ins[1]), (ins[1], ins[0])):
            bid = imp.pending_bias.get(r_name)
            if bid and c_name in imp.consts and imp.uses[r_name] == 1:
                units = imp.blocks[bid]["config"]["units"]
                bias = _bias_vector(imp.consts[c_name], units)
                if bias is not None:  # MatMul + Add: the Dense block gets its bias
                    del imp.pending_bias[r_name]
                    del imp.blocks[bid]["config"]["bias"]
                    imp.weights[f"{bid}.bias"] = bias
                    imp.refs[outs[0]] = imp.refs[r_name]
                    return
    if any(i in imp.consts for i in ins if i):
        raise Unsupported(f"{node.op_type} (with a constant)")
    srcs = [imp.plain(node, imp.ref(node, i)) for i in ins]
    if len(srcs) == 1:
        imp.refs[outs[0]] = imp.out_ref(srcs[0])
        return
    bid = imp.add_block(node, "Add", {}, srcs)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _activation(fn):
    def mapper(imp, node, ins, outs, a):
        src = imp.plain(node, imp.ref(node, ins[0]))
        cfg: dict[str, Any] = {"fn": fn}
        if fn == "leaky_relu":
            slope = _f32_text(a.get("alpha", 0.01))
            if not 0 <= slope <= 1:
                raise Unsupported("LeakyRelu (slope outside 0..1)")
            if slope != 0.01:
                cfg["negative_slope"] = slope
        if fn == "softmax":
            rank = len(imp.refs[ins[0]].shape)
            axis = a.get("axis", -1 if imp.opset >= 13 else 1)
            axis = axis + rank if axis < 0 else axis
            if axis != rank - 1:
                raise Unsupported("Softmax (not over the last axis)")
        bid = imp.add_block(node, "Activation", cfg, [src])
        _set_outputs(imp, outs, imp.out_ref(bid))

    return mapper


def _pool(imp, node, ins, outs, a):
    op = node.op_type
    x = imp.ref(node, ins[0])
    indices = len(outs) > 1 and outs[1] and imp.uses[outs[1]]
    if indices and op != "MaxPool":
        raise Unsupported(f"{op} (indices output)")
    _no_dilation(node, a)
    kernel = list(a.get("kernel_shape", []))
    if len(kernel) != 2:
        raise Unsupported(f"{op} ({len(kernel)}-D)")
    strides = list(a.get("strides", [1, 1]))
    pad = _pads(imp, node, a, kernel, strides, False)
    src = imp.plain(node, x)
    ph, pw = F.pair(pad)
    ceil = False
    if a.get("ceil_mode", 0):  # matters only where the windows do not fit exactly
        _, h, w = imp.shapes[src]
        for size, k, s, p in ((h, kernel[0], strides[0], ph), (w, kernel[1], strides[1], pw)):
            if (size + 2 * p - k) % s:
                if op != "MaxPool":
                    raise Unsupported(f"{op} (ceil_mode)")
                ceil = True
    if op == "AveragePool" and (ph or pw) and not a.get("count_include_pad", 0):
        raise Unsupported("AveragePool (padding left out of the mean)")
    cfg: dict[str, Any] = {"kernel_size": _pair_or_int(kernel)}
    if strides != kernel:
        cfg["stride"] = _pair_or_int(strides)
    if pad != 0:
        cfg["padding"] = pad
    if ceil:
        cfg["ceil_mode"] = True
    typ = "MaxPool2D" if op == "MaxPool" else "AvgPool2D"
    if indices:  # for a MaxUnpool (_max_unpool); BlockProp's own exports use only these
        imp.pool_indices[outs[1]] = (src, cfg, node.name or outs[1])
        imp.consts[outs[1]] = np.zeros(0, np.int64)  # known (not data): only MaxUnpool reads it
        if not imp.uses[outs[0]]:
            return
    bid = imp.add_block(node, typ, cfg, [src])
    _set_outputs(imp, outs, imp.out_ref(bid))


def _max_unpool(imp, node, ins, outs, a):
    """MaxUnpool -> MaxUnpool2D paired with the MaxPool2D block that has the same input and
    settings as the MaxPool whose indices it reads (BlockProp's export runs the pool again for
    them, and names that node after the unpool block)."""
    if len(ins) < 2 or ins[1] not in imp.pool_indices:
        raise Unsupported("MaxUnpool (indices not from a MaxPool)")
    src, cfg, name = imp.pool_indices[ins[1]]
    pool = next(
        (
            b
            for b, blk in imp.blocks.items()
            if blk["type"] == "MaxPool2D" and blk["inputs"] == [src] and blk["config"] == cfg
        ),
        None,
    )
    if pool is None:
        raise Unsupported("MaxUnpool (no MaxPool block with its indices' input and settings)")
    x = imp.plain(node, imp.ref(node, ins[0]))
    bid = imp.add_block(None, "MaxUnpool2D", {"pool": pool}, [x], base=name)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _global_avg_pool(imp, node, ins, outs, a):
    src = imp.plain(node, imp.ref(node, ins[0]))
    if len(imp.shapes[src]) != 3:
        raise Unsupported("GlobalAveragePool (not 2-D)")
    bid = imp.add_block(node, "GlobalAvgPool2D", {}, [src])
    c = imp.shapes[bid][0]
    imp.refs[outs[0]] = Ref(bid, (imp.B, c, 1, 1))  # ONNX keeps (N, C, 1, 1): a plain reshape


def _reduce_mean(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and ins[1]:
        axes = [int(v) for v in np.ravel(imp.const(node, ins[1], "axes"))]
    rank = len(x.shape)
    if (
        rank == 3
        and axes is not None
        and [ax % 3 for ax in axes] == [2]
        and not a.get("keepdims", 1)
    ):  # over a sequence's positions: GlobalAvgPool1D / GlobalMaxPool1D
        typ = "GlobalAvgPool1D" if node.op_type == "ReduceMean" else "GlobalMaxPool1D"
        bid = imp.add_block(node, typ, {}, [imp.plain(node, x)])
        _set_outputs(imp, outs, imp.out_ref(bid))
        return
    if rank != 4 or axes is None or sorted(ax % 4 for ax in axes) != [2, 3]:
        raise Unsupported(f"{node.op_type} (not over height and width)")
    if node.op_type != "ReduceMean":
        raise Unsupported(f"{node.op_type} (over height and width)")
    src = imp.plain(node, x)
    bid = imp.add_block(node, "GlobalAvgPool2D", {}, [src])
    c = imp.shapes[bid][0]
    shape = (imp.B, c, 1, 1) if a.get("keepdims", 1) else (imp.B, c)
    imp.refs[outs[0]] = Ref(bid, shape)  # the block's output in plain order, reshaped


def _is_transposed(imp, r: Ref, perm) -> Ref | None:
    """``r`` as the plain tensor it is a transpose (by ``perm``) of, if it is one."""
    inv = np.argsort(perm)
    back = imp.make_ref(r.block, imp.idx(r).transpose(inv))
    return back if back.idx is None else None


def _lrn(imp, node, ins, outs, a):
    src = imp.plain(node, imp.ref(node, ins[0]))
    if len(imp.shapes[src]) != 3:
        raise Unsupported("LRN (not on images)")
    size = int(a["size"])
    if size % 2 == 0:  # ONNX's window is PyTorch's (the block's) for an odd size only
        raise Unsupported("LRN (even size)")
    cfg = {"size": size, "alpha": _f32_text(a.get("alpha", 1e-4))}
    cfg |= {"beta": _f32_text(a.get("beta", 0.75)), "k": _f32_text(a.get("bias", 1.0))}
    bid = imp.add_block(node, "LocalResponseNorm", cfg, [src])
    _set_outputs(imp, outs, imp.out_ref(bid))


def _batch_norm(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    if a.get("training_mode", 0) or not a.get("spatial", 1):
        raise Unsupported("BatchNormalization (training mode or per-position)")
    if any(o and imp.uses[o] for o in outs[1:]):
        raise Unsupported("BatchNormalization (running statistics outputs)")
    scale, bias, mean, var = (imp.const(node, i, "statistics") for i in ins[1:5])
    cfg: dict[str, Any] = {}
    eps = _f32_text(a.get("epsilon", 1e-5))
    if eps != 1e-5:
        cfg["eps"] = eps
    momentum = float(Decimal(1) - Decimal(str(np.float32(a.get("momentum", 0.9)))))
    if momentum != 0.1:
        cfg["momentum"] = momentum
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var}
    if len(x.shape) == 3:  # (N, F, T) that is a (N, T, F) sequence transposed: the engine's
        seq = _is_transposed(imp, x, (0, 2, 1)) if x.idx is not None else None
        if seq is None:
            raise Unsupported("BatchNormalization (on (C, L) sequences)")
        src = imp.plain(node, seq)
        bid = imp.add_block(node, "BatchNorm", cfg, [src], weights)
        idx = imp.idx(imp.out_ref(bid)).transpose(0, 2, 1)
        imp.refs[outs[0]] = imp.make_ref(bid, idx)
        return
    src = imp.plain(node, x)
    bid = imp.add_block(node, "BatchNorm", cfg, [src], weights)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _dropout(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    if len(outs) > 1 and outs[1] and imp.uses[outs[1]]:
        raise Unsupported("Dropout (mask output)")
    if len(ins) > 2 and ins[2]:
        if not (ins[2] in imp.consts and not np.any(imp.consts[ins[2]])):
            raise Unsupported("Dropout (training mode)")
    ratio = a.get("ratio", 0.5)
    if len(ins) > 1 and ins[1]:
        ratio = float(np.asarray(imp.const(node, ins[1], "ratio")).ravel()[0])
    rate = _f32_text(ratio)
    src = imp.plain(node, x)
    bid = imp.add_block(node, "Dropout", {} if rate == 0.5 else {"rate": rate}, [src])
    _set_outputs(imp, outs, imp.out_ref(bid))


def _concat(imp, node, ins, outs, a):
    if any(i in imp.consts for i in ins if i):
        raise Unsupported("Concat (with a constant)")
    refs = [imp.ref(node, i) for i in ins]
    rank = len(refs[0].shape)
    axis = a.get("axis", 1)
    if (axis + rank if axis < 0 else axis) == 0:
        raise Unsupported("Concat (along the batch)")
    srcs = [imp.plain(node, r) for r in refs]
    bid = imp.add_block(node, "Concat", {"axis": axis if axis < 0 else axis - 1}, srcs)
    _set_outputs(imp, outs, imp.out_ref(bid))


def _resize(imp, node, ins, outs, a):
    op = node.op_type
    x = imp.ref(node, ins[0])
    if a.get("mode", "nearest") != "nearest":
        raise Unsupported(f"{op} ({a.get('mode')})")
    if op == "Upsample" or imp.opset < 11:
        ctm, nearest = "asymmetric", "floor"  # Upsample and Resize-10: floor(x / scale)
    else:
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
    ok = (ctm, nearest) == ("asymmetric", "floor") or (
        ctm in ("half_pixel", "pytorch_half_pixel")
        and nearest in ("round_prefer_floor", "round_prefer_ceil")
    )
    if not ok or a.get("antialias", 0) or "axes" in a:
        raise Unsupported(f"{op} ({ctm}, {nearest})")
    src = imp.plain(node, x)
    if len(imp.shapes[src]) != 3:
        raise Unsupported(f"{op} (not 2-D)")
    _, h, w = imp.shapes[src]
    if "scales" in a:
        scales = list(a["scales"])
    else:
        pos = 1 if op == "Upsample" or imp.opset < 11 else 2
        scales = None
        if len(ins) > pos and ins[pos] and np.size(imp.const(node, ins[pos], "scales")):
            scales = [float(s) for s in np.ravel(imp.consts[ins[pos]])]
        elif len(ins) > 3 and ins[3]:
            sizes = [int(s) for s in np.ravel(imp.const(node, ins[3], "sizes"))]
            scales = [sizes[0] / imp.B, sizes[1] / imp.shapes[src][0], sizes[2] / h, sizes[3] / w]
    if (
        scales is None
        or len(scales) != 4
        or scales[:2] != [1, 1]
        or any(s < 1 or s != int(s) for s in scales[2:])
    ):
        raise Unsupported(f"{op} (not a whole-number upscale of height and width)")
    sh, sw = int(scales[2]), int(scales[3])
    bid = imp.add_block(
        node, "Upsample2D", {} if (sh, sw) == (2, 2) else {"scale": _pair_or_int([sh, sw])}, [src]
    )
    _set_outputs(imp, outs, imp.out_ref(bid))


def _gather(imp, node, ins, outs, a):
    if ins[0] not in imp.consts or ins[1] not in imp.refs or a.get("axis", 0) != 0:
        raise Unsupported("Gather (of computed data)")
    w = imp.consts[ins[0]]
    if w.ndim != 2 or not imp.int_input:
        raise Unsupported("Gather (not an embedding of integer ids)")
    src = imp.plain(node, imp.refs[ins[1]])
    cfg = {"num_embeddings": int(w.shape[0]), "embedding_dim": int(w.shape[1])}
    bid = imp.add_block(node, "Embedding", cfg, [src], {"weight": w})
    _set_outputs(imp, outs, imp.out_ref(bid))


RECURRENT = {
    # op: (block type, gates, ONNX gate blocks in PyTorch's order, default activations)
    "RNN": ("RNN", 1, None, ["Tanh"]),
    "LSTM": ("LSTM", 4, tuple(np.argsort(LSTM_TO_ONNX)), ["Sigmoid", "Tanh", "Tanh"]),
    "GRU": ("GRU", 3, tuple(np.argsort(GRU_TO_ONNX)), ["Sigmoid", "Tanh"]),
}


def _zero_or_absent(imp, node, ins, k) -> bool:
    return len(ins) <= k or not ins[k] or (ins[k] in imp.consts and not np.any(imp.consts[ins[k]]))


def _recurrent(imp, node, ins, outs, a):
    op = node.op_type
    typ, gates, order, acts = RECURRENT[op]
    x = imp.ref(node, ins[0])
    W, R = imp.const(node, ins[1], "weights"), imp.const(node, ins[2], "weights")
    direction = a.get("direction", "forward")
    if direction not in ("forward", "bidirectional"):
        raise Unsupported(f"{op} ({direction})")
    d = 2 if direction == "bidirectional" else 1
    h = int(a.get("hidden_size", R.shape[-1]))
    if len(ins) > 4 and ins[4]:
        raise Unsupported(f"{op} (sequence_lens)")
    for k in (5, 6) if op == "LSTM" else (5,):
        if not _zero_or_absent(imp, node, ins, k):
            what = ("initial_h", "initial_c")[k - 5]
            how = "a constant not zero" if ins[k] in imp.consts else "computed from the data"
            raise Unsupported(f"{op} ({what} {ins[k]!r} {how}: blocks start from zero state)")
    if "clip" in a or a.get("input_forget", 0):
        raise Unsupported(f"{op} (clip or coupled gates)")
    given = [s.lower() for s in a.get("activations", [])]
    cfg: dict[str, Any] = {"hidden_size": h}
    if op == "RNN":
        fns = given or ["tanh"] * d
        if len(set(fns)) != 1 or fns[0] not in ("tanh", "relu"):
            raise Unsupported(f"RNN ({', '.join(fns)})")
        if fns[0] == "relu":
            cfg["nonlinearity"] = "relu"
    elif given and given != [s.lower() for s in acts] * d:
        raise Unsupported(f"{op} (activations {', '.join(given)})")
    if op == "GRU" and not a.get("linear_before_reset", 0):
        raise Unsupported("GRU (linear_before_reset=0)")
    layout = a.get("layout", 0)
    xi = imp.idx(x)
    if xi.ndim != 3:
        raise Unsupported(f"{op} (input not a sequence)")
    seq = imp.make_ref(x.block, xi.transpose(1, 0, 2) if layout == 0 else xi, x.moves)
    if seq.idx is not None and (seq.idx < 0).any():
        raise NeedSequences(imp.rnn_node[seq.block])
    src = imp.plain(node, seq, "as its (time, batch, features) sequence")
    B = np.zeros((d, 2 * gates * h), np.float32)
    if len(ins) > 3 and ins[3]:
        B = imp.const(node, ins[3], "bias")
    if W.shape[0] != d or R.shape != (d, gates * h, h) or B.shape != (d, 2 * gates * h):
        raise imp.bad(node, f"weights W{W.shape} R{R.shape} B{B.shape} do not fit hidden_size {h}")

    def torch_rows(m):
        if order is None:
            return m
        return np.concatenate([m[k * h : (k + 1) * h] for k in order])

    weights = {}
    for k, sfx in enumerate(("", "_reverse")[:d]):
        weights["weight_ih" + sfx] = torch_rows(W[k])
        weights["weight_hh" + sfx] = torch_rows(R[k])
        weights["bias_ih" + sfx] = torch_rows(B[k, : gates * h])
        weights["bias_hh" + sfx] = torch_rows(B[k, gates * h :])
    if op == "LSTM" and len(ins) > 7 and ins[7]:  # peepholes P (D, 3H), ONNX's order i, o, f
        if ins[7] not in imp.consts:
            raise Unsupported(f"LSTM (peepholes P {ins[7]!r} computed from the data)")
        P = imp.consts[ins[7]]
        if P.shape != (d, 3 * h):
            raise imp.bad(node, f"peepholes P{P.shape} do not fit hidden_size {h}")
        cfg["peepholes"] = True
        for k, sfx in enumerate(("", "_reverse")[:d]):
            for j, g in enumerate("iof"):
                weights[f"weight_c{g}{sfx}"] = P[k, j * h : (j + 1) * h]
    if d == 2:
        cfg["bidirectional"] = True
    sequences = imp.node_index in imp.seq_nodes
    if sequences:
        cfg["return_sequences"] = True
    if op == "LSTM" and len(outs) > 2 and outs[2] and imp.uses[outs[2]]:
        raise Unsupported("LSTM (cell state output)")
    bid = imp.add_block(node, typ, cfg, [src], weights)
    imp.rnn_node[bid] = imp.node_index
    t = imp.shapes[src][0]
    n = imp.B
    if sequences:  # block output (N, T, D*H); ONNX Y (T, D, N, H), Y_h (D, N, H)
        y = np.arange(n * t * d * h).reshape(n, t, d, h).transpose(1, 2, 0, 3)
        yh = np.stack([y[t - 1, 0]] + ([y[0, 1]] if d == 2 else []))
    else:  # block output (N, D*H): only the final states of Y exist
        yh = np.arange(n * d * h).reshape(n, d, h).transpose(1, 0, 2)
        y = np.full((t, d, n, h), -1, np.int64)
        y[t - 1, 0] = yh[0]
        if d == 2:
            y[0, 1] = yh[1]
    if layout:
        y, yh = y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2)
    for name, idx in zip(outs[:2], (y, yh), strict=False):
        if name:
            imp.refs[name] = imp.make_ref(bid, idx)


MAPPERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Sum": _add,
    "Relu": _activation("relu"),
    "LeakyRelu": _activation("leaky_relu"),
    "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"),
    "Softmax": _activation("softmax"),
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_avg_pool,
    "ReduceMean": _reduce_mean,
    "ReduceMax": _reduce_mean,
    "MaxUnpool": _max_unpool,
    "BatchNormalization": _batch_norm,
    "LRN": _lrn,
    "Dropout": _dropout,
    "Concat": _concat,
    "Resize": _resize,
    "Upsample": _resize,
    "Gather": _gather,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
}
