"""A generated sentiment-like data set for text CNNs: short "reviews" of token ids whose label
is decided by a few words (lecture 001's "CNN for text with word localisation": a class
activation map over the words should light up those words).

Every review is ``T`` words long. Most words are neutral fillers drawn from FILLER (the
lecture's IMDB examples' plain words); ``k`` of them (1 to 3) are sentiment words of the
review's class (POSITIVE or NEGATIVE), at random positions; with probability ``distractor`` one
more word of the other class is put in too, so counting, not spotting one word, decides. The
label is 1 (positive) or 0 (negative), balanced. Id 0 is ``<pad>`` (occlusion's fill), never
drawn.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements
from engine.settings import Opt

FILLER = (
    "the movie film story plot actors it was is a an and of to this that i in for with as "
    "but on at scene scenes character characters director script ending lead performance "
    "video store clerk rent watch saw about his her their one some there"
).split()
POSITIVE = "great enjoyed charming wonderful recommended hilarious enjoyable best".split()
NEGATIVE = "horrid wooden worst boring predictable hate unsympathetic uninteresting".split()
VOCAB = ["<pad>", *FILLER, *POSITIVE, *NEGATIVE]

REVIEWS_OPTIONS = {
    "n": Opt("int", default=3_000, min=2, max=1_000_000, doc="number of reviews"),
    "T": Opt("int", default=20, min=4, max=1_000, doc="words per review"),
    "distractor": Opt(
        "float", default=0.5, min=0.0, max=1.0, doc="chance of one word of the other class"
    ),
}


def words(ids: np.ndarray) -> list[str]:
    """Token ids as words."""
    return [VOCAB[int(i)] for i in ids]


REVIEW_FILLER = FILLER
REVIEW_SENTIMENT = len(POSITIVE)  # positive words, then as many negative ones, after the fillers


def make_reviews(rng, n=3000, T=20, distractor=0.5):
    """Generated reviews: X (N, T) word ids (0 <pad>, then fillers, the positive and the
    negative words), y (N,) 1 when the review's sentiment words are mostly positive."""
    first_pos = 1 + len(REVIEW_FILLER)
    first_neg = first_pos + REVIEW_SENTIMENT
    X = rng.integers(1, first_pos, (n, T))
    y = np.arange(n) % 2
    rng.shuffle(y)
    for i in range(n):
        k = int(rng.integers(1, 4))
        other = int(rng.random() < distractor) if k > 1 else 0
        where = rng.choice(T, size=min(T, k + other), replace=False)
        own, theirs = (first_pos, first_neg) if y[i] == 1 else (first_neg, first_pos)
        X[i, where[:k]] = own + rng.integers(0, REVIEW_SENTIMENT, k)
        if other:
            X[i, where[k]] = theirs + int(rng.integers(0, REVIEW_SENTIMENT))
    return X.astype(np.int64), y.astype(np.int64)


def load_reviews(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Shapes: X (N, T) int64 ids in [1, len(VOCAB)), y (N,) int64: 0 negative, 1 positive."""
    N, T = cfg["n"], cfg["T"]
    check_elements(N * T, "the reviews' X")
    X, y = make_reviews(rng, N, T, cfg["distractor"])
    return Dataset(
        X.astype(np.int64),
        y.astype(np.int64),
        "classification",
        n_classes=2,
        name="reviews",
        description=DATASETS_HERE["reviews"].description,
        class_names=["negative", "positive"],
        vocab=list(VOCAB),
        meta={"T": T},
    )


DATASETS_HERE = {
    "reviews": DatasetSpec(
        "generated movie reviews of T word ids, labelled by a few sentiment words (text CNN)",
        REVIEWS_OPTIONS,
        load_reviews,
    )
}
