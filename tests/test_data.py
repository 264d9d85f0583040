"""Built-in data sets: shapes, dtypes, labels, determinism, the lectures' numbers, and split."""

import numpy as np
import pytest

from engine.data import (
    BUILTIN_DATASETS,
    DATASET_OPTIONS,
    DATASETS,
    DOWNLOADED_DATASETS,
    USER_FILE_DATASETS,
    Dataset,
    load_dataset,
    split,
    split_indices,
)
from engine.data.builtin import bilinear_matrix, resize_bilinear
from engine.data.text import bracket_tags
from engine.errors import ConfigError, DataError

RANDOM = ("moons", "circles", "spiral", "adding", "copy", "sine", "chars", "tagging")
SMALL = {
    "adding": {"n": 300},
    "copy": {"n": 200},
    "sine": {"n": 200},
    "chars": {"n": 50},
    "tagging": {"n": 200},
    "sorting": {"n": 200},
    "dates": {"n": 200},
    "digit_strips": {"n": 100},
}


def small(name, **kw):
    return {"name": name, **SMALL.get(name, {}), **kw}


def test_registry_lists_every_data_set_with_one_line_and_options():
    expected = {
        "digits",
        "xor",
        "moons",
        "circles",
        "spiral",
        "adding",
        "copy",
        "sine",
        "timed_spikes",
        "reviews",
        "reversal",
        "sorting",
        "dates",
        "digit_strips",
        "chars",
        "tagging",
        "csv",
        "npz",
        "image_folder",
        "idx",
        "text",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "shakespeare",
    }
    assert set(DATASETS) == expected == set(DATASET_OPTIONS)
    assert set(BUILTIN_DATASETS) | set(USER_FILE_DATASETS) | set(DOWNLOADED_DATASETS) == expected
    for name, desc in DATASETS.items():
        assert desc and "\n" not in desc and len(desc) < 100, name


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_builtin_shapes_dtypes_labels(name):
    ds = load_dataset(small(name), seed=0)
    assert isinstance(ds, Dataset) and ds.name == name and ds.description == DATASETS[name]
    assert ds.X.shape == (len(ds), *ds.input_shape)
    assert ds.y.shape == (len(ds), *ds.target_shape)
    assert ds.X.dtype in (np.float32, np.int64)
    assert np.all(np.isfinite(ds.X))
    if ds.task == "regression":
        assert ds.y.dtype == np.float32 and ds.n_classes is None
    else:
        assert ds.y.dtype == np.int64
        assert ds.y.min() >= 0 and ds.y.max() < ds.n_classes
        assert ds.y.ndim == (1 if ds.task == "classification" else 2)
        if ds.class_names is not None:
            assert len(ds.class_names) == ds.n_classes
    assert ds.meta["seed"] == 0 and ds.meta["spec"]["name"] == name


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_builtin_same_seed_same_data(name):
    a, b = load_dataset(small(name), seed=3), load_dataset(small(name), seed=3)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)


@pytest.mark.parametrize("name", RANDOM)
def test_builtin_different_seed_different_data(name):
    a, b = load_dataset(small(name), seed=1), load_dataset(small(name), seed=2)
    assert not (np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y))


@pytest.mark.parametrize("name", ["digits", "xor"])
def test_fixed_data_ignores_the_seed(name):
    a, b = load_dataset(name, seed=1), load_dataset(name, seed=2)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)


@pytest.mark.parametrize("name", BUILTIN_DATASETS)
def test_unknown_option_lists_the_valid_ones(name):
    with pytest.raises(ConfigError) as e:
        load_dataset({"name": name, "bogus": 1})
    msg = str(e.value)
    assert "bogus" in msg and name in msg
    assert all(opt in msg for opt in DATASET_OPTIONS[name])


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"name": "adding", "T": 1}, ["'T'", ">= 2"]),
        ({"name": "adding", "n": 0}, ["'n'", ">= 1"]),
        ({"name": "moons", "noise": -1.0}, ["'noise'", ">= 0"]),
        ({"name": "circles", "factor": 1.0}, ["'factor'", "< 1"]),
        ({"name": "spiral", "arms": 1}, ["'arms'"]),
        ({"name": "digits", "resize": [0, 8]}, ["'resize'"]),
        ({"name": "digits", "resize": [500, 500]}, ["'resize'", "128"]),
        ({"name": "digits", "pad": [6, 6]}, ["'pad'", "[8, 8]"]),
        ({"name": "digits", "flatten": "yes"}, ["'flatten'", "true or false"]),
        ({"name": "xor", "targets": "probability"}, ["'targets'", "class, float"]),
        ({"name": "chars", "corpus": "hello", "T": 8}, ["hello", "T must be 4"]),
        ({"name": "chars", "n": 100_000, "T": 1000}, ["n * T"]),
        ({"name": "tagging", "rule": "brackets", "symbols": 3}, ["symbols", "last_token"]),
        ({"name": "nope"}, ["unknown data set 'nope'", "digits", "csv"]),
        ({}, ["unknown data set None"]),
    ],
)
def test_bad_options_are_config_errors_that_say_why(spec, words):
    with pytest.raises(ConfigError) as e:
        load_dataset(spec)
    for w in words:
        assert w in str(e.value)


