"""The sequence-to-sequence data sets: sorting, dates, digit strips (teacher-forcing layout)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_dataset
from engine.data.seq2seq import (
    DATE_FORMS,
    DATE_SOURCE,
    DATE_VOCAB,
    MONTHS,
    STRIP_VOCAB,
    date_text,
)
from engine.errors import ConfigError


def test_sorting_holds_source_then_shifted_sorted_target():
    ds = load_dataset({"name": "sorting", "n": 40, "length": 30, "symbols": 6}, seed=2)
    assert ds.X.shape == (40, 60, 8) and ds.y.shape == (40, 30)
    ids = ds.X.argmax(-1)
    np.testing.assert_array_equal(ds.y, np.sort(ids[:, :30], axis=1))
    assert np.all(ids[:, 30] == 7)
    np.testing.assert_array_equal(ids[:, 31:], ds.y[:, :-1])
    assert ds.meta["seq2seq"] == {"source": [0, 30], "target": [30, 60], "go": 7}


def decode(ids) -> str:
    return "".join(DATE_VOCAB[i] for i in ids).rstrip("_")


def test_dates_translate_many_surface_forms_to_iso():
    ds = load_dataset({"name": "dates", "n": 600}, seed=0)
    assert ds.X.shape == (600, 38, len(DATE_VOCAB)) and ds.y.shape == (600, 10)
    ids = ds.X.argmax(-1)
    assert np.all(ids[:, DATE_SOURCE] == len(DATE_VOCAB) - 1)  # "go"
    np.testing.assert_array_equal(ids[:, DATE_SOURCE + 1 :], ds.y[:, :-1])
    sources = [decode(row[:DATE_SOURCE]) for row in ids]
    for src, tgt in zip(sources, ds.y, strict=True):
        iso = decode(tgt)
        y, m, d = int(iso[:4]), int(iso[5:7]), int(iso[8:])
        assert 1950 <= y <= 2049 and str(y) in src and (str(d) in src or f"{d:02d}" in src)
        assert MONTHS[m - 1][:3].lower() in src.lower() or f".{m}." in src or f"/{m:02d}/" in src
    assert len({s.split(" ")[0].rstrip(",") for s in sources}) > 100  # many surface forms


def test_date_forms_fit_and_name_the_right_weekday():
    assert date_text(DATE_FORMS[0], 2026, 12, 6, 6) == "6 December 2026"
    assert date_text(DATE_FORMS[4], 2026, 12, 6, 6) == "Sunday, 6 December 2026"
    assert date_text(DATE_FORMS[6], 2026, 12, 6, 6) == "06/12/2026"
    assert date_text(DATE_FORMS[8], 2026, 12, 22, 1) == "22nd of December 2026"
    assert date_text(DATE_FORMS[8], 2026, 12, 13, 6) == "13th of December 2026"
    longest = max(len(date_text(f, 2000, 9, 27, 2)) for f in DATE_FORMS)
    assert longest == DATE_SOURCE
    ds = load_dataset({"name": "dates", "n": 300, "first_year": 2026, "last_year": 2026}, seed=1)
    ids = ds.X.argmax(-1)
    for row, tgt in zip(ids, ds.y, strict=True):
        src = decode(row[:DATE_SOURCE])
        if decode(tgt) == "2026-12-06" and src.startswith(("Sun", "Mon", "Tue")):
            assert src.startswith("Sun")
    found = [decode(r[:DATE_SOURCE]) for r in ids if decode(r[:DATE_SOURCE])[:3] in ("Sun",)]
    assert found  # weekdays appear
    with pytest.raises(ConfigError, match="last_year"):
        load_dataset({"name": "dates", "first_year": 2000, "last_year": 1999})


def test_digit_strips_caption_the_digits_in_words():
    ds = load_dataset({"name": "digit_strips", "n": 60}, seed=4)
    assert ds.X.shape == (60, 256 + 5 * 13) and ds.y.shape == (60, 5)
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = ds.X[:, :256].reshape(60, 8, 32)
    shifted = ds.X[:, 256:].reshape(60, 5, 13).argmax(-1)
    assert np.all(shifted[:, 0] == STRIP_VOCAB.index("go"))
    np.testing.assert_array_equal(shifted[:, 1:], ds.y[:, :-1])
    for img, caption in zip(images, ds.y, strict=True):
        words = [STRIP_VOCAB[i] for i in caption]
        k = words.index("end")
        assert 2 <= k <= 4 and all(w == "_" for w in words[k + 1 :])
        for slot in range(4):
            patch = img[:, 8 * slot : 8 * slot + 8]
            if slot >= k:
                assert not patch.any()
                continue
            # the patch is one of the digit images labelled with this slot's word
            same = np.all(np.isclose(digits.images / 16.0, patch), axis=(1, 2))
            assert set(digits.target[same]) == {STRIP_VOCAB.index(words[slot]) - 1}
    with pytest.raises(ConfigError, match="max_digits"):
        load_dataset({"name": "digit_strips", "min_digits": 3, "max_digits": 2})
