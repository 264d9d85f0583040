"""Decoding a typed source with a teacher-forced seq2seq graph: the source as a sample of the
data set's layout, the greedy output and the beam's candidates, from the engine and from
``python app.py decode``."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import cli
from engine.data import load_dataset
from engine.decoding import greedy_seq2seq
from engine.errors import ConfigError
from engine.seq2seq_decode import Seq2SeqTask, decode


def test_typed_sources_become_samples_of_the_data_sets_layout():
    dates = Seq2SeqTask.of_dataset(load_dataset({"name": "dates", "n": 1}))
    x = dates.sample("6 Dec 2026")
    assert x.shape == (38, 61)
    assert dates.text(x[:28].argmax(-1)) == "6 Dec 2026"  # padding "_" dropped
    assert np.all(x[28:] == 0)  # the decoder's part is left for the decoder
    rev = Seq2SeqTask.of_dataset(load_dataset({"name": "reversal", "n": 1, "length": 4}))
    np.testing.assert_array_equal(rev.sample("s3 1 s8 2")[:4].argmax(-1), [3, 1, 8, 2])
    strips = load_dataset({"name": "digit_strips", "n": 1})
    cap = Seq2SeqTask.of_dataset(strips)
    from sklearn.datasets import load_digits

    d = load_digits()
    x = cap.sample("three 7")
    np.testing.assert_allclose(x[:256].reshape(8, 32)[:, 8:16], d.images[d.target == 7][0] / 16)
    assert cap.sample("37").tolist() == x.tolist() and cap.text([4, 8, 11, 0, 0]) == "three seven"
    for task, bad, msg in [
        (dates, "6 Décembre", "not a symbol"),
        (dates, "1" * 29, "at most 28"),
        (rev, "s9", "not a symbol"),
        (cap, "1 2 3 4 5", "1 to 4 digits"),
        (dates, "  ", "type a source"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            task.sample(bad)
    with pytest.raises(ConfigError, match="teacher forcing"):
        Seq2SeqTask.of_dataset(load_dataset({"name": "xor"}))


def trained_reversal(tmp_path):
    g = engine.Graph(name="rev")
    g.add_node("Input", {"shape": [8, 6]}, node_id="in")
    g.add_node("Slice", {"start": 0, "stop": 4}, node_id="src")
    g.add_node("Slice", {"start": 4, "stop": 8}, node_id="tgt")
    g.add_node("LSTM", {"hidden_size": 16, "return_sequences": True}, node_id="enc")
    g.add_node("LSTM", {"hidden_size": 16, "return_sequences": True}, node_id="dec")
    g.add_node("Attention", {"score": "dot"}, node_id="att")
    g.add_node("Concat", {"axis": -1}, node_id="cat")
    g.add_node("Dense", {"units": 6}, node_id="out")
    for s, t, p in [
        ("in", "src", 0),
        ("in", "tgt", 0),
        ("src", "enc", 0),
        ("tgt", "dec", 0),
        ("dec", "att", 0),
        ("enc", "att", 1),
        ("dec", "cat", 0),
        ("att", "cat", 1),
        ("cat", "out", 0),
    ]:
        g.add_edge(s, t, p)
    g.set_meta(
        "training",
        {
            "dataset": {"name": "reversal", "n": 1000, "length": 4, "symbols": 4},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.02},
            "batch_size": 32,
            "epochs": 6,
            "seed": 0,
            "val_split": 0.1,
        },
    )
    path = tmp_path / "rev.json"
    g.save(path)
    trainer = engine.Trainer.from_graph(g)
    for _ in trainer.run():
        pass
    engine.save_weights(trainer.model, tmp_path / "rev.npz")
    return g, trainer.model, path


def test_decoding_reverses_a_typed_sequence_and_the_cli_prints_the_beam(tmp_path, capsys):
    g, model, path = trained_reversal(tmp_path)
    task = Seq2SeqTask.of_dataset(load_dataset(g.training["dataset"]))
    greedy, beams = decode(model, task, "s1 s2 s3 s4", beam_width=3)
    assert task.text(greedy.tokens) == "s4 s3 s2 s1"
    # the beam and greedy paths sum the same float32 log-probabilities in different orders
    assert len(beams) == 3 and beams[0].score >= greedy.score - 1e-6
    assert [b.score for b in beams] == sorted((b.score for b in beams), reverse=True)
    # the batched greedy decoder agrees with beam width 1 on the data set's own samples
    ds = load_dataset({**g.training["dataset"], "n": 20}, seed=9)
    batched = greedy_seq2seq(model, ds.X, task.layout)
    for x, row in zip(ds.X[:5], batched[:5], strict=True):
        src = " ".join(task.vocab[i] for i in x[:4].argmax(-1))
        assert list(decode(model, task, src, 1)[0].tokens) == row.tolist()
    assert (batched == ds.y).mean() > 0.9  # it has learnt to reverse
    argv = ["decode", str(path), "--weights", str(tmp_path / "rev.npz"), "--source", "s2 s2 s4 s1"]
    assert cli.main([*argv, "--beam", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("greedy: s1 s4 s2 s2") and out[1] == "beam search, width 2:"
    assert out[2].startswith("  1. ") and len(out) == 4
    assert cli.main([*argv[:-1], "s9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'s9' is not a symbol of the data set 'reversal'" in err
