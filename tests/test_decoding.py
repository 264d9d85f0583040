"""Greedy decoding and beam search (engine.decoding): on a small model where every sequence can
be enumerated, a wide enough beam returns the exact best; a narrow one beats greedy where greedy
is fooled; scores are the sequences' log-probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import engine
from engine.decoding import beam_search, greedy_decode, model_step
from engine.errors import ConfigError


def table_step(table):
    """A step function from {prefix tuple: next-token probabilities}."""

    def step(prefixes):
        return np.log(np.array([table[tuple(p)] for p in prefixes], np.float64))

    return step


def test_beam_finds_what_greedy_misses():
    """Greedy takes 0 (p 0.5) and then has 1/3 at best: 0.167; the beam keeps 1 (p 0.4),
    which is followed by 0 with 0.9: 0.36."""
    third = [1 / 3] * 3
    table = {(): [0.5, 0.4, 0.1], (0,): third, (1,): [0.9, 0.05, 0.05], (2,): third}
    step = table_step(table)
    g = greedy_decode(step, [], 2)
    assert g.tokens == (0, 0) and g.score == pytest.approx(np.log(0.5 / 3))
    best = beam_search(step, [], 2, beam_width=2)
    assert best[0].tokens == (1, 0) and best[0].score == pytest.approx(np.log(0.36))
    assert best[1].tokens == (0, 0)  # ties broken by the smaller ids
    assert [c.tokens for c in beam_search(step, [], 2, beam_width=1)] == [g.tokens]


def next_token_graph(vocab=4, window=3):
    g = engine.Graph(name="next token")
    g.add_node("Input", {"shape": [window]}, node_id="in")
    g.add_node("Embedding", {"num_embeddings": vocab, "embedding_dim": 3}, node_id="emb")
    g.add_node("LSTM", {"hidden_size": 5}, node_id="lstm")
    g.add_node("Dense", {"units": vocab}, node_id="out")
    for s, t in (("in", "emb"), ("emb", "lstm"), ("lstm", "out")):
        g.add_edge(s, t)
    return g


def all_sequences(step, start, length, vocab, end):
    """Every sequence of up to ``length`` tokens (one ending at ``end`` stops there) with its
    log-probability, computed token by token."""
    out = {}
    for seq in itertools.product(range(vocab), repeat=length):
        if end is not None and end in seq:
            seq = seq[: seq.index(end) + 1]
        if seq in out:
            continue
        score = 0.0
        for k, tok in enumerate(seq):
            score += float(step([list(start) + list(seq[:k])])[0, tok])
        out[seq] = score
    return out


@pytest.mark.parametrize("end", [None, 3])
def test_a_wide_beam_returns_the_exact_best_sequence_of_a_model(end):
    m = engine.build_model(next_token_graph(), seed=7)
    rng = np.random.default_rng(1)
    for v in m.params.values():  # sharp, varied distributions
        v[...] = rng.normal(0, 1.5, v.shape)
    m.astype(np.float64)  # batches of any size give the same numbers
    step = model_step(m)
    vocab, length, start = 4, 4, [1]
    every = all_sequences(step, start, length, vocab, end)
    ranked = sorted(every.items(), key=lambda kv: (-kv[1], kv[0]))
    beams = beam_search(step, start, length, beam_width=vocab ** (length - 1), end=end)
    assert beams[0].tokens == ranked[0][0]
    assert beams[0].score == pytest.approx(ranked[0][1], abs=1e-9)
    for c in beams[:10]:  # every candidate's score is its sequence's log-probability
        assert c.score == pytest.approx(every[c.tokens], abs=1e-9)
        assert c.finished == (end is not None and c.tokens[-1] == end)
    # the probabilities of all sequences add up to 1 (the scores are log-probabilities)
    assert sum(np.exp(s) for s in every.values()) == pytest.approx(1.0, abs=1e-9)
    g = greedy_decode(step, start, length, end=end)
    assert g.score <= beams[0].score + 1e-12
    assert beam_search(step, start, length, beam_width=1, end=end)[0] == g


def test_model_step_pads_and_cuts_to_the_window_and_refuses_other_models():
    m = engine.build_model(next_token_graph(window=3), seed=0)
    step = model_step(m)
    x = np.array([[0, 0, 2], [1, 2, 3]])
    want = m.forward(x)
    got = step([[2], [0, 1, 2, 3]])  # padded on the left; cut to the last 3
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0)
    np.testing.assert_allclose(got - got[:, :1], want - want[:, :1], atol=1e-6)
    g = engine.Graph()
    g.add_node("Input", {"shape": [1, 4, 4]}, node_id="in")
    g.add_node("Flatten", {}, node_id="f")
    g.add_edge("in", "f")
    with pytest.raises(ConfigError, match=r"reading a window of token ids \(T,\), this one reads"):
        model_step(engine.build_model(g))
    with pytest.raises(ConfigError, match="decoding length must be a positive integer, got 0"):
        beam_search(step, [1], 0)
    with pytest.raises(ConfigError, match="beam width must be a positive integer, got 0"):
        beam_search(step, [1], 3, beam_width=0)


# --- sequence to sequence (teacher-forcing layout) ------------------------------------------------
def test_seq2seq_decoding_feeds_each_choice_back_and_matches_the_beam():
    """On an untrained reversal model: greedy_seq2seq's outputs equal beam search of width 1 on
    seq2seq_step, each a free-running decode (not the teacher-forced argmax); a wide beam scores
    at least as well, and its candidates' scores are the sums of the steps' log-probabilities."""
    from engine.data import load_dataset
    from engine.decoding import Layout, greedy_seq2seq, seq2seq_step

    ds = load_dataset({"name": "reversal", "n": 6, "length": 4, "symbols": 3}, seed=0)
    g = engine.Graph(name="rev")
    g.add_node("Input", {"shape": [8, 5]}, node_id="in")
    g.add_node("Slice", {"start": 0, "stop": 4}, node_id="src")
    g.add_node("Slice", {"start": 4, "stop": 8}, node_id="tgt")
    g.add_node("LSTM", {"hidden_size": 6, "return_state": True}, node_id="enc")
    g.add_node("LSTM", {"hidden_size": 6, "return_sequences": True}, node_id="dec")
    g.add_node("Dense", {"units": 5}, node_id="out")
    for s, t, p in [("in", "src", 0), ("in", "tgt", 0), ("src", "enc", 0), ("tgt", "dec", 0)]:
        g.add_edge(s, t, p)
    g.add_edge("enc", "dec", 1)
    g.add_edge("dec", "out")
    m = engine.build_model(g, seed=3)
    rng = np.random.default_rng(0)
    for v in m.params.values():
        v[...] = rng.normal(0, 1.5, v.shape)
    m.astype(np.float64)
    layout = Layout.of(ds.meta, ds.n_classes)
    assert layout == Layout(4, 4, 5, 4)
    greedy = greedy_seq2seq(m, ds.X, layout)
    for x, row in zip(ds.X[:3], greedy[:3], strict=True):
        step = seq2seq_step(m, x, layout)
        g1 = greedy_decode(step, [], 4)
        assert list(g1.tokens) == row.tolist()
        every = all_sequences(step, [], 4, 5, None)
        best = max(every.items(), key=lambda kv: (kv[1], [-t for t in kv[0]]))
        wide = beam_search(step, [], 4, beam_width=125)
        assert wide[0].tokens == best[0] and wide[0].score == pytest.approx(best[1], abs=1e-9)
        assert wide[0].score >= g1.score - 1e-12
    # free-running differs from the teacher-forced argmax somewhere (the choices are fed back)
    assert (greedy != m.forward(ds.X.astype(np.float64)).argmax(-1)).any()
    with pytest.raises(ConfigError, match="teacher forcing"):
        Layout.of({}, 5)
