"""The memory check uses the batch the run will use (graph, --batch-size, the Training dock),
tells training from inference, blames a block only when that block alone is too large, and
names the batch size that fits."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.analysis as analysis
import engine.cli as cli
from engine.errors import GraphError
from engine.memory import DEFAULT_BATCH_SIZE, fmt_bytes, run_batch_size
from engine.training_spec import TRAINING_OPTIONS

pytest_plugins = ["gui_support", "training_support"]  # main_window

GB = 10**9
VGG16_PARAMS = 138_357_544  # Simonyan & Zisserman's configuration D at 224x224, 1000 classes


def vgg16(batch_size: int = 2) -> engine.Graph:
    """VGG-16, block by block: 13 3x3 convolutions (padding 1) in 5 stages with 2x2 max
    pooling, then 4096-4096-1000 fully connected."""
    nodes = [{"id": "in", "type": "Input", "config": {"shape": [3, 224, 224]}}]
    edges = []

    def add(i, t, **cfg):
        edges.append({"source": nodes[-1]["id"], "target": i, "target_port": 0})
        nodes.append({"id": i, "type": t, "config": cfg})

    for stage, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for j in range(1, convs + 1):
            add(f"conv{stage}_{j}", "Conv2D", filters=filters, kernel_size=3, padding=1)
            add(f"relu{stage}_{j}", "Activation", fn="relu")
        add(f"pool{stage}", "MaxPool2D", kernel_size=2)
    add("flatten", "Flatten")
    for k in (6, 7):
        add(f"fc{k}", "Dense", units=4096)
        add(f"relu{k}", "Activation", fn="relu")
    add("fc8", "Dense", units=1000)
    return engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "name": "VGG-16",
            "nodes": nodes,
            "edges": edges,
            "training": {"batch_size": batch_size},
        }
    )


@pytest.fixture
def limit_12gb(monkeypatch):
    """This machine's limit pinned at 12 GB, so the outcomes do not depend on its RAM."""
    monkeypatch.setattr(analysis, "default_memory_limit", lambda: 12 * GB)


def test_vgg16_passes_at_batch_2_and_is_refused_with_the_batch_that_fits(limit_12gb):
    g = vgg16(batch_size=2)
    a = engine.analyze(g)
    assert a.total_params == VGG16_PARAMS
    assert a.ok and a.batch_size == 2 and a.training  # the graph's batch, for training
    assert a.memory_bytes == a.memory_fixed + 2 * a.memory_per_sample
    big = engine.analyze(g, batch_size=64)
    (p,) = big.problems
    assert p.block is None  # no single block is at fault: the total is
    assert p.message.startswith("the network is too large for this machine: training at batch 64")
    assert "no single block is at fault; lower the batch size from 64 to 14 or less" in p.message
    assert engine.analyze(g, batch_size=14).ok and not engine.analyze(g, batch_size=15).ok
    # Inference needs less: a batch training refuses still runs.
    assert engine.analyze(g, batch_size=30, training=False).ok
    (p,) = engine.analyze(g, batch_size=64, training=False).problems
    assert "inference at batch 64 would need" in p.message
    assert "lower the batch size from 64 to 35 or less" in p.message


def test_vgg16_runs_inference_at_batch_2_and_build_model_refuses_a_batch_too_large(limit_12gb):
    """138 million parameters (553 MB) built and run on two images: the memory check of
    build_model is for inference at the graph's batch (measured peak 1.5 GB, estimate 2.3)."""
    g = vgg16(batch_size=2)
    with pytest.raises(GraphError, match="inference at batch 4,096 would need.*lower the batch"):
        engine.build_model(g, batch_size=4096)
    with pytest.raises(GraphError, match="training at batch 64 .* lower the batch size"):
        engine.build_model(g, batch_size=64, training=True)
    model = engine.build_model(g)
    assert model.n_params == VGG16_PARAMS
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (2, 1000) and np.isfinite(y).all()
    assert not np.allclose(y[0], y[1])


