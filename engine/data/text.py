"""Character data: generated corpora (chars), a sequence-tagging task, and the user's text file.

A character model reads X (N, T) ids (or their one-hot (N, T, V) encoding, as in the lectures'
"hello" and Shakespeare char-RNNs) and predicts y (N, T): the next character at every step.

The generators (``chars_corpus``, ``make_tagging`` and the functions they call) are NumPy only:
the PyTorch export copies their source into its scripts (see engine/data/builtin.py).
"""

from __future__ import annotations

import numpy as np

from engine.data.base import (
    Dataset,
    DatasetSpec,
    check_bytes,
    check_elements,
    read_text,
    to_one_hot,
)
from engine.errors import ConfigError, DataError
from engine.settings import Opt

MAX_CORPUS_CHARS = 5_000_000  # generated corpora: a few seconds of Python at most


def encode(text, vocab=None):
    """Characters -> (int64 ids into ``vocab``, vocab); default vocab: the sorted distinct
    characters."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    if vocab is None:
        table = np.unique(codes)
        vocab = [chr(c) for c in table]
        return np.searchsorted(table, codes).astype(np.int64), vocab
    index = {ch: i for i, ch in enumerate(vocab)}
    return np.array([index[ch] for ch in text], dtype=np.int64), vocab


def windows(ids: np.ndarray, T: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next-step pairs: X[i] = ids[s : s + T], y[i] = ids[s + 1 : s + T + 1] for s in starts.

    Rows of a strided view of ``ids`` are gathered, so nothing but X and y is allocated."""
    view = np.lib.stride_tricks.sliding_window_view(ids, T)
    return view[starts], view[starts + 1]


def char_windows(text, T, starts, one_hot_x, vocab=None):
    """Next-character pairs of ``text`` cut at ``starts``: X (N, T) ids (or their one-hot
    (N, T, V)), y (N, T) the ids one character later."""
    ids, vocab = encode(text, vocab)
    X, y = windows(ids, T, starts)
    return (to_one_hot(X, len(vocab)) if one_hot_x else X), y


def char_dataset(
    text: str,
    T: int,
    starts: np.ndarray,
    one_hot_x: bool,
    name: str,
    description: str,
    vocab: list[str] | None = None,
    meta: dict | None = None,
    file: str | None = None,
) -> Dataset:
    """A next-character Dataset from ``text`` cut into windows of T at ``starts``."""
    check_elements(len(starts) * T * 2, "the character windows", file)
    ids, vocab = encode(text, vocab)
    steps = len(starts) * T
    if one_hot_x:  # refused from the sizes, before X and y exist
        check_elements(steps * len(vocab), f"one-hot X with {len(vocab)} characters", file)
    # y and the ids of X as int64, and one-hot X as float32, all alive at once at the peak.
    check_bytes(
        steps * (16 + 4 * len(vocab) * one_hot_x),
        f"{len(starts):,} windows of T = {T}"
        + (f" one-hot over {len(vocab)} characters" if one_hot_x else ""),
        file,
    )
    X, y = windows(ids, T, starts)
    if one_hot_x:
        X = to_one_hot(X, len(vocab))
    meta = {"corpus_length": len(text), "sample": text[:300], **(meta or {})}
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=len(vocab),
        class_names=vocab,
        name=name,
        description=description,
        vocab=vocab,
        meta=meta,
        normalisation="one-hot characters" if one_hot_x else "character ids",
    )


# ------------------------------------------------------------------------- generated corpora

WORDS = {
    "det": ("the", "a"),
    "adj": ("small", "red", "old"),
    "noun": ("cat", "dog", "fox", "bird"),
    "verb": ("sees", "likes", "chases", "hears"),
    "verb_base": ("see", "like", "chase", "hear"),
}
PAIRS = ("()", "[]", "{}", "<>")


def pick(rng, words):
    return words[rng.integers(len(words))]


def noun_phrase(rng, depth):
    words = [pick(rng, WORDS["det"])] + ([pick(rng, WORDS["adj"])] if rng.random() < 0.3 else [])
    s = " ".join([*words, pick(rng, WORDS["noun"])])
    if depth < 2 and rng.random() < 0.35:  # a relative clause in ( ) or [ ]: close the right one
        o, c = ("(", ")") if rng.random() < 0.5 else ("[", "]")
        s += f" {o}that {verb_phrase(rng, depth + 1, base=False)}{c}"
    return s


def verb_phrase(rng, depth, base):
    verb = pick(rng, WORDS["verb_base"] if base else WORDS["verb"])
    return f"{verb} {noun_phrase(rng, depth)}" if rng.random() < 0.7 else verb


