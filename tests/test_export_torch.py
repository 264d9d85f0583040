"""The PyTorch export gives the engine's numbers: module outputs with the engine's weights, the
data sets, the split and batches, the first training steps' losses, distributed training.

Tests that need torch skip without it (``pytest.importorskip``); the data-set checks do not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from standard_files import place_for

import engine
from engine.data import DATASET_OPTIONS, load_dataset
from engine.data.base import check_options
from engine.export import export_code, standalone_data

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "golden" / "graphs"
PRESETS = sorted((ROOT / "presets").glob("*.json"))


def graph(name: str, **training) -> engine.Graph:
    g = engine.load_graph(GRAPHS / f"{name}.json")
    if training:
        g.set_meta("training", {**g.training, **training})
    return g


def exported(g: engine.Graph, tmp_path: Path, weights: str | None = None, name: str = "net"):
    """Export ``g`` to PyTorch, write it, import it; returns the module."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = tmp_path / f"{name}.py"
    path.write_text(export_code(g, "pytorch", weights=weights), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def perturbed_model(g: engine.Graph, seed: int = 1) -> engine.Model:
    """An engine model whose biases and BatchNorm statistics are not at their start values,
    so a wrong mapping of any of them shows."""
    m = engine.build_model(g, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in m.layers.values():
        for k, v in layer.params.items():
            if k.startswith("bias") or v.ndim == 1:
                v[...] = rng.uniform(-0.5, 0.5, v.shape)
        if "running_mean" in layer.buffers:
            mean, var = layer.buffers["running_mean"], layer.buffers["running_var"]
            mean[...] = rng.normal(size=mean.shape)
            var[...] = rng.uniform(0.5, 2.0, var.shape)
    return m


def sample_input(m: engine.Model, n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    emb = [layer for layer in m.layers.values() if layer.type_name == "Embedding"]
    if emb:
        return rng.integers(0, emb[0].config["num_embeddings"], (n, *m.input_shape))
    return rng.standard_normal((n, *m.input_shape)).astype(np.float32)


# --- the modules ----------------------------------------------------------------------------------
def test_reserved_names_cover_nn_module():
    torch = pytest.importorskip("torch")
    from engine.export.naming import NN_MODULE_ATTRS

    public = {n for n in dir(torch.nn.Module()) if not n.startswith("_")}
    assert public <= NN_MODULE_ATTRS, public - NN_MODULE_ATTRS


@pytest.mark.parametrize(
    "name", ["cnn", "seq", "seq2", "mlp", "lenet5", "attend", "segnet", "text", "reverse"]
)
def test_exported_module_computes_what_the_engine_computes(name, tmp_path):
    torch = pytest.importorskip("torch")
    g = graph(name)
    m = perturbed_model(g)
    engine.save_weights(m, tmp_path / "w.npz")
    mod = exported(g, tmp_path, weights=str(tmp_path / "w.npz"))
    net = mod.build_model().eval()
    x = sample_input(m)
    want = m.forward(x, training=False)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # and back: the module's weights under the engine's names are the file's
    state = mod.engine_state(net)
    assert sorted(state) == sorted(m.state())
    for k, v in m.state().items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)


def test_the_parity_graphs_cover_every_block_type_and_activation():
    from engine.layers import LAYER_TYPES
    from engine.layers.activation import FUNCTIONS

    types, fns, bn_ranks = set(), set(), set()
    for name in ("cnn", "seq", "seq2", "mlp", "lenet5", "attend", "segnet", "text", "reverse"):
        g = graph(name)
        a = engine.analyze(g)
        for n in g.nodes():
            types.add(g.type_of(n))
            if g.type_of(n) == "Activation":
                fns.add(g.full_config(n)["fn"])
            if g.type_of(n) == "BatchNorm":
                bn_ranks.add(len(a.in_shapes[n]))
    assert types == set(LAYER_TYPES)
    assert fns == set(FUNCTIONS)
    assert bn_ranks == {1, 2, 3}


@pytest.mark.parametrize("name", ["seq", "seq2"])
def test_training_mode_forward_and_batchnorm_statistics_match(name, tmp_path):
    """Training mode (batch statistics, running averages with the unbiased variance)."""
    torch = pytest.importorskip("torch")
    g = graph(name)
    m = perturbed_model(g, seed=2)
    engine.save_weights(m, tmp_path / "w.npz")
    mod = exported(g, tmp_path, weights=str(tmp_path / "w.npz"))
    net = mod.build_model().train()
    x = sample_input(m, n=6, seed=1)
    want = m.forward(x, training=True)
    got = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    bn = [n for n, layer in m.layers.items() if layer.type_name == "BatchNorm"]
    assert bn
    for n in bn:
        attr = mod.NAME_MAP[n]
        for buf in ("running_mean", "running_var"):
            np.testing.assert_allclose(
                getattr(getattr(net, attr), buf).numpy(),
                m.layers[n].buffers[buf],
                atol=1e-6,
                rtol=1e-6,
            )


def test_connection_table_weights_stay_zero_and_init_follows_the_engine(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.export.plan import make_plan
    from engine.export.torch_modules import init_methods

    g = graph("cnn")
    mod = exported(g, tmp_path)
    net = mod.build_model().requires_grad_(False)
    c3 = net.c3
    assert float((c3.weight * (1 - c3.mask)).abs().sum()) == 0.0
    assert float(c3.weight.abs().sum()) > 0
    assert torch.all(net.bn.weight == 1) and torch.all(net.ss.weight == 0.25)
    assert all(
        float(p.abs().sum()) == 0
        for n, p in net.named_parameters()
        if n.endswith("bias") and not n.startswith("ss")
    )
    plan = make_plan(g)
    c3_init = dict((k, (m, s)) for k, m, s in init_methods(plan.by_id["c3"]))
    # 14 links, 6 output and 4 input maps, 2x3 kernels: the fans count connected maps only,
    # round(14 / 6) = 2 and round(14 / 4) = 4 of them, as the engine does
    assert c3_init["weight"] == ("xavier_uniform", {"fan_in": 2 * 6, "fan_out": 4 * 6})
    seq = exported(graph("seq"), tmp_path, name="seqnet").build_model()
    h = 4
    b = seq.lstm.rnn.bias_ih_l0_reverse.detach()
    assert torch.all(b[h : 2 * h] == 1) and torch.all(b[:h] == 0)  # forget gate starts open
    assert 0.8 < float(seq.emb.weight.detach().std()) < 1.2  # N(0, 1) like the engine
    seq2 = exported(graph("seq2"), tmp_path, name="seq2net").build_model()
    assert float(seq2.out_1.weight.detach().abs().max()) <= 0.3  # init uniform, limit 0.3


def test_layers_start_their_parameters_only_through_init_rule():
    """The export writes each layer's init_rule; a layer drawing its parameters any other way
    (its own init_param) would start differently in PyTorch, so none does. after_init changes
    are the layers' own and each export form repeats them (LSTM forget gate, conv table)."""
    from engine.layers import LAYER_TYPES
    from engine.layers.base import Layer

    assert all(cls.init_param is Layer.init_param for cls in LAYER_TYPES.values())
    own_start = {t for t, cls in LAYER_TYPES.items() if cls.init_rule is not Layer.init_rule}
    assert own_start == {"BatchNorm", "Embedding", "Subsample2D", "Conv2D"}
    after = {t for t, cls in LAYER_TYPES.items() if cls.after_init is not Layer.after_init}
    assert after == {"Conv2D", "Dropout", "GaussianNoise", "RNN", "LSTM", "GRU"}


# --- the data -------------------------------------------------------------------------------------
BUILTIN_CASES = [
    ("digits", {}),
    ("digits", {"resize": [32, 32]}),
    ("digits", {"resize": [28, 28], "pad": [32, 32], "flatten": True}),
    ("xor", {}),
    ("xor", {"targets": "float", "repeat": 5, "noise": 0.1}),
    ("moons", {}),
    ("circles", {"n": 101, "noise": 0.2}),
    ("spiral", {"arms": 4}),
    ("adding", {"T": 10, "n": 100}),
    ("copy", {"n": 50}),
    ("sine", {"n": 40}),
    ("timed_spikes", {"n": 30, "cues": 2, "min_interval": 3, "max_interval": 9, "T": 30}),
    ("reversal", {"n": 30, "length": 5}),
    ("sorting", {"n": 30, "length": 30}),
    ("dates", {"n": 40}),
    ("digit_strips", {"n": 20, "min_digits": 1}),
    ("sine", {"n": 40, "many_to_many": True}),
    ("reviews", {"n": 60, "T": 8, "distractor": 0.7}),
    ("chars", {"n": 30}),
    ("chars", {"corpus": "brackets", "one_hot": True, "n": 20, "T": 10}),
    ("chars", {"corpus": "hello", "n": 3}),
    ("tagging", {"n": 30}),
    ("tagging", {"rule": "brackets", "one_hot": False, "n": 30}),
]


def standalone(name: str, spec: dict, seed: int):
    cfg = check_options(name, {"name": name, **spec}, DATASET_OPTIONS[name])
    fn, takes_rng, _ = standalone_data.MAKERS[name]
    f = getattr(standalone_data, fn)
    return f(np.random.default_rng(seed), **cfg) if takes_rng else f(**cfg)


def assert_same_data(got, ds):
    X, y = got
    assert X.dtype == ds.X.dtype and y.dtype == ds.y.dtype
    np.testing.assert_array_equal(X, ds.X)
    np.testing.assert_array_equal(y, ds.y)


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("name,spec", BUILTIN_CASES)
def test_standalone_data_equals_the_engines(name, spec, seed):
    assert_same_data(standalone(name, spec, seed), load_dataset({"name": name, **spec}, seed))


def test_every_data_set_has_a_standalone_loader():
    from engine.data import DATASETS

    assert set(DATASETS) == set(standalone_data.MAKERS)


def write_data_files(tmp_path: Path) -> list[dict]:
    """Small files of every user format, and their specs."""
    import gzip

    from PIL import Image

    rng = np.random.default_rng(0)
    csv1 = tmp_path / "a.csv"
    csv1.write_text("f1,f2,species\n1,2.5,cat\n3,4,dog\n5,6.5,cat\n0,1,bird\n", encoding="utf-8")
    csv2 = tmp_path / "b.csv"
    csv2.write_text("\ufeff0.5;1;7.25\n2;3;1.5\n4;5;2\n", encoding="utf-8")
    csv3 = tmp_path / "c.csv"
    csv3.write_text("a|b|c\n1|2|3\n4|5.5|6\n7|8|9\n1|0|2\n", encoding="utf-8")
    npz1 = tmp_path / "a.npz"
    np.savez(npz1, X=rng.normal(size=(6, 3)), y=np.array([3, 1, 1, 2, 0, 3]))
    npz2 = tmp_path / "b.npz"
    np.savez(npz2, feats=rng.integers(0, 9, (5, 4)), seq=rng.integers(0, 3, (5, 4)))
    imgs, labs = tmp_path / "img.idx.gz", tmp_path / "lab.idx"
    pix = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    with gzip.open(imgs, "wb") as f:
        f.write(b"\0\0\x08\x03" + np.array([4, 5, 6], ">u4").tobytes() + pix.tobytes())
    labs.write_bytes(b"\0\0\x08\x01" + np.array([4], ">u4").tobytes() + bytes([3, 1, 4, 1]))
    txt = tmp_path / "t.txt"
    txt.write_text("hello world, hello BlockProp! ünïcödé\n" * 3, encoding="utf-8")
    folder = tmp_path / "imgs"
    for cls, n in (("b", 2), ("a", 3)):
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / cls / f"{i}.png")
    return [
        {"name": "csv", "path": str(csv1)},
        {"name": "csv", "path": str(csv3), "label": "a", "standardize": True},
        {"name": "csv", "path": str(csv3), "label": "c", "task": "classification"},
        {"name": "csv", "path": str(csv2), "task": "regression"},
        {"name": "csv", "path": str(csv2), "label": 0},
        {"name": "npz", "path": str(npz1)},
        {"name": "npz", "path": str(npz2), "x_key": "feats", "y_key": "seq", "ids": True},
        {"name": "idx", "images": str(imgs), "labels": str(labs)},
        {"name": "idx", "images": str(imgs), "labels": str(labs), "n": 3, "flatten": True},
        {"name": "text", "path": str(txt), "T": 8},
        {"name": "text", "path": str(txt), "T": 5, "n": 7, "one_hot": True},
        {"name": "image_folder", "path": str(folder)},
        {"name": "image_folder", "path": str(folder), "size": [4, 5], "grayscale": False},
    ]


def test_standalone_file_loaders_equal_the_engines(tmp_path):
    for spec in write_data_files(tmp_path):
        name = spec["name"]
        opts = {k: v for k, v in spec.items() if k != "name"}
        assert_same_data(standalone(name, opts, 3), load_dataset(spec, 3))


def autoencoder() -> engine.Graph:
    return engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "nodes": [
                {"id": "in", "type": "Input", "config": {"shape": [64]}},
                {"id": "code", "type": "Dense", "config": {"units": 8}},
                {"id": "out", "type": "Dense", "config": {"units": 64}},
            ],
            "edges": [
                {"source": "in", "target": "code", "target_port": 0},
                {"source": "code", "target": "out", "target_port": 0},
            ],
            "training": {
                "dataset": {"name": "digits", "flatten": True, "target": "input"},
                "loss": "mse",
                "optimizer": {"name": "adam", "lr": 0.01},
            },
        }
    )