def test_check_uses_the_graphs_batch_or_batch_size(limit_12gb, tmp_path, capsys):
    path = tmp_path / "vgg16.json"
    vgg16(batch_size=2).save(path)
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Training memory (batch 2, estimate): 5.95 GB" in out and "no problems" in out
    assert cli.main(["check", str(path), "--batch-size", "256"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training at batch 256 would need about 125 GB" in err[0]
    assert err[0].endswith("lower the batch size from 256 to 14 or less")
    assert cli.main(["check", str(path), "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == (
        "app.py: --batch-size must be a whole number from 1 to 1,000,000, got 0\n"
    )


def test_train_checks_memory_at_its_batch_before_loading_data(limit_12gb, tmp_path, capsys):
    path = tmp_path / "vgg16.json"
    g = vgg16(batch_size=256)
    g.set_meta("training", {**g.training, "dataset": {"name": "csv", "path": str(tmp_path / "x")}})
    g.save(path)
    assert cli.main(["train", str(path)]) == 2
    assert "training at batch 256" in capsys.readouterr().err  # not the data set's problem
    with pytest.raises(GraphError, match="training at batch 256"):
        engine.Trainer.from_graph(g)  # builds the model before it loads the data set


def test_a_block_too_large_alone_is_blamed_with_the_batch_that_would_fit():
    g = engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "name": "wide",
            "nodes": [
                {"id": "in", "type": "Input", "config": {"shape": [1000]}},
                {"id": "wide", "type": "Dense", "config": {"units": 1_000_000}},
                {"id": "out", "type": "Dense", "config": {"units": 2}},
            ],
            "edges": [
                {"source": "in", "target": "wide", "target_port": 0},
                {"source": "wide", "target": "out", "target_port": 0},
            ],
        }
    )
    # 1,001,000,000 parameters: 32 GB to train whatever the batch, and 12 MB a sample.
    (p,) = engine.analyze(g, batch_size=1, memory_limit=20 * GB).problems
    assert p.block == "wide" and "1,001,000,000 parameters" in p.message
    assert "lower the batch size" not in p.message  # no batch fits
    assert "pool earlier" in p.message
    assert engine.analyze(g, batch_size=8, memory_limit=100 * GB).ok
    (p,) = engine.analyze(g, batch_size=20_000, memory_limit=100 * GB).problems
    assert p.block == "wide" and "(this block alone 272 GB, 1,001,000,000 parameters)" in p.message
    assert p.message.endswith("pool earlier, or lower the batch size from 20,000 to 5,654 or less")
    (p,) = engine.analyze(g, batch_size=1, memory_limit=5 * GB, training=False).problems
    assert "inference at batch 1" in p.message and p.block == "wide"


def test_the_batch_a_run_will_use():
    assert DEFAULT_BATCH_SIZE == TRAINING_OPTIONS["batch_size"].default
    assert run_batch_size(None) == DEFAULT_BATCH_SIZE
    assert run_batch_size({"batch_size": 8}) == 8
    assert run_batch_size({"batch_size": 8}, 3) == 3
    assert run_batch_size({"batch_size": 8.0}) == 8
    for bad in (0, -1, True, "64", 10**7, None, 2.5):  # check_training reports these
        assert run_batch_size({"batch_size": bad}) == DEFAULT_BATCH_SIZE
    assert fmt_bytes(5.54e9) == "5.54 GB"


def test_the_app_rechecks_when_the_batch_changes(qtbot, main_window, limit_12gb):
    """The Training dock's batch size drives the Problems list: too large, then fits again."""
    w = main_window
    w.show()
    w.graph.replace_with(vgg16(batch_size=2))
    qtbot.waitUntil(lambda: w.live.analysis.total_params == VGG16_PARAMS, timeout=10_000)
    assert w.live.analysis.ok and w.live.analysis.batch_size == 2
    batch = w.training.dock.train_form.editors["batch_size"]

    # Editing the dock also checks the graph against its data set (digits, 1x8x8, does not
    # fit VGG's 3x224x224 Input): that problem is the Input's; the memory one names no block.
    def memory_problems():
        return [p for p in w.problems.problems if "too large" in p.message]

    batch.setValue(64)
    qtbot.waitUntil(lambda: len(memory_problems()) == 1, timeout=10_000)
    assert "lower the batch size from 64 to 14" in memory_problems()[0].message
    assert w.live.analysis.batch_size == 64
    batch.setValue(8)
    qtbot.waitUntil(lambda: not memory_problems(), timeout=10_000)
    assert w.live.analysis.memory_bytes < 12 * GB


def test_winograd_kept_transform_is_counted_and_bounds_what_training_keeps():
    from engine.layers import Conv2D
    from engine.winograd import KEEP_BYTES

    def fixed(shape, filters, training=True):
        g = engine.Graph()
        g.add_node("Input", {"shape": list(shape)}, node_id="in")
        g.add_node("Conv2D", {"filters": filters, "kernel_size": 3, "padding": 1}, node_id="c")
        g.add_edge("in", "c")
        return engine.analyze(g, training=training).memory_fixed

    # 32 maps at 16x16 (ResNet-20's stage 2): the transform may be kept, at most KEEP_BYTES
    assert fixed((32, 16, 16), 32) - fixed((32, 16, 16), 32, training=False) > KEEP_BYTES
    layer = Conv2D(filters=32, kernel_size=3, padding=1)
    assert layer.kept_scratch_bytes((32, 16, 16), True) == KEEP_BYTES
    assert layer.kept_scratch_bytes((32, 16, 16), False) == 0
    assert layer.kept_scratch_bytes((16, 32, 32), True) == 0  # 16 maps: im2col
    assert layer.kept_scratch_bytes((64, 224, 224), True) == 0  # one image's V is over the cap
    assert Conv2D(filters=32, kernel_size=3, stride=2).kept_scratch_bytes((32, 16, 16), True) == 0
    # what a training pass really keeps stays under the bound, whatever the batch
    rng = np.random.default_rng(0)
    layer.build((32, 16, 16), rng)
    for n in (8, 64, 256):
        layer.forward(rng.standard_normal((n, 32, 16, 16)).astype(np.float32), training=True)
        wino = next(iter(layer._winos.values()), None)
        kept = 0 if wino is None or wino._kept is None else sum(v.nbytes for v in wino._kept)
        assert kept <= KEEP_BYTES, (n, kept)
        if n == 64:
            assert kept > 0  # the case the bound is for