def grammar_sentence(rng):
    """One sentence of a tiny English grammar with two long-range dependencies: a question
    starts with "does", takes the verb's base form and ends with "?", and a bracketed relative
    clause closes with the bracket it opened, possibly after a nested clause."""
    if rng.random() < 0.3:
        return f"does {noun_phrase(rng, 0)} {verb_phrase(rng, 0, base=True)}?"
    return f"{noun_phrase(rng, 0)} {verb_phrase(rng, 0, base=False)}."


def bracket_expression(rng, depth=0):
    """A balanced expression of four bracket kinds around letters, e.g. "a(b[c]){d}"."""
    items = []
    for _ in range(rng.integers(1, 4)):
        if depth < 4 and rng.random() < 0.45:
            o, c = PAIRS[rng.integers(len(PAIRS))]
            items.append(o + bracket_expression(rng, depth + 1) + c)
        else:
            items.append("abc"[rng.integers(3)])
    return "".join(items)


CHARS_OPTIONS = {
    "corpus": Opt(
        "choice",
        default="grammar",
        choices=("grammar", "brackets", "hello"),
        doc="grammar: sentences with matching brackets and questions; "
        "brackets: nested ()[]{}<>; hello: the lecture's 'hello' with vocab h,e,l,o",
    ),
    "n": Opt(
        "int",
        default=None,
        nullable=True,
        min=1,
        max=100_000,
        doc="number of sequences (default 1000; hello: 1)",
    ),
    "T": Opt(
        "int",
        default=None,
        nullable=True,
        min=1,
        max=1_000,
        doc="sequence length (default 32; hello: 4)",
    ),
    "one_hot": Opt("bool", default=False, doc="X as one-hot (N, T, V) float32 instead of ids"),
}


def load_chars(cfg: dict, rng: np.random.Generator) -> Dataset:
    """A generated character corpus cut into consecutive windows of T characters.

    "hello" is lecture 002's example: input "hell", target "ello", vocab [h, e, l, o] in the
    lecture's order (so one-hot rows match the slide), the same sample ``n`` times.
    """
    if cfg["corpus"] == "hello" and cfg["T"] not in (None, 4):
        raise ConfigError(
            f"data set 'chars': the 'hello' corpus has 5 characters, so T must "
            f"be 4 (input 'hell', target 'ello'), got {cfg['T']}"
        )
    n, T = cfg["n"] or 1000, cfg["T"] or 32
    if cfg["corpus"] != "hello" and n * T + 1 > MAX_CORPUS_CHARS:
        raise ConfigError(
            f"data set 'chars': n * T = {n * T:,} characters is more than the "
            f"limit of {MAX_CORPUS_CHARS:,}; lower n or T"
        )
    text, T, starts, vocab = chars_corpus(rng, cfg["corpus"], cfg["n"], cfg["T"])
    return char_dataset(
        text,
        T,
        starts,
        cfg["one_hot"],
        "chars",
        DATASETS_HERE["chars"].description,
        vocab=vocab,
        meta={"corpus": cfg["corpus"]},
    )


def chars_corpus(rng, corpus, n, T):
    """The chars data set's text, window length T, window starts and vocab."""
    if corpus == "hello":
        n = n or 1
        return "hello" * n, 4, np.arange(n) * 5, ["h", "e", "l", "o"]
    n, T = n or 1000, T or 32
    make = grammar_sentence if corpus == "grammar" else bracket_expression
    parts, length = [], 0
    while length - 1 < n * T + 1:  # the join adds one space fewer than parts
        parts.append(make(rng))
        length += len(parts[-1]) + 1
    # A fixed vocab, so every seed and size gives the same ids.
    alphabet = "".join(sum(WORDS.values(), ())) + "that does ()[]?."
    if corpus == "brackets":
        alphabet = "".join(PAIRS) + "abc "
    return " ".join(parts), T, np.arange(n) * T, sorted(set(alphabet))


# ------------------------------------------------------------------------- tagging

TAGGING_OPTIONS = {
    "rule": Opt(
        "choice",
        default="last_token",
        choices=("last_token", "brackets"),
        doc="last_token: tag = this token equals the sequence's last one; "
        "brackets: tag = inside a bracket pair that is closed later",
    ),
    "n": Opt("int", default=2_000, min=1, max=200_000, doc="number of sequences"),
    "T": Opt("int", default=20, min=2, max=1_000, doc="sequence length"),
    "symbols": Opt(
        "int",
        default=None,
        nullable=True,
        min=2,
        max=26,
        doc="alphabet size for last_token (default 2)",
    ),
    "one_hot": Opt("bool", default=True, doc="X one-hot (N, T, V) float32, else ids (N, T)"),
}