def test_script_loads_the_data_and_splits_it_as_the_trainer(tmp_path):
    for name, extra in (
        ("mlp", {}),
        ("seq2", {}),
        ("mlp", {"val_split": 0.0}),
        ("seq", {"val_split": 0.35, "seed": 4}),
        ("mlp", {"test_split": 0.2}),  # engine.splits: the test share held out first
        ("seq", {"test_split": 0.3, "val_split": 0.1, "seed": 2}),
        ("autoencoder", {}),
    ):
        g = autoencoder() if name == "autoencoder" else graph(name, **extra)
        mod = exported(g, tmp_path, name=f"split_{name}")
        X, y = mod.load_data()
        trainer = engine.Trainer.from_graph(g)
        (Xtr, ytr), (Xva, yva), rng = mod.split(X, y)
        np.testing.assert_array_equal(Xtr, trainer.train_data[0])
        np.testing.assert_array_equal(mod.targets(ytr), trainer.train_data[1])
        np.testing.assert_array_equal(Xva, trainer.val_data[0])
        np.testing.assert_array_equal(mod.targets(yva), trainer.val_data[1])
        # the shuffling stream too: the same first epoch order
        np.testing.assert_array_equal(rng.permutation(len(Xtr)), trainer._rng.permutation(len(Xtr)))


