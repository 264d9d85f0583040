"""Fuzzing the graph file reader: whatever a file holds, loading either gives a Graph or raises a
BlockPropError (never another exception), and analyze never raises on what loaded."""

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.analysis import analyze
from engine.errors import BlockPropError
from engine.layers import LAYER_TYPES

BASE = {
    "format": "blockprop-graph",
    "version": 1,
    "name": "base",
    "description": "fuzz seed",
    "nodes": [
        {"id": "in", "type": "Input", "config": {"shape": [1, 8, 8]}, "pos": [0, 0]},
        {"id": "fl", "type": "Flatten", "config": {}, "pos": [100, 0]},
        {"id": "d1", "type": "Dense", "config": {"units": 16}, "pos": [200, 0]},
        {"id": "a1", "type": "Activation", "config": {"fn": "relu"}, "pos": [300, 0]},
        {"id": "d2", "type": "Dense", "config": {"units": 16, "bias": False}, "pos": [400, 0]},
        {"id": "sum", "type": "Add", "config": {}, "pos": [500, 0]},
        {"id": "out", "type": "Dense", "config": {"units": 10}, "pos": [600, 0]},
    ],
    "edges": [
        {"source": "in", "target": "fl", "target_port": 0},
        {"source": "fl", "target": "d1", "target_port": 0},
        {"source": "d1", "target": "a1", "target_port": 0},
        {"source": "a1", "target": "d2", "target_port": 0},
        {"source": "a1", "target": "sum", "target_port": 0},
        {"source": "d2", "target": "sum", "target_port": 1},
        {"source": "sum", "target": "out", "target_port": 0},
    ],
    "training": {"dataset": {"name": "digits"}, "epochs": 1},
}

FIELDS = ["format", "version", "name", "description", "nodes", "edges", "training", "extra"]
NODE_FIELDS = ["id", "type", "config", "pos", "colour"]
EDGE_FIELDS = ["source", "target", "target_port", "weight"]
CONFIG_KEYS = [
    "units",
    "shape",
    "fn",
    "bias",
    "filters",
    "kernel_size",
    "padding",
    "stride",
    "axis",
    "hidden_size",
    "init",
    "init_std",
    "connections",
    "rate",
    "x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["in", "d1", "out", "sum", "same", "valid", "relu", *LAYER_TYPES]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# Settings that pass the type checks but have absurd sizes (shapes of 2**70, kernels of 0, ...).
config_values = st.one_of(
    json_values,
    st.integers(-3, 2**70),
    st.lists(st.integers(-3, 2**70), min_size=1, max_size=4),
    st.lists(st.integers(1, 40), min_size=1, max_size=4),
)


@st.composite
def mutated_graph(draw):
    """The valid BASE graph with a few random edits: fields replaced, removed or added,
    nodes and edges dropped, duplicated or given random values."""
    d = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["top", "node", "edge", "config", "drop", "dup"]))
        if where == "top":
            key = draw(st.sampled_from(FIELDS))
            if draw(st.booleans()):
                d.pop(key, None)
            else:
                d[key] = draw(json_values)
        elif where in ("node", "config") and isinstance(d.get("nodes"), list) and d["nodes"]:
            i = draw(st.integers(0, len(d["nodes"]) - 1))
            node = d["nodes"][i]
            if not isinstance(node, dict):
                continue
            if where == "node":
                node[draw(st.sampled_from(NODE_FIELDS))] = draw(json_values)
            elif isinstance(node.get("config"), dict):
                node["config"][draw(st.sampled_from(CONFIG_KEYS))] = draw(config_values)
        elif where == "edge" and isinstance(d.get("edges"), list) and d["edges"]:
            i = draw(st.integers(0, len(d["edges"]) - 1))
            if isinstance(d["edges"][i], dict):
                d["edges"][i][draw(st.sampled_from(EDGE_FIELDS))] = draw(json_values)
        elif where in ("drop", "dup"):
            key = draw(st.sampled_from(["nodes", "edges"]))
            items = d.get(key)
            if isinstance(items, list) and items:
                i = draw(st.integers(0, len(items) - 1))
                if where == "drop":
                    items.pop(i)
                else:
                    items.append(copy.deepcopy(items[i]))
    return d


def check_loads_or_refuses(data):
    try:
        g = engine.Graph.from_dict(data)
    except BlockPropError:
        return
    a = analyze(g)  # never raises on a loaded graph
    assert isinstance(a.ok, bool)
    assert set(a.shapes) == set(g.nodes())
    assert engine.Graph.from_dict(g.to_dict()).to_dict() == g.to_dict()


def test_the_seed_graph_is_valid():
    a = analyze(engine.Graph.from_dict(BASE))
    assert a.ok and a.total_params == 64 * 16 + 16 + 16 * 16 + 16 * 10 + 10


@settings(max_examples=200, deadline=None)
@given(mutated_graph())
def test_mutated_graph_dicts(data):
    check_loads_or_refuses(data)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_random_json_values(data):
    check_loads_or_refuses(data)


_TMP = tempfile.TemporaryDirectory()


def _write_and_load(raw: bytes):
    path = Path(_TMP.name) / "fuzz.json"
    path.write_bytes(raw)
    try:
        g = engine.load_graph(path)
    except BlockPropError as e:
        assert e.file == str(path)
        return
    analyze(g)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_raw_bytes_files(raw):
    _write_and_load(raw)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_corrupted_graph_files(data):
    """The valid file's bytes with a few flipped, cut or inserted."""
    raw = bytearray(json.dumps(BASE).encode())
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[i:]
            if not raw:
                raw = bytearray(b"{")
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    _write_and_load(bytes(raw))
