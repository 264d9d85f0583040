"""What the ONNX importer evaluates itself: constants (NumPy on the operators that compute
shapes and constant tensors) and the data-movement operators applied to index arrays (see
``importer``), plus the small types the importer and its operator mappers share."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

MAX_FOLD = 1 << 24  # elements of one evaluated constant or index array


class Unsupported(Exception):
    """An operator (or a use of one) with no block: counted, reported together."""

    def __init__(self, label: str, named: bool = False):
        super().__init__(label)
        self.label = label
        self.named = named  # the label names the node(s) concerned itself


class NeedSequences(Exception):
    """A recurrent node's full output sequence is read: import again with it on."""

    def __init__(self, node: int):
        super().__init__(node)
        self.node = node


@dataclass
class Ref:
    block: str
    shape: tuple[int, ...]  # the ONNX tensor's shape (batch included)
    idx: np.ndarray | None = None  # None: the block's output in plain order
    # the nodes that moved the data since the block's plain output ("Slice 'source'"), named
    # when a block cannot read it
    moves: tuple[str, ...] = ()

    def after(self) -> str:
        """Where the data comes from, for a message: "block 'in''s output after Slice 'a'"."""
        how = f" after {', '.join(self.moves[-4:])}" if self.moves else ""
        more = f" (and {len(self.moves) - 4} more)" if len(self.moves) > 4 else ""
        return f"block {self.block!r}'s output{how}{more}"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", "replace") for s in v]
        out[a.name] = v
    return out


def _f32_text(v: float) -> float:
    """A float32 attribute as the decimal it was written as (0.8999999761 -> 0.9)."""
    return float(str(np.float32(v)))


def _size(shape: Any) -> int:
    return int(math.prod(int(d) for d in shape))


def _check_size(shape: Any, what: str) -> None:
    if any(int(d) < 0 for d in shape) or _size(shape) > MAX_FOLD:
        raise ValueError(f"{what} of shape {tuple(int(d) for d in shape)} is too large")


def _clean_id(text: str) -> str:
    """``text`` as a block id: control, format and separator characters become "_"."""
    bad = ("Zl", "Zp")  # with every C* category: what graph_json.valid_id refuses and more
    s = "".join(
        "_" if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in bad else c
        for c in text
    ).strip()
    return s[:180]


def _pair_or_int(v: list[int]) -> Any:
    return v[0] if len(set(v)) == 1 else list(v)


# --- NumPy evaluation of the operators that only move or compute constants ------------------------
def _axes_arg(node_attrs, args, pos):
    if "axes" in node_attrs:
        return list(node_attrs["axes"])
    if len(args) > pos and args[pos] is not None:
        return [int(a) for a in np.ravel(args[pos])]
    return None


def _move(op: str, a: dict, x: np.ndarray, args: list, n_out: int) -> list[np.ndarray]:
    """Data-movement operators on ``x`` (a constant or an index array)."""
    if op in ("Identity", "Cast", "CastLike"):
        return [x]
    if op == "Reshape":
        shape = [int(d) for d in np.ravel(args[0])]
        if not a.get("allowzero", 0):
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Flatten":
        axis = a.get("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis
        return [x.reshape(_size(x.shape[:axis]), -1)]
    if op == "Transpose":
        return [x.transpose(a.get("perm", list(range(x.ndim))[::-1]))]
    if op == "Squeeze":
        axes = _axes_arg(a, args, 0)
        return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))]
    if op == "Unsqueeze":
        axes = _axes_arg(a, args, 0)
        rank = x.ndim + len(axes)
        out = x
        for ax in sorted(ax + rank if ax < 0 else ax for ax in axes):
            out = np.expand_dims(out, ax)
        return [out]
    if op == "Gather":
        ind = np.asarray(args[0]).astype(np.int64)
        axis = a.get("axis", 0)
        axis = axis + x.ndim if axis < 0 else axis
        ind = np.where(ind < 0, ind + x.shape[axis], ind)
        return [np.take(x, ind, axis=axis)]
    if op == "Slice":
        if "starts" in a:
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
        else:
            starts, ends = np.ravel(args[0]), np.ravel(args[1])
            axes = np.ravel(args[2]) if len(args) > 2 and args[2] is not None else None
            steps = np.ravel(args[3]) if len(args) > 3 and args[3] is not None else None
        axes = range(len(starts)) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            ax = int(ax) + x.ndim if int(ax) < 0 else int(ax)
            big = 1 << 62
            sl[ax] = slice(int(np.clip(s, -big, big)), int(np.clip(e, -big, big)), int(st))
        return [x[tuple(sl)]]
    if op == "Split":
        axis = a.get("axis", 0)
        axis = axis + x.ndim if axis < 0 else axis
        split = a.get("split")
        if split is None and args and args[0] is not None:
            split = [int(v) for v in np.ravel(args[0])]
        if split is None:
            parts = np.array_split(x, n_out, axis=axis)
            return list(parts)
        return list(np.split(x, np.cumsum(split)[:-1], axis=axis))
    raise KeyError(op)