def bracket_tags(ids, open_id, close_id):
    """1 where a position lies within a matched pair (brackets included), else 0.

    A bracket opened but never closed does not count, so the tag of an early position depends
    on what comes later: the reason a bidirectional RNN is needed.
    """
    tags = np.zeros(ids.shape, dtype=np.int64)
    for row, seq in enumerate(ids):
        stack = []
        for t, tok in enumerate(seq):
            if tok == open_id:
                stack.append(t)
            elif tok == close_id and stack:
                tags[row, stack.pop() : t + 1] = 1
    return tags


def make_tagging(rng, rule, n, T, symbols, one_hot):
    """Tag every step from past and future context: X (N, T, V) one-hot or (N, T) ids,
    y (N, T) in {0, 1}."""
    if rule == "last_token":
        K = symbols or 2
        ids = rng.integers(0, K, (n, T))
        y = (ids == ids[:, -1:]).astype(np.int64)
    else:
        K = 4  # tokens ( ) a b
        ids = rng.integers(0, K, (n, T))
        y = bracket_tags(ids, 0, 1)
    return (to_one_hot(ids, K) if one_hot else ids), y


def load_tagging(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Many-to-many tagging that needs the future as well as the past.

    last_token: random tokens; tag_t = 1 if token t equals the last token. A forward-only RNN
    cannot know the last token until the end (about 1 - 1/K accuracy at best, 50% for K=2); a
    bidirectional one reads it first on its backward pass.
    brackets: tokens "(", ")", "a", "b"; tag_t = 1 inside a pair that matches.
    Shapes: X (N, T, V) one-hot or (N, T) ids, y (N, T) int64 in {0, 1}.
    """
    check_elements(cfg["n"] * cfg["T"] * 26, "the tagging sequences")
    if cfg["rule"] == "last_token":
        vocab = [chr(ord("a") + i) for i in range(cfg["symbols"] or 2)]
        names = ["differs from last", "equals last"]
    else:
        if cfg["symbols"] is not None:
            raise ConfigError(
                "data set 'tagging': 'symbols' applies to rule 'last_token' only; "
                "the brackets rule uses the tokens ( ) a b"
            )
        vocab = ["(", ")", "a", "b"]
        names = ["outside", "inside"]
    X, y = make_tagging(rng, **cfg)
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=2,
        class_names=names,
        name="tagging",
        description=DATASETS_HERE["tagging"].description,
        vocab=vocab,
        meta={"rule": cfg["rule"], "positive_rate": float(y.mean())},
        normalisation="one-hot tokens" if cfg["one_hot"] else "token ids",
    )


# ------------------------------------------------------------------------- user text file

TEXT_OPTIONS = {
    "path": Opt("path", doc="a UTF-8 text file"),
    "T": Opt("int", default=64, min=1, max=10_000, doc="sequence length"),
    "n": Opt(
        "int",
        default=None,
        nullable=True,
        min=1,
        max=10_000_000,
        doc="draw n windows at random offsets (default: consecutive windows)",
    ),
    "one_hot": Opt("bool", default=False, doc="X as one-hot (N, T, V) float32 instead of ids"),
}


def load_text(cfg: dict, rng: np.random.Generator) -> Dataset:
    """A user's UTF-8 text for a character model; the vocab is its sorted distinct characters.

    Windows are consecutive (stride T) unless ``n`` asks for n random offsets.
    """
    path, T = cfg["path"], cfg["T"]
    text = read_text(path)
    if not text:
        raise DataError("has no text (only a byte-order mark)", file=path)
    if len(text) < T + 1:
        raise DataError(
            f"has {len(text)} characters, too few for one sequence of T = {T} "
            f"(needs T + 1 = {T + 1}); lower T or use a longer text",
            file=path,
        )
    if cfg["n"] is None:
        starts = np.arange(0, len(text) - T, T)
    else:
        starts = rng.integers(0, len(text) - T, cfg["n"])
    return char_dataset(
        text,
        T,
        starts,
        cfg["one_hot"],
        "text",
        DATASETS_HERE["text"].description,
        meta={"path": path},
        file=path,
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "chars": DatasetSpec(
        "Generated text with long-range structure (brackets, questions) for char-RNNs",
        CHARS_OPTIONS,
        load_chars,
    ),
    "tagging": DatasetSpec(
        "Tag every step using past and future context (for bidirectional RNNs)",
        TAGGING_OPTIONS,
        load_tagging,
    ),
    "text": DatasetSpec(
        "Your own UTF-8 text file, cut into sequences for a character model",
        TEXT_OPTIONS,
        load_text,
    ),
}
