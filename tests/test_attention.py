"""The Attention block (lecture 001: Luong's dot / general / concat, Bahdanau's additive): its
backward against central differences (float64, every score, masked and not), its forward and
gradients against a PyTorch version written here from the lecture's formulas, padding masks,
the graph's shape checks, and both exports."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from gradcheck import check_layer

import engine
from engine.errors import ShapeError
from engine.export import export_code
from engine.layers import Attention

pytest_plugins = ["gui_support"]  # fixtures: make_window

SCORES = ("dot", "general", "concat", "additive")


def ids_mask(n, tm, rng):
    """Source token ids (N, Tm), 0 = padding: sample 0 has its last two steps padded, sample 1
    is all padding (its queries read nothing), the rest are full."""
    ids = rng.integers(1, 9, (n, tm))
    ids[0, tm - 2 :] = 0
    ids[1, :] = 0
    return ids


def built(score, fq=4, fm=4, tq=3, tm=5, masked=False, seed=0):
    shapes = [(tq, fq), (tm, fm)] + ([(tm,)] if masked else [])
    layer = Attention(score=score, attention_size=3).build(shapes, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    xs = [rng.standard_normal((4, tq, fq)), rng.standard_normal((4, tm, fm))]
    if masked:
        xs.append(ids_mask(4, tm, rng))
    return layer, xs


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("score", SCORES)
def test_gradients_match_central_differences(score, masked):
    fq = 4 if score == "dot" else 2
    layer, xs = built(score, fq=fq, masked=masked)
    errors = check_layer(layer, xs)
    assert {"x0", "x1"} <= set(errors) and "x2" not in errors  # no gradient for the mask
    assert set(errors) - {"x0", "x1"} == set(layer.params)


def test_masked_steps_get_no_weight_and_all_padding_reads_nothing():
    layer, xs = built("additive", masked=True)
    out = layer.forward(xs)
    a = layer.alignment
    assert a.shape == (4, 3, 5)
    np.testing.assert_array_equal(a[0, :, 3:], 0.0)  # padded steps
    np.testing.assert_allclose(a[0].sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a[1], 0.0)  # all padding
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(a[2:].sum(axis=-1), 1.0, rtol=1e-6)
    # the padded steps' memory values change nothing, and receive no gradient
    xs2 = [x.copy() for x in xs]
    xs2[1][0, 3:] += 100.0
    np.testing.assert_array_equal(layer.forward(xs2)[0], out[0])
    dq, dm, dmask = layer.backward(np.ones_like(out))
    assert dmask is None
    np.testing.assert_array_equal(dm[0, 3:], 0.0)
    np.testing.assert_array_equal(dq[1], 0.0)


def test_dot_score_is_the_lecture_formula_by_hand():
    """One query, two memory steps: e = (1, 0.5)·(1, 0), (1, 0.5)·(0, 2) = 1, 1: equal weights."""
    layer = Attention(score="dot").build([(1, 2), (2, 2)])
    q = np.array([[[1.0, 0.5]]])
    m = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    out = layer.forward([q, m])
    np.testing.assert_allclose(layer.alignment, [[[0.5, 0.5]]])
    np.testing.assert_allclose(out, [[[0.5, 1.0]]])


def torch_attention(torch, score, q, m, params, mask=None):
    """The lecture's formulas in PyTorch, written independently of the engine: concat scores the
    concatenation [h_t; h̄_s] of every pair, additive sums the two projections."""
    tq, tm = q.shape[1], m.shape[1]
    if score == "dot":
        e = torch.einsum("ntf,nsf->nts", q, m)
    elif score == "general":
        e = torch.einsum("ntf,fg,nsg->nts", q, params["weight"], m)
    elif score == "concat":
        pairs = torch.cat(
            [q[:, :, None].expand(-1, -1, tm, -1), m[:, None].expand(-1, tq, -1, -1)], dim=-1
        )
        e = torch.tanh(pairs @ params["weight"].T) @ params["v"]
    else:
        wq = q @ params["weight_query"].T
        wm = m @ params["weight_memory"].T
        e = torch.tanh(wq[:, :, None] + wm[:, None]) @ params["v"]
    if mask is not None:
        e = e.masked_fill(mask[:, None, :] == 0, -1e30)
    a = torch.softmax(e, dim=-1)
    if mask is not None:
        a = a * (mask[:, None, :] != 0).any(dim=-1, keepdim=True)
    return a @ m, a


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("score", SCORES)
def test_forward_and_gradients_match_pytorch(score, masked):
    torch = pytest.importorskip("torch")
    layer, xs = built(score, fq=4 if score == "dot" else 3, masked=masked, seed=5)
    layer.astype(np.float64)
    out = layer.forward(xs)
    dout = np.random.default_rng(9).standard_normal(out.shape)
    dq, dm = layer.backward(dout)[:2]
    tq, tm = (torch.tensor(x, requires_grad=True) for x in xs[:2])
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    mask = torch.tensor(xs[2]) if masked else None
    tout, ta = torch_attention(torch, score, tq, tm, tp, mask)
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.alignment, ta.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dq, tq.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dm, tm.grad.numpy(), atol=1e-10)
    for k, v in tp.items():
        np.testing.assert_allclose(layer.grads[k], v.grad.numpy(), atol=1e-10, err_msg=k)


def test_parameter_shapes_per_score():
    shapes = [(3, 6), (5, 4)]
    got = {
        s: {
            k: v.shape for k, v in Attention(score=s, attention_size=7).build(shapes).params.items()
        }
        for s in ("general", "concat", "additive")
    }
    assert got["general"] == {"weight": (6, 4)}
    assert got["concat"] == {"weight": (7, 10), "v": (7,)}
    assert got["additive"] == {"weight_query": (7, 6), "weight_memory": (7, 4), "v": (7,)}
    assert Attention(score="dot").build([(3, 4), (5, 4)]).params == {}
    assert Attention.summary({"score": "additive", "attention_size": 16}) == "additive 16"
    assert Attention.summary({"score": "general", "attention_size": 16}) == "general"


def attention_graph(score="general", mask=True, fq=6):
    """Token ids (8,) -> Embedding -> LSTM (every step): the memory; the embeddings -> Dense:
    the queries; the ids themselves: the mask (0 = padding). Attention -> Flatten -> Dense."""
    g = engine.Graph(name="attend")
    g.add_node("Input", {"shape": [8]}, node_id="ids")
    g.add_node("Embedding", {"num_embeddings": 10, "embedding_dim": 5}, node_id="emb")
    g.add_node("LSTM", {"hidden_size": 4, "return_sequences": True}, node_id="enc")
    g.add_node("Dense", {"units": fq}, node_id="query")
    g.add_node("Attention", {"score": score, "attention_size": 5}, node_id="att")
    g.add_node("Flatten", {}, node_id="flat")
    g.add_node("Dense", {"units": 3}, node_id="out")
    g.add_edge("ids", "emb")
    g.add_edge("emb", "enc")
    g.add_edge("emb", "query")
    g.add_edge("query", "att", 0)
    g.add_edge("enc", "att", 1)
    if mask:
        g.add_edge("ids", "att", 2)
    g.add_edge("att", "flat")
    g.add_edge("flat", "out")
    return g


def padded_ids(n=6, seed=0):
    ids = np.random.default_rng(seed).integers(1, 10, (n, 8))
    ids[0, 5:] = 0
    ids[1, 2:] = 0
    return ids


def test_analysis_shapes_and_one_line_refusals():
    a = engine.analyze(attention_graph())
    assert a.ok, a.problems
    assert a.shapes["att"] == (8, 4)
    assert a.params["att"] == 6 * 4
    bad = engine.analyze(attention_graph(score="dot"))  # query 6 features, memory 4
    [p] = [p for p in bad.problems if p.block == "att"]
    assert "'dot' needs query and memory features equal, got 6 and 4" in str(p)
    assert "\n" not in str(p)
    g = attention_graph(mask=False)
    g.add_edge("emb", "att", 2)  # an (8, 5) sequence is no mask
    [p] = [p for p in engine.analyze(g).problems if p.block == "att"]
    assert "mask (port 2) must be one value per memory step (8,), got (8, 5)" in str(p)


def test_a_block_too_large_inside_is_refused_in_one_line():
    layer = Attention(score="additive", attention_size=4096, name="att")
    with pytest.raises(ShapeError, match="Attention would hold 4,096,000,000 values per sample"):
        layer.output_shape([(1000, 8), (1000, 8)])
    assert Attention(score="dot").output_shape([(1000, 8), (1000, 8)]) == (1000, 8)


def test_trains_in_a_graph():
    g = attention_graph(score="additive")
    m = engine.build_model(g, seed=1)
    x = padded_ids()
    out = m.forward(x)
    assert out.shape == (6, 3) and np.all(np.isfinite(out))
    np.testing.assert_array_equal(m.layers["att"].alignment[1, :, 2:], 0.0)
    m.backward(np.ones_like(out), input_grad=False)
    assert np.abs(m.grads["att.v"]).sum() > 0 and np.abs(m.grads["enc.weight_ih"]).sum() > 0


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("score", SCORES)
def test_onnx_export_runs_like_the_engine(score, masked, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx

    g = attention_graph(score=score, mask=masked, fq=4 if score == "dot" else 6)
    m = engine.build_model(g, seed=5)
    engine.save_weights(m, tmp_path / "w.npz")
    s = ort.InferenceSession(
        export_onnx(g, str(tmp_path / "w.npz")), providers=["CPUExecutionProvider"]
    )
    x = padded_ids(seed=2)
    x[2] = 0  # a sample that is all padding: its queries read nothing
    got = s.run(None, {s.get_inputs()[0].name: x.astype(np.int64)})[0]
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("score", SCORES)
def test_pytorch_export_matches_the_engine(score, tmp_path):
    torch = pytest.importorskip("torch")
    g = attention_graph(score=score, fq=4 if score == "dot" else 6)
    m = engine.build_model(g, seed=2)
    engine.save_weights(m, tmp_path / "w.npz")
    script = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert "class Attention(nn.Module)" in script
    path = tmp_path / "attend.py"
    path.write_text(script, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("attend", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    x = padded_ids(seed=3)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)
    fresh = mod.Net()  # the exported start draws the same kinds of values
    mod.init_weights(fresh)
    assert all(torch.isfinite(p).all() for p in fresh.parameters())


def copy_attention_graph():
    """The copy task (engine/data/sequences.py): an LSTM reads the symbols, its states query
    the input steps; the context joins the states before the per-step classifier."""
    g = engine.Graph(
        name="copy with attention",
        training={
            "dataset": {"name": "copy", "n": 60, "length": 3, "delay": 4, "symbols": 4},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 16,
            "epochs": 1,
            "seed": 0,
            "val_split": 0.25,
        },
    )
    g.add_node("Input", {"shape": [10, 6]}, node_id="in")
    g.add_node("LSTM", {"hidden_size": 8, "return_sequences": True}, node_id="enc")
    g.add_node("Attention", {"score": "general"}, node_id="att")
    g.add_node("Concat", {"axis": -1}, node_id="cat")
    g.add_node("Dense", {"units": 6}, node_id="out")
    for s, t, port in (
        ("in", "enc", 0),
        ("enc", "att", 0),
        ("in", "att", 1),
        ("enc", "cat", 0),
        ("att", "cat", 1),
        ("cat", "out", 0),
    ):
        g.add_edge(s, t, port)
    return g


def test_a_live_run_sends_the_alignment_of_the_chosen_sample():
    """What the Activations panel draws for an Attention block is the engine's alignment of
    that validation sample, after training has moved the weights."""
    from engine.training_process import LiveRun

    g = copy_attention_graph()
    got = []
    live = LiveRun(g.to_dict(), g.training, lambda kind, payload: got.append((kind, payload)))
    live.set_watch(activations=True, sample=2)
    live.run()
    snap = [p for k, p in got if k == "snapshot"][-1]  # taken at the end, final weights
    assert snap["sample"]["index"] == 2
    a = snap["gates"]["att"]["a"]
    assert a.shape == (10, 10)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5)
    # the engine's own array for that sample, with the run's final weights
    weights = [p for k, p in got if k == "finished"][-1]["weights"]
    m = engine.build_model(g)
    assert not np.allclose(m.params["att.weight"], weights["att.weight"])  # it trained
    m.set_state(weights)
    m.forward(snap["sample"]["x"][None])
    np.testing.assert_allclose(a, m.layers["att"].alignment[0], atol=1e-6)
    assert m.layers["att"].gates["a"] is m.layers["att"].alignment


def test_the_activations_panel_labels_the_alignment(qtbot):
    pytest.importorskip("pyqtgraph")
    from gui.training.panels.activations import ActivationsPanel

    class Ctrl:
        graph = attention_graph()

    panel = ActivationsPanel(Ctrl())
    qtbot.addWidget(panel)
    panel._build("seq", ["a"])
    texts = [getattr(i, "text", None) for i in panel.view.ci.items]
    assert "attention weights a (memory steps x output steps)" in texts


def test_the_canvas_offers_the_mask_port_and_no_more(make_window):
    from gui_helpers import settle

    w = make_window()
    g = w.graph
    g.add_node("Input", {"shape": [8]}, node_id="ids")
    g.add_node("Embedding", {"num_embeddings": 10, "embedding_dim": 4}, node_id="emb")
    g.add_node("LSTM", {"hidden_size": 4, "return_sequences": True}, node_id="enc")
    g.add_node("Attention", {}, node_id="att")
    settle(w)
    block = w.scene.blocks["att"]
    assert len(block.in_ports) == 2  # query and memory
    g.add_edge("ids", "emb")
    g.add_edge("emb", "enc")
    g.add_edge("emb", "att", 0)
    g.add_edge("enc", "att", 1)
    settle(w)
    assert len(block.in_ports) == 3  # the optional mask
    g.add_edge("ids", "att", 2)
    settle(w)
    assert len(block.in_ports) == 3  # Attention takes three inputs at most