MOVES = {
    "Identity",
    "Cast",
    "CastLike",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Gather",
    "Slice",
    "Split",
}


def _binary(op, x, y):
    if op == "Add":
        return x + y
    if op == "Sub":
        return x - y
    if op == "Mul":
        return x * y
    if op == "Div":
        if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
            return np.trunc(x / y).astype(x.dtype)
        return x / y
    if op == "Equal":
        return np.equal(x, y)
    if op == "Max":
        return np.maximum(x, y)
    if op == "Min":
        return np.minimum(x, y)
    raise KeyError(op)


def _fold(op: str, a: dict, args: list, n_out: int) -> list[np.ndarray]:
    """Evaluate an operator whose inputs are all constants."""
    if op in MOVES:
        if op == "Cast":
            return [np.asarray(args[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"]))]
        return _move(op, a, np.asarray(args[0]), args[1:], n_out)
    if op in ("Add", "Sub", "Mul", "Div", "Equal", "Max", "Min"):
        x, y = np.asarray(args[0]), np.asarray(args[1])
        _check_size(np.broadcast_shapes(x.shape, y.shape), op)
        return [np.asarray(_binary(op, x, y))]
    if op == "Neg":
        return [-np.asarray(args[0])]
    if op == "Sqrt":
        return [np.sqrt(np.asarray(args[0]))]
    if op == "Shape":
        shape = np.array(np.shape(args[0]), np.int64)
        return [shape[a.get("start", 0) : a.get("end", len(shape))]]
    if op == "Size":
        return [np.array(np.size(args[0]), np.int64)]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(v) for v in args], axis=a.get("axis", 0))]
    if op == "ConstantOfShape":
        shape = [int(d) for d in np.ravel(args[0])]
        _check_size(shape, op)
        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full(shape, value.ravel()[0], value.dtype)]
    if op == "Expand":
        x = np.asarray(args[0])
        shape = np.broadcast_shapes(x.shape, tuple(int(d) for d in np.ravel(args[1])))
        _check_size(shape, op)
        return [np.broadcast_to(x, shape).copy()]
    if op == "Range":
        start, limit, delta = (np.asarray(v).item() for v in args[:3])
        n = max(0, math.ceil((limit - start) / delta)) if delta else -1
        _check_size([n], op)
        return [np.arange(start, limit, delta, dtype=np.asarray(args[0]).dtype)]
    if op == "Where":
        return [np.where(args[0], args[1], args[2])]
    raise KeyError(op)


FOLDS = MOVES | {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Equal",
    "Max",
    "Min",
    "Neg",
    "Sqrt",
    "Shape",
    "Size",
    "Concat",
    "ConstantOfShape",
    "Expand",
    "Range",
    "Where",
}


def _constant(node: onnx.NodeProto) -> np.ndarray:
    a = node.attribute[0] if node.attribute else None
    if a is None:
        raise ValueError("Constant without a value")
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name == "value_float":
        return np.array(a.f, np.float32)
    if a.name == "value_floats":
        return np.array(list(a.floats), np.float32)
    if a.name == "value_int":
        return np.array(a.i, np.int64)
    if a.name == "value_ints":
        return np.array(list(a.ints), np.int64)
    raise Unsupported(f"Constant ({a.name})")
