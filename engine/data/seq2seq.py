"""Built-in sequence-to-sequence tasks: sorting, date-format translation, digit-strip captions.

Like ``reversal`` (engine/data/sequences.py), one sample holds everything the model reads, for
teacher forcing: the source, then the decoder's input, the target shifted right behind a "go"
token (Slice blocks take them apart). The target y (N, L) holds token ids of the same
vocabulary, whose last entry is "go" and first "_" (padding).

- sorting: K symbols, the source sorted (lengths up to 30 and beyond).
- dates: "6 December 2026", "Sunday, 6 December 2026", "06/12/2026", ... -> "2026-12-06",
  characters one-hot (lecture 001's translation example at a scale that trains in a minute).
- digit_strips: images of 2-4 handwritten digits side by side -> "three seven one end",
  a one-to-many captioning set (the image, flat, then the shifted caption one-hot, flat).

Each ``make_*`` function is the generator, NumPy only (the PyTorch export copies its source and
the helpers it names, see engine/export/standalone_data.py).
"""

from __future__ import annotations

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements, to_one_hot
from engine.data.sequences import symbol_seq2seq
from engine.errors import ConfigError
from engine.settings import Opt


def side_by_side(src, y, go, depth):
    """The teacher-forcing sample: one-hot of the source ids, then "go" and y shifted right.

    Shapes: src (N, Ls) ids, y (N, Lt) ids -> X (N, Ls + Lt, depth) float32.
    """
    n, ls = src.shape
    ids = np.empty((n, ls + y.shape[1]), dtype=np.int64)
    ids[:, :ls] = src
    ids[:, ls] = go
    ids[:, ls + 1 :] = y[:, :-1]
    return to_one_hot(ids, depth)


# ----------------------------------------------------------------------------------- sorting

SORTING_OPTIONS = {
    "n": Opt("int", default=4_000, min=1, max=1_000_000, doc="number of sequences"),
    "length": Opt("int", default=10, min=2, max=1_000, doc="sequence length L"),
    "symbols": Opt("int", default=8, min=1, max=256, doc="alphabet size K"),
}


def make_sorting(rng, n, length, symbols):
    """Sorting, teacher forcing: X (N, 2L, K + 2) one-hot (the source, then "go" and the
    sorted source shifted right), y (N, L) ids (the source sorted)."""
    src = rng.integers(1, symbols + 1, (n, length))
    y = np.sort(src, axis=1).astype(np.int64)
    return side_by_side(src, y, symbols + 1, symbols + 2), y


