"""engine.explain: CAM, Grad-CAM, saliency, SmoothGrad and occlusion maps (lecture 001)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

import engine
from engine.errors import ConfigError, ShapeError
from engine.explain import explain, methods_for, resize, top_classes
from engine.export import export_code

ROOT = Path(__file__).resolve().parent.parent


def chain(name: str, shape: list[int], blocks: list[tuple[str, str, dict]]) -> engine.Graph:
    g = engine.Graph(name)
    g.add_node("Input", {"shape": shape}, node_id="in")
    prev = "in"
    for node_id, type_name, cfg in blocks:
        g.add_node(type_name, cfg, node_id=node_id)
        g.add_edge(prev, node_id)
        prev = node_id
    return g


def gap_net(padding: int = 1) -> engine.Graph:
    return chain(
        "gap",
        [2, 6, 6],
        [
            ("c1", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": padding}),
            ("r1", "Activation", {"fn": "relu"}),
            ("gap", "GlobalAvgPool2D", {}),
            ("fc", "Dense", {"units": 4}),
        ],
    )


def smooth_cnn() -> engine.Graph:
    """A differentiable everywhere CNN (tanh, average pooling) for finite differences."""
    return chain(
        "smooth",
        [2, 8, 8],
        [
            ("c1", "Conv2D", {"filters": 4, "kernel_size": 3}),
            ("t1", "Activation", {"fn": "tanh"}),
            ("p1", "AvgPool2D", {"kernel_size": 2}),
            ("c2", "Conv2D", {"filters": 5, "kernel_size": 2}),
            ("t2", "Activation", {"fn": "tanh"}),
            ("fl", "Flatten", {}),
            ("fc", "Dense", {"units": 3}),
        ],
    )


def x_for(m: engine.Model, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(m.input_shape).astype(np.float32)


def exported(g: engine.Graph, m: engine.Model, tmp_path: Path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    engine.save_weights(m, tmp_path / "w.npz")
    path = tmp_path / "net.py"
    path.write_text(export_code(g, "pytorch", weights=str(tmp_path / "w.npz")), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return torch, mod, mod.build_model().eval()


# --- CAM ---------------------------------------------------------------------------------------
def test_cam_is_the_weighted_sum_of_the_last_conv_maps():
    m = engine.build_model(gap_net(), seed=2)
    x = x_for(m)
    e = explain(m, x, "cam", cls=1)
    # by hand: f_k = relu(conv(x)) before the pool, M_1 = sum_k w_k^1 f_k
    h = m.layers["c1"].forward(x[None])
    f = np.maximum(h, 0)[0]
    w = m.params["fc.weight"][1]
    want = sum(w[k] * f[k] for k in range(3))
    np.testing.assert_allclose(e.coarse, want, rtol=1e-5, atol=1e-6)
    assert e.block == "r1" and e.cls == 1 and e.map.dtype == np.float32 and e.map.shape == (6, 6)
    np.testing.assert_allclose(e.map, want, rtol=1e-5, atol=1e-6)  # same size: no stretching
    # the lecture's identity: S_c = sum over positions of M_c (mean here: the pool averages)
    score = m.forward(x[None])[0, 1]
    assert abs(want.mean() + m.params["fc.bias"][1] - score) < 1e-5


def test_cam_is_upsampled_to_the_input_like_pytorch_bilinear():
    m = engine.build_model(gap_net(padding=0), seed=1)  # 4x4 maps on a 6x6 input
    e = explain(m, x_for(m), "cam")
    assert e.coarse.shape == (4, 4) and e.map.shape == (6, 6)
    assert e.cls == int(np.argmax(e.scores))
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.interpolate(
        torch.from_numpy(e.coarse.astype(np.float64))[None, None],
        size=(6, 6),
        mode="bilinear",
        align_corners=False,
    )[0, 0].numpy()
    np.testing.assert_allclose(e.map, want, rtol=1e-5, atol=1e-6)
    # and a 1-D map (a text CNN's positions) like mode='linear'
    v = np.array([0.0, 1.0, 4.0])
    want1 = torch.nn.functional.interpolate(
        torch.tensor(v)[None, None], size=7, mode="linear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(resize(v, (7,)), want1, atol=1e-12)


def test_cam_refuses_a_graph_without_gap_then_dense():
    m = engine.build_model(smooth_cnn())
    with pytest.raises(ConfigError, match="GlobalAvgPool2D -> Dense") as e:
        explain(m, x_for(m), "cam")
    assert "\n" not in str(e.value) and "block 'fc'" in str(e.value)
    assert methods_for(m) == ["gradcam", "saliency", "smoothgrad", "occlusion"]
    assert methods_for(engine.build_model(gap_net()))[0] == "cam"


# --- saliency --------------------------------------------------------------------------------
def test_saliency_is_the_input_gradient_finite_differences_and_torch(tmp_path):
    g = smooth_cnn()
    m = engine.build_model(g, seed=3)
    x = x_for(m, 1)
    e32 = explain(m, x, "saliency", cls=2)
    m.astype(np.float64)
    x64 = x.astype(np.float64)[None]
    num = numeric_grad(lambda: float(m.forward(x64)[0, 2]), x64)
    want = np.abs(num[0]).max(axis=0)
    e64 = explain(m, x64[0], "saliency", cls=2)
    assert e64.map.shape == (8, 8)
    assert rel_error(e64.map, want) < 1e-6
    m.astype(np.float32)
    # PyTorch autograd on the exported model
    torch, _, net = exported(g, m, tmp_path)
    xt = torch.from_numpy(x[None]).requires_grad_(True)
    net(xt)[0, 2].backward()
    got = xt.grad.abs().amax(dim=1)[0].numpy()
    np.testing.assert_allclose(e32.map, got, rtol=1e-4, atol=1e-6)


def test_smoothgrad_averages_noisy_saliency_maps():
    m = engine.build_model(smooth_cnn(), seed=3)
    x = x_for(m, 1)
    e = explain(m, x, "smoothgrad", cls=0, n=6, noise=0.1, seed=4)
    # by hand, the same noise
    sigma = 0.1 * float(x.max() - x.min())
    noise = np.random.default_rng(4).normal(0.0, sigma, (6, *x.shape)).astype(np.float32)
    maps = [explain(m, x + noise[i], "saliency", cls=0).map for i in range(6)]
    np.testing.assert_allclose(e.map, np.mean(maps, axis=0), rtol=1e-4, atol=1e-7)
    assert e.settings["sigma"] == pytest.approx(sigma)
    assert not np.allclose(e.map, explain(m, x, "saliency", cls=0).map)


# --- Grad-CAM --------------------------------------------------------------------------------
def lenet() -> engine.Graph:
    return engine.load_graph(ROOT / "presets" / "lenet5.json")


def torch_gradcam(torch, net, module, x, cls):
    """Grad-CAM as everyone writes it: hooks on the layer, mean gradient per channel."""
    saved = {}
    h1 = module.register_forward_hook(lambda mod, i, o: saved.__setitem__("a", o))
    h2 = module.register_full_backward_hook(lambda mod, gi, go: saved.__setitem__("g", go[0]))
    try:
        out = net(torch.from_numpy(x[None]).requires_grad_(True))
        out[0, cls].backward()
    finally:
        h1.remove()
        h2.remove()
    alpha = saved["g"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * saved["a"]).sum(dim=1, keepdim=True))
    up = torch.nn.functional.interpolate(
        cam, size=x.shape[1:], mode="bilinear", align_corners=False
    )
    return cam[0, 0].detach().numpy(), up[0, 0].detach().numpy()


@pytest.mark.parametrize("block", [None, "c1"])
def test_gradcam_matches_a_hand_written_pytorch_gradcam(block, tmp_path):
    g = lenet()
    m = engine.build_model(g, seed=5)
    x = np.random.default_rng(0).random(m.input_shape).astype(np.float32)
    e = explain(m, x, "gradcam", cls=3, block=block)
    assert e.block == (block or "c3") and e.map.shape == (32, 32)
    torch, mod, net = exported(g, m, tmp_path)
    module = getattr(net, mod.NAME_MAP[e.block])
    coarse, up = torch_gradcam(torch, net, module, x, 3)
    assert coarse.shape == e.coarse.shape
    np.testing.assert_allclose(e.coarse, coarse, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e.map, up, rtol=1e-4, atol=1e-6)


def test_gradcam_errors_are_one_line():
    mlp = chain("mlp", [4], [("d", "Dense", {"units": 3})])
    m = engine.build_model(mlp)
    with pytest.raises(ConfigError, match="needs a convolutional block"):
        explain(m, np.zeros(4, np.float32), "gradcam")
    m = engine.build_model(lenet())
    x = np.zeros(m.input_shape, np.float32)
    with pytest.raises(ConfigError, match="not maps over positions") as e:
        explain(m, x, "gradcam", block="f6")
    assert "block 'f6'" in str(e.value)
    with pytest.raises(ConfigError, match="no block 'nope'"):
        explain(m, x, "gradcam", block="nope")
    with pytest.raises(
        ShapeError, match="the input is 1x28x28 but the graph's Input takes 1x32x32"
    ):
        explain(m, np.zeros((1, 28, 28), np.float32), "saliency")
    with pytest.raises(ConfigError, match="class 10 is not one of the output's classes 0..9"):
        explain(m, x, "saliency", cls=10)
    with pytest.raises(ConfigError, match="unknown method"):
        explain(m, x, "lime")


# --- occlusion -------------------------------------------------------------------------------
def test_occlusion_lights_up_the_only_corner_the_model_looks_at():
    g = chain("corner", [1, 8, 8], [("fl", "Flatten", {}), ("fc", "Dense", {"units": 2})])
    m = engine.build_model(g)
    w = m.params["fc.weight"]
    w[...] = 0
    look = np.zeros((8, 8), np.float32)
    look[:2, 6:] = 1.0  # top-right 2x2 corner only
    w[1] = look.ravel()
    x = np.ones((1, 8, 8), np.float32)
    e = explain(m, x, "occlusion", cls=1, patch=2, stride=2)
    assert e.settings["positions"] == 16
    want = np.zeros((8, 8), np.float32)
    want[:2, 6:] = 4.0  # covering the corner removes all four evidence pixels
    np.testing.assert_array_equal(e.map, want)
    # overlapping patches: still only pixels near the corner, the corner itself the most
    e = explain(m, x, "occlusion", cls=1, patch=3, stride=1)
    assert e.map[:2, 6:].min() > 0 and e.map[4:, :].max() == 0 and e.map[:, :4].max() == 0
    assert np.unravel_index(np.argmax(e.map), e.map.shape) in [(0, 6), (0, 7), (1, 6), (1, 7)]


def test_top_classes_and_methods_on_integer_ids():
    assert top_classes(np.array([0.1, 3.0, -1.0, 2.0]), 3) == [1, 3, 0]
    g = chain(
        "ids",
        [6],
        [
            ("emb", "Embedding", {"num_embeddings": 10, "embedding_dim": 4}),
            ("fl", "Flatten", {}),
            ("fc", "Dense", {"units": 2}),
        ],
    )
    m = engine.build_model(g)
    assert methods_for(m) == ["occlusion"]
    ids = np.array([1, 2, 3, 4, 5, 6])
    with pytest.raises(ConfigError, match="integer ids"):
        explain(m, ids, "saliency")
    e = explain(m, ids, "occlusion", patch=1)
    assert e.map.shape == (6,) and np.isfinite(e.map).all()


# --- text: CAM over the words (lecture 001's word localisation) -------------------------------
def text_net() -> engine.Graph:
    return chain(
        "text",
        [9],
        [
            ("emb", "Embedding", {"num_embeddings": 12, "embedding_dim": 5}),
            ("tr", "Transpose", {}),
            ("conv", "Conv1D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
            ("relu", "Activation", {"fn": "relu"}),
            ("gap", "GlobalAvgPool1D", {}),
            ("fc", "Dense", {"units": 2}),
        ],
    )


def test_cam_over_words_is_the_weighted_sum_of_the_conv1d_maps():
    m = engine.build_model(text_net(), seed=6)
    ids = np.array([1, 5, 3, 0, 11, 2, 7, 7, 4])
    e = explain(m, ids, "cam", cls=0)
    f = m.layers["relu"].forward(m.layers["conv"].forward(
        m.layers["tr"].forward(m.layers["emb"].forward(ids[None]))))[0]  # fmt: skip
    w = m.params["fc.weight"][0]
    want = sum(w[k] * f[k] for k in range(4))
    np.testing.assert_allclose(e.map, want, rtol=1e-5, atol=1e-6)
    assert e.map.shape == (9,) and e.block == "relu"
    assert abs(want.mean() + m.params["fc.bias"][0] - e.scores[0]) < 1e-5
    assert methods_for(m) == ["cam", "gradcam", "occlusion"]
    g = explain(m, ids, "gradcam", cls=0)
    assert g.block == "conv" and g.map.shape == (9,)


def test_reviews_are_labelled_by_their_sentiment_words():
    from engine.data import load_dataset
    from engine.data.reviews import NEGATIVE, POSITIVE, words

    ds = load_dataset({"name": "reviews", "n": 400}, seed=3)
    assert ds.X.shape == (400, 20) and ds.X.dtype == np.int64 and ds.X.min() >= 1
    assert abs(int(ds.y.sum()) - 200) <= 1
    for x, y in zip(ds.X, ds.y, strict=True):
        w = words(x)
        pos, neg = sum(t in POSITIVE for t in w), sum(t in NEGATIVE for t in w)
        assert (pos > neg) == (y == 1) and max(pos, neg) >= 1


def test_text_preset_cam_peaks_at_the_deciding_words(tmp_path):
    import engine.cli as cli
    from engine.data import load_dataset, split
    from engine.data.reviews import NEGATIVE, POSITIVE, words

    preset = ROOT / "presets" / "text_cnn_cam.json"
    assert cli.main(["train", str(preset), "--save", str(tmp_path / "w.npz")]) == 0
    g = engine.load_graph(preset)
    m = engine.build_model(g)
    engine.load_weights(m, tmp_path / "w.npz")
    ds = load_dataset(g.training["dataset"], seed=g.training["seed"])
    _, _, X, y = split(ds, g.training["val_split"], g.training["seed"])
    near = right = 0
    for x, label in zip(X[:200], y[:200], strict=True):
        e = explain(m, x, "cam")
        right += e.cls == label
        own = POSITIVE if e.cls == 1 else NEGATIVE
        spots = [i for i, t in enumerate(words(x)) if t in own]
        peak = int(np.argmax(e.map))
        near += min(abs(peak - i) for i in spots) <= 1  # a kernel-3 window holds the word
    assert right >= 190 and near >= 190, (right, near)
