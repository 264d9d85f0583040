"""engine.analyze: shapes and parameter counts without data, and every kind of problem."""

from pathlib import Path

import engine
from engine.analysis import analyze, default_memory_limit, summary_text


def chain(*blocks, name="g"):
    """A graph from (id, type, config) tuples wired in a line."""
    g = engine.Graph(name)
    for nid, t, cfg in blocks:
        g.add_node(t, cfg, node_id=nid)
    for (a, *_), (b, *_) in zip(blocks, blocks[1:], strict=False):
        g.add_edge(a, b)
    return g


def mlp():
    return chain(
        ("in", "Input", {"shape": [64]}),
        ("d1", "Dense", {"units": 32}),
        ("a1", "Activation", {"fn": "relu"}),
        ("out", "Dense", {"units": 10}),
    )


LENET5 = Path(__file__).resolve().parent.parent / "presets" / "lenet5.json"


def problem_blocks(a):
    return [p.block for p in a.problems]


def test_lenet5_modern_totals_61706():
    a = analyze(engine.load_graph(LENET5))
    assert a.ok, a.problems
    assert a.total_params == 61_706
    assert a.shapes["c1"] == (6, 28, 28) and a.params["c1"] == 156
    assert a.shapes["s2"] == (6, 14, 14)
    assert a.shapes["c3"] == (16, 10, 10) and a.params["c3"] == 2_416
    assert a.shapes["s4"] == (16, 5, 5) and a.shapes["flat"] == (400,)
    assert a.params["c5"] == 48_120 and a.params["f6"] == 10_164 and a.params["out"] == 850
    text = summary_text(a)
    assert "Total params: 61,706" in text and "c3 (Conv2D)" in text and "(16, 10, 10)" in text


def test_mlp_shapes_params_and_rows():
    a = analyze(mlp())
    assert a.ok and a.input_id == "in" and a.output_id == "out"
    assert a.order == ["in", "d1", "a1", "out"]
    assert a.shapes == {"in": (64,), "d1": (32,), "a1": (32,), "out": (10,)}
    assert a.in_shapes["d1"] == (64,)
    assert a.params == {"in": 0, "d1": 64 * 32 + 32, "a1": 0, "out": 32 * 10 + 10}
    assert a.total_params == 2410
    assert a.rows()[1] == ("d1", "Dense", (32,), 2080)
    text = summary_text(mlp())
    lines = text.splitlines()
    assert lines[0] == 'Model: "g"'
    assert any(line.startswith("d1 (Dense)") and line.rstrip().endswith("2,080") for line in lines)
    assert "Total params: 2,410" in text and "Trainable params: 2,410" in text


def test_order_is_topological_and_stable():
    g = engine.Graph()
    g.add_node("Add", {}, node_id="sum")  # added first, runs last
    g.add_node("Input", {"shape": [3]}, node_id="in")
    g.add_node("Dense", {"units": 3}, node_id="b")
    g.add_node("Dense", {"units": 3}, node_id="a")
    for s, t in [("in", "a"), ("in", "b"), ("a", "sum"), ("b", "sum")]:
        g.add_edge(s, t)
    a = analyze(g)
    assert a.ok
    assert a.order == ["in", "b", "a", "sum"]  # ties keep insertion order
    assert a.in_shapes["sum"] == [(3,), (3,)]


def test_dense_after_image_suggests_flatten_and_the_fix_works():
    g = chain(("in", "Input", {"shape": [1, 8, 8]}), ("d", "Dense", {"units": 4}))
    a = analyze(g)
    [p] = a.problems
    assert p.block == "d" and "insert Flatten" in p.message and "(1, 8, 8)" in p.message
    assert p.fix == {"kind": "insert", "type": "Flatten", "source": "in", "target": "d"}
    g.remove_edge("in", "d")
    g.add_node("Flatten", {}, node_id="f")
    g.add_edge("in", "f")
    g.add_edge("f", "d")
    fixed = analyze(g)
    assert fixed.ok and fixed.params["d"] == 64 * 4 + 4


