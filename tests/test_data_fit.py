"""engine.data_fit: a graph that cannot train on its data set is a problem with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.data import load_dataset, needs_download
from engine.data_fit import DataShape, apply_training_fix, describe, fit_problems

PRESETS = sorted((Path(__file__).parent.parent / "presets").glob("*.json"))
DIGITS = DataShape("digits", (1, 8, 8), (), True, 10)


def chain(*blocks) -> engine.Graph:
    g = engine.Graph()
    prev = None
    for i, (t, cfg) in enumerate(blocks):
        n = g.add_node(t, cfg, (i * 200, 0), node_id=f"b{i}")
        if prev is not None:
            g.add_edge(prev, n)
        prev = n
    return g


def problems(g, data, training=None):
    training = training or {"dataset": {"name": data.name}}
    return fit_problems(g, engine.analyze(g), data, training)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_fits_its_data(path):
    g = engine.Graph.from_dict(__import__("json").loads(path.read_text()))
    ds = g.training["dataset"]
    if needs_download(ds):
        pytest.skip("a downloaded data set")
    assert problems(g, describe(load_dataset(ds)), g.training) == []


def test_images_of_another_size_resize_the_data():
    g = chain(
        ("Input", {"shape": [1, 32, 32]}),
        ("Conv2D", {"filters": 2, "kernel_size": 5}),
        ("Flatten", {}),
        ("Dense", {"units": 10}),
    )
    (p,) = problems(g, DIGITS)
    assert p.block == "b0" and "1x8x8" in p.message and "1x32x32" in p.message
    assert p.fix == {"kind": "training", "dataset": {"resize": [32, 32], "pad": None}}
    spec = apply_training_fix({"dataset": {"name": "digits", "pad": [9, 9]}}, p.fix)
    assert spec["dataset"] == {"name": "digits", "resize": [32, 32], "pad": None}
    assert problems(g, describe(load_dataset(spec["dataset"]))) == []


def test_no_option_fits_then_the_input_takes_the_data_shape():
    g = chain(("Input", {"shape": [3]}), ("Dense", {"units": 2}))
    moons = DataShape("moons", (2,), (), True, 2)
    (p,) = problems(g, moons)
    assert p.fix == {"kind": "set", "block": "b0", "key": "shape", "value": [2]}


def test_outputs_that_do_not_fit_the_targets():
    g = chain(
        ("Input", {"shape": [64]}),
        ("Dense", {"units": 4}),
        ("Activation", {"fn": "softmax"}),
    )
    flat = DataShape("digits", (64,), (), True, 10)
    (p,) = problems(g, flat)
    assert p.block == "b2" and p.fix == {"kind": "set", "block": "b1", "key": "units", "value": 10}
    sine = DataShape("sine", (64,), (1,), False, None)
    (p,) = problems(g, sine, {"dataset": {"name": "sine"}, "loss": "cross_entropy"})
    assert p.fix == {"kind": "training", "set": {"loss": "mse"}}
    (p,) = problems(g, sine, {"dataset": {"name": "sine"}, "loss": "mse"})
    assert "[1]" in p.message and p.fix["value"] == 1
    # an unflattened data set for an MLP: the data set's flatten option
    (p,) = problems(g, DIGITS)
    assert p.fix == {"kind": "training", "dataset": {"flatten": True}}
