"""The PyTorch export's data: each built-in and file data set's standalone loader gives the
engine's arrays, and the script splits and shuffles as engine.Trainer does.

The standalone-loader checks do not need torch; the split check skips without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_torch_support import (
    autoencoder,
    exported,
    graph,
)

import engine
from engine.data import DATASET_OPTIONS, load_dataset
from engine.data.base import check_options
from engine.export import standalone_data

# --- the data -------------------------------------------------------------------------------------
BUILTIN_CASES = [
    ("digits", {}),
    ("digits", {"resize": [32, 32]}),
    ("digits", {"resize": [28, 28], "pad": [32, 32], "flatten": True}),
    ("xor", {}),
    ("xor", {"targets": "float", "repeat": 5, "noise": 0.1}),
    ("moons", {}),
    ("circles", {"n": 101, "noise": 0.2}),
    ("spiral", {"arms": 4}),
    ("adding", {"T": 10, "n": 100}),
    ("copy", {"n": 50}),
    ("sine", {"n": 40}),
    ("timed_spikes", {"n": 30, "cues": 2, "min_interval": 3, "max_interval": 9, "T": 30}),
    ("reversal", {"n": 30, "length": 5}),
    ("sorting", {"n": 30, "length": 30}),
    ("dates", {"n": 40}),
    ("digit_strips", {"n": 20, "min_digits": 1}),
    ("sine", {"n": 40, "many_to_many": True}),
    ("reviews", {"n": 60, "T": 8, "distractor": 0.7}),
    ("chars", {"n": 30}),
    ("chars", {"corpus": "brackets", "one_hot": True, "n": 20, "T": 10}),
    ("chars", {"corpus": "hello", "n": 3}),
    ("tagging", {"n": 30}),
    ("tagging", {"rule": "brackets", "one_hot": False, "n": 30}),
]


def standalone(name: str, spec: dict, seed: int):
    cfg = check_options(name, {"name": name, **spec}, DATASET_OPTIONS[name])
    fn, takes_rng, _ = standalone_data.MAKERS[name]
    f = getattr(standalone_data, fn)
    return f(np.random.default_rng(seed), **cfg) if takes_rng else f(**cfg)


def assert_same_data(got, ds):
    X, y = got
    assert X.dtype == ds.X.dtype and y.dtype == ds.y.dtype
    np.testing.assert_array_equal(X, ds.X)
    np.testing.assert_array_equal(y, ds.y)


@pytest.mark.parametrize("seed", [0, 5])
@pytest.mark.parametrize("name,spec", BUILTIN_CASES)
def test_standalone_data_equals_the_engines(name, spec, seed):
    assert_same_data(standalone(name, spec, seed), load_dataset({"name": name, **spec}, seed))


def test_every_data_set_has_a_standalone_loader():
    from engine.data import DATASETS

    assert set(DATASETS) == set(standalone_data.MAKERS)


def write_data_files(tmp_path: Path) -> list[dict]:
    """Small files of every user format, and their specs."""
    import gzip

    from PIL import Image

    rng = np.random.default_rng(0)
    csv1 = tmp_path / "a.csv"
    csv1.write_text("f1,f2,species\n1,2.5,cat\n3,4,dog\n5,6.5,cat\n0,1,bird\n", encoding="utf-8")
    csv2 = tmp_path / "b.csv"
    csv2.write_text("\ufeff0.5;1;7.25\n2;3;1.5\n4;5;2\n", encoding="utf-8")
    csv3 = tmp_path / "c.csv"
    csv3.write_text("a|b|c\n1|2|3\n4|5.5|6\n7|8|9\n1|0|2\n", encoding="utf-8")
    npz1 = tmp_path / "a.npz"
    np.savez(npz1, X=rng.normal(size=(6, 3)), y=np.array([3, 1, 1, 2, 0, 3]))
    npz2 = tmp_path / "b.npz"
    np.savez(npz2, feats=rng.integers(0, 9, (5, 4)), seq=rng.integers(0, 3, (5, 4)))
    imgs, labs = tmp_path / "img.idx.gz", tmp_path / "lab.idx"
    pix = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    with gzip.open(imgs, "wb") as f:
        f.write(b"\0\0\x08\x03" + np.array([4, 5, 6], ">u4").tobytes() + pix.tobytes())
    labs.write_bytes(b"\0\0\x08\x01" + np.array([4], ">u4").tobytes() + bytes([3, 1, 4, 1]))
    txt = tmp_path / "t.txt"
    txt.write_text("hello world, hello BlockProp! ünïcödé\n" * 3, encoding="utf-8")
    folder = tmp_path / "imgs"
    for cls, n in (("b", 2), ("a", 3)):
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
            Image.fromarray(arr).save(folder / cls / f"{i}.png")
    return [
        {"name": "csv", "path": str(csv1)},
        {"name": "csv", "path": str(csv3), "label": "a", "standardize": True},
        {"name": "csv", "path": str(csv3), "label": "c", "task": "classification"},
        {"name": "csv", "path": str(csv2), "task": "regression"},
        {"name": "csv", "path": str(csv2), "label": 0},
        {"name": "npz", "path": str(npz1)},
        {"name": "npz", "path": str(npz2), "x_key": "feats", "y_key": "seq", "ids": True},
        {"name": "idx", "images": str(imgs), "labels": str(labs)},
        {"name": "idx", "images": str(imgs), "labels": str(labs), "n": 3, "flatten": True},
        {"name": "text", "path": str(txt), "T": 8},
        {"name": "text", "path": str(txt), "T": 5, "n": 7, "one_hot": True},
        {"name": "image_folder", "path": str(folder)},
        {"name": "image_folder", "path": str(folder), "size": [4, 5], "grayscale": False},
    ]


def test_standalone_file_loaders_equal_the_engines(tmp_path):
    for spec in write_data_files(tmp_path):
        name = spec["name"]
        opts = {k: v for k, v in spec.items() if k != "name"}
        assert_same_data(standalone(name, opts, 3), load_dataset(spec, 3))


def test_script_loads_the_data_and_splits_it_as_the_trainer(tmp_path):
    for name, extra in (
        ("mlp", {}),
        ("seq2", {}),
        ("mlp", {"val_split": 0.0}),
        ("seq", {"val_split": 0.35, "seed": 4}),
        ("mlp", {"test_split": 0.2}),  # engine.splits: the test share held out first
        ("seq", {"test_split": 0.3, "val_split": 0.1, "seed": 2}),
        ("autoencoder", {}),
    ):
        g = autoencoder() if name == "autoencoder" else graph(name, **extra)
        mod = exported(g, tmp_path, name=f"split_{name}")
        X, y = mod.load_data()
        trainer = engine.Trainer.from_graph(g)
        (Xtr, ytr), (Xva, yva), rng = mod.split(X, y)
        np.testing.assert_array_equal(Xtr, trainer.train_data[0])
        np.testing.assert_array_equal(mod.targets(ytr), trainer.train_data[1])
        np.testing.assert_array_equal(Xva, trainer.val_data[0])
        np.testing.assert_array_equal(mod.targets(yva), trainer.val_data[1])
        # the shuffling stream too: the same first epoch order
        np.testing.assert_array_equal(rng.permutation(len(Xtr)), trainer._rng.permutation(len(Xtr)))