# --- training -------------------------------------------------------------------------------------
def engine_losses(g: engine.Graph, steps: int) -> list[float]:
    out = []
    for ev in engine.Trainer.from_graph(g).run():
        if ev["event"] == "step":
            out.append(ev["loss"])
            if len(out) == steps:
                break
    return out


def torch_losses(g: engine.Graph, steps: int, tmp_path: Path) -> list[dict]:
    """Run the exported script's train() in this process, from the engine's initial weights."""
    engine.save_weights(engine.build_model(g, seed=g.training.get("seed", 0)), tmp_path / "w0.npz")
    mod = exported(g, tmp_path, weights=str(tmp_path / "w0.npz"), name="train_script")
    log = tmp_path / "log.jsonl"
    mod.train(steps=steps, log=str(log))
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [e for e in events if e["event"] == "step"]


def test_first_steps_match_the_engine_sgd_mlp(tmp_path):
    g = graph("mlp")
    assert g.training["optimizer"]["name"] == "sgd"
    ours = torch_losses(g, 8, tmp_path)
    ref = engine_losses(g, 8)
    np.testing.assert_allclose([e["loss"] for e in ours], ref, rtol=1e-5, atol=1e-6)
    first = next(e for e in engine.Trainer.from_graph(g).run())
    for block, rms in first["grad_rms"].items():
        assert ours[0]["grad_rms"][block] == pytest.approx(rms, rel=1e-4)


