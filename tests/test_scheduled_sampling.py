"""Scheduled sampling: the share of decoder input tokens replaced by the model's predictions,
only after "go", repeatable; refused in one line where it cannot apply."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.errors import ConfigError
from engine.export import export_code
from engine.scheduled_sampling import ScheduledSampling
from engine.training_spec import check_training


def reversal_graph(ratio: float) -> engine.Graph:
    g = engine.Graph(name="rev")
    g.add_node("Input", {"shape": [12, 6]}, node_id="in")
    g.add_node("Slice", {"start": 0, "stop": 6}, node_id="src")
    g.add_node("Slice", {"start": 6, "stop": 12}, node_id="tgt")
    g.add_node("LSTM", {"hidden_size": 8, "return_state": True}, node_id="enc")
    g.add_node("LSTM", {"hidden_size": 8, "return_sequences": True}, node_id="dec")
    g.add_node("Dense", {"units": 6}, node_id="out")
    for s, t, p in [("in", "src", 0), ("in", "tgt", 0), ("src", "enc", 0), ("tgt", "dec", 0)]:
        g.add_edge(s, t, p)
    g.add_edge("enc", "dec", 1)
    g.add_edge("dec", "out")
    g.set_meta(
        "training",
        {
            "dataset": {"name": "reversal", "n": 400, "length": 6, "symbols": 4},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 50,
            "epochs": 1,
            "seed": 0,
            "scheduled_sampling": ratio,
        },
    )
    return g


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_a_share_of_decoder_inputs_becomes_the_models_predictions(ratio):
    trainer = engine.Trainer.from_graph(reversal_graph(ratio), processes=1)
    X = trainer.train_data[0]
    idx = np.arange(50)
    if ratio == 0:
        assert trainer._sampled is None and "scheduled_sampling" not in trainer.spec
        return
    batch = trainer._sampled[idx]
    truth = np.asarray(X[idx])
    np.testing.assert_array_equal(batch[:, :7], truth[:, :7])  # the source and "go" stay
    pred = trainer.model.forward(truth, training=False).argmax(-1)
    ids, true_ids = batch[:, 7:].argmax(-1), truth[:, 7:].argmax(-1)
    assert np.all(batch[:, 7:].sum(-1) == 1)  # still one-hot
    changed = ids != true_ids
    assert np.all(ids[changed] == pred[:, :-1][changed])  # replaced by the predictions
    taken = ids == pred[:, :-1]
    share = taken[pred[:, :-1] != true_ids].mean()  # where the two differ, p of the time
    assert abs(share - ratio) < 0.12
    again = engine.Trainer.from_graph(reversal_graph(ratio), processes=1)._sampled[idx]
    np.testing.assert_array_equal(again, batch)  # seeded: repeatable
    events = list(engine.Trainer.from_graph(reversal_graph(ratio)).run())
    assert events[-1]["reason"] == "finished"


def test_scheduled_sampling_is_refused_where_it_cannot_apply():
    with pytest.raises(ConfigError, match="scheduled_sampling"):
        check_training({"dataset": "digits", "scheduled_sampling": 1.5})
    model = engine.build_model(reversal_graph(0.5))
    X = np.zeros((4, 12, 6), np.float32)
    with pytest.raises(ConfigError, match="source and the shifted target"):
        ScheduledSampling(X, model, {}, 6, 0.5, np.random.default_rng(0))
    meta = {"seq2seq": {"source": [0, 5], "target": [5, 12], "go": 5}}
    with pytest.raises(ConfigError, match="logits per decoder step"):
        ScheduledSampling(X, model, meta, 6, 0.5, np.random.default_rng(0))
    assert "scheduled_sampling(net, xb" in export_code(reversal_graph(0.5), "pytorch")
    g = reversal_graph(0.5)
    g.set_meta("training", {**g.training, "dataset": {"name": "copy"}})
    with pytest.raises(ConfigError, match="shifted target side by side"):
        export_code(g, "pytorch")
    assert "scheduled_sampling" in export_code(reversal_graph(0.5), "numpy")
    assert "scheduled_sampling" not in export_code(reversal_graph(0.0), "numpy")


def test_the_pytorch_script_samples_one_hot_steps_as_the_engine(tmp_path):
    """The (N, L, V) layout (reversal): the script's first losses equal the engine's."""
    pytest.importorskip("torch")
    from test_export_torch import engine_losses, torch_losses

    g = reversal_graph(0.5)
    ours = [e["loss"] for e in torch_losses(g, 4, tmp_path)]
    np.testing.assert_allclose(ours, engine_losses(g, 4), rtol=1e-5)