def test_cycle_names_its_blocks():
    g = chain(
        ("in", "Input", {"shape": [4]}),
        ("a", "Dense", {"units": 4}),
        ("b", "Dense", {"units": 4}),
        ("c", "Dense", {"units": 4}),
    )
    g.add_node("Add", {}, node_id="x")
    g.remove_edge("a", "b")
    g.add_edge("a", "x")
    g.add_edge("c", "x")
    g.add_edge("x", "b")  # x -> b -> c -> x
    a = analyze(g)
    cyc = [p for p in a.problems if "loop" in p.message]
    assert len(cyc) == 1
    for n in ("x", "b", "c"):
        assert n in cyc[0].message
    assert cyc[0].block in ("x", "b", "c")
    assert a.shapes["b"] is None and a.shapes["x"] is None and a.shapes["a"] == (4,)
    assert not a.ok and a.output_id is None


def test_block_not_reached_from_input():
    g = mlp()
    g.add_node("Dense", {"units": 3}, node_id="lonely")
    g.add_node("Activation", {}, node_id="after_lonely")
    g.add_edge("lonely", "after_lonely")
    a = analyze(g)
    # One message for the cut-off piece, at its head; nothing for what hangs off it.
    assert problem_blocks(a) == ["lonely"]
    assert "not connected to the Input" in a.problems[0].message
    assert a.shapes["lonely"] is None and a.shapes["after_lonely"] is None
    assert a.output_id == "out"


def test_no_input_and_two_inputs():
    g = engine.Graph()
    g.add_node("Dense", {"units": 3}, node_id="d")
    a = analyze(g)
    assert [p.block for p in a.problems] == [None]
    assert "no Input" in a.problems[0].message
    g2 = mlp()
    g2.add_node("Input", {"shape": [64]}, node_id="in2")
    a2 = analyze(g2)
    assert problem_blocks(a2) == ["in2"] and "second Input" in a2.problems[0].message
    assert a2.input_id is None


def test_arity_problems():
    g = mlp()
    g.add_node("Dense", {"units": 64}, node_id="side")
    g.add_edge("in", "side")
    g.add_edge("side", "d1")  # d1 now has two inputs
    a = analyze(g)
    [p] = [p for p in a.problems if p.block == "d1"]
    assert "exactly one input" in p.message and "'side'" in p.message
    g2 = chain(("in", "Input", {"shape": [4]}), ("sum", "Add", {}))
    [p2] = analyze(g2).problems
    assert p2.block == "sum" and "2 or more inputs of equal shape" in p2.message
    g3 = mlp()
    g3.add_node("Input", {"shape": [1]}, node_id="src")
    g3.add_edge("src", "in")
    msgs = {p.block: p.message for p in analyze(g3).problems}
    assert "takes no inputs" in msgs["in"] and "'src'" in msgs["in"]


def test_add_needs_equal_shapes():
    g = engine.Graph()
    g.add_node("Input", {"shape": [4]}, node_id="in")
    g.add_node("Dense", {"units": 3}, node_id="a")
    g.add_node("Dense", {"units": 5}, node_id="b")
    g.add_node("Add", {}, node_id="sum")
    g.add_node("Dense", {"units": 2}, node_id="after")
    for s, t in [("in", "a"), ("in", "b"), ("a", "sum"), ("b", "sum"), ("sum", "after")]:
        g.add_edge(s, t)
    a = analyze(g)
    assert problem_blocks(a) == ["sum"]  # "after" gets no second message
    assert "equal shape" in a.problems[0].message
    assert a.shapes["after"] is None and a.rows()[-1].params is None


def test_reshape_count_mismatch_and_downstream_silence():
    g = chain(
        ("in", "Input", {"shape": [12]}),
        ("r", "Reshape", {"shape": [5, 2]}),
        ("f", "Flatten", {}),
        ("d", "Dense", {"units": 2}),
    )
    a = analyze(g)
    assert problem_blocks(a) == ["r"] and "counts must match" in a.problems[0].message
    assert a.shapes["f"] is None and a.shapes["d"] is None