def test_first_steps_match_the_engine_lenet5(tmp_path):
    """LeNet-5 (connection table, trainable subsampling) with the lecture's Adam."""
    g = graph("lenet5")
    ours = torch_losses(g, 4, tmp_path)
    np.testing.assert_allclose([e["loss"] for e in ours], engine_losses(g, 4), rtol=1e-5)


SMALL = {"dataset": {"name": "moons", "n": 100}, "batch_size": 32, "epochs": 3}
OPTIMIZER_CASES = {
    "momentum_step_schedule": dict(
        SMALL,
        optimizer={"name": "momentum", "lr": 0.1},
        schedule={"name": "step", "step_size": 1, "gamma": 0.5},
    ),
    "nesterov": dict(SMALL, optimizer={"name": "nesterov", "lr": 0.1, "momentum": 0.8}),
    "adam_l1_l2_clip": dict(
        SMALL,
        optimizer={"name": "adam", "lr": 0.01},
        l1=1e-3,
        l2=1e-2,
        clip_norm=0.5,
        schedule={"name": "time", "k": 0.5},
    ),
    "adagrad": dict(
        SMALL, optimizer={"name": "adagrad", "lr": 0.05}, schedule={"name": "exponential", "k": 0.3}
    ),
    "adadelta": dict(SMALL, optimizer={"name": "adadelta", "lr": 0.01}),
    "rmsprop_bce": dict(
        SMALL,
        optimizer={"name": "rmsprop", "lr": 0.01},
        loss="bce_with_logits",
        dataset={"name": "xor", "repeat": 25, "targets": "float"},
    ),
}


