"""Every preset passes `check`, and a short run shows its point: the loss falls by the stated
factor, or (the presets whose point is a failure) it does not, and the gradients behave as the
lecture says. The full outcomes are reproduced by benchmarks/presets.py."""

import json
from pathlib import Path

import numpy as np
import pytest

import engine

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "presets").glob("*.json"))

REQUIRED = [
    "lenet5",
    "lenet5_1998",
    "xor",
    "deep_sigmoid_mlp",
    "deep_relu_mlp",
    "deep_sigmoid_batchnorm",
    "adding_rnn",
    "adding_lstm",
    "adding_gru",
    "init_zero",
    "init_normal",
    "init_he",
    "optimizers_sgd",
    "optimizers_momentum",
    "optimizers_rmsprop",
    "optimizers_adam",
    "cnn_bn_dropout",
    "residual_mlp",
    "plain_mlp",
    "char_lstm",
    "bilstm_tagger",
    "autoencoder",
    "denoising_autoencoder",
    "conv_autoencoder",
    "inception_bottleneck",
]

# (steps, factor): mean loss of the last 5 of `steps` steps <= mean of the first 5 / factor.
LEARNS = {
    "lenet5": (40, 2.0),
    "lenet5_1998": (40, 1.1),  # its sigmoid S2 and S4 start slowly (see its description)
    "xor": (300, 5.0),
    "deep_relu_mlp": (40, 1.5),
    "deep_sigmoid_batchnorm": (60, 1.2),
    "adding_lstm": (60, 2.0),
    "adding_gru": (60, 2.0),
    "adding_rnn": (60, 1.25),  # seeds 0-4 give 1.36-4.6 (benchmarks/NOTES.md); 1.0 = no learning
    "init_he": (1500, 1.3),
    "init_normal": (150, 1.3),
    "optimizers_sgd": (60, 1.4),
    "optimizers_momentum": (60, 1.4),
    "optimizers_rmsprop": (60, 1.4),
    "optimizers_adam": (60, 1.4),
    "cnn_bn_dropout": (40, 2.0),
    "residual_mlp": (60, 1.3),
    "plain_mlp": (60, 1.0),
    "char_lstm": (40, 1.5),
    "bilstm_tagger": (150, 5.0),
    "attention_copy": (60, 2.0),
    "seq2seq_reversal": (150, 1.4),
    "seq2seq_reversal_attention": (150, 1.4),
    "attention_dates": (60, 1.5),
    "attention_dates_luong": (60, 1.5),
    "captioning_digits": (60, 1.5),
    "hello_rnn": (60, 3.0),
    "deep_bilstm_tagger": (60, 2.0),
    "rnn_autoencoder": (60, 1.6),
    "autoencoder": (60, 1.5),
    "denoising_autoencoder": (60, 1.5),
    "conv_autoencoder": (60, 1.5),
    "inception_bottleneck": (25, 1.5),
}


def short_run(path: Path, steps: int):
    graph = engine.load_graph(path)
    trainer = engine.Trainer.from_graph(graph)
    events = []
    for ev in trainer.run():
        if ev["event"] == "step":
            events.append(ev)
            if len(events) >= steps:
                trainer.stop()
    return graph, events


def test_every_required_preset_exists_with_name_and_description():
    names = {p.stem for p in PRESETS}
    assert set(REQUIRED) <= names, sorted(set(REQUIRED) - names)
    for p in PRESETS:
        d = json.loads(p.read_text())
        assert d["name"] and len(d["description"]) > 80, p.name
        assert d["training"]["dataset"]["name"] in engine.data.DATASETS


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_passes_check(path):
    analysis = engine.analyze(engine.load_graph(path))
    assert analysis.ok, [str(p) for p in analysis.problems]


@pytest.mark.parametrize("name", sorted(LEARNS))
def test_preset_learns(name):
    steps, factor = LEARNS[name]
    _, events = short_run(ROOT / "presets" / f"{name}.json", steps)
    losses = np.array([e["loss"] for e in events])
    assert np.all(np.isfinite(losses))
    first, last = losses[:5].mean(), losses[-5:].mean()
    assert last <= first / factor, (name, first, last)


def test_lenet5_parameter_counts():
    a = engine.analyze(engine.load_graph(ROOT / "presets" / "lenet5.json"))
    assert a.total_params == 61_706 and a.params["c1"] == 156
    a = engine.analyze(engine.load_graph(ROOT / "presets" / "lenet5_1998.json"))
    assert a.params["c3"] == 1_516 and a.params["s2"] == 12 and a.params["c1"] == 156


def test_inception_bottleneck_saves_what_the_slide_computes():
    a = engine.analyze(engine.load_graph(ROOT / "presets" / "inception_bottleneck.json"))
    direct = a.params["conv5x5_direct"]
    bottleneck = a.params["reduce1x1"] + a.params["conv5x5_after"]
    assert direct == 480 * 25 * 48 + 48 and bottleneck == (480 * 16 + 16) + (16 * 25 * 48 + 48)
    assert a.shapes["conv5x5_direct"] == a.shapes["conv5x5_after"]
    assert direct / bottleneck > 20


def test_zero_initialisation_stays_at_chance():
    _, events = short_run(ROOT / "presets" / "init_zero.json", 100)
    losses = np.array([e["loss"] for e in events])
    np.testing.assert_allclose(losses, np.log(2), atol=0.02)
    assert (
        all(v == 0 for e in events for v in e["grad_rms"].values() if v != v or v < 1e-12)
        or events[-1]["grad_rms"]["fc1"] == 0.0
    )


def grad_ratio(name: str) -> float:
    graph, events = short_run(ROOT / "presets" / f"{name}.json", 5)
    dense = [n for n in engine.analyze(graph).order if graph.type_of(n) == "Dense"]
    return float(np.mean([e["grad_rms"][dense[0]] / e["grad_rms"][dense[-1]] for e in events]))


def test_deep_sigmoid_gradient_vanishes_relu_does_not():
    assert grad_ratio("deep_sigmoid_mlp") < 1 / 100
    assert 1 / 10 <= grad_ratio("deep_relu_mlp") <= 10
    assert grad_ratio("deep_sigmoid_batchnorm") > 1 / 100


def test_residual_keeps_early_gradients_plain_loses_them():
    assert grad_ratio("residual_mlp") > 10 * grad_ratio("plain_mlp")
