"""Issue 17's presets: the lecture's "hello" RNN with the slide's weights, and the seq2seq
presets' decoded outcome in a short budget (their loss falls in tests/test_presets.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import engine
from engine.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent

# Lecture 002's slide (002_*.txt, "Example RNN"): printed (out, in), applied as W x.
W_XH = [[0.3, 1.0, 0.1, 0.5], [-0.1, 0.3, -0.3, 0.1], [-0.1, 0.1, -0.5, -0.5]]
W_HH = [[0.1, 0.4, 0.8], [-0.1, 0.5, -0.2], [0.9, 0.2, 0.6]]
W_HY = [[0.3, 0.9, 0.1], [0.2, -0.6, 0.5], [-0.1, 0.1, 0.5], [0.1, 1.0, 0.2]]


def test_hello_rnn_computes_the_slides_formula_with_the_slides_weights():
    graph = engine.load_graph(ROOT / "presets" / "hello_rnn.json")
    model = engine.build_model(graph, seed=0)
    model.astype(np.float64)
    p = model.params
    p["rnn.weight_ih"][...] = W_XH
    p["rnn.weight_hh"][...] = W_HH
    p["rnn.bias_ih"][...] = 0.0  # the slide has no bias
    p["rnn.bias_hh"][...] = 0.0
    p["out.weight"][...] = W_HY
    ds = load_dataset(graph.training["dataset"])
    assert ds.vocab == ["h", "e", "l", "o"]
    x = np.asarray(ds.X[:1], np.float64)  # "hell" one-hot
    assert x[0].argmax(-1).tolist() == [0, 1, 2, 2] and ds.y[0].tolist() == [1, 2, 2, 3]
    y = model.forward(x)
    h = np.zeros(3)
    for t in range(4):  # h_t = tanh(W_xh x_t + W_hh h_(t-1)), y_t = W_hy h_t
        h = np.tanh(np.array(W_XH) @ x[0, t] + np.array(W_HH) @ h)
        np.testing.assert_allclose(y[0, t], np.array(W_HY) @ h, atol=1e-12)
    # step 1 by hand: x = h -> W_xh's first column (0.3, -0.1, -0.1)
    np.testing.assert_allclose(y[0, 0], np.array(W_HY) @ np.tanh([0.3, -0.1, -0.1]))
    assert model.n_params == 39  # the slide's 33 weights + PyTorch's two biases per unit


def test_hello_rnn_learns_ello():
    trainer = engine.Trainer.from_graph(engine.load_graph(ROOT / "presets" / "hello_rnn.json"))
    last = None
    for ev in trainer.run():
        if ev["event"] == "epoch":
            last = ev
    assert last["train_acc"] == 1.0 and last["train_loss"] < 0.05
