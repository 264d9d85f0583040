"""Built-in sequence tasks for recurrent networks: adding, copy, sine, reversal.

The adding and copy problems are the standard long-memory benchmarks (Hochreiter & Schmidhuber
1997; Le, Jaitly & Hinton 2015; Arjovsky, Shah & Bengio 2016): a plain RNN's vanishing gradient
leaves it at the trivial baseline, an LSTM or GRU gets past it. Each data set reports that
baseline in ``meta`` so a loss curve can be read against it.

Each ``make_*`` function is the generator, NumPy only (the PyTorch export copies its source, see
engine/data/builtin.py); its loader checks the size and wraps the arrays in a Dataset.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements, to_one_hot
from engine.settings import Opt

ADDING_OPTIONS = {
    "T": Opt("int", default=50, min=2, max=10_000, doc="sequence length"),
    "n": Opt("int", default=10_000, min=1, max=1_000_000, doc="number of sequences"),
}


def make_adding(rng, T, n):
    """The adding problem: X (N, T, 2) values and markers, y (N, 1) the sum of the marked."""
    half = T // 2
    X = np.zeros((n, T, 2), dtype=np.float32)
    X[:, :, 0] = rng.random((n, T), dtype=np.float32)
    rows = np.arange(n)
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    return X, (X[rows, first, 0] + X[rows, second, 0])[:, None]


def load_adding(cfg: dict, rng: np.random.Generator) -> Dataset:
    """The adding problem.

    Shapes: X (N, T, 2), y (N, 1). Channel 0 holds values u_t ~ U[0, 1]; channel 1 is a marker,
    1 at exactly two steps: one drawn in the first half [0, T/2) and one in the second [T/2, T).
    The target is the sum of the two marked values. Always answering 1 (the mean of the sum)
    scores MSE = Var(u_a + u_b) = 2 * 1/12 = 1/6 ~ 0.167: a model must beat that to have
    remembered anything.
    """
    check_elements(cfg["n"] * cfg["T"] * 2, "the adding problem's X")
    X, y = make_adding(rng, **cfg)
    return Dataset(
        X,
        y,
        "regression",
        name="adding",
        description=DATASETS_HERE["adding"].description,
        meta={
            "baseline_mse": 1.0 / 6.0,
            "baseline_prediction": 1.0,
            "baseline": "always answering 1 gives MSE 1/6 ~ 0.167",
            "channels": ["value", "marker"],
        },
    )


COPY_OPTIONS = {
    "n": Opt("int", default=2_000, min=1, max=1_000_000, doc="number of sequences"),
    "length": Opt("int", default=5, min=1, max=1_000, doc="symbols to remember"),
    "delay": Opt(
        "int",
        default=10,
        min=1,
        max=10_000,
        doc="steps between the last symbol and the recall signal",
    ),
    "symbols": Opt("int", default=8, min=1, max=256, doc="alphabet size K"),
}


def make_copy(rng, n, length, delay, symbols):
    """The copy memory task: X (N, T, K + 2) one-hot, y (N, T) ids."""
    T = 2 * length + delay
    seq = rng.integers(1, symbols + 1, (n, length))
    ids = np.zeros((n, T), dtype=np.int64)
    ids[:, :length] = seq
    ids[:, length + delay - 1] = symbols + 1
    y = np.zeros((n, T), dtype=np.int64)
    y[:, T - length :] = seq
    return to_one_hot(ids, symbols + 2), y


def load_copy(cfg: dict, rng: np.random.Generator) -> Dataset:
    """The copy memory task (Arjovsky et al. 2016).

    Ids: 0 blank, 1..K symbols, K+1 the "recall now" marker. Input: ``length`` random symbols,
    ``delay - 1`` blanks, the marker, then ``length`` blanks; total T = 2 * length + delay.
    Target: blanks, then the symbols again over the last ``length`` steps.
    Shapes: X (N, T, K + 2) one-hot float32, y (N, T) int64 ids.
    The memoryless baseline (blanks, then uniform guesses) has mean cross-entropy
    length * ln K / T; accuracy is dominated by the easy blanks, so read the loss.
    """
    N, L, D, K = cfg["n"], cfg["length"], cfg["delay"], cfg["symbols"]
    T = 2 * L + D
    check_elements(N * T * (K + 2), "the copy task's one-hot X")
    X, y = make_copy(rng, **cfg)
    vocab = ["_"] + [f"s{i}" for i in range(1, K + 1)] + [":"]
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=K + 2,
        name="copy",
        description=DATASETS_HERE["copy"].description,
        class_names=vocab,
        vocab=vocab,
        meta={
            "baseline_cross_entropy": float(L * np.log(K) / T),
            "T": T,
            "baseline": "blanks then uniform guesses: cross-entropy length * ln(K) / T",
        },
    )


REVERSAL_OPTIONS = {
    "n": Opt("int", default=4_000, min=1, max=1_000_000, doc="number of sequences"),
    "length": Opt("int", default=8, min=2, max=1_000, doc="sequence length L"),
    "symbols": Opt("int", default=8, min=1, max=256, doc="alphabet size K"),
}


def make_reversal(rng, n, length, symbols):
    """Sequence reversal, teacher forcing: X (N, 2L, K + 2) one-hot (the source, then "go" and
    the target shifted right), y (N, L) ids (the source reversed)."""
    src = rng.integers(1, symbols + 1, (n, length))
    y = src[:, ::-1].astype(np.int64)
    ids = np.empty((n, 2 * length), dtype=np.int64)
    ids[:, :length] = src
    ids[:, length] = symbols + 1
    ids[:, length + 1 :] = y[:, :-1]
    return to_one_hot(ids, symbols + 2), y


def load_reversal(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Sequence reversal for an encoder-decoder with teacher forcing (lecture 001's seq2seq).

    Ids: 1..K symbols, K+1 "go" (0 is unused). One sample holds both of the model's input
    sequences side by side (slice them apart with Slice blocks): steps 0..L-1 the source
    s_0..s_{L-1}, steps L..2L-1 the decoder's input, the target shifted right behind "go"
    (go, s_{L-1}, ..., s_1). Target: the source reversed, s_{L-1}..s_0.
    Shapes: X (N, 2L, K + 2) one-hot float32, y (N, L) int64 ids.
    Chance per step is 1/K; the last target step (s_0) is the one the encoder must carry
    furthest.
    """
    N, L, K = cfg["n"], cfg["length"], cfg["symbols"]
    check_elements(N * 2 * L * (K + 2), "the reversal task's one-hot X")
    X, y = make_reversal(rng, **cfg)
    return symbol_seq2seq(X, y, "reversal", DATASETS_HERE["reversal"].description, K, L)


