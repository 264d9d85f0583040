"""Generating sequences from a next-token model: greedy decoding and beam search (lecture 001's
sequence-to-sequence models; Sutskever et al., 2014).

A decoder is seen through one function, ``step(prefixes) -> log_probs``: for a batch of token
prefixes (lists of ids) the log-probabilities of the next token, (B, V). ``model_step`` makes
one from a Model that reads a window of token ids (N, T) and gives next-token logits (N, V), as
a graph trained with cross_entropy does (the char-LSTM presets). The score of a sequence is the
sum of its tokens' log-probabilities, log p(y_1 .. y_L) = sum_t log p(y_t | y_<t).

- Greedy: take the most likely token at every step (beam width 1).
- Beam search: keep the ``beam_width`` best prefixes at every step; a prefix that emits the end
  token is finished and keeps its score. With a width of V^(L-1) nothing is ever dropped, so
  the best sequence is the exact best (tests/test_decoding.py enumerates them all to check).
Ties are broken by the token ids (smaller first), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

Step = Callable[[list[list[int]]], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """One decoded sequence: its tokens (after the start), log-probability, and whether it
    ended with the end token."""

    tokens: tuple[int, ...]
    score: float
    finished: bool


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def model_step(model, pad: int = 0) -> Step:
    """``step`` for a Model reading token ids (N, T) and giving next-token logits (N, V): each
    prefix is cut to its last T tokens, or padded on the left with ``pad``."""
    shape = tuple(model.input_shape)
    if len(shape) != 1:
        raise ConfigError(
            f"decoding needs a model reading a window of token ids (T,), this one reads {shape}"
        )
    if len(model.output_shape) != 1:
        raise ConfigError(
            "decoding needs a model giving next-token logits (V,), this one gives "
            f"{tuple(model.output_shape)}"
        )
    t = shape[0]

    def step(prefixes: list[list[int]]) -> np.ndarray:
        x = np.full((len(prefixes), t), pad, np.int64)
        for i, p in enumerate(prefixes):
            tail = list(p)[-t:]
            if tail:
                x[i, t - len(tail) :] = tail
        return log_softmax(model.forward(x, training=False))

    return step


def _check(length: int, beam_width: int) -> None:
    if not isinstance(length, int) or length < 1:
        raise ConfigError(f"decoding length must be a positive integer, got {length!r}")
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ConfigError(f"beam width must be a positive integer, got {beam_width!r}")


def beam_search(
    step: Step,
    start: Sequence[int],
    length: int,
    beam_width: int = 4,
    end: int | None = None,
) -> list[Candidate]:
    """The ``beam_width`` best sequences of up to ``length`` tokens after ``start``, best first.

    At each step every unfinished prefix is extended by every token; the ``beam_width`` best of
    those and of the finished ones stay. A prefix that emits ``end`` is finished.
    """
    _check(length, beam_width)
    beams = [Candidate((), 0.0, False)]
    for _ in range(length):
        live = [b for b in beams if not b.finished]
        if not live:
            break
        logp = step([list(start) + list(b.tokens) for b in live])
        pool = [b for b in beams if b.finished]
        for b, row in zip(live, logp, strict=True):
            pool += [
                Candidate(b.tokens + (v,), b.score + float(row[v]), end is not None and v == end)
                for v in range(row.shape[0])
            ]
        pool.sort(key=lambda c: (-c.score, c.tokens))
        beams = pool[:beam_width]
    return beams


def greedy_decode(
    step: Step, start: Sequence[int], length: int, end: int | None = None
) -> Candidate:
    """The sequence made by taking the most likely next token at every step."""
    return beam_search(step, start, length, beam_width=1, end=end)[0]


# --- sequence to sequence, teacher-forcing layout ---------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a teacher-forced seq2seq sample keeps the decoder's input (the data set's
    ``meta["seq2seq"]``): steps ``target[0]`` .. ``target[1] - 1`` of the sample (of its flat
    vector when ``flat``) hold "go" and the target shifted right, one-hot over ``vocab`` ids.
    The model gives (N, L, V) logits, step t predicting target token t."""

    start: int
    steps: int
    vocab: int
    go: int
    flat: bool = False

    @classmethod
    def of(cls, meta: dict, vocab: int) -> Layout:
        s = meta.get("seq2seq")
        if not isinstance(s, dict):
            raise ConfigError(
                "this data set does not hold a source and a shifted target (teacher forcing): "
                "decoding needs one that does, e.g. reversal, sorting, dates or digit_strips"
            )
        a, b = s["target"]
        steps = (b - a) // vocab if s.get("flat") else b - a
        return cls(int(a), int(steps), int(vocab), int(s["go"]), bool(s.get("flat", False)))

    def write(self, X: np.ndarray, t: int, tokens: np.ndarray) -> None:
        """Put the one-hot of ``tokens`` (N,) at decoder step t of every sample of X."""
        rows = np.arange(len(X))
        if self.flat:
            at = self.start + t * self.vocab
            X[:, at : at + self.vocab] = 0
            X[rows, at + tokens] = 1
        else:
            X[:, self.start + t] = 0
            X[rows, self.start + t, tokens] = 1

    def clear(self, X: np.ndarray) -> None:
        """The decoder's input of every sample: "go", then nothing."""
        if self.flat:
            X[:, self.start : self.start + self.steps * self.vocab] = 0
        else:
            X[:, self.start : self.start + self.steps] = 0
        self.write(X, 0, np.full(len(X), self.go))


def _check_seq2seq_model(model, layout: Layout) -> None:
    want = (layout.steps, layout.vocab)
    if tuple(model.output_shape) != want:
        raise ConfigError(
            f"decoding needs a model giving next-token logits at every decoder step {want}, "
            f"this one gives {tuple(model.output_shape)}"
        )


def seq2seq_step(model, x: np.ndarray, layout: Layout) -> Step:
    """``step`` for a teacher-forced seq2seq Model and one sample ``x`` (its source part is
    read, its decoder part is overwritten): the prefix is written behind "go" and the logits at
    the prefix's length are the next token's. The decoder must be causal (a one-way RNN): steps
    after the prefix are left empty, as they cannot change the step read."""
    _check_seq2seq_model(model, layout)
    template = np.array(x, dtype=np.float32)[None]
    layout.clear(template)

    def step(prefixes: list[list[int]]) -> np.ndarray:
        X = np.repeat(template, len(prefixes), axis=0)
        t = len(prefixes[0])
        for k in range(t):
            layout.write(X, k + 1, np.array([p[k] for p in prefixes]))
        return log_softmax(model.forward(X, training=False)[:, t])

    return step


def greedy_seq2seq(model, X: np.ndarray, layout: Layout, batch: int = 256) -> np.ndarray:
    """Greedy decoding of many samples at once, each step's choice fed back as the next step's
    decoder input (no teacher forcing). Shapes: X (N, ...) -> (N, L) token ids."""
    _check_seq2seq_model(model, layout)
    out = np.zeros((len(X), layout.steps), np.int64)
    for i in range(0, len(X), batch):
        xb = np.array(X[i : i + batch], dtype=np.float32)
        layout.clear(xb)
        for t in range(layout.steps):
            tok = model.forward(xb, training=False)[:, t].argmax(-1)
            out[i : i + batch, t] = tok
            if t + 1 < layout.steps:
                layout.write(xb, t + 1, tok)
    return out
