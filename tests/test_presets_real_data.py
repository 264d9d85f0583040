"""The presets on the standard data sets (issue 18 section 4): each checks, loads its data set
from files in the real formats (generated: our machines cannot download the real ones) and
trains a few steps; its description quotes a published outcome with its source, says plainly
that it was not measured here, and gives an epoch time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from standard_files import SHAKESPEARE_CHARS, place

import engine
from engine.data import ByteImages

ROOT = Path(__file__).resolve().parent.parent
REAL = {
    "lenet5_mnist": "mnist",
    "mnist_mlp": "mnist",
    "fashion_cnn": "fashion_mnist",
    "cifar10_resnet20": "cifar10",
    "cifar10_augmentation": "cifar10",
    "shakespeare_char_rnn": "shakespeare",
}
SOURCES = {  # a published figure's source each description must name
    "lenet5_mnist": "LeCun et al. (1998)",
    "mnist_mlp": "LeCun et al. (1998)",
    "fashion_cnn": "Xiao et al. (2017)",
    "cifar10_resnet20": "He et al.",
    "cifar10_augmentation": "DeVries and Taylor (2017",
    "shakespeare_char_rnn": "Karpathy, Johnson and Fei-Fei (2015)",
}


def load(name: str) -> engine.Graph:
    return engine.load_graph(ROOT / "presets" / f"{name}.json")


@pytest.fixture
def data(monkeypatch, tmp_path):
    return place(monkeypatch, tmp_path / "cache")


@pytest.mark.parametrize("name", sorted(REAL))
def test_description_quotes_a_source_and_says_it_was_not_measured_here(name):
    d = json.loads((ROOT / "presets" / f"{name}.json").read_text(encoding="utf-8"))
    text = d["description"]
    assert d["training"]["dataset"]["name"] == REAL[name]
    assert SOURCES[name] in text, name
    assert "Not measured on this project's machines" in text
    assert "Epoch time" in text and "{" not in text and "}" not in text


@pytest.mark.parametrize("name", sorted(REAL))
def test_preset_loads_generated_files_in_the_real_format_and_trains(name, data):
    g = load(name)
    assert engine.analyze(g).ok
    g.training["batch_size"] = 16  # a few quick steps: the format, not the speed, is tested here
    t = engine.Trainer.from_graph(g)
    X, y = t.train_data
    if REAL[name] != "shakespeare":
        assert isinstance(X, ByteImages) and X.raw.dtype == np.uint8  # bytes in RAM
    losses = []
    for ev in t.run():
        if ev["event"] == "step":
            losses.append(ev["loss"])
            if len(losses) == 3:
                t.stop()
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    if REAL[name] == "shakespeare":  # starts at chance: ln of the 65 characters
        assert abs(losses[0] - np.log(len(SHAKESPEARE_CHARS))) < 0.3


def test_lenet5_mnist_reads_28x28_digits_on_a_32x32_canvas(data):
    t = engine.Trainer.from_graph(load("lenet5_mnist"))
    X, _ = t.train_data
    batch = np.asarray(X[np.arange(4)])
    assert batch.shape == (4, 1, 32, 32) and batch.dtype == np.float32
    assert np.all(batch[:, :, :2] == 0) and np.all(batch[:, :, :, -2:] == 0)  # the 2-pixel border
    assert load("lenet5_mnist").summary()[1].shape == (6, 28, 28)  # C1: 6@28x28, as drawn


def test_the_augmentation_pair_is_one_net_with_and_without():
    a, b = load("cifar10_resnet20"), load("cifar10_augmentation")
    assert a.to_dict()["nodes"] == b.to_dict()["nodes"]
    assert a.to_dict()["edges"] == b.to_dict()["edges"]
    assert b.training["augment"]["crop_padding"] == 4 and b.training["augment"]["hflip"]
    assert sum(r.params for r in a.summary()) == 272_474  # ResNet-20, option-B shortcuts (0.27 M)


def test_char_rnn_is_the_lectures_100_unit_tanh_rnn():
    g = load("shakespeare_char_rnn")
    rnn = [n for n in g.nodes() if g.type_of(n) == "RNN"]
    assert len(rnn) == 1
    cfg = g.config_of(rnn[0])
    assert cfg["hidden_size"] == 100 and cfg.get("nonlinearity", "tanh") == "tanh"


def test_cli_trains_a_real_data_preset_offline_from_the_cache_folder(data, tmp_path, capsys):
    from engine.cli import main

    g = json.loads((ROOT / "presets" / "mnist_mlp.json").read_text(encoding="utf-8"))
    g["training"]["epochs"] = 1
    p = tmp_path / "mlp.json"
    p.write_text(json.dumps(g), encoding="utf-8")
    assert main(["train", str(p)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "finished: 1 epochs" in out