def load_sorting(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Sorting for an encoder-decoder with teacher forcing.

    Ids: 1..K symbols, K+1 "go" (0 is unused). Steps 0..L-1 of a sample are the source, steps
    L..2L-1 the decoder's input (go, then the sorted sequence without its last symbol); the
    target is the source sorted ascending. Shapes: X (N, 2L, K + 2) one-hot float32, y (N, L).
    Knowing only that the output is sorted scores about 1/K + (what a guess of the histogram
    gets); counting each symbol is what the model must learn, and attention helps it look up.
    """
    N, L, K = cfg["n"], cfg["length"], cfg["symbols"]
    check_elements(N * 2 * L * (K + 2), "the sorting task's one-hot X")
    X, y = make_sorting(rng, **cfg)
    return symbol_seq2seq(X, y, "sorting", DATASETS_HERE["sorting"].description, K, L)


# ------------------------------------------------------------------------------------- dates

MONTHS = (
    "January February March April May June July August September October November December"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
DATE_FORMS = (
    "{d} {Month} {Y}",
    "{Month} {d}, {Y}",
    "{Mon} {d}, {Y}",
    "{d} {Mon} {Y}",
    "{Weekday}, {d} {Month} {Y}",
    "{Wkd} {d} {Mon} {Y}",
    "{dd}/{mm}/{Y}",
    "{d}.{m}.{Y}",
    "{dth} of {Month} {Y}",
    "{month} {d} {Y}",
    "{d} {MON} {Y}",
    "{Y}, {Month} {d}",
)
DATE_SOURCE = 28  # characters: the longest form, "Wednesday, 27 September 2000"
DATE_TARGET = 10  # "2026-12-06"
_NAMES = "".join(MONTHS + WEEKDAYS) + "stndrd"
DATE_CHARS = "_ ,./-0123456789" + "".join(sorted(set(_NAMES + _NAMES.lower() + _NAMES.upper())))
DATE_VOCAB = [*DATE_CHARS, "go"]

DATES_OPTIONS = {
    "n": Opt("int", default=10_000, min=1, max=1_000_000, doc="number of dates"),
    "first_year": Opt("int", default=1950, min=1, max=9999, doc="earliest year"),
    "last_year": Opt("int", default=2049, min=1, max=9999, doc="latest year"),
}


def date_text(form, year, month, day, weekday):
    """One date written in ``form`` (one of DATE_FORMS); month 1..12, weekday 0 = Monday."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    name = MONTHS[month - 1]
    return form.format(
        d=day,
        dd=f"{day:02d}",
        dth=f"{day}{suffix}",
        m=month,
        mm=f"{month:02d}",
        Y=f"{year:04d}",
        Month=name,
        month=name.lower(),
        Mon=name[:3],
        MON=name[:3].upper(),
        Weekday=WEEKDAYS[weekday],
        Wkd=WEEKDAYS[weekday][:3],
    )


def make_dates(rng, n, first_year, last_year):
    """Dates, teacher forcing: X (N, 28 + 10, V) one-hot characters (the date as written, padded
    with "_" on the right; then "go" and the ISO date shifted right), y (N, 10) ids (ISO)."""
    lo = np.datetime64(f"{first_year:04d}-01-01", "D").astype(np.int64)
    hi = np.datetime64(f"{last_year:04d}-12-31", "D").astype(np.int64)
    days = rng.integers(lo, hi + 1, n)
    forms = rng.integers(0, len(DATE_FORMS), n)
    index = {c: i for i, c in enumerate(DATE_CHARS)}
    src = np.zeros((n, DATE_SOURCE), dtype=np.int64)
    y = np.zeros((n, DATE_TARGET), dtype=np.int64)
    for i in range(n):
        iso = str(np.datetime64(int(days[i]), "D"))
        year, month, day = int(iso[:4]), int(iso[5:7]), int(iso[8:10])
        weekday = (int(days[i]) + 3) % 7  # 1970-01-01 (day 0) was a Thursday
        text = date_text(DATE_FORMS[forms[i]], year, month, day, weekday)
        src[i, : len(text)] = [index[c] for c in text]
        y[i] = [index[c] for c in iso]
    return side_by_side(src, y, len(DATE_CHARS), len(DATE_CHARS) + 1), y


def load_dates(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Date-format translation (lecture 001's attention example): a date in one of 12 surface
    forms ("6 December 2026", "December 6, 2026", "Sun 6 Dec 2026", "06/12/2026", "6.12.2026",
    "6th of December 2026", "december 6 2026", ...) to ISO "2026-12-06".

    Characters one-hot over one vocabulary: "_" (padding, id 0), " ,./-", the digits, the
    letters of the month and weekday names, "go" (the last id). Steps 0..27 of a sample are the
    source, padded with "_" on the right; steps 28..37 the decoder's input (go, then the ISO
    date shifted right). Dates are drawn uniformly from first_year-01-01 to last_year-12-31,
    the form uniformly. Shapes: X (N, 38, V) one-hot float32, y (N, 10) int64.
    """
    if cfg["last_year"] < cfg["first_year"]:
        raise ConfigError(
            f"data set 'dates': 'last_year' ({cfg['last_year']}) must not be before "
            f"'first_year' ({cfg['first_year']})"
        )
    check_elements(cfg["n"] * (DATE_SOURCE + DATE_TARGET) * len(DATE_VOCAB), "the dates' X")
    X, y = make_dates(rng, **cfg)
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=len(DATE_VOCAB),
        name="dates",
        description=DATASETS_HERE["dates"].description,
        class_names=list(DATE_VOCAB),
        vocab=list(DATE_VOCAB),
        meta={
            "baseline_accuracy": 0.1,
            "baseline": "guessing digits: about 1/10 per character",
            "seq2seq": {
                "source": [0, DATE_SOURCE],
                "target": [DATE_SOURCE, DATE_SOURCE + DATE_TARGET],
                "go": len(DATE_CHARS),
            },
        },
    )


# ------------------------------------------------------------------------------ digit strips

DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
STRIP_VOCAB = ["_", *DIGIT_WORDS, "end", "go"]
STRIP_SLOTS = 4  # digits at most; the caption holds up to 4 words and "end"

STRIPS_OPTIONS = {
    "n": Opt("int", default=3_000, min=1, max=1_000_000, doc="number of strips"),
    "min_digits": Opt("int", default=2, min=1, max=STRIP_SLOTS, doc="fewest digits in a strip"),
    "max_digits": Opt("int", default=4, min=1, max=STRIP_SLOTS, doc="most digits in a strip"),
}


def make_digit_strips(rng, n, min_digits, max_digits):
    """Digit strips: X (N, 8*32 + 5*13) flat (the 8x32 image, then the shifted caption
    one-hot), y (N, 5) word ids ("three seven one end _")."""
    from sklearn.datasets import load_digits  # reads the copy shipped with scikit-learn

    d = load_digits()
    images = d.images.astype(np.float32) / 16.0
    count = rng.integers(min_digits, max_digits + 1, n)
    picks = rng.integers(0, len(images), (n, STRIP_SLOTS))
    strips = np.zeros((n, 8, 8 * STRIP_SLOTS), dtype=np.float32)
    y = np.zeros((n, STRIP_SLOTS + 1), dtype=np.int64)
    for i in range(n):
        for k in range(count[i]):
            strips[i, :, 8 * k : 8 * k + 8] = images[picks[i, k]]
            y[i, k] = 1 + d.target[picks[i, k]]
        y[i, count[i]] = len(STRIP_VOCAB) - 2  # "end"
    shifted = np.empty_like(y)
    shifted[:, 0] = len(STRIP_VOCAB) - 1  # "go"
    shifted[:, 1:] = y[:, :-1]
    caption = to_one_hot(shifted, len(STRIP_VOCAB)).reshape(n, -1)
    return np.concatenate([strips.reshape(n, -1), caption], axis=1), y


def load_digit_strips(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Image captioning, one-to-many: a strip of 2 to 4 of scikit-learn's 8x8 digits, left to
    right from the left edge (8x32, empty slots black) -> the words "three seven one end".

    Vocabulary: "_" (padding after "end", id 0), "zero".."nine" (ids 1..10), "end", "go".
    One flat sample holds the image (its 256 pixels, row by row: Slice [0:256], Reshape to
    (1, 8, 32)) and the decoder's input (go, then the caption shifted right, 5 words one-hot:
    Slice [256:321], Reshape to (5, 13)). Shapes: X (N, 321) float32, y (N, 5) int64.
    """
    if cfg["max_digits"] < cfg["min_digits"]:
        raise ConfigError(
            f"data set 'digit_strips': 'max_digits' ({cfg['max_digits']}) must be at least "
            f"'min_digits' ({cfg['min_digits']})"
        )
    width = 8 * 8 * STRIP_SLOTS + (STRIP_SLOTS + 1) * len(STRIP_VOCAB)
    check_elements(cfg["n"] * width, "the digit strips")
    X, y = make_digit_strips(rng, **cfg)
    pixels = 8 * 8 * STRIP_SLOTS
    return Dataset(
        X,
        y,
        "sequence_classification",
        n_classes=len(STRIP_VOCAB),
        name="digit_strips",
        description=DATASETS_HERE["digit_strips"].description,
        class_names=list(STRIP_VOCAB),
        vocab=list(STRIP_VOCAB),
        meta={
            "baseline_accuracy": 0.1,
            "baseline": "guessing digits: about 1/10 per word",
            "image_shape": [1, 8, 8 * STRIP_SLOTS],
            "seq2seq": {
                "source": [0, pixels],
                "target": [pixels, width],
                "go": len(STRIP_VOCAB) - 1,
                "flat": True,
            },
        },
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "sorting": DatasetSpec(
        "Sorting: the source, then the shifted sorted sequence (teacher forcing) in one sample",
        SORTING_OPTIONS,
        load_sorting,
    ),
    "dates": DatasetSpec(
        'Date formats to ISO: "6 December 2026", "06/12/2026", ... -> "2026-12-06"',
        DATES_OPTIONS,
        load_dates,
    ),
    "digit_strips": DatasetSpec(
        'Captioning: a strip of 2-4 handwritten digits -> "three seven one end"',
        STRIPS_OPTIONS,
        load_digit_strips,
    ),
}


def strip_of(digits: list[int]) -> np.ndarray:
    """The 8x32 strip of the given digits (1 to 4, left to right), each the first image of its
    class in scikit-learn's set: a source for decoding a caption. Shapes: -> (256,) float32."""
    from sklearn.datasets import load_digits

    if not 1 <= len(digits) <= STRIP_SLOTS or any(not 0 <= d <= 9 for d in digits):
        raise ConfigError(
            f"a digit strip holds 1 to {STRIP_SLOTS} digits 0-9, got {' '.join(map(str, digits))}"
        )
    d = load_digits()
    strip = np.zeros((8, 8 * STRIP_SLOTS), dtype=np.float32)
    for k, digit in enumerate(digits):
        first = int(np.flatnonzero(d.target == digit)[0])
        strip[:, 8 * k : 8 * k + 8] = d.images[first] / 16.0
    return strip.reshape(-1)