def test_spec_forms_and_seed_checks():
    assert load_dataset("xor").X.shape == (4, 2)
    with pytest.raises(ConfigError):
        load_dataset(["xor"])
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ConfigError):
            load_dataset("xor", seed=bad)


# ------------------------------------------------------------------------------ XOR, digits


def test_xor_is_lecture_001s_four_points():
    ds = load_dataset({"name": "xor"})
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ds.y.tolist() == [0, 1, 1, 0]
    assert ds.task == "classification" and ds.n_classes == 2


def test_xor_float_targets_for_a_sigmoid_network():
    ds = load_dataset({"name": "xor", "targets": "float"})
    assert ds.y.dtype == np.float32 and ds.y.shape == (4, 1) and ds.task == "regression"
    assert ds.y[:, 0].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert ds.target_shape == (1,)


def test_xor_repeat_and_noise():
    ds = load_dataset({"name": "xor", "repeat": 25, "noise": 0.1}, seed=0)
    assert ds.X.shape == (100, 2) and ds.X.dtype == np.float32
    assert np.array_equal(ds.y, np.tile([0, 1, 1, 0], 25))
    corners = np.tile([[0, 0], [0, 1], [1, 0], [1, 1]], (25, 1))
    err = ds.X - corners
    assert 0.05 < err.std() < 0.15 and abs(err.mean()) < 0.05


def test_digits_are_sklearns_scaled_by_16():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = load_dataset("digits")
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.float32
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    np.testing.assert_allclose(ds.X[:, 0] * 16, ref.images)
    assert np.array_equal(ds.y, ref.target) and ds.n_classes == 10
    assert np.bincount(ds.y).min() > 170
    assert "16" in ds.normalisation


def test_digits_flatten_for_mlps():
    ds = load_dataset({"name": "digits", "flatten": True})
    assert ds.X.shape == (1797, 64) and ds.input_shape == (64,)
    np.testing.assert_array_equal(ds.X, load_dataset("digits").X.reshape(1797, 64))


def _nearest_centroid_accuracy(X, y):
    X = X.reshape(len(X), -1)
    tr, te = slice(0, 1200), slice(1200, None)
    cents = np.stack([X[tr][y[tr] == c].mean(0) for c in range(10)])
    pred = np.argmin(((X[te, None, :] - cents[None]) ** 2).sum(-1), 1)
    return float((pred == y[te]).mean())


def test_digits_resize_keeps_the_digits_recognisable():
    base = load_dataset("digits")
    big = load_dataset({"name": "digits", "resize": [32, 32]})
    assert big.X.shape == (1797, 1, 32, 32) and big.X.dtype == np.float32
    assert big.X.min() >= 0.0 and big.X.max() <= 1.0 + 1e-6
    back = resize_bilinear(big.X, (8, 8))
    assert np.abs(back - base.X).mean() < 0.05
    # mean image and per-class means survive the round trip
    np.testing.assert_allclose(back.mean(0), base.X.mean(0), atol=0.06)
    a0 = _nearest_centroid_accuracy(base.X, base.y)
    a1 = _nearest_centroid_accuracy(big.X, big.y)
    assert a0 > 0.85 and abs(a1 - a0) < 0.03


def test_digits_pad_centres_like_lenet5():
    ds = load_dataset({"name": "digits", "resize": [28, 28], "pad": [32, 32]})
    inner = load_dataset({"name": "digits", "resize": [28, 28]})
    assert ds.X.shape == (1797, 1, 32, 32)
    np.testing.assert_array_equal(ds.X[:, :, 2:30, 2:30], inner.X)
    assert ds.X[:, :, :2].max() == 0 and ds.X[:, :, 30:].max() == 0
    assert ds.X[:, :, :, :2].max() == 0 and ds.X[:, :, :, 30:].max() == 0


