"""Teacher-forced seq2seq with one Input (issue 17): the Slice block takes the source and the
shifted target apart, the reversal data set holds both side by side."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from gradcheck import check_layer

import engine
from engine.data import load_dataset
from engine.errors import ConfigError, ShapeError
from engine.export import export_code
from engine.layers import Slice


@pytest.mark.parametrize(("start", "stop", "shape"), [(0, 2, (4, 3)), (1, 4, (4, 3)), (2, 3, (5,))])
def test_slice_gradients_and_values(start, stop, shape):
    rng = np.random.default_rng(0)
    layer = Slice(start=start, stop=stop).build(shape)
    x = rng.standard_normal((3, *shape))
    out = layer.forward(x)
    np.testing.assert_array_equal(out, x[:, start:stop])
    assert layer.out_shape == (stop - start, *shape[1:])
    check_layer(layer, x)
    dx = layer.backward(np.ones_like(out))
    assert dx[:, :start].sum() == 0 and dx[:, stop:].sum() == 0


def test_slice_refuses_in_one_line():
    with pytest.raises(ConfigError, match=r"'stop' \(2\) must be greater than 'start' \(2\)"):
        Slice(name="s", start=2, stop=2)
    with pytest.raises(ShapeError, match="lower 'stop' to at most 4"):
        Slice(name="s", start=1, stop=6).build((4, 3))


def test_reversal_data_set_holds_source_then_shifted_target():
    ds = load_dataset({"name": "reversal", "n": 50, "length": 6, "symbols": 5}, seed=3)
    assert ds.X.shape == (50, 12, 7) and ds.y.shape == (50, 6)
    ids = ds.X.argmax(-1)
    np.testing.assert_array_equal(ds.y, ids[:, 5::-1])  # the source reversed
    assert np.all(ids[:, 6] == 6)  # "go"
    np.testing.assert_array_equal(ids[:, 7:], ds.y[:, :-1])  # the target shifted right
    again = load_dataset({"name": "reversal", "n": 50, "length": 6, "symbols": 5}, seed=3)
    np.testing.assert_array_equal(again.X, ds.X)


def reversal_graph(attention=False, L=4, K=5, H=8):
    g = engine.Graph(name="reversal")
    g.add_node("Input", {"shape": [2 * L, K + 2]}, node_id="in")
    g.add_node("Slice", {"start": 0, "stop": L}, node_id="source")
    g.add_node("Slice", {"start": L, "stop": 2 * L}, node_id="shifted")
    edges = [("in", "source", 0), ("in", "shifted", 0), ("source", "enc", 0), ("shifted", "dec", 0)]
    if attention:
        g.add_node("LSTM", {"hidden_size": H, "return_sequences": True}, node_id="enc")
        g.add_node("LSTM", {"hidden_size": H, "return_sequences": True}, node_id="dec")
        g.add_node("Attention", {"score": "general"}, node_id="att")
        g.add_node("Concat", {"axis": -1}, node_id="cat")
        edges += [("dec", "att", 0), ("enc", "att", 1), ("dec", "cat", 0), ("att", "cat", 1)]
        edges.append(("cat", "out", 0))
    else:
        g.add_node("LSTM", {"hidden_size": H, "return_state": True}, node_id="enc")
        g.add_node("LSTM", {"hidden_size": H, "return_sequences": True}, node_id="dec")
        edges += [("enc", "dec", 1), ("dec", "out", 0)]
    g.add_node("Dense", {"units": K + 2}, node_id="out")
    for s, t, p in edges:
        g.add_edge(s, t, p)
    return g


@pytest.mark.parametrize("attention", [False, True])
def test_both_exports_match_the_engine(attention, tmp_path):
    torch = pytest.importorskip("torch")
    g = reversal_graph(attention)
    m = engine.build_model(g, seed=1)
    engine.save_weights(m, tmp_path / "w.npz")
    x = load_dataset({"name": "reversal", "n": 6, "length": 4, "symbols": 5}).X
    want = m.forward(x)
    path = tmp_path / "rev.py"
    path.write_text(export_code(g, "pytorch", weights=str(tmp_path / "w.npz")), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("rev", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with torch.no_grad():
        got = mod.build_model().eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx

    s = ort.InferenceSession(
        export_onnx(g, str(tmp_path / "w.npz")), providers=["CPUExecutionProvider"]
    )
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
