"""ONNX model -> Graph + weights: each operator mapped onto a block, the shape plumbing that
exporters emit (Shape -> Gather -> Concat -> Reshape, Transposes around recurrent nodes)
folded away.

How the plumbing is followed: every runtime tensor is a ``Ref`` to the block whose output it
comes from, plus (when it is not simply that output) an integer array ``idx`` of the tensor's
shape holding, for each element, its flat index into the block's output at a concrete batch
size. Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Gather, Slice and Split act on ``idx``
as they would on data; a block that reads a tensor needs ``idx`` to be the plain order again
(0, 1, 2, ...), else the model moves data in a way no block does and is refused. Constant
subgraphs, including Shape of a runtime tensor, are evaluated with NumPy.

A recurrent node starts with ``return_sequences`` off; its ``Y`` then holds the final states
only (every other element -1). If anything reads a -1, the import restarts with that node
returning sequences. So ``fc(out[:, -1])`` and ``fc(h_n[-1])`` both give one LSTM block.

Unsupported operators are all collected and reported in one message (op type and count);
nothing is returned then.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine import functional as F
from engine.analysis import analyze
from engine.errors import BlockPropError
from engine.export.onnx.builders import GRU_TO_ONNX, LSTM_TO_ONNX
from engine.export.onnx.exporter import EXTRA_KEY, INIT_KEYS
from engine.export.onnx.files import (
    MAX_MODEL_BYTES,
    MAX_TOTAL_BYTES,
    OnnxFileError,
    data_file,
    read_regular,
)
from engine.graph import Graph
from engine.layers import LAYER_TYPES
from engine.model import build_model

MAX_NODES = 200_000
MAX_FOLD = 1 << 24  # elements of one evaluated constant or index array
MAX_META = 1 << 20  # bytes of one metadata value read as JSON
FREE_BATCH = 2  # the batch size the plumbing is followed at when the model's is free
EXTRA_ALLOWED = set(INIT_KEYS) | {"connections"}
DX, DY = 200, 120  # layout: column and row spacing of the blocks


class Unsupported(Exception):
    """An operator (or a use of one) with no block: counted, reported together."""

    def __init__(self, label: str):
        super().__init__(label)
        self.label = label


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
    s = "".join("_" if unicodedata.category(c)[0] == "C" else c for c in text).strip()
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


# --- the import -----------------------------------------------------------------------------------
class Importer:
    def __init__(self, model: onnx.ModelProto, file: str, seq_nodes: set[int]):
        self.m, self.file, self.seq_nodes = model, file, seq_nodes
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None
        )
        if self.opset is None:
            raise OnnxFileError("the model imports no standard ONNX opset", file=file)
        self.consts: dict[str, np.ndarray] = {}
        self.refs: dict[str, Ref] = {}
        self.blocks: dict[str, dict] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.unsupported: Counter[str] = Counter()
        self.poisoned: set[str] = set()
        self.pending_bias: dict[str, str] = {}
        self.reshapes: dict[tuple, str] = {}
        self.rnn_node: dict[str, int] = {}
        self.uses: Counter[str] = Counter()
        self.node_index = 0

    # --- errors and names -------------------------------------------------------------------------
    def bad(self, node: onnx.NodeProto | None, message: str) -> OnnxFileError:
        where = f"node {node.name or node.op_type!r} ({node.op_type}): " if node is not None else ""
        return OnnxFileError(where + message, file=self.file)

    def new_id(self, base: str, fallback: str) -> str:
        base = _clean_id(base) or fallback
        bid, i = base, 1
        while bid in self.blocks:
            i += 1
            bid = f"{base}_{i}"
        return bid

    # --- tensors ----------------------------------------------------------------------------------
    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise Unsupported(f"{node.op_type} (computed {what})")
        return self.consts[name]

    def bias(self, node, ins, k: int) -> np.ndarray | None:
        """Input ``k`` as a bias, None when absent or computed as zeros (PyTorch's dynamo
        exporter feeds bias-free convolutions an expanded zero)."""
        if len(ins) <= k or not ins[k]:
            return None
        b = self.const(node, ins[k], "bias")
        return None if ins[k] not in self.stored and not np.any(b) else b

    def ref(self, node, name: str) -> Ref:
        if name not in self.refs:
            raise Unsupported(f"{node.op_type} (on a constant)")
        return self.refs[name]

    def idx(self, r: Ref) -> np.ndarray:
        if r.idx is not None:
            return r.idx
        _check_size(r.shape, "a tensor")
        return np.arange(_size(r.shape), dtype=np.int64).reshape(r.shape)

    def make_ref(self, block: str, idx: np.ndarray) -> Ref:
        """A Ref for ``idx``, dropping the array when it is the plain order."""
        shape = tuple(int(d) for d in idx.shape)
        plain = (
            shape
            and shape[0] == self.B
            and idx.size == self.B * _size(self.shapes[block])
            and np.array_equal(idx.ravel(), np.arange(idx.size))
        )
        return Ref(block, shape, None if plain else idx)

    def plain(self, node, r: Ref, what: str | None = None) -> str:
        """The block whose output (reshaped if needed) is the tensor ``r``."""
        if r.idx is not None:
            if (r.idx < 0).any():
                raise NeedSequences(self.rnn_node[r.block])
            raise Unsupported(what or f"{node.op_type} (on transposed or sliced data)")
        sample = r.shape[1:]
        if sample == self.shapes[r.block]:
            return r.block
        key = (r.block, sample)
        if key not in self.reshapes:
            typ, cfg = ("Flatten", {}) if len(sample) == 1 else ("Reshape", {"shape": list(sample)})
            self.reshapes[key] = self.add_block(
                None, typ, cfg, [r.block], base=f"{r.block}_reshape"
            )
        return self.reshapes[key]

    # --- blocks -----------------------------------------------------------------------------------
    def add_block(self, node, typ, config, inputs, weights=None, base=None) -> str:
        if base is None and node is not None:
            base = node.name or (node.output[0] if node.output else "")
        bid = self.new_id(base or typ.lower(), typ.lower())
        if node is not None:
            config = {**config, **self.extra(node)}
        cls = LAYER_TYPES[typ]
        try:
            layer = cls(name=bid, **config)
            in_shape = (
                self.shapes[inputs[0]] if cls.arity[1] == 1 else [self.shapes[i] for i in inputs]
            )
            out = tuple(int(d) for d in layer.output_shape(in_shape))
            want = {**layer.param_shapes(in_shape), **layer.buffer_shapes(in_shape)}
        except BlockPropError as e:
            raise self.bad(node, e.message) from None
        weights = weights or {}
        got = {k: tuple(v.shape) for k, v in weights.items()}
        if got != {k: tuple(s) for k, s in want.items()}:
            raise self.bad(node, f"weights {got} do not fit a {typ} block, which needs {want}")
        _check_size((self.B, *out), f"the output of {bid}")
        self.blocks[bid] = {"type": typ, "config": config, "inputs": list(inputs)}
        self.shapes[bid] = out
        for k, v in weights.items():
            self.weights[f"{bid}.{k}"] = np.ascontiguousarray(v, np.float32)
        return bid

    def out_ref(self, bid: str) -> Ref:
        return Ref(bid, (self.B, *self.shapes[bid]))

    def extra(self, node) -> dict:
        for p in node.metadata_props:
            if p.key == EXTRA_KEY and len(p.value) <= MAX_META:
                try:
                    d = json.loads(p.value)
                except (ValueError, RecursionError):
                    raise self.bad(node, f"metadata {EXTRA_KEY} is not valid JSON") from None
                if isinstance(d, dict):
                    return {k: v for k, v in d.items() if k in EXTRA_ALLOWED}
        return {}

    # --- the walk ---------------------------------------------------------------------------------
    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.m.graph
        if len(g.node) > MAX_NODES:
            raise self.bad(None, f"{len(g.node):,} nodes; at most {MAX_NODES:,} are imported")
        for t in g.initializer:
            self.consts[t.name] = numpy_helper.to_array(t)
        self.stored = set(self.consts)  # constants stored in the file (not computed)
        for nd in g.node:
            self.uses.update(i for i in nd.input if i)
        self.uses.update(o.name for o in g.output)
        self.add_input()
        for i, node in enumerate(g.node):
            self.node_index = i
            try:
                self.visit(node)
            except Unsupported as e:
                self.unsupported[e.label] += 1
                self.poisoned.update(o for o in node.output if o)
            except (ValueError, IndexError, TypeError, KeyError, np.exceptions.AxisError) as e:
                raise self.bad(node, f"cannot evaluate: {e}") from None
            for name in node.input:
                if name:
                    self.uses[name] -= 1
                    if self.uses[name] <= 0:  # its last reader: free it
                        self.refs.pop(name, None)
                        self.consts.pop(name, None)
        if self.unsupported:
            listed = ", ".join(f"{op} x{n}" for op, n in sorted(self.unsupported.items()))
            raise OnnxFileError(
                f"cannot import: no block for these ONNX operators: {listed}; nothing was imported",
                file=self.file,
            )
        return self.finish()

    def add_input(self) -> None:
        g = self.m.graph
        inits = {t.name for t in g.initializer}
        inputs = [v for v in g.input if v.name not in inits]
        if len(inputs) != 1:
            raise self.bad(None, f"the model has {len(inputs)} inputs; a graph here has one")
        v = inputs[0]
        tt = v.type.tensor_type
        if not v.type.HasField("tensor_type") or not tt.HasField("shape"):
            raise self.bad(None, f"input {v.name!r} has no tensor shape")
        dims = list(tt.shape.dim)
        if len(dims) < 2:
            raise self.bad(None, f"input {v.name!r} needs a batch axis and a sample shape")
        sample = []
        for k, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise self.bad(
                    None, f"input {v.name!r} has a free size on axis {k}: only the batch may be"
                )
            sample.append(int(d.dim_value))
        self.B = int(dims[0].dim_value) if dims[0].HasField("dim_value") else FREE_BATCH
        self.B = self.B if self.B >= 1 else FREE_BATCH
        self.int_input = tt.elem_type in (TensorProto.INT64, TensorProto.INT32)
        self.input_id = self.new_id(v.name, "input")
        self.blocks[self.input_id] = {"type": "Input", "config": {"shape": sample}, "inputs": []}
        self.shapes[self.input_id] = tuple(sample)
        self.refs[v.name] = self.out_ref(self.input_id)

    def visit(self, node: onnx.NodeProto) -> None:
        ins, outs = list(node.input), list(node.output)
        op = node.op_type
        if any(i in self.poisoned for i in ins if i):  # downstream of an unsupported node:
            self.poisoned.update(o for o in outs if o)  # still list its type if it has no block
            if op not in MAPPERS and op not in FOLDS and op != "Constant":
                self.unsupported[op] += 1
            return
        if node.domain not in ("", "ai.onnx"):
            raise Unsupported(f"{node.domain}.{op}")
        a = _attrs(node)
        if op == "Constant":
            self.consts[outs[0]] = _constant(node)
            self.stored.add(outs[0])
            return
        known = [i for i in ins if i]
        for i in known:
            if i not in self.consts and i not in self.refs:
                raise self.bad(node, f"reads {i!r}, which nothing before it produces")
        if op in FOLDS and all(i in self.consts for i in known):
            args = [self.consts[i] if i else None for i in ins]
            for o, v in zip(outs, _fold(op, a, args, len(outs)), strict=False):
                _check_size(np.shape(v), op)
                self.consts[o] = np.asarray(v)
            return
        if op == "CastLike" and ins[0] in self.consts:  # a constant cast like the data (float)
            self.consts[outs[0]] = self.consts[ins[0]].astype(np.float32)
            return
        if op == "Shape" and ins[0] in self.refs:
            shape = np.array(self.refs[ins[0]].shape, np.int64)
            self.consts[outs[0]] = shape[a.get("start", 0) : a.get("end", len(shape))]
            return
        if op in MOVES and ins[0] in self.refs and all(i in self.consts for i in known[1:]):
            r = self.refs[ins[0]]
            args = [self.consts[i] if i else None for i in ins[1:]]
            for o, v in zip(outs, _move(op, a, self.idx(r), args, len(outs)), strict=False):
                nr = self.make_ref(r.block, v)
                if (
                    op in ("Reshape", "Flatten")
                    and nr.idx is None
                    and nr.shape[1:] != self.shapes[r.block]
                ):
                    nr = self.reshape_block(node, op, r, nr)
                self.refs[o] = nr
            return
        mapper = MAPPERS.get(op)
        if mapper is None:
            raise Unsupported(op)
        mapper(self, node, ins, outs, a)

    def reshape_block(self, node, op, r: Ref, nr: Ref) -> Ref:
        """An ONNX Reshape/Flatten that changes a block's output shape: a Flatten or Reshape
        block named after the node (so our own exports come back with their ids)."""
        sample = nr.shape[1:]
        typ, cfg = (
            ("Flatten", {})
            if op == "Flatten" and len(sample) == 1
            else (
                "Reshape",
                {"shape": list(sample)},
            )
        )
        bid = self.add_block(node, typ, cfg, [r.block])
        self.reshapes.setdefault((r.block, sample), bid)
        return self.out_ref(bid)

    def finish(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.m.graph
        if len(g.output) != 1:
            raise self.bad(None, f"the model has {len(g.output)} outputs; a graph here has one")
        name = g.output[0].name
        if name not in self.refs:
            raise self.bad(None, f"the output {name!r} does not depend on the input")
        try:
            out = self.plain(None, self.refs[name], "output")
        except Unsupported:
            raise OnnxFileError(
                "cannot import: the model's output is a transposed or sliced part of a block's "
                "output, which no block gives; nothing was imported",
                file=self.file,
            ) from None
        if out == self.input_id:
            raise self.bad(None, "the output is the input itself: nothing to import")
        # keep the blocks the output depends on (dead branches of the ONNX graph are dropped)
        keep, todo = set(), [out]
        while todo:
            b = todo.pop()
            if b not in keep:
                keep.add(b)
                todo.extend(self.blocks[b]["inputs"])
        if self.input_id not in keep:
            raise self.bad(None, "the output does not depend on the input")
        order = [b for b in self.blocks if b in keep]
        depth: dict[str, int] = {}
        rows: Counter[int] = Counter()
        nodes, edges = [], []
        for b in order:
            spec = self.blocks[b]
            depth[b] = 1 + max((depth[p] for p in spec["inputs"]), default=-1)
            pos = [depth[b] * DX, rows[depth[b]] * DY]
            rows[depth[b]] += 1
            nodes.append({"id": b, "type": spec["type"], "config": spec["config"], "pos": pos})
            edges += [
                {"source": p, "target": b, "target_port": k} for k, p in enumerate(spec["inputs"])
            ]
        name, training = self.graph_meta()
        d = {
            "format": "blockprop-graph",
            "version": 1,
            "name": name,
            "description": g.doc_string[:10_000],
            "nodes": nodes,
            "edges": edges,
            "training": training,
        }
        try:
            graph = Graph.from_dict(d)
        except BlockPropError as e:
            raise OnnxFileError(f"the imported graph is not valid: {e}", file=self.file) from None
        a = analyze(graph)
        if not a.ok:
            listed = "; ".join(str(p) for p in a.problems[:3])
            raise OnnxFileError(f"the imported graph has problems: {listed}", file=self.file)
        arrays = {k: v for k, v in self.weights.items() if k.rsplit(".", 1)[0] in keep}
        model = build_model(graph, seed=0)
        names = {**model.params, **model.buffers}
        if set(names) != set(arrays):
            raise OnnxFileError("internal: the weights do not fit the graph", file=self.file)
        model.set_state(arrays)
        return graph, model.state()

    def graph_meta(self) -> tuple[str, dict]:
        props = {p.key: p.value for p in self.m.metadata_props}
        name = self.m.graph.name or Path(self.file).stem
        training: dict = {}
        for key in ("blockprop.name", "blockprop.training"):
            if key in props and len(props[key]) <= MAX_META:
                try:
                    v = json.loads(props[key])
                except (ValueError, RecursionError):
                    continue
                if key.endswith("name") and isinstance(v, str):
                    name = v
                elif key.endswith("training") and isinstance(v, dict):
                    training = v
        return name[:400], training


# --- operator -> block ---------------------------------------------------------------------------
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
        raise Unsupported("Conv (groups)")
    pad = _pads(imp, node, a, kernel, strides)
    cfg: dict[str, Any] = {"filters": int(w.shape[0]), "kernel_size": _pair_or_int(kernel)}
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
    if len(outs) > 1 and outs[1] and imp.uses[outs[1]]:
        raise Unsupported(f"{op} (indices output)")
    _no_dilation(node, a)
    kernel = list(a.get("kernel_shape", []))
    if len(kernel) != 2:
        raise Unsupported(f"{op} ({len(kernel)}-D)")
    strides = list(a.get("strides", [1, 1]))
    pad = _pads(imp, node, a, kernel, strides, False)
    src = imp.plain(node, x)
    ph, pw = F.pair(pad)
    if a.get("ceil_mode", 0):
        _, h, w = imp.shapes[src]
        for size, k, s, p in ((h, kernel[0], strides[0], ph), (w, kernel[1], strides[1], pw)):
            if (size + 2 * p - k) % s:
                raise Unsupported(f"{op} (ceil_mode)")
    if op == "AveragePool" and (ph or pw) and not a.get("count_include_pad", 0):
        raise Unsupported("AveragePool (padding left out of the mean)")
    cfg: dict[str, Any] = {"kernel_size": _pair_or_int(kernel)}
    if strides != kernel:
        cfg["stride"] = _pair_or_int(strides)
    if pad != 0:
        cfg["padding"] = pad
    typ = "MaxPool2D" if op == "MaxPool" else "AvgPool2D"
    bid = imp.add_block(node, typ, cfg, [src])
    _set_outputs(imp, outs, imp.out_ref(bid))


def _global_avg_pool(imp, node, ins, outs, a):
    src = imp.plain(node, imp.ref(node, ins[0]))
    if len(imp.shapes[src]) != 3:
        raise Unsupported("GlobalAveragePool (not 2-D)")
    bid = imp.add_block(node, "GlobalAvgPool2D", {}, [src])
    c = imp.shapes[bid][0]
    imp.refs[outs[0]] = Ref(bid, (imp.B, c, 1, 1))  # ONNX keeps (N, C, 1, 1): a plain reshape
    imp.refs[outs[0]] = imp.make_ref(bid, imp.idx(imp.refs[outs[0]]))


def _reduce_mean(imp, node, ins, outs, a):
    x = imp.ref(node, ins[0])
    axes = a.get("axes")
    if axes is None and len(ins) > 1 and ins[1]:
        axes = [int(v) for v in np.ravel(imp.const(node, ins[1], "axes"))]
    rank = len(x.shape)
    if rank != 4 or axes is None or sorted(ax % 4 for ax in axes) != [2, 3]:
        raise Unsupported("ReduceMean (not over height and width)")
    src = imp.plain(node, x)
    bid = imp.add_block(node, "GlobalAvgPool2D", {}, [src])
    c = imp.shapes[bid][0]
    shape = (imp.B, c, 1, 1) if a.get("keepdims", 1) else (imp.B, c)
    imp.refs[outs[0]] = imp.make_ref(bid, imp.idx(Ref(bid, shape)))


def _is_transposed(imp, r: Ref, perm) -> Ref | None:
    """``r`` as the plain tensor it is a transpose (by ``perm``) of, if it is one."""
    inv = np.argsort(perm)
    back = imp.make_ref(r.block, imp.idx(r).transpose(inv))
    return back if back.idx is None else None


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
    state_inputs = (5, 6, 7) if op == "LSTM" else (5,)
    if not all(_zero_or_absent(imp, node, ins, k) for k in state_inputs):
        raise Unsupported(f"{op} (initial state or peepholes)")
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
    seq = imp.make_ref(x.block, xi.transpose(1, 0, 2) if layout == 0 else xi)
    if seq.idx is not None and (seq.idx < 0).any():
        raise NeedSequences(imp.rnn_node[seq.block])
    src = imp.plain(node, seq, f"{op} (input not a (time, batch, features) sequence)")
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
    "BatchNormalization": _batch_norm,
    "Dropout": _dropout,
    "Concat": _concat,
    "Resize": _resize,
    "Upsample": _resize,
    "Gather": _gather,
    "RNN": _recurrent,
    "LSTM": _recurrent,
    "GRU": _recurrent,
}


# --- reading the file -----------------------------------------------------------------------------
def _load_external(model: onnx.ModelProto, path: Path, budget: int) -> None:
    """Fill tensors stored in external files (inside the model's folder only)."""
    tensors = list(model.graph.initializer) + [
        a.t for nd in model.graph.node for a in nd.attribute if a.HasField("t")
    ]
    for t in tensors:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        target = data_file(path.parent, info.get("location", ""), str(path))
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise OnnxFileError(
                f"tensor {t.name!r}: bad offset or length", file=str(path)
            ) from None
        data = read_regular(target, budget, offset, length)
        budget -= len(data)
        t.raw_data = data
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT


def read_model(path: str | Path) -> onnx.ModelProto:
    """Parse the ONNX file ``path`` with the limits of ``files`` and onnx's checker."""
    p = Path(path)
    data = read_regular(p, MAX_MODEL_BYTES)
    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception:  # protobuf's DecodeError and friends: not an ONNX file
        raise OnnxFileError("not an ONNX model (cannot parse it)", file=str(p)) from None
    if not m.HasField("graph"):
        raise OnnxFileError("not an ONNX model (no graph in it)", file=str(p))
    _load_external(m, p, MAX_TOTAL_BYTES - len(data))
    if m.functions:
        try:
            m = onnx.inliner.inline_local_functions(m)
        except Exception as e:
            raise OnnxFileError(f"cannot inline its functions: {e}", file=str(p)) from None
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid"
        raise OnnxFileError(f"not a valid ONNX model: {first[:300]}", file=str(p)) from None
    return m


def import_model(m: onnx.ModelProto, file: str) -> tuple[Graph, dict[str, np.ndarray]]:
    """(Graph, weights) from a parsed model; OnnxFileError (one line) for anything wrong."""
    seq: set[int] = set()
    while True:
        try:
            return Importer(m, file, seq).run()
        except NeedSequences as e:
            if e.node in seq:
                raise OnnxFileError(
                    "internal: recurrent output still incomplete", file=file
                ) from None
            seq.add(e.node)
        except (BlockPropError, MemoryError):
            raise
        except Exception as e:  # a malformed model met where no check expected it
            text = str(e).strip().splitlines()
            raise OnnxFileError(
                f"cannot import: {type(e).__name__}: {text[0][:200] if text else ''}", file=file
            ) from None


def import_file(path: str | Path) -> tuple[Graph, dict[str, np.ndarray]]:
    return import_model(read_model(path), str(path))
