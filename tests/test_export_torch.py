"""The PyTorch export gives the engine's numbers: module outputs with the engine's weights, the
first training steps' losses, optimizers and schedules, distributed training, every preset.
The data sets, the split and batches: test_export_torch_data.py.

Tests that need torch skip without it (``pytest.importorskip``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from export_torch_support import (
    PRESETS,
    autoencoder,
    exported,
    graph,
    perturbed_model,
    sample_input,
)
from standard_files import place_for

import engine
from engine.export import export_code


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