def test_bilinear_matrix_interpolates():
    R = bilinear_matrix(4, 8)
    np.testing.assert_allclose(R.sum(1), 1.0)
    # upsampling x2, half-pixel centres: output 1 sits at input 0.25, output 2 at 0.75
    np.testing.assert_allclose(R[1, :2], [0.75, 0.25])
    np.testing.assert_allclose(R[2, :2], [0.25, 0.75])
    assert np.array_equal(bilinear_matrix(5, 5), np.eye(5))
    ramp = np.arange(4.0)[None, None, None, :].repeat(4, 2)
    out = resize_bilinear(ramp, (4, 8))
    assert np.all(np.diff(out[0, 0, 0]) >= 0) and out[0, 0, 0, 0] == 0 and out[0, 0, 0, -1] == 3


def test_bilinear_resize_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((3, 2, 8, 8))
    for size in [(32, 32), (5, 11), (8, 8)]:
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=size, mode="bilinear", align_corners=False
        ).numpy()
        np.testing.assert_allclose(resize_bilinear(x, size), ref, atol=1e-12)


# ------------------------------------------------------------------------------ 2-D toys


@pytest.mark.parametrize("name, sk", [("moons", "make_moons"), ("circles", "make_circles")])
def test_noise_free_toys_match_sklearns_construction(name, sk):
    import sklearn.datasets

    ds = load_dataset({"name": name, "n": 101, "noise": 0.0}, seed=5)
    kw = {"factor": 0.5} if name == "circles" else {}  # our default; sklearn's is 0.8
    X, y = getattr(sklearn.datasets, sk)(n_samples=101, shuffle=False, **kw)

    def rows(a, b):
        return sorted(map(tuple, np.round(np.c_[a, b], 5).tolist()))

    assert rows(ds.X, ds.y) == rows(X.astype(np.float32), y)


def test_moons_noise_and_balance():
    ds = load_dataset({"name": "moons", "n": 1000, "noise": 0.2}, seed=0)
    assert ds.X.shape == (1000, 2) and np.bincount(ds.y).tolist() == [500, 500]
    clean = load_dataset({"name": "moons", "n": 1000, "noise": 0.0}, seed=0)
    assert not np.allclose(np.sort(ds.X, 0), np.sort(clean.X, 0), atol=0.01)


def test_spiral_arms_are_classes():
    ds = load_dataset({"name": "spiral", "n": 301, "arms": 4, "noise": 0.0}, seed=0)
    assert ds.X.shape == (301, 2) and ds.n_classes == 4
    assert sorted(np.bincount(ds.y).tolist()) == [75, 75, 75, 76]
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    assert r.min() >= 0 and r.max() <= 1 + 1e-6
    # arms are rotated copies: at equal radius, arm j sits 2*pi/k further round than arm 0
    far = [ds.X[(ds.y == j)][np.argmax(r[ds.y == j])] for j in range(4)]
    angles = np.arctan2(*np.array(far).T)  # angle measured as in (sin t, cos t)
    steps = np.mod(np.diff(angles), 2 * np.pi)
    np.testing.assert_allclose(steps, np.pi / 2, atol=0.05)


# ------------------------------------------------------------------------------ sequences


def test_adding_problem_structure():
    ds = load_dataset({"name": "adding", "T": 20, "n": 500}, seed=0)
    assert ds.X.shape == (500, 20, 2) and ds.y.shape == (500, 1) and ds.task == "regression"
    marks = ds.X[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks[:, :10].sum(1) == 1) and np.all(marks[:, 10:].sum(1) == 1)
    vals = ds.X[:, :, 0]
    assert vals.min() >= 0 and vals.max() < 1
    np.testing.assert_allclose(ds.y[:, 0], (vals * marks).sum(1), rtol=1e-6)


def test_adding_baseline_mse_is_one_sixth():
    ds = load_dataset({"name": "adding", "T": 50, "n": 10000}, seed=0)
    mse_of_answering_one = float(np.mean((ds.y - 1.0) ** 2))
    assert abs(mse_of_answering_one - 1 / 6) < 0.01
    assert ds.meta["baseline_mse"] == pytest.approx(0.1667, abs=1e-3)


def test_copy_task_structure():
    ds = load_dataset({"name": "copy", "n": 50, "length": 3, "delay": 6, "symbols": 5}, seed=0)
    T, K = 2 * 3 + 6, 5
    assert ds.X.shape == (50, T, K + 2) and ds.y.shape == (50, T) and ds.n_classes == K + 2
    assert np.all(ds.X.sum(-1) == 1)
    ids = ds.X.argmax(-1)
    assert np.all((ids[:, :3] >= 1) & (ids[:, :3] <= K))
    assert np.all(ids[:, 3 + 6 - 1] == K + 1)  # recall marker
    blanks = np.ones(T, bool)
    blanks[:3] = False
    blanks[3 + 6 - 1] = False
    assert np.all(ids[:, blanks] == 0)
    assert np.array_equal(ds.y[:, -3:], ids[:, :3]) and np.all(ds.y[:, :-3] == 0)
    assert ds.meta["baseline_cross_entropy"] == pytest.approx(3 * np.log(5) / T)


