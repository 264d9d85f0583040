"""The architecture zoo (presets/zoo/*.json, written by presets/make_zoo.py): torchvision's
parameter counts (written here, and compared with torchvision itself where it is installed),
the files equal to what the script writes, the PyTorch export of each building in torch with
the same count, GoogLeNet's export computing the engine's outputs, check in under a second,
listed by `app.py presets` and the app's preset dialog and opened from it."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import cli
from engine.export import export_code

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "presets" / "zoo"
sys.path.insert(0, str(ROOT / "presets"))
import make_zoo  # noqa: E402

# torchvision's counts (torchvision.models.X(), aux_logits=False for GoogLeNet); the 2012
# two-tower AlexNet is the paper's, which torchvision does not build.
COUNTS = {
    "alexnet": 61_100_840,
    "alexnet_2012": 60_965_224,
    "vgg16": 138_357_544,
    "googlenet": 6_624_904,
    "googlenet_aux": 13_004_888,  # with torchvision's two InceptionAux heads
    "resnet18": 11_689_512,
    "densenet121": 7_978_856,
}
TORCHVISION = {
    "alexnet": "alexnet",
    "vgg16": "vgg16",
    "googlenet": "googlenet",
    "googlenet_aux": "googlenet",
    "resnet18": "resnet18",
    "densenet121": "densenet121",
}


def same_but_layout(a: engine.Graph, b: engine.Graph) -> bool:
    """Equal files but for the block positions (the auto-layout may change; not_cramped
    checks the files' own)."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        for n in d["nodes"]:
            n.pop("pos")
    return da == db


def test_the_zoo_is_the_script_and_holds_every_network():
    assert sorted(p.stem for p in ZOO.glob("*.json")) == sorted(COUNTS) == sorted(make_zoo.ZOO)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count_is_torchvisions(name):
    g = engine.load_graph(ZOO / f"{name}.json")
    a = engine.analyze(g)
    assert a.ok, a.problems[:3]
    assert a.total_params == COUNTS[name]
    assert f"{COUNTS[name]:,}" in g.description
    assert same_but_layout(make_zoo.build(name), g)  # the file is what the script writes


@pytest.mark.parametrize("path", sorted(ZOO.glob("*.json")), ids=lambda p: p.stem)
def test_blocks_are_laid_out_without_overlaps(path):
    from gui.layout import is_cramped

    g = engine.load_graph(path)
    assert len({g.pos_of(n) for n in g.nodes()}) == len(g)
    assert not is_cramped(g, 176.0, 68.0)  # gui/canvas/style.py's block size


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)
@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_count_equals_torchvision_itself(name):
    import torchvision

    kw = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    if name == "googlenet_aux":
        kw = {"aux_logits": True, "init_weights": False}
    net = getattr(torchvision.models, TORCHVISION[name])(weights=None, **kw)
    assert sum(p.numel() for p in net.parameters()) == COUNTS[name]


