"""Conv2D's ``groups`` (the 2012 AlexNet's two towers, depthwise convolutions) and the
LocalResponseNorm block: central-difference gradients, PyTorch parity (forward and every
gradient), parameter counts, bad settings refused naming the block, the PyTorch export.
(The textbook versions: tests/test_reference.py; ONNX: tests/test_onnx.py's CASES.)"""

from __future__ import annotations

import numpy as np
import pytest
from export_torch_support import exported, perturbed_model
from gradcheck import check_layer
from test_conv_pool_torch import _copy_params, _grads_vs_torch

import engine
from engine.errors import ConfigError, ShapeError
from engine.layers import Conv2D, LocalResponseNorm


def rng(seed):
    return np.random.default_rng(seed)


# --- gradients (float64, central differences) ----------------------------------------------------
@pytest.mark.parametrize(
    "in_shape,cfg",
    [
        ((4, 5, 6), {"filters": 6, "kernel_size": 3, "groups": 2}),
        ((6, 7, 7), {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 3}),
        ((3, 5, 5), {"filters": 3, "kernel_size": 3, "padding": "same", "groups": 3}),
        ((2, 4, 26), {"filters": 4, "kernel_size": [1, 3], "padding": [0, 1], "groups": 2}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_grouped_conv2d_gradients(in_shape, cfg, bias):
    layer = Conv2D(bias=bias, **cfg).build(in_shape, rng(1))
    check_layer(layer, rng(2).standard_normal((2, *in_shape)))


def test_grouped_conv2d_first_layer_weight_gradient_without_dx():
    """A block fed by the data skips dx: the weight and bias gradients are the same."""
    layer = Conv2D(filters=4, kernel_size=3, groups=2).build((4, 6, 30), rng(3))
    layer.astype(np.float64)
    x = rng(4).standard_normal((2, 4, 6, 30))
    out = layer.forward(x)
    dout = rng(5).standard_normal(out.shape)
    layer.backward(dout)
    want = {k: v.copy() for k, v in layer.grads.items()}
    layer.needs_input_grad = False
    layer.forward(x)
    assert layer.backward(dout) is None
    for k, v in want.items():
        np.testing.assert_allclose(layer.grads[k], v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "cfg",
    [{"size": 5, "alpha": 0.3, "beta": 0.75, "k": 2.0}, {"size": 4, "alpha": 1.0, "beta": 1.2}],
)
def test_lrn_gradients(cfg):
    layer = LocalResponseNorm(**cfg).build((6, 3, 4))
    check_layer(layer, rng(6).standard_normal((2, 6, 3, 4)))


# --- PyTorch parity ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "c,f,k,stride,padding,groups",
    [
        (4, 6, 3, 1, 1, 2),  # two towers
        (96, 256, 5, 1, 2, 2),  # the 2012 AlexNet's conv2, at a small size
        (8, 8, 3, 2, 1, 8),  # depthwise
        (6, 12, 3, 1, 1, 6),  # depthwise, two filters per map
        (6, 9, [2, 3], [2, 1], [1, 0], 3),
    ],
)
def test_grouped_conv2d_against_torch(c, f, k, stride, padding, groups):
    torch = pytest.importorskip("torch")
    r = rng(7)
    size = 13 if c == 96 else 9
    layer = Conv2D(filters=f, kernel_size=k, stride=stride, padding=padding, groups=groups)
    layer.build((c, size, size), r)
    tmod = torch.nn.Conv2d(c, f, k, stride=stride, padding=padding, groups=groups)
    assert layer.params["weight"].shape == tuple(tmod.weight.shape)
    assert layer.param_count((c, size, size)) == sum(p.numel() for p in tmod.parameters())
    _copy_params(layer, tmod)
    _grads_vs_torch(layer, tmod, r.standard_normal((3, c, size, size), dtype=np.float32))


@pytest.mark.parametrize(
    "size,alpha,beta,k",
    [(5, 1e-4, 0.75, 2.0), (4, 0.5, 0.6, 1.0), (3, 2.0, 1.5, 0.5), (9, 1, 1, 1)],
)
def test_lrn_against_torch(size, alpha, beta, k):
    torch = pytest.importorskip("torch")
    layer = LocalResponseNorm(size=size, alpha=alpha, beta=beta, k=k).build((7, 5, 6))
    tmod = torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)
    x = rng(8).standard_normal((2, 7, 5, 6)).astype(np.float32) * 3
    _grads_vs_torch(layer, tmod, x)


# --- counts, refusals, export -------------------------------------------------------------
def test_grouped_parameter_count_is_the_paper_towers():
    """The 2012 AlexNet's conv2: 256 filters 5x5, each tower's 128 reading its own 48 maps."""
    layer = Conv2D(filters=256, kernel_size=5, padding=2, groups=2)
    assert layer.param_shapes((96, 27, 27)) == {"weight": (256, 48, 5, 5), "bias": (256,)}
    assert layer.param_count((96, 27, 27)) == 256 * 48 * 25 + 256 == 307_456
    assert Conv2D.summary(layer.config) == "256@5x5 s1 p2 g2"


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"filters": 5, "kernel_size": 3, "groups": 2}, "multiple of 'groups'"),
        ({"filters": 4, "kernel_size": 3, "groups": 0}, "groups"),
        ({"filters": 2, "kernel_size": 1, "groups": 2, "connections": [[0], [1]]}, "one of them"),
    ],
)
def test_bad_group_settings_are_refused_naming_the_block(cfg, match):
    with pytest.raises(ConfigError, match=match) as e:
        Conv2D(name="tower", **cfg)
    assert "tower" in str(e.value)