def test_sine_target_is_the_next_value():
    ds = load_dataset({"name": "sine", "n": 100, "T": 20, "noise": 0.0}, seed=0)
    assert ds.X.shape == (100, 20, 1) and ds.y.shape == (100, 1)
    # a sampled sine obeys s[t+1] = 2 cos(w) s[t] - s[t-1]: fit 2cos(w) per window, predict
    s = ds.X[:, :, 0].astype(np.float64)
    c = ((s[:, 2:] + s[:, :-2]) * s[:, 1:-1]).sum(1) / (s[:, 1:-1] ** 2).sum(1)
    np.testing.assert_allclose(ds.y[:, 0], c * s[:, -1] - s[:, -2], atol=1e-4)
    seq = load_dataset(
        {"name": "sine", "n": 100, "T": 20, "noise": 0.0, "many_to_many": True}, seed=0
    )
    assert seq.y.shape == (100, 20, 1)
    np.testing.assert_allclose(seq.y[:, :-1], seq.X[:, 1:], atol=1e-6)
    noisy = load_dataset({"name": "sine", "n": 500, "noise": 0.1}, seed=0)
    assert 0.005 < noisy.meta["baseline_mse"] < 0.1


def _balanced(text, pairs):
    closer = {p[1]: p[0] for p in pairs}
    stack = []
    for ch in text:
        if ch in closer.values():
            stack.append(ch)
        elif ch in closer:
            if not stack or stack.pop() != closer[ch]:
                return False
    return not stack


def test_chars_grammar_corpus_has_long_range_structure():
    ds = load_dataset({"name": "chars", "n": 200, "T": 40}, seed=0)
    assert ds.X.shape == (200, 40) and ds.X.dtype == np.int64 and ds.n_classes == len(ds.vocab)
    assert np.array_equal(ds.y[:, :-1], ds.X[:, 1:])  # next character
    assert np.array_equal(ds.X[1:, 0], ds.y[:-1, -1])  # consecutive windows
    text = "".join(ds.vocab[i] for i in ds.X.ravel())
    sentences = [s.strip() for s in text.replace("?", "?|").replace(".", ".|").split("|")]
    full = [s for s in sentences[1:-1] if s]
    assert len(full) > 50
    for s in full:  # questions start with "does" and end with "?"; brackets match
        assert s.startswith("does ") == s.endswith("?"), s
        assert _balanced(s, ["()", "[]"]), s
    assert any("(" in s for s in full) and any("[" in s for s in full)
    assert ds.vocab == sorted(ds.vocab) and len(ds.vocab) == len(set(ds.vocab))


def test_chars_one_hot_and_brackets_corpus():
    ids = load_dataset({"name": "chars", "corpus": "brackets", "n": 30, "T": 50}, seed=4)
    oh = load_dataset(
        {"name": "chars", "corpus": "brackets", "n": 30, "T": 50, "one_hot": True}, seed=4
    )
    V = len(ids.vocab)
    assert oh.X.shape == (30, 50, V) and oh.X.dtype == np.float32
    assert np.array_equal(oh.X.argmax(-1), ids.X) and np.all(oh.X.sum(-1) == 1)
    text = "".join(ids.vocab[i] for i in ids.X.ravel())
    exprs = text.split(" ")[1:-1]
    assert len(exprs) > 20 and all(_balanced(e, ["()", "[]", "{}", "<>"]) for e in exprs)


def test_chars_hello_is_the_lectures_example():
    ds = load_dataset({"name": "chars", "corpus": "hello", "one_hot": True})
    assert ds.vocab == ["h", "e", "l", "o"]
    assert ds.X.shape == (1, 4, 4)
    assert np.array_equal(ds.X[0], np.eye(4, dtype=np.float32)[[0, 1, 2, 2]])  # h e l l
    assert ds.y.tolist() == [[1, 2, 2, 3]]  # e l l o
    assert len(load_dataset({"name": "chars", "corpus": "hello", "n": 8})) == 8