def _exported(g: engine.Graph, tmp_path: Path, weights: str | None = None):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = tmp_path / "net.py"
    path.write_text(export_code(g, "pytorch", weights=weights), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_pytorch_export_builds_with_the_same_count(name, tmp_path):
    g = engine.load_graph(ZOO / f"{name}.json")
    net = _exported(g, tmp_path).build_model()
    assert sum(p.numel() for p in net.parameters()) == COUNTS[name]


def test_googlenet_export_computes_the_engines_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    g = engine.load_graph(ZOO / "googlenet.json")
    model = engine.build_model(g, seed=0)
    rng = np.random.default_rng(1)
    for layer in model.layers.values():  # BatchNorm statistics away from 0 and 1
        for k, v in layer.buffers.items():
            v[...] = rng.uniform(0.5, 1.5, v.shape) if k == "running_var" else rng.normal(0, 0.1)
    engine.save_weights(model, tmp_path / "w.npz")
    net = _exported(g, tmp_path, weights=str(tmp_path / "w.npz")).build_model().eval()
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    want = model.forward(x, training=False)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert want.shape == (2, 1000)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_the_two_tower_alexnet_has_towers_and_lrn():
    g = engine.load_graph(ZOO / "alexnet_2012.json")
    a = engine.analyze(g)
    groups = {n: g.full_config(n)["groups"] for n in g.nodes() if g.type_of(n) == "Conv2D"}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert a.params["conv2"] == 256 * 48 * 25 + 256
    assert [n for n in g.nodes() if g.type_of(n) == "LocalResponseNorm"] == ["norm1", "norm2"]
    assert a.shapes["relu1"] == (96, 55, 55) and a.shapes["pool5"] == (256, 6, 6)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_check_takes_under_a_second_and_passes_the_memory_check(name, capsys):
    path = ZOO / f"{name}.json"
    t0 = time.perf_counter()
    assert cli.main(["check", str(path)]) == 0
    assert time.perf_counter() - t0 < 1.0
    assert "no problems" in capsys.readouterr().out
    a = engine.analyze(engine.load_graph(path))
    assert a.batch_size == 2 and a.memory_bytes <= a.memory_limit


def test_presets_command_lists_the_zoo(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in COUNTS:
        assert f"zoo/{name} " in out


# --- the trainable cousins (presets/make_trainable.py) --------------------------------------------
sys.path.insert(0, str(ROOT / "presets"))
import make_trainable  # noqa: E402

TRAINABLE = {"resnet20": 272_186, "vgg_small": 204_282, "densenet_small": 102_298}


@pytest.mark.parametrize("name", sorted(TRAINABLE))
def test_trainable_preset_is_the_script_with_a_measured_outcome(name):
    g = engine.load_graph(ROOT / "presets" / f"{name}.json")
    assert same_but_layout(make_trainable.build(name), g)
    assert engine.analyze(g).total_params == TRAINABLE[name]
    assert "val acc" in g.description and "not yet measured" not in g.description


def test_resnet20_is_the_papers_six_n_plus_two():
    g = engine.load_graph(ROOT / "presets" / "resnet20.json")
    weighted = [n for n in g.nodes() if g.type_of(n) in ("Conv2D", "Dense")]
    assert len([n for n in weighted if not n.endswith("_down")]) == 20  # 6 * 3 + 2
    a = engine.analyze(g)
    assert a.shapes["s1_2_relu"] == (16, 32, 32) and a.shapes["s3_2_relu"] == (64, 8, 8)


@pytest.mark.parametrize(
    "name,steps", [("resnet20", 20), ("vgg_small", 60), ("densenet_small", 20)]
)
def test_trainable_preset_loss_falls(name, steps):
    """A short run at batch 16 (the preset trains at 64): the loss falls (the VGG, without
    BatchNorm, starts slower)."""
    g = engine.load_graph(ROOT / "presets" / f"{name}.json")
    g.set_meta("training", {**g.training, "batch_size": 16})
    trainer = engine.Trainer.from_graph(g)
    losses = []
    for ev in trainer.run():
        if ev["event"] == "step":
            losses.append(ev["loss"])
            if len(losses) == steps:
                trainer.stop()
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 1.5, losses


def test_googlenet_through_onnx_and_back(tmp_path):
    """ceil_mode pools, BatchNorm and four-way Concats: onnxruntime computes the engine's
    outputs, and the importer gives the same blocks and count back."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx
    from engine.export.onnx.importer import import_model

    g = engine.load_graph(ZOO / "googlenet.json")
    model = engine.build_model(g, seed=0)
    data = export_onnx(g, arrays=model.state())
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.forward(x), atol=1e-5, rtol=1e-5)
    back, _ = import_model(onnx.load_from_string(data), "googlenet.onnx")
    a = engine.analyze(back)
    assert a.ok and a.total_params == COUNTS["googlenet"] and len(back) == len(g)
    pools = [n for n in back.nodes() if back.type_of(n) == "MaxPool2D"]
    assert sum(bool(back.full_config(n)["ceil_mode"]) for n in pools) == 3  # 112, 56, 28


def test_googlenet_aux_head_computes_torchvisions_inception_aux():
    """A head of googlenet_aux, with the same weights as torchvision's InceptionAux written
    out here (adaptive_avg_pool2d to 4x4, BasicConv2d 1x1 to 128, fc1, ReLU, dropout, fc2),
    gives its outputs: the overlapping 14 -> 4 windows, not the paper's 5x5/3 pool."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    zoo = engine.load_graph(ZOO / "googlenet_aux.json")
    head = ["aux1_pool", "aux1_conv", "aux1_conv_bn", "aux1_conv_relu", "aux1_flatten"]
    head += ["aux1_fc1", "aux1_fc1_relu", "aux1_drop", "aux1_fc2"]
    assert zoo.type_of("aux1_pool") == zoo.type_of("aux2_pool") == "AdaptiveAvgPool2D"
    assert zoo.full_config("aux1_pool")["output_size"] == 4
    g = engine.Graph(name="aux1")
    g.add_node("Input", {"shape": [512, 14, 14]}, node_id="in")  # inception 4a's maps
    for src, nid in zip(["in", *head], head, strict=False):
        assert zoo.inputs_of(nid) == [src] or src == "in"
        g.add_node(zoo.type_of(nid), zoo.config_of(nid), node_id=nid)
        g.add_edge(src, nid)
    model = engine.build_model(g, seed=0)
    rng = np.random.default_rng(3)
    state = model.state()
    for k, v in state.items():  # biases and BatchNorm away from their start values
        if not k.endswith("conv.weight") and not k.endswith("fc1.weight"):
            lo = 0.5 if k.endswith(("running_var", "bn.weight")) else -0.5
            state[k] = rng.uniform(lo, 1.5, v.shape).astype(v.dtype)
    model.set_state(state)
    tv = nn.Sequential(
        nn.AdaptiveAvgPool2d((4, 4)),
        nn.Conv2d(512, 128, 1, bias=False),
        nn.BatchNorm2d(128, eps=0.001),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2048, 1024),
        nn.ReLU(),
        nn.Dropout(0.7),
        nn.Linear(1024, 1000),
    ).eval()
    names = {
        "1.weight": "aux1_conv.weight",
        "2.weight": "aux1_conv_bn.weight",
        "2.bias": "aux1_conv_bn.bias",
        "2.running_mean": "aux1_conv_bn.running_mean",
        "2.running_var": "aux1_conv_bn.running_var",
        "5.weight": "aux1_fc1.weight",
        "5.bias": "aux1_fc1.bias",
        "8.weight": "aux1_fc2.weight",
        "8.bias": "aux1_fc2.bias",
    }
    sd = {t: torch.from_numpy(np.ascontiguousarray(state[e])) for t, e in names.items()}
    tv.load_state_dict({**tv.state_dict(), **sd})
    x = rng.standard_normal((2, 512, 14, 14)).astype(np.float32)
    with torch.no_grad():
        want = tv(torch.from_numpy(x)).numpy()
        paper = nn.functional.avg_pool2d(torch.from_numpy(x), 5, 3).numpy()
    got = model.forward(x, training=False)
    assert got.shape == (2, 1000)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    pooled = model.layers["aux1_pool"].forward(x)
    assert np.abs(pooled - paper).max() > 0.1  # the paper's windows would not match
