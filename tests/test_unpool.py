"""MaxUnpool2D: lecture 001's worked 4x4 example, the pairing with its MaxPool2D (analysis,
Model), gradients, and the PyTorch export (MaxUnpool2d with the pool's return_indices)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gradcheck import check_layer, numeric_grad, rel_error

import engine
from engine.analysis import analyze
from engine.export import export_code
from engine.layers import MaxPool2D, MaxUnpool2D

ROOT = Path(__file__).resolve().parent.parent

# Lecture 001: "Max Pooling. Remember which element was max!" then "Max Unpooling. Use positions
# from pooling layer".
LECTURE_X = np.array([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], np.float32)
LECTURE_UNPOOLED = np.array(
    [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]], np.float32
)  # fmt: skip


def pair(pool_cfg=None, c=1, h=4, w=4):
    pool = MaxPool2D(name="pool", **(pool_cfg or {"kernel_size": 2})).build((c, h, w))
    unpool = MaxUnpool2D(name="unpool", pool="pool")
    unpool.bind("pool", pool)
    unpool.build(pool.out_shape)
    return pool, unpool


def test_lecture_001_worked_example():
    pool, unpool = pair()
    out = pool.forward(LECTURE_X[None, None])
    np.testing.assert_array_equal(out[0, 0], [[5, 6], [7, 8]])
    # where the maxima were, as PyTorch's return_indices numbers them (row * 4 + column)
    np.testing.assert_array_equal(pool.argmax_indices()[0, 0], [[5, 2], [12, 15]])
    got = unpool.forward(np.array([[[[1, 2], [3, 4]]]], np.float32))
    np.testing.assert_array_equal(got[0, 0], LECTURE_UNPOOLED)
    # the gradient of each value is the output gradient where it went
    dout = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(unpool.backward(dout)[0, 0], [[5, 2], [12, 15]])
    torch = pytest.importorskip("torch")
    t_out, t_idx = torch.nn.functional.max_pool2d(
        torch.from_numpy(LECTURE_X[None, None]), 2, return_indices=True
    )
    np.testing.assert_array_equal(t_idx.numpy(), pool.argmax_indices())
    t_up = torch.nn.functional.max_unpool2d(torch.tensor([[[[1.0, 2], [3, 4]]]]), t_idx, 2)
    np.testing.assert_array_equal(t_up.numpy()[0, 0], LECTURE_UNPOOLED)


@pytest.mark.parametrize(
    "cfg, shape",
    [
        ({"kernel_size": 2}, (3, 6, 8)),
        ({"kernel_size": 2}, (2, 7, 5)),  # a row and a column left over: they get zeros
        ({"kernel_size": 3, "padding": 1}, (2, 7, 8)),
        ({"kernel_size": [2, 3], "stride": [2, 3], "padding": [1, 1]}, (2, 5, 7)),
    ],
)
def test_gradient_check_and_torch_indices(cfg, shape):
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * int(np.prod(shape))).reshape(2, *shape).astype(np.float64) / 7
    pool, unpool = pair(cfg, *shape)
    pool.astype(np.float64)
    y = pool.forward(x)
    errors = check_layer(unpool, rng.standard_normal(y.shape))
    assert errors["x0"] < 1e-6
    # and through both: unpool(pool(x)) keeps each window's max in place, zeros elsewhere
    back = unpool.forward(y)
    kept = back != 0
    np.testing.assert_array_equal(back[kept], x[kept])
    assert kept.sum() == y.size
    torch = pytest.importorskip("torch")
    k = cfg["kernel_size"]
    t_out, t_idx = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), k, cfg.get("stride"), cfg.get("padding", 0), return_indices=True
    )
    np.testing.assert_array_equal(t_idx.numpy(), pool.argmax_indices())
    t_back = torch.nn.functional.max_unpool2d(
        t_out, t_idx, k, cfg.get("stride"), cfg.get("padding", 0), output_size=shape[1:]
    )
    np.testing.assert_allclose(t_back.numpy(), back)


def segnet_small(pool_id="p1", **pool_cfg) -> engine.Graph:
    g = engine.Graph("segnet small")
    blocks = [
        ("in", "Input", {"shape": [1, 8, 8]}),
        ("c1", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}),
        ("r1", "Activation", {"fn": "tanh"}),
        ("p1", "MaxPool2D", pool_cfg or {"kernel_size": 2}),
        ("c2", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}),
        ("u1", "MaxUnpool2D", {"pool": pool_id}),
        ("c3", "Conv2D", {"filters": 1, "kernel_size": 3, "padding": 1}),
    ]
    for n, t, cfg in blocks:
        g.add_node(t, cfg, node_id=n)
    for (a, *_), (b, *_) in zip(blocks, blocks[1:], strict=False):
        g.add_edge(a, b)
    return g


def test_model_pairs_the_unpool_with_its_pool_and_backpropagates():
    g = segnet_small()
    a = analyze(g)
    assert a.ok, a.problems
    assert a.shapes["u1"] == (3, 8, 8) and a.params["u1"] == 0
    m = engine.build_model(g, seed=1).astype(np.float64)
    assert m.layers["u1"].pool is m.layers["p1"]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 8, 8))
    r = rng.standard_normal((2, 1, 8, 8))
    m.forward(x)
    dx = m.backward(r)
    num = numeric_grad(lambda: float(np.sum(m.forward(x) * r)), x)
    assert rel_error(dx, num) < 1e-6
    w = m.params["c2.weight"]
    m.forward(x)
    m.backward(r)
    gw = m.grads["c2.weight"].copy()
    assert rel_error(gw, numeric_grad(lambda: float(np.sum(m.forward(x) * r)), w)) < 1e-6


@pytest.mark.parametrize(
    "graph, want",
    [
        (segnet_small(pool_id=None), "choose the MaxPool2D it undoes: set 'pool'"),
        (segnet_small(pool_id="gone"), "'pool' names block 'gone', which is not in the graph"),
        (segnet_small(pool_id="c3"), "'pool' names block 'c3', which does not run before it"),
        (segnet_small(pool_id="c2"), "'pool' is block 'c2', a Conv2D; max-unpooling needs"),
        (
            segnet_small(kernel_size=3, stride=2, padding=1),
            "pool 'p1' has overlapping windows (stride 2, kernel 3)",
        ),
        (segnet_small(pool_id="r1"), "'pool' is block 'r1', a Activation"),
    ],
)
def test_analysis_refuses_a_bad_pairing_in_one_line(graph, want):
    problems = analyze(graph).problems
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.block == "u1" and want in p.message and "\n" not in p.message, p


def test_analysis_refuses_an_unpool_of_another_shape():
    g = segnet_small()
    g.set_config("c2", {"filters": 5, "kernel_size": 3, "padding": 1})
    (p,) = analyze(g).problems
    assert p.block == "u1"
    assert "its input (5, 4, 4) is not the output (3, 4, 4) of its pool 'p1'" in p.message


def test_pytorch_export_uses_return_indices_and_max_unpool2d(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    g = segnet_small()
    m = engine.build_model(g, seed=4)
    engine.save_weights(m, tmp_path / "w.npz")
    code = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert "nn.MaxUnpool2d(2)" in code and "return_indices=True" in code
    path = tmp_path / "net.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    x = np.random.default_rng(3).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)
    # the engine export builds the same model
    eng = export_code(g, "numpy", weights=str(tmp_path / "w.npz"))
    assert "MaxUnpool2D" in eng