def test_tagging_last_token_needs_the_future():
    ds = load_dataset({"name": "tagging", "n": 400, "T": 12}, seed=0)
    assert ds.X.shape == (400, 12, 2) and ds.y.shape == (400, 12) and ds.n_classes == 2
    ids = ds.X.argmax(-1)
    assert np.array_equal(ds.y, (ids == ids[:, -1:]).astype(np.int64))
    # seen from the past only, the tag is a coin flip: half the tags are 1 at every early step
    assert abs(ds.y[:, :-1].mean() - 0.5) < 0.05
    ids_only = load_dataset(
        {"name": "tagging", "n": 400, "T": 12, "one_hot": False, "symbols": 5}, seed=0
    )
    assert ids_only.X.shape == (400, 12) and ids_only.X.max() == 4 and ids_only.vocab[-1] == "e"


def test_bracket_tags_count_only_pairs_that_close():
    o, c, a = 0, 1, 2
    seqs = np.array([[o, a, c, a], [o, a, a, a], [c, o, c, o], [o, o, c, c]])
    assert bracket_tags(seqs, o, c).tolist() == [
        [1, 1, 1, 0],
        [0, 0, 0, 0],
        [0, 1, 1, 0],
        [1, 1, 1, 1],
    ]
    ds = load_dataset({"name": "tagging", "rule": "brackets", "n": 300}, seed=0)
    assert ds.vocab == ["(", ")", "a", "b"] and 0.2 < ds.meta["positive_rate"] < 0.8
    assert np.array_equal(ds.y, bracket_tags(ds.X.argmax(-1), 0, 1))


# ------------------------------------------------------------------------------ Dataset, split


def test_dataset_converts_dtypes_and_checks_lengths():
    ds = Dataset(np.zeros((5, 3)), np.arange(5) % 2, "classification")
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64 and ds.n_classes == 2
    assert ds.input_shape == (3,) and ds.target_shape == ()
    reg = Dataset(np.zeros((5, 3)), np.zeros((5, 1)), "regression")
    assert reg.y.dtype == np.float32
    with pytest.raises(DataError, match="5 samples but y has 4"):
        Dataset(np.zeros((5, 3)), np.zeros(4, int), "classification")
    with pytest.raises(DataError, match="class id"):
        Dataset(np.zeros((2, 3)), np.array([0, 3]), "classification", n_classes=2)
    with pytest.raises(DataError, match="task"):
        Dataset(np.zeros((2, 3)), np.zeros(2), "clustering")
    with pytest.raises(DataError, match="integer class ids"):
        Dataset(np.zeros((2, 3)), np.zeros(2), "classification")


def test_split_is_a_seeded_partition():
    ds = load_dataset({"name": "moons", "n": 200})
    tr, va = split_indices(ds, 0.25, seed=0)
    assert len(va) == 50 and len(tr) == 150
    assert sorted(np.r_[tr, va].tolist()) == list(range(200))
    tr2, va2 = split_indices(ds, 0.25, seed=0)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    _, va3 = split_indices(ds, 0.25, seed=1)
    assert not np.array_equal(np.sort(va), np.sort(va3))
    Xtr, ytr, Xva, yva = split(ds, 0.25, seed=0)
    assert np.array_equal(Xtr, ds.X[tr]) and np.array_equal(yva, ds.y[va])
    assert Xtr.dtype == np.float32 and yva.dtype == np.int64


def test_split_stratifies_classes():
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    ds = Dataset(np.arange(100.0)[:, None], y, "classification")
    for seed in range(5):
        _, _, _, yva = split(ds, 0.2, seed=seed)
        assert len(yva) == 20 and int(yva.sum()) == 2
    digits = load_dataset("digits")
    _, ytr, _, yva = split(digits, 0.2, seed=0)
    assert np.abs(np.bincount(yva) / len(yva) - np.bincount(ytr) / len(ytr)).max() < 0.01


def test_split_edges():
    ds = load_dataset({"name": "adding", "n": 10, "T": 4})
    Xtr, ytr, Xva, yva = split(ds, 0.0)
    assert Xtr.shape == (10, 4, 2) and Xva.shape == (0, 4, 2) and yva.shape == (0, 1)
    with pytest.raises(DataError, match="none to train"):
        split(load_dataset("xor"), 0.9)
    for bad in (1.0, -0.1, "0.2", None):
        with pytest.raises(ConfigError):
            split(ds, bad)


def test_chars_corpus_is_long_enough_for_every_seed():
    # The join of the generated parts has one separator fewer than parts: seeds where the
    # last part ended exactly at the limit used to come up one character short.
    for seed in range(12):
        for corpus in ("brackets", "grammar"):
            ds = load_dataset({"name": "chars", "corpus": corpus, "one_hot": True}, seed=seed)
            assert ds.X.shape[0] == 1000