def small_mlp(training: dict) -> engine.Graph:
    out = 1 if training.get("loss") == "bce_with_logits" else 2
    d = {
        "format": "blockprop-graph",
        "version": 1,
        "name": "small",
        "training": training,
        "nodes": [
            {"id": "in", "type": "Input", "config": {"shape": [2]}},
            {"id": "h", "type": "Dense", "config": {"units": 8}},
            {"id": "t", "type": "Activation", "config": {"fn": "tanh"}},
            {"id": "o", "type": "Dense", "config": {"units": out}},
        ],
        "edges": [
            {"source": "in", "target": "h", "target_port": 0},
            {"source": "h", "target": "t", "target_port": 0},
            {"source": "t", "target": "o", "target_port": 0},
        ],
    }
    return engine.Graph.from_dict(d)


@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_optimizers_schedules_and_regularisation_match_the_engine(case, tmp_path):
    g = small_mlp(OPTIMIZER_CASES[case])
    ours = torch_losses(g, 9, tmp_path)  # 3 epochs of 3 steps: the schedule acts twice
    ref = [e for e in engine.Trainer.from_graph(g).run() if e["event"] == "step"][:9]
    assert len(ours) == 9
    np.testing.assert_allclose(
        [e["loss"] for e in ours], [e["loss"] for e in ref], rtol=2e-5, atol=1e-6
    )
    np.testing.assert_allclose([e["lr"] for e in ours], [e["lr"] for e in ref], rtol=1e-12)


def test_optimizer_choice_follows_torch_equivalent(tmp_path):
    pytest.importorskip("torch")
    sgd = export_code(small_mlp(dict(SMALL, optimizer={"name": "momentum", "lr": 0.1})), "pytorch")
    assert "torch.optim.SGD(params, lr=lr, momentum=momentum)" in sgd
    assert "LectureOptimizer" not in sgd
    scheduled = export_code(small_mlp(OPTIMIZER_CASES["momentum_step_schedule"]), "pytorch")
    assert "RULE = momentum_rule" in scheduled  # PyTorch's momentum differs when lr changes
    adam = export_code(small_mlp(dict(SMALL, optimizer={"name": "adam"})), "pytorch")
    assert "RULE = adam_rule" in adam and "sqrt(v^ + eps)" in adam