def symbol_seq2seq(X, y, name: str, description: str, K: int, L: int) -> Dataset:
    """A seq2seq task over symbols 1..K (0 unused, K+1 "go"): source steps 0..L-1, the
    decoder's input steps L..2L-1 (engine.decoding reads meta["seq2seq"]); chance is 1/K."""
    vocab = ["_"] + [f"s{i}" for i in range(1, K + 1)] + ["go"]
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=K + 2,
        name=name,
        description=description,
        class_names=vocab,
        vocab=vocab,
        meta={
            "baseline_accuracy": 1.0 / K,
            "baseline": "uniform guesses: accuracy 1/K",
            "seq2seq": {"source": [0, L], "target": [L, 2 * L], "go": K + 1},
        },
    )


SINE_OPTIONS = {
    "n": Opt("int", default=2_000, min=1, max=1_000_000, doc="number of windows"),
    "T": Opt("int", default=30, min=2, max=10_000, doc="window length"),
    "noise": Opt(
        "float", default=0.05, min=0.0, max=10.0, doc="std of the Gaussian noise on the inputs"
    ),
    "many_to_many": Opt(
        "bool", default=False, doc="predict the next value at every step: y (N, T, 1)"
    ),
}


def make_sine(rng, n, T, noise, many_to_many):
    """Noisy sine windows; y the clean next value (or every next value)."""
    w = rng.uniform(0.1, 0.6, (n, 1))
    phi = rng.uniform(0.0, 2 * np.pi, (n, 1))
    A = rng.uniform(0.5, 1.0, (n, 1))
    s = A * np.sin(w * np.arange(T + 1) + phi)
    X = (s[:, :T] + rng.normal(0.0, noise, (n, T)))[:, :, None].astype(np.float32)
    if many_to_many:
        return X, s[:, 1:, None].astype(np.float32)
    return X, s[:, T:].astype(np.float32)


def load_sine(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Next-value prediction on sine waves.

    Each window is s_t = A sin(w t + phi), t = 0..T, with w ~ U[0.1, 0.6] rad/step (periods of
    about 10 to 60 steps), phi ~ U[0, 2 pi), A ~ U[0.5, 1]. Inputs are s_0..s_{T-1} plus noise;
    the target is the clean next value s_T (or, many-to-many, s_1..s_T). meta gives the MSE of
    simply repeating the last input, the baseline a trained network should beat.
    Shapes: X (N, T, 1), y (N, 1) or (N, T, 1).
    """
    check_elements(cfg["n"] * (cfg["T"] + 1) * 2, "the sine windows")
    X, y = make_sine(rng, **cfg)
    if cfg["many_to_many"]:
        base = float(np.mean((X - y) ** 2))
    else:
        base = float(np.mean((X[:, -1] - y) ** 2))
    return Dataset(
        X,
        y,
        "regression",
        name="sine",
        description=DATASETS_HERE["sine"].description,
        meta={
            "baseline_mse": base,
            "baseline": "repeating the last input value",
            "channels": ["noisy sine"],
        },
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "adding": DatasetSpec(
        "Adding problem: sum the two marked numbers of a long sequence (baseline MSE 0.167)",
        ADDING_OPTIONS,
        load_adding,
    ),
    "copy": DatasetSpec(
        "Copy memory task: recall a few symbols after a long blank delay", COPY_OPTIONS, load_copy
    ),
    "reversal": DatasetSpec(
        "Sequence reversal: the source, then the shifted target (teacher forcing) in one sample",
        REVERSAL_OPTIONS,
        load_reversal,
    ),
    "sine": DatasetSpec(
        "Noisy sine waves of random frequency and phase: predict the next value",
        SINE_OPTIONS,
        load_sine,
    ),
}
