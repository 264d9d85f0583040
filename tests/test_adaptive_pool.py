"""AdaptiveAvgPool2D: PyTorch's window rule (overlapping windows where the size does not divide,
repeated rows when it grows), central-difference gradients, nn.AdaptiveAvgPool2d's forward and
input gradient, shapes and settings refused naming the block, and the three exports (PyTorch
module, engine script, ONNX where the windows tile the map, refused in one line where not)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_layer

import engine
from engine.errors import ConfigError, GraphError, ShapeError
from engine.export import export_code
from engine.layers import AdaptiveAvgPool2D
from engine.layers.adaptive import adaptive_windows

# (input H x W, output_size): torchvision's 14 -> 4, 7 -> 3, the identity, 1 -> 1, growing
# 3 -> 5, and non-square mixes
SIZES = [
    ((14, 14), 4),
    ((7, 7), 3),
    ((5, 5), 5),
    ((1, 1), 1),
    ((3, 3), 5),
    ((14, 9), [4, 5]),
    ((8, 6), [3, 2]),
    ((6, 8), 1),
]


def test_windows_are_pytorchs_and_overlap_where_the_size_does_not_divide():
    assert adaptive_windows(14, 4) == [(0, 4), (3, 7), (7, 11), (10, 14)]
    assert adaptive_windows(7, 3) == [(0, 3), (2, 5), (4, 7)]
    assert adaptive_windows(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]  # tiles: plain pooling
    assert adaptive_windows(3, 5) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]  # grows


def test_forward_on_a_small_map_by_hand():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    out = AdaptiveAvgPool2D(output_size=2).build((1, 3, 3)).forward(x)
    # windows rows/cols [0, 2) and [1, 3): means of the four overlapping 2x2 blocks
    np.testing.assert_array_equal(out[0, 0], [[2.0, 3.0], [5.0, 6.0]])


@pytest.mark.parametrize("hw,size", SIZES)
def test_gradients(hw, size):
    layer = AdaptiveAvgPool2D(output_size=size).build((2, *hw))
    check_layer(layer, np.random.default_rng(3).standard_normal((2, 2, *hw)))


@pytest.mark.parametrize("hw,size", SIZES)
def test_forward_and_input_gradient_equal_torchs(hw, size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, *hw)).astype(np.float32)
    layer = AdaptiveAvgPool2D(output_size=size).build(x.shape[1:])
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.nn.AdaptiveAvgPool2d(tuple(size) if isinstance(size, list) else size)(tx)
    out = layer.forward(x)
    assert out.shape == tuple(tout.shape) and out.dtype == np.float32
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-6, atol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_bad_shapes_and_settings_are_refused_naming_the_block():
    with pytest.raises(ShapeError, match=r"block 'gap'.*AdaptiveAvgPool2D.*\(channels, height"):
        AdaptiveAvgPool2D(name="gap", output_size=4).build((10,))
    for bad in (0, [4], [4, 0], "4", None):
        with pytest.raises(ConfigError, match="block 'gap'.*output_size"):
            AdaptiveAvgPool2D(name="gap", output_size=bad)
    layer = AdaptiveAvgPool2D(name="gap", output_size=4).build((3, 14, 14))
    with pytest.raises(ShapeError, match="block 'gap'"):
        layer.forward(np.zeros((2, 3, 13, 14), np.float32))


def head_graph(hw, size) -> engine.Graph:
    g = engine.Graph(name="adaptive")
    g.add_node("Input", {"shape": [2, *hw]}, node_id="in")
    g.add_node("Conv2D", {"filters": 3, "kernel_size": 1}, node_id="conv")
    g.add_node("AdaptiveAvgPool2D", {"output_size": size}, node_id="pool")
    g.add_node("Flatten", {}, node_id="flat")
    g.add_node("Dense", {"units": 2}, node_id="fc")
    for s, t in (("in", "conv"), ("conv", "pool"), ("pool", "flat"), ("flat", "fc")):
        g.add_edge(s, t)
    return g


def test_analysis_summary_and_engine_export():
    g = head_graph((14, 14), 4)
    a = engine.analyze(g)
    assert a.ok, a.problems
    assert a.shapes["pool"] == (3, 4, 4) and a.params["pool"] == 0 and a.shapes["flat"] == (48,)
    assert AdaptiveAvgPool2D.summary({"output_size": [4, 3]}) == "to 4x3"
    script = export_code(g, "numpy")
    ns: dict = {"__name__": "exported"}
    exec(compile(script, "adaptive.py", "exec"), ns)
    model, fresh = ns["build_model"](), engine.build_model(g, seed=ns["SEED"])
    x = np.random.default_rng(5).standard_normal((2, 2, 14, 14)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), fresh.forward(x))


@pytest.mark.parametrize("hw,size", [((14, 14), 4), ((7, 9), [3, 2])])
def test_pytorch_export_is_nn_adaptive_avg_pool(hw, size, tmp_path):
    torch = pytest.importorskip("torch")
    import importlib.util

    g = head_graph(hw, size)
    m = engine.build_model(g, seed=1)
    engine.save_weights(m, tmp_path / "w.npz")
    script = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert "nn.AdaptiveAvgPool2d(" in script
    path = tmp_path / "adaptive.py"
    path.write_text(script, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("adaptive", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    x = np.random.default_rng(6).standard_normal((3, 2, *hw)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("hw,size,op", [((8, 12), [4, 3], "AveragePool"), ((7, 5), 1, "Global")])
def test_onnx_export_where_the_windows_tile(hw, size, op):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx

    g = head_graph(hw, size)
    model = engine.build_model(g, seed=2)
    data = export_onnx(g, arrays=model.state())
    ops = [nd.op_type for nd in onnx.load_from_string(data).graph.node]
    assert any(o.startswith(op) for o in ops), ops
    x = np.random.default_rng(7).standard_normal((2, 2, *hw)).astype(np.float32)
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.forward(x), atol=1e-5, rtol=1e-5)


def test_onnx_export_refuses_overlapping_windows_in_one_line():
    pytest.importorskip("onnx")
    from engine.export.onnx import export_onnx

    with pytest.raises(GraphError) as e:
        export_onnx(head_graph((14, 14), 4))
    text = str(e.value)
    assert "\n" not in text and "block 'pool'" in text
    assert "AdaptiveAvgPool2D to 4x4 of a 14x14 map has no ONNX form" in text
