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

Unsupported operators are all collected and reported in one message (op type, why, count and
the nodes' names; data a block cannot read names the nodes that sliced or transposed it);
nothing is returned then.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine.analysis import analyze
from engine.errors import BlockPropError, GraphError
from engine.export.onnx.evaluate import (
    FOLDS,
    MOVES,
    NeedSequences,
    Ref,
    Unsupported,
    _attrs,
    _check_size,
    _clean_id,
    _constant,
    _f32_text,
    _fold,
    _move,
    _size,
)
from engine.export.onnx.exporter import EXTRA_KEY, INIT_KEYS
from engine.export.onnx.files import OnnxFileError, read_model
from engine.export.onnx.import_ops import MAPPERS, _set_outputs
from engine.graph import Graph
from engine.graph_json import parse_json
from engine.layers import LAYER_TYPES
from engine.model import build_model

MAX_NODES = 200_000
MAX_META = 1 << 20  # bytes of one metadata value read as JSON
FREE_BATCH = 2  # the batch size the plumbing is followed at when the model's is free
EXTRA_ALLOWED = set(INIT_KEYS) | {"connections", "gaussian_noise_std"}
DX, DY = 200, 120  # layout: column and row spacing of the blocks


# Operators that PyTorch's exporters emit as a whole module (named by the module's path alone).
MODULE_OPS = {
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "RNN",
    "LSTM",
    "GRU",
    "Gather",
    "MaxPool",
    "AveragePool",
    "Dropout",
}


def readable_name(node) -> str:
    """A block id for ``node``: PyTorch's module path when the exporter recorded one
    ("b1.conv1", "b1.relu_1"), else the node's name ("/c1/Conv" -> "c1", "/b1/Relu" ->
    "b1.relu"), else its output's name. Our own exports name nodes after their blocks."""
    meta = {p.key: p.value for p in node.metadata_props}
    scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes", ""))
    classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy", ""))
    if len(scopes) >= 2 and all(isinstance(x, str) for x in scopes):
        leaf_module = len(classes) == len(scopes) and str(classes[-2]).startswith("torch.nn.")
        if leaf_module and len(scopes) >= 3:
            return scopes[-2]
        return ".".join(x for x in (scopes[-2] if len(scopes) >= 3 else "", scopes[-1]) if x)
    name = node.name or ""
    if name.startswith("/"):  # TorchScript exporter: "/layer1/layer1.0/conv1/Conv"
        parts = [x for x in name.split("/") if x]
        op = parts.pop() if parts else node.op_type
        parts = [
            x for k, x in enumerate(parts) if not any(y.startswith(x + ".") for y in parts[k + 1 :])
        ]
        path = ".".join(parts)
        kind = op.split("_")[0]
        if not path:
            return kind.lower()
        return path if kind in MODULE_OPS else f"{path}.{kind.lower()}"
    return name or (node.output[0] if node.output else "")


def _node_names(names: list[str], most: int = 3) -> str:
    """ "node 'a'" or "nodes 'a', 'b' and 2 more", for a one-line message."""
    shown = ", ".join(repr(n) for n in names[:most])
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"node{'s' if len(names) > 1 else ''} {shown}{more}"


def _literal_list(text: str) -> list:
    """A Python list literal of strings (PyTorch writes name scopes so), read without eval."""
    if not text.startswith("[") or len(text) > 10_000:
        return []
    try:
        v = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    return v if isinstance(v, list) else []


class Importer:
    """One pass over a model's nodes (see the module docstring). ``seq_nodes``: indices of the
    recurrent nodes that return sequences in this pass. ``run()`` returns (Graph, weights)."""

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
        self.refused_nodes: dict[str, list[str]] = {}  # label -> the refused nodes' names
        self.poisoned: set[str] = set()
        self.pending_bias: dict[str, str] = {}
        self.reshapes: dict[tuple, str] = {}
        self.rnn_node: dict[str, int] = {}
        self.uses: Counter[str] = Counter()
        self.node_index = 0
        # max-unpooling and text CNNs: a MaxPool's indices output -> (its input block, its
        # settings, the node's name); a Transpose's (block, shape) -> the node's name
        self.pool_indices: dict[str, tuple[str, dict, str]] = {}
        self.transposes: dict[tuple, str] = {}

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

    def refuse(self, node: onnx.NodeProto, label: str, named: bool = False) -> None:
        """Count ``node`` as having no block (``label``: op type and why; ``named``: the label
        names the nodes itself)."""
        self.unsupported[label] += 1
        names = self.refused_nodes.setdefault(label, [])
        if not named:
            names.append(node.name or (node.output[0] if node.output else node.op_type))

    def make_ref(self, block: str, idx: np.ndarray, moves: tuple[str, ...] = ()) -> Ref:
        """A Ref for ``idx``, dropping the array when it is the plain order; ``moves``: the
        nodes that moved the data there (forgotten once it is plain again)."""
        shape = tuple(int(d) for d in idx.shape)
        plain = (
            shape
            and shape[0] == self.B
            and idx.size == self.B * _size(self.shapes[block])
            and np.array_equal(idx.ravel(), np.arange(idx.size))
        )
        return Ref(block, shape, None if plain else idx, () if plain else moves)

    def plain(self, node, r: Ref, as_what: str = "") -> str:
        """The block whose output (reshaped if needed) is the tensor ``r``; ``as_what``: how
        ``node`` reads it, for the message ("as its (time, batch, features) sequence")."""
        if r.idx is not None:
            if (r.idx < 0).any():
                raise NeedSequences(self.rnn_node[r.block])
            swapped = (
                self.make_ref(r.block, r.idx.transpose(0, 2, 1)) if len(r.shape) == 3 else None
            )
            if swapped is not None and swapped.idx is None:
                key = (r.block, "transpose")  # a sequence's two axes swapped: a Transpose
                if key not in self.reshapes:
                    base = self.transposes.get((r.block, r.shape), f"{r.block}_transpose")
                    self.reshapes[key] = self.add_block(None, "Transpose", {}, [r.block], base=base)
                return self.reshapes[key]
            if node is None:
                raise Unsupported("output")
            reader = f"{node.op_type} node {node.name or node.op_type!r}"
            if r.moves:  # name the node that moved the data first: usually the real culprit
                raise Unsupported(
                    f"{r.moves[0]} ({r.after()} is no block's output: {reader} cannot read it"
                    f"{' ' + as_what if as_what else ''})",
                    named=True,
                )
            raise Unsupported(f"{node.op_type} (reads {r.after()} transposed or sliced)")
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
            base = readable_name(node)
        bid = self.new_id(base or typ.lower(), typ.lower())
        if node is not None:
            extra = self.extra(node)
            extra.pop("gaussian_noise_std", None)  # read by the Identity that carries it
            config = {**config, **extra}
        cls = LAYER_TYPES[typ]
        try:
            layer = cls(name=bid, **config)
            for key in cls.links:  # the block a setting names (MaxUnpool2D's pool)
                other = self.blocks[config[key]]
                partner = LAYER_TYPES[other["type"]](name=config[key], **other["config"])
                partner.in_shape = self.shapes[other["inputs"][0]]
                partner.out_shape = self.shapes[config[key]]
                layer.bind(key, partner)
            in_shape = (
                [self.shapes[i] for i in inputs]
                if cls.takes_list(len(inputs))
                else self.shapes[inputs[0]]
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
                try:  # a graph file's checks: no huge ints, deep nesting, lone surrogates
                    d = parse_json(p.value)
                except GraphError:
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
                self.refuse(node, e.label, e.named)
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
            listed = "; ".join(
                f"{label} x{n}"
                + (
                    f" ({_node_names(self.refused_nodes[label])})"
                    if self.refused_nodes[label]
                    else ""
                )
                for label, n in sorted(self.unsupported.items())
            )
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
                self.refuse(node, op)
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
        std = self.extra(node).get("gaussian_noise_std") if op == "Identity" else None
        if isinstance(std, (int, float)) and not isinstance(std, bool) and ins[0] in self.refs:
            # our own GaussianNoise block (training-only noise: the identity at inference)
            src = self.plain(node, self.refs[ins[0]])
            bid = self.add_block(node, "GaussianNoise", {"std": _f32_text(std)}, [src])
            _set_outputs(self, outs, self.out_ref(bid))
            return
        if op in MOVES and ins[0] in self.refs and all(i in self.consts for i in known[1:]):
            r = self.refs[ins[0]]
            if op == "Transpose" and list(a.get("perm", [])) == [0, 2, 1] and r.idx is None:
                shape = (r.shape[0], r.shape[2], r.shape[1])
                self.transposes.setdefault((r.block, shape), node.name or outs[0])
            args = [self.consts[i] if i else None for i in ins[1:]]
            moves = (*r.moves, f"{op} {node.name or outs[0]!r}")
            for o, v in zip(outs, _move(op, a, self.idx(r), args, len(outs)), strict=False):
                nr = self.make_ref(r.block, v, moves)
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

    def _output(self, name: str, k: int) -> str:
        """The block giving the model's output ``name`` (the ``k``-th)."""
        what = "the output" if k == 0 else f"output {k + 1}"
        if name not in self.refs:
            raise self.bad(None, f"{what} {name!r} does not depend on the input")
        r = self.refs[name]
        try:
            out = self.plain(None, r)
        except Unsupported:
            raise OnnxFileError(
                f"cannot import: {what} of the model is a transposed or sliced part of "
                f"{r.after()}, which no block gives; nothing was imported",
                file=self.file,
            ) from None
        if out == self.input_id:
            raise self.bad(None, f"{what} is the input itself: nothing to import")
        return out

    def finish(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.m.graph
        if not g.output:
            raise self.bad(None, "the model has no output")
        outs = [self._output(o.name, k) for k, o in enumerate(g.output)]
        out = outs[0]  # the main output; any others become extra heads (engine.heads)
        self.extra_outputs = [b for b in dict.fromkeys(outs[1:]) if b != out]
        # keep the blocks the outputs depend on (dead branches of the ONNX graph are dropped)
        keep, todo = set(), list(outs)
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
        given = training.pop("heads", None)
        if self.extra_outputs:  # the weights the exported graph gave them, else 1
            known = {
                h["block"]: h.get("weight", 1.0)
                for h in (given if isinstance(given, list) else [])
                if isinstance(h, dict) and isinstance(h.get("block"), str)
            }
            training["heads"] = [
                {"block": b, "weight": known.get(b, 1.0)} for b in self.extra_outputs
            ]
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
                try:  # a graph file's checks: no huge ints, deep nesting, lone surrogates
                    v = parse_json(props[key])
                except GraphError:
                    continue
                if key.endswith("name") and isinstance(v, str):
                    name = v
                elif key.endswith("training") and isinstance(v, dict):
                    training = v
        return name[:400], training


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