def test_script_runs_alone_and_saves_engine_weights(tmp_path):
    pytest.importorskip("torch")
    g = small_mlp(dict(SMALL, optimizer={"name": "adam", "lr": 0.01}))
    script = tmp_path / "alone.py"
    script.write_text(export_code(g, "pytorch"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORLD_SIZE")}
    r = subprocess.run(
        [sys.executable, "-I", str(script), "--epochs", "2", "--save", "w.npz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "epoch 2/2" in r.stdout and "finished after 6 steps" in r.stdout
    model = engine.build_model(g)
    before = model.state()
    engine.load_weights(model, tmp_path / "w.npz")  # BlockProp reads the trained weights
    assert any(not np.array_equal(before[k], v) for k, v in model.state().items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_end_with_identical_weights(tmp_path):
    pytest.importorskip("torch")
    g = small_mlp(
        dict(SMALL, optimizer={"name": "adam", "lr": 0.05}, epochs=1, l2=1e-3, clip_norm=1.0)
    )
    g.set_meta("training", dict(g.training, dataset={"name": "moons", "n": 200}, batch_size=16))
    script = tmp_path / "ddp.py"
    script.write_text(export_code(g, "pytorch"), encoding="utf-8")
    env = dict(os.environ, BLOCKPROP_SAVE_FINAL=str(tmp_path / "final"), OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            str(script),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.perf_counter() - t0 < 60
    # 160 training samples, 80 per process, batches of 16: 5 steps; only rank 0 prints
    assert r.stdout.count("epoch 1/1") == 1 and "finished after 5 steps" in r.stdout
    ranks = [np.load(tmp_path / f"final.rank{i}.npz") for i in (0, 1)]
    assert sorted(ranks[0].files) == sorted(ranks[1].files) == sorted(engine.build_model(g).state())
    for k in ranks[0].files:
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=k)
    start = engine.build_model(g).state()
    assert any(not np.allclose(ranks[0][k], start[k]) for k in start)  # it did train


def test_autoencoder_trains_like_the_engine(tmp_path):
    g = autoencoder()
    ours = torch_losses(g, 5, tmp_path)
    np.testing.assert_allclose([e["loss"] for e in ours], engine_losses(g, 5), rtol=1e-5)


# --- presets (the list grows as presets are added) ------------------------------------------------
@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_exports_to_an_equal_pytorch_module(path, tmp_path):
    torch = pytest.importorskip("torch")
    g = engine.load_graph(path)
    m = perturbed_model(g)
    engine.save_weights(m, tmp_path / "w.npz")
    net = exported(g, tmp_path, weights=str(tmp_path / "w.npz"), name=f"p_{path.stem}")
    net = net.build_model().eval()
    x = sample_input(m, n=3)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    # 1e-5, relative for the presets whose bad initialisation (on purpose) blows outputs up
    np.testing.assert_allclose(got, m.forward(x, training=False), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_trains_its_first_steps_like_the_engine(path, tmp_path, monkeypatch):
    """Same initial weights, data, batches, loss and optimizer: the same first losses (Dropout
    and GaussianNoise draw from another generator, so those presets are compared without; the
    standard data sets are generated files in their real formats)."""
    g = engine.load_graph(path)
    place_for(g, monkeypatch, tmp_path / "cache")
    for n in g.nodes():
        if g.type_of(n) == "Dropout":
            g.set_config(n, {"rate": 0.0})
        elif g.type_of(n) == "GaussianNoise":
            g.set_config(n, {"std": 0.0})
    ours = torch_losses(g, 2, tmp_path)
    np.testing.assert_allclose([e["loss"] for e in ours], engine_losses(g, 2), rtol=1e-4)