def test_channels_not_divisible_by_groups_is_an_analysis_problem_naming_the_block():
    g = engine.Graph("t")
    g.add_node("Input", {"shape": [6, 8, 8]}, node_id="in")
    g.add_node("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 4}, node_id="tower")
    g.add_edge("in", "tower")
    problems = engine.analyze(g).problems
    assert len(problems) == 1
    assert problems[0].block == "tower"
    assert "6 maps" in problems[0].message and "4 groups" in problems[0].message
    with pytest.raises(ShapeError, match="4 groups"):
        Conv2D(filters=4, kernel_size=3, groups=4).build((6, 8, 8))


@pytest.mark.parametrize("cfg", [{"size": 0}, {"k": 0.0}, {"alpha": -1.0}])
def test_bad_lrn_settings_are_refused(cfg):
    with pytest.raises(ConfigError) as e:
        LocalResponseNorm(name="norm1", **cfg)
    assert "norm1" in str(e.value)


def test_lrn_takes_images_only():
    with pytest.raises(ShapeError, match=r"\(C, H, W\)") as e:
        LocalResponseNorm(name="norm1").build((5, 7))
    assert "norm1" in str(e.value)


def test_pytorch_export_of_towers_and_lrn_computes_the_engine(tmp_path):
    torch = pytest.importorskip("torch")
    g = engine.Graph("towers")
    g.add_node("Input", {"shape": [6, 11, 11]}, node_id="in")
    g.add_node("Conv2D", {"filters": 8, "kernel_size": 3, "stride": 2, "groups": 2}, node_id="c1")
    g.add_node(
        "LocalResponseNorm", {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}, node_id="n1"
    )
    g.add_node("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 8, "bias": False}, node_id="c2")
    g.add_node("LocalResponseNorm", {"size": 2, "alpha": 0.5}, node_id="n2")
    for a, b in (("in", "c1"), ("c1", "n1"), ("n1", "c2"), ("c2", "n2")):
        g.add_edge(a, b)
    m = perturbed_model(g)
    engine.save_weights(m, tmp_path / "w.npz")
    mod = exported(g, tmp_path, weights=str(tmp_path / "w.npz"))
    net = mod.build_model().eval()
    assert sum(p.numel() for p in net.parameters()) == engine.analyze(g).total_params
    assert sum(p.numel() for p in net.parameters()) == 8 * 3 * 9 + 8 + 8 * 9
    x = rng(9).standard_normal((2, 6, 11, 11)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


def test_onnx_export_refuses_an_even_lrn_naming_the_block():
    pytest.importorskip("onnx")
    from engine.errors import GraphError
    from engine.export.onnx import export_onnx

    g = engine.Graph("even")
    g.add_node("Input", {"shape": [4, 5, 5]}, node_id="in")
    g.add_node("LocalResponseNorm", {"size": 4}, node_id="norm")
    g.add_edge("in", "norm")
    with pytest.raises(GraphError, match="odd size") as e:
        export_onnx(g)
    assert "norm" in str(e.value)


# --- MaxPool2D's ceil_mode (GoogLeNet's pools) ----------------------------------------------------
@pytest.mark.parametrize(
    "k,s,p,h,w",
    [(3, 2, 0, 112, 112), (3, 2, 0, 9, 10), (2, 2, 0, 7, 7), (3, 2, 1, 8, 6), (5, 3, 2, 9, 9)],
)
def test_max_pool_ceil_mode_against_torch(k, s, p, h, w):
    torch = pytest.importorskip("torch")
    from engine.layers import MaxPool2D

    layer = MaxPool2D(kernel_size=k, stride=s, padding=p, ceil_mode=True).build((3, h, w))
    tmod = torch.nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=True)
    assert layer.out_shape == tuple(tmod(torch.zeros(1, 3, h, w)).shape[1:])
    _grads_vs_torch(layer, tmod, rng(10).standard_normal((2, 3, h, w)).astype(np.float32))


def test_max_pool_ceil_mode_gradients_and_summary():
    from engine.layers import MaxPool2D

    layer = MaxPool2D(kernel_size=3, stride=2, ceil_mode=True).build((2, 6, 7))
    assert layer.out_shape == (2, 3, 3)  # floor: (2, 2, 3)
    x = rng(11).permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) / 10.0  # no ties
    check_layer(layer, x)
    assert MaxPool2D.summary(layer.config) == "3x3 s2 ceil"