def test_config_is_rechecked_even_if_the_graph_was_edited_behind_its_back():
    g = mlp()
    g.nx.nodes["d1"]["config"] = {"units": 0}
    g.nx.nodes["a1"]["config"] = {"fn": "swish"}
    g.nx.nodes["out"]["type"] = "Dense9000"
    a = analyze(g)
    msgs = {p.block: p.message for p in a.problems}
    assert set(msgs) == {"d1", "a1", "out"}
    assert "units" in msgs["d1"] and "fn" in msgs["a1"] and "unknown block type" in msgs["out"]


def test_multiple_outputs():
    g = mlp()
    g.add_node("Dense", {"units": 2}, node_id="head2")
    g.add_edge("a1", "head2")
    a = analyze(g)
    assert set(problem_blocks(a)) == {"out", "head2"}
    assert all("one output" in p.message for p in a.problems)
    assert a.output_id is None and a.shapes["head2"] == (2,)


def test_too_large_for_memory():
    g = chain(
        ("in", "Input", {"shape": [1000]}),
        ("big", "Dense", {"units": 10_000}),
        ("out", "Dense", {"units": 2}),
    )
    a = analyze(g, memory_limit=10 * 10**6)
    assert problem_blocks(a) == ["big"]
    assert "too large" in a.problems[0].message and "10,010,000 parameters" in a.problems[0].message
    assert a.memory_bytes > 16 * 10_010_000
    assert analyze(g).ok  # about 160 MB: under half of any machine this runs on
    huge = chain(("in", "Input", {"shape": [100_000]}), ("big", "Dense", {"units": 1_000_000}))
    assert problem_blocks(analyze(huge)) == ["big"]  # 1.6 TB: refused with the real limit
    assert default_memory_limit() > 0


def test_recurrent_fed_an_image():
    g = chain(("in", "Input", {"shape": [1, 28, 28]}), ("rnn", "LSTM", {"hidden_size": 8}))
    [p] = analyze(g).problems
    assert p.block == "rnn" and "sequence" in p.message and "Reshape" in p.message
    assert p.fix["kind"] == "insert" and p.fix["type"] == "Reshape"
    assert p.fix["config"] == {"shape": [28, 28]}
    ok = chain(
        ("in", "Input", {"shape": [1, 28, 28]}),
        ("rs", "Reshape", {"shape": [28, 28]}),
        ("rnn", "LSTM", {"hidden_size": 8}),
    )
    a = analyze(ok)
    assert a.ok and a.shapes["rnn"] == (8,) and a.params["rnn"] == 4 * 8 * (28 + 8 + 2)


def test_kernel_larger_than_input_offers_same_padding():
    g = chain(
        ("in", "Input", {"shape": [1, 4, 4]}), ("c", "Conv2D", {"filters": 2, "kernel_size": 5})
    )
    [p] = analyze(g).problems
    assert p.block == "c" and "larger than its input" in p.message
    assert p.fix == {"kind": "set", "block": "c", "key": "padding", "value": "same"}
    g.set_config("c", {"filters": 2, "kernel_size": 5, "padding": "same"})
    assert analyze(g).shapes["c"] == (2, 4, 4)
    pool = chain(("in", "Input", {"shape": [1, 3, 3]}), ("p", "MaxPool2D", {"kernel_size": 4}))
    [pp] = analyze(pool).problems
    assert pp.block == "p" and "smaller kernel" in pp.message


def test_problems_are_sorted_and_printable():
    g = mlp()
    g.add_node("Dense", {"units": 3}, node_id="z")
    g.nx.nodes["d1"]["config"] = {"units": -5}
    a = analyze(g)
    assert problem_blocks(a) == ["d1", "z"]
    assert str(a.problems[0]).startswith("block 'd1': ")


def test_connections_table_that_no_longer_fits_the_input():
    g = chain(
        ("in", "Input", {"shape": [6, 14, 14]}),
        ("c3", "Conv2D", {"filters": 2, "kernel_size": 5, "connections": [[0, 1, 5], [2, 3]]}),
    )
    a = analyze(g)
    assert a.ok and a.params["c3"] == (3 + 2) * 25 + 2  # only the table's weights count
    g.set_config("in", {"shape": [3, 14, 14]})  # the table now reads maps that do not exist
    [p] = analyze(g).problems
    assert p.block == "c3" and "connections" in p.message
