"""Graph -> ONNX ModelProto, built node by node with ``onnx.helper`` (no PyTorch needed).

The model takes the Input block's data with a free batch axis ``N`` (float32, or int64 ids for
a graph that starts with an Embedding) and returns the output block's output. Tensors and nodes
are named after the block ids; weights ``<block id>.<name>`` as in weights files. Settings ONNX
has no place for (a Conv2D's connection table, the init settings) and the training settings go
in ``metadata_props`` as JSON, so an import restores the graph exactly.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.errors import GraphError
from engine.export.onnx.builders import builder_for
from engine.export.plan import make_plan
from engine.layers import Attention, Embedding, Layer
from engine.model import build_model
from engine.weights import load_weights

# Newest opset of the onnx package this was written for; onnxruntime 1.32 runs it.
OPSET = 28
IR_VERSION = 14
PRODUCER = "BlockProp"
EXTRA_KEY = "blockprop.extra"  # node metadata: settings ONNX cannot express (JSON)
GRAPH_KEYS = ("blockprop.name", "blockprop.training")  # model metadata (JSON)
INIT_KEYS = ("init", "init_std", "init_limit")
HELPER_OPS = {"Transpose", "Reshape", "Cast", "Flatten"}


def safe_text(text: Any, limit: int = 10_000) -> str:
    """User text as it goes into the protobuf: a str of valid UTF-8 (lone surrogates, which
    protobuf refuses, become U+FFFD), at most ``limit`` characters. ONNX never executes it;
    viewers show it as text."""
    s = str(text)[:limit]
    return s.encode("utf-8", "replace").decode("utf-8", "replace")


class Context:
    """What builders add to: nodes, initialisers (weights) and unique tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set()
        self.node_names: set[str] = set()
        self.int64: set[str] = set()
        self._extra: dict[str, dict] = {}

    def name(self, base: str) -> str:
        """``base`` if still free, else ``base_2``, ``base_3``, ..."""
        base = safe_text(base, 400)
        n, i = base, 1
        while n in self.used:
            i += 1
            n = f"{base}_{i}"
        self.used.add(n)
        return n

    def init(self, name: str, array: np.ndarray) -> str:
        n = self.name(name)
        self.inits.append(numpy_helper.from_array(np.array(array, order="C"), n))
        return n

    def weight(self, layer: Layer, key: str) -> str:
        """A parameter or buffer of ``layer`` as float32 initialiser ``<block id>.<key>``."""
        a = layer.params.get(key)
        if a is None:
            a = layer.buffers[key]
        return self.init(f"{layer.name}.{key}", np.asarray(a, np.float32))

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> list[str]:
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs

    def name_nodes(self, block: str, first: int) -> onnx.NodeProto:
        """Name the nodes a block added (from index ``first``): its main node (the first that
        is not a Transpose/Reshape/Cast/Flatten around it) takes the block id, the others
        ``<id>/<op>``. Returns the main node."""
        added = self.nodes[first:]
        main = next((nd for nd in added if nd.op_type not in HELPER_OPS), added[0])
        for nd in added:
            base = safe_text(block, 400) if nd is main else f"{safe_text(block, 400)}/{nd.op_type}"
            name, i = base, 1
            while name in self.node_names:
                i += 1
                name = f"{base}_{i}"
            self.node_names.add(name)
            nd.name = name
        return main

    def as_int64(self, tensor: str) -> str:
        if tensor in self.int64:
            return tensor
        return self.node("Cast", [tensor], [self.name(f"{tensor}/ids")], to=TensorProto.INT64)[0]

    def extra(self, layer: Layer, **settings: Any) -> None:
        self._extra.setdefault(layer.name, {}).update(settings)

    def extras(self, block: str) -> dict:
        return self._extra.get(block, {})


def _input_dtype(graph, model) -> int:
    succ = graph.outputs_of(model.input_id)

    def reads_ids(s: str) -> bool:  # an Embedding, or an Attention's mask port (token ids)
        layer = model.layers[s]
        if isinstance(layer, Attention):
            return graph.port_of(model.input_id, s) == 2
        return isinstance(layer, Embedding)

    if succ and all(reads_ids(s) for s in succ):
        return TensorProto.INT64
    return TensorProto.FLOAT


def export_model(
    graph, weights: str | None = None, arrays: dict[str, np.ndarray] | None = None
) -> onnx.ModelProto:
    """The ONNX model of ``graph`` with the weights of the file ``weights`` (or the arrays
    ``arrays``, or without either the graph's initial weights at its seed). A graph with
    problems raises GraphError; a block with no ONNX builder GraphError naming it."""
    plan = make_plan(graph)
    if plan.flat is not None:  # modules: ONNX holds their blocks ("instance/inner")
        graph = plan.flat.graph
    model = build_model(graph, seed=plan.seed)
    if weights is not None:
        load_weights(model, weights)
    elif arrays is not None:
        model.set_state(arrays)
    ctx = Context()
    for n, layer in model.layers.items():
        if n != model.input_id and builder_for(layer) is None:
            raise GraphError(
                f"{layer.type_name} has no ONNX form yet, so this graph cannot be exported to ONNX",
                block=n,
            )
    names = {n: ctx.name(n) for n in model.layers}
    in_name = names[model.input_id]
    dtype = _input_dtype(graph, model)
    if dtype == TensorProto.INT64:
        ctx.int64.add(in_name)
    for n, layer in model.layers.items():
        if n == model.input_id:
            continue
        first = len(ctx.nodes)
        builder_for(layer)(ctx, layer, [names[p] for p in model.inputs[n]], names[n])
        main = ctx.name_nodes(n, first)
        extra = dict(ctx.extras(n))
        cfg = graph.config_of(n)
        extra.update({k: cfg[k] for k in INIT_KEYS if k in cfg})
        if extra:
            helper.set_metadata_props(main, {EXTRA_KEY: json.dumps(extra)})
    out_name = names[model.output_id]
    if model.output_id == model.input_id:
        out_name = ctx.node("Identity", [in_name], [ctx.name("output")])[0]
        ctx.name_nodes("output", len(ctx.nodes) - 1)
    g = helper.make_graph(
        ctx.nodes,
        safe_text(graph.name or "blockprop", 400),
        [helper.make_tensor_value_info(in_name, dtype, ["N", *model.input_shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *model.output_shape])]
        + [  # extra heads (engine.heads): named outputs after the main one
            helper.make_tensor_value_info(
                names[h], TensorProto.FLOAT, ["N", *model.analysis.shapes[h]]
            )
            for h in model.heads
        ],
        initializer=ctx.inits,
        doc_string=safe_text(graph.description),
    )
    m = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        ir_version=IR_VERSION,
    )
    helper.set_model_props(
        m,
        {
            "blockprop.name": safe_text(json.dumps(graph.name)),
            "blockprop.training": safe_text(json.dumps(graph.training)),
        },
    )
    try:
        onnx.checker.check_model(m, full_check=True)
    except onnx.checker.ValidationError as e:  # a bug here, not the user's: say what failed
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphError(f"the ONNX model failed onnx.checker: {first}") from None
    return m
