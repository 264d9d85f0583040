"""The user's data files: round trips from files written here, and clear errors for bad ones
(random or damaged files: test_data_files_fuzz.py).
"""

import gzip
import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.data import base, load_dataset
from engine.errors import BlockPropError, ConfigError, DataError

Image = pytest.importorskip("PIL.Image")


def write_idx(path, arr, gz=False, code=None):
    codes = {
        np.uint8: 0x08,
        np.int8: 0x09,
        np.int16: 0x0B,
        np.int32: 0x0C,
        np.float32: 0x0D,
        np.float64: 0x0E,
    }
    code = codes[arr.dtype.type] if code is None else code
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def write_csv(path, text, encoding="utf-8"):
    Path(path).write_bytes(text.encode(encoding))
    return str(path)


def loads_or_data_error(spec):
    """The property every loader must have: a Dataset, or a BlockPropError (never another)."""
    try:
        ds = load_dataset(spec, seed=0)
    except BlockPropError as e:
        assert str(e)
        return None
    assert len(ds.X) == len(ds.y) >= 1
    assert ds.X.dtype in (np.float32, np.int64)
    assert ds.X.dtype == np.int64 or np.all(np.isfinite(ds.X))
    return ds


# ------------------------------------------------------------------------------ CSV


def test_csv_round_trip_with_header_and_text_labels(tmp_path):
    p = write_csv(
        tmp_path / "iris.csv",
        "sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n"
        "6.3,6.0,virginica\n4.9,1.5,setosa\n",
    )
    ds = load_dataset({"name": "csv", "path": p})
    assert ds.X.dtype == np.float32
    np.testing.assert_allclose(ds.X, [[5.1, 1.4], [7.0, 4.7], [6.3, 6.0], [4.9, 1.5]], rtol=1e-6)
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y.tolist() == [0, 1, 2, 0] and ds.n_classes == 3 and ds.task == "classification"
    assert ds.meta["features"] == ["sepal", "petal"] and ds.meta["label"] == "species"
    with pytest.raises(DataError, match="line 2, column 'species': 'setosa' is not a number"):
        load_dataset({"name": "csv", "path": p, "label": "sepal"})
    q = write_csv(tmp_path / "num.csv", "sepal,petal,width\n5.1,1.4,2\n7.0,4.7,3\n")
    by_name = load_dataset({"name": "csv", "path": q, "label": "sepal", "task": "regression"})
    assert by_name.task == "regression" and by_name.y.shape == (2, 1)
    assert by_name.y[:, 0].tolist() == pytest.approx([5.1, 7.0])
    np.testing.assert_allclose(by_name.X, [[1.4, 2], [4.7, 3]], rtol=1e-6)


def test_csv_no_header_label_index_delimiters_and_bom(tmp_path):
    p = write_csv(tmp_path / "a.csv", "\ufeff1;0.5;2\n0;1.5;3\n\n1;2.5;4\n")
    ds = load_dataset({"name": "csv", "path": p, "label": 0})
    assert ds.meta["columns"] is None and ds.X.tolist() == [[0.5, 2], [1.5, 3], [2.5, 4]]
    assert ds.y.tolist() == [1, 0, 1] and ds.n_classes == 2
    last = load_dataset({"name": "csv", "path": p})  # default: last column, ids 2, 3, 4
    assert last.y.tolist() == [2, 3, 4] and last.n_classes == 5
    tabs = write_csv(tmp_path / "t.tsv", "x\ty\tlabel\n1\t2\t-1\n3\t4\t1\n")
    ds = load_dataset({"name": "csv", "path": tabs})
    assert ds.class_names == ["-1", "1"] and ds.y.tolist() == [0, 1]  # lecture's -1/+1 labels
    quoted = write_csv(tmp_path / "q.csv", 'a,b,c\n1,2,"big, red"\n3,4,"small"\n')
    assert load_dataset({"name": "csv", "path": quoted}).class_names == ["big, red", "small"]


def test_csv_header_guess_on_a_single_row(tmp_path):
    one = load_dataset({"name": "csv", "path": write_csv(tmp_path / "one.csv", "1,2,cat\n")})
    assert one.X.tolist() == [[1, 2]] and one.class_names == ["cat"]
    with pytest.raises(DataError, match="header row but no data rows"):
        load_dataset({"name": "csv", "path": write_csv(tmp_path / "h.csv", "a,b,label\n")})


def test_csv_regression_and_standardize(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(5, 3, (50, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.25
    p = tmp_path / "reg.csv"
    np.savetxt(p, np.c_[X, y], delimiter=",", header="a,b,c,target", comments="")
    ds = load_dataset({"name": "csv", "path": str(p)})  # non-whole labels: regression
    assert ds.task == "regression" and ds.y.shape == (50, 1)
    np.testing.assert_allclose(ds.y[:, 0], y, rtol=1e-5)
    z = load_dataset({"name": "csv", "path": str(p), "standardize": True})
    np.testing.assert_allclose(z.X.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.X.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(z.meta["mean"], X.mean(0))
    assert "z-score" in z.normalisation and "none" in ds.normalisation


@pytest.mark.parametrize(
    "text, spec, words",
    [
        ("a,b,y\n1,2,0\n3,nan,1\n", {}, ["line 3", "'b'", "not a finite number"]),
        ("a,b,y\n1,2,0\n3,,1\n", {}, ["line 3", "empty"]),
        ("a,b,y\n1,2,0\n3,x,1\n", {}, ["line 3", "'x' is not a number"]),
        ("a,b,y\n1,2,0\n3,1e39,1\n", {}, ["feature table", "too large for float32"]),
        ("a,b,y\n1,2,0.5\n3,4,-1e39\n", {}, ["regression targets", "too large"]),
        ("1,2,0\n3,4\n", {}, ["line 2 has 2 fields", "3"]),
        ("a,b,y\n", {}, ["no data rows"]),
        ("\n\n  \n", {}, ["no rows"]),
        ("1\n2\n", {}, ["feature column"]),
        ("1,2,0\n3,4,1\n", {"label": "y"}, ["no header"]),
        ("a,b,y\n1,2,0\n3,4,1\n", {"label": "z"}, ["no column 'z'", "a, b, y"]),
        ("a,b,y\n1,2,0\n3,4,1\n", {"label": 3}, ["index 3", "3 columns"]),
        ("a,b,y\n1,2,0.5\n3,4,1\n", {"task": "classification"}, ["whole-number", "0.5"]),
        ("a,b,y\n1,2,cat\n3,4,dog\n", {"task": "regression"}, ["text", "regression"]),
        ("a,b,y\n1,2,\n3,4,dog\n", {}, ["line 2", "label is empty"]),
        ('a,b,y\n1,2,"open\n', {}, ["not valid CSV"]),
    ],
)
def test_csv_errors_name_the_file_and_the_problem(tmp_path, text, spec, words):
    p = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as e:
        load_dataset({"name": "csv", "path": p, **spec})
    msg = str(e.value)
    assert msg.startswith(p) and e.value.file == p
    for w in words:
        assert w in msg, msg


def test_csv_in_utf16_with_its_byte_order_mark_is_read(tmp_path):
    p = write_csv(tmp_path / "excel.txt", "a\tb\tkind\n1\t2\tcafé\n3\t4\tthé\n", "utf-16")
    assert Path(p).read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    ds = load_dataset({"name": "csv", "path": p})
    assert ds.class_names == ["café", "thé"] and ds.X.tolist() == [[1, 2], [3, 4]]


def test_missing_empty_non_utf8_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="not found"):
        load_dataset({"name": "csv", "path": str(tmp_path / "nope.csv")})
    with pytest.raises(DataError, match="not a CSV file"):
        load_dataset({"name": "csv", "path": str(tmp_path)})
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_dataset({"name": "csv", "path": str(tmp_path / "empty.csv")})
    p = write_csv(tmp_path / "latin.csv", "a,b,y\n1,2,caf\xe9\n", encoding="latin-1")
    with pytest.raises(DataError, match="not UTF-8.*line 2"):
        load_dataset({"name": "csv", "path": p})
    big = write_csv(tmp_path / "big.csv", "1,2,0\n" * 100)
    monkeypatch.setattr(base, "MAX_TEXT_BYTES", 100)
    with pytest.raises(DataError, match="more than the limit"):
        load_dataset({"name": "csv", "path": big})


def test_user_file_options_are_checked():
    with pytest.raises(ConfigError, match="needs the option 'path'"):
        load_dataset({"name": "npz"})
    with pytest.raises(ConfigError, match="'path' must be a file path"):
        load_dataset({"name": "text", "path": 3})
    with pytest.raises(ConfigError, match="column name or index"):
        load_dataset({"name": "csv", "path": "x.csv", "label": 1.5})
    for bad in (",,", '"', "\n", ""):
        with pytest.raises(ConfigError, match="'delimiter' must be one character"):
            load_dataset({"name": "csv", "path": "x.csv", "delimiter": bad})
    with pytest.raises(ConfigError, match="has no option 'sep'.*delimiter"):
        load_dataset({"name": "csv", "path": "x.csv", "sep": ";"})


# ------------------------------------------------------------------------------ NPZ


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((20, 1, 8, 8))  # float64 on disk -> float32 in training
    y = rng.integers(0, 3, 20)
    p = tmp_path / "d.npz"
    np.savez_compressed(p, X=X, y=y)
    ds = load_dataset({"name": "npz", "path": str(p)})
    assert ds.X.dtype == np.float32 and ds.X.shape == (20, 1, 8, 8)
    np.testing.assert_allclose(ds.X, X.astype(np.float32))
    assert np.array_equal(ds.y, y) and ds.task == "classification" and ds.n_classes == 3
    np.savez(p, features=X[:, 0, 0], labels=np.array(["cat", "dog"] * 10))
    ds = load_dataset({"name": "npz", "path": str(p), "x_key": "features", "y_key": "labels"})
    assert ds.X.shape == (20, 8) and ds.class_names == ["cat", "dog"]
    np.savez(p, X=X[:, 0, 0], y=rng.normal(size=20))
    assert load_dataset({"name": "npz", "path": str(p)}).y.shape == (20, 1)
    np.savez(p, X=np.asfortranarray(X[:, 0]), y=X[:, 0].reshape(20, 64).astype(">f8"))
    ds = load_dataset({"name": "npz", "path": str(p)})  # Fortran order, big-endian targets
    np.testing.assert_allclose(ds.X, X[:, 0].astype(np.float32))
    assert ds.task == "regression" and ds.y.shape == (20, 64)
    ids = rng.integers(0, 50, (20, 12))
    np.savez(p, X=ids, y=rng.integers(0, 50, (20, 12)))
    ds = load_dataset({"name": "npz", "path": str(p), "ids": True})
    assert ds.X.dtype == np.int64 and ds.task == "sequence_classification"


def _npy_bytes(header: dict, payload: bytes, version=(1, 0)) -> bytes:
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(text)) + text + payload


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_npz_refuses_pickles_and_lies(tmp_path):
    p = tmp_path / "bad.npz"
    good_y = np.arange(4).tobytes()
    y_member = _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (4,)}, good_y)

    np.savez(p, X=np.array([{"a": 1}, None, 3, "x"], dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="Python objects"):
        load_dataset({"name": "npz", "path": str(p)})
    huge = _npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}, b"")
    p.write_bytes(_zip({"X.npy": huge, "y.npy": y_member}))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset({"name": "npz", "path": str(p)})
    neg = _npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (-4, 2)}, b"")
    p.write_bytes(_zip({"X.npy": neg, "y.npy": y_member}))
    with pytest.raises(DataError, match="negative"):
        load_dataset({"name": "npz", "path": str(p)})
    p.write_bytes(pickle.dumps({"X": [1, 2], "y": [0, 1]}))
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset({"name": "npz", "path": str(p)})
    np.save(tmp_path / "plain.npy", np.arange(4))
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset({"name": "npz", "path": str(tmp_path / "plain.npy")})
    cases = [
        ({"X": np.zeros((4, 2)), "labels": np.arange(4)}, "no array 'y'.*X, labels"),
        ({"X": np.zeros((4, 2)), "y": np.arange(3)}, "4 samples but y has 3"),
        ({"X": np.zeros((4, 2), complex), "y": np.arange(4)}, "numeric"),
        ({"X": np.array([[1.0, np.nan]] * 4), "y": np.arange(4)}, "X contains nan"),
        ({"X": np.full((4, 2), 1e300), "y": np.arange(4)}, "X has values too large"),
        ({"X": np.zeros((4, 2)), "y": np.array([0, 1, np.inf, 1])}, "finite"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0, int)}, "no samples"),
        ({"X": np.float64(3), "y": np.float64(1)}, "sample axis"),
    ]
    for arrays, match in cases:
        np.savez(p, **arrays)
        with pytest.raises(DataError, match=match):
            load_dataset({"name": "npz", "path": str(p)})
    full = np.savez_compressed(p, X=np.zeros((400, 100)), y=np.arange(400))
    assert full is None
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=str(p)):
        load_dataset({"name": "npz", "path": str(p)})


def test_npz_element_limit(tmp_path, monkeypatch):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.zeros((100, 10)), y=np.arange(100))
    monkeypatch.setattr(base, "MAX_ELEMENTS", 500)
    with pytest.raises(DataError, match="limit"):
        load_dataset({"name": "npz", "path": str(p)})


# ------------------------------------------------------------------------------ IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_like_mnist(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    ext = ".gz" if gz else ""
    ip = write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", imgs, gz)
    lp = write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", labels, gz)
    ds = load_dataset({"name": "idx", "images": ip, "labels": lp})
    assert ds.X.shape == (30, 1, 28, 28) and ds.X.dtype == np.float32
    np.testing.assert_allclose(ds.X[:, 0] * 255, imgs)
    assert np.array_equal(ds.y, labels) and ds.y.dtype == np.int64
    assert "255" in ds.normalisation
    ds = load_dataset(
        {"name": "idx", "images": ip, "labels": lp, "n": 10, "flatten": True, "normalize": False}
    )
    assert ds.X.shape == (10, 784) and ds.X.max() > 1


def test_idx_other_types_are_big_endian(tmp_path):
    feats = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    ip = write_idx(tmp_path / "x.idx", feats)
    lp = write_idx(tmp_path / "y.idx", np.array([3000, 5, 3000, 7], dtype=np.int32))
    ds = load_dataset({"name": "idx", "images": ip, "labels": lp})
    np.testing.assert_array_equal(ds.X, feats)
    assert ds.class_names == ["5", "7", "3000"] and ds.y.tolist() == [2, 0, 2, 1]
    lp = write_idx(tmp_path / "y.idx", np.array([9, 5, 9, 7], dtype=np.int16))
    ds = load_dataset({"name": "idx", "images": ip, "labels": lp})
    assert ds.n_classes == 10 and ds.y.tolist() == [9, 5, 9, 7]  # small ids are used as is


def test_idx_errors(tmp_path):
    labels = write_idx(tmp_path / "l", np.zeros(5, np.uint8))
    imgs = np.zeros((5, 4, 4), np.uint8)

    def err(data: bytes, gz=False, match=""):
        p = tmp_path / ("i.gz" if gz else "i")
        p.write_bytes(gzip.compress(data) if gz else data)
        with pytest.raises(DataError, match=match) as e:
            load_dataset({"name": "idx", "images": str(p), "labels": labels})
        assert str(p) in str(e.value)

    good = Path(write_idx(tmp_path / "ok", imgs)).read_bytes()
    err(b"\x00\x00", match="too short")
    err(b"PK\x03\x04" + good[4:], match="magic number 504b0304")
    err(b"\x00\x00\x07\x03" + good[4:], match="magic number")
    err(good[:10], match="truncated inside its header")
    err(good[:-1], match=r"\[5, 4, 4\].*80 bytes.*holds 79")
    err(good + b"\x00", match="holds 81")
    err(good[:-1], gz=True, match="holds only 79")
    err(good + b"\x00", gz=True, match=r"holds more")
    huge = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**20)
    err(huge, match="header claims")
    err(huge, gz=True, match="limit")
    p = tmp_path / "trunc.gz"
    p.write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(DataError, match="cannot be read"):
        load_dataset({"name": "idx", "images": str(p), "labels": labels})
    few = write_idx(tmp_path / "few", np.zeros(4, np.uint8))
    ip = write_idx(tmp_path / "ok", imgs)
    with pytest.raises(DataError, match="4 labels but .* 5 images"):
        load_dataset({"name": "idx", "images": ip, "labels": few})
    with pytest.raises(DataError, match="one integer per sample"):
        load_dataset({"name": "idx", "images": ip, "labels": ip})
    with pytest.raises(DataError, match=r"\(N, H, W\)"):
        load_dataset({"name": "idx", "images": labels, "labels": labels})


# ------------------------------------------------------------------------------ image folder


def make_folder(root: Path, classes: dict, size=(6, 5), mode="L", fmt="PNG", ext=".png"):
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (size[0], size[1], 3) if mode == "RGB" else size
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / name / f"{i}{ext}", fmt)
    return str(root)


def test_image_folder_round_trip(tmp_path):
    root = make_folder(tmp_path / "imgs", {"cat": 3, "dog": 2})
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset({"name": "image_folder", "path": root})
    assert ds.X.shape == (5, 1, 6, 5) and ds.X.dtype == np.float32
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [0, 0, 0, 1, 1]
    first = np.asarray(Image.open(tmp_path / "imgs" / "cat" / "0.png"))
    np.testing.assert_allclose(ds.X[0, 0] * 255, first, atol=1e-4)
    rgb = load_dataset({"name": "image_folder", "path": root, "grayscale": False, "size": [12, 10]})
    assert rgb.X.shape == (5, 3, 12, 10) and 0 <= rgb.X.min() and rgb.X.max() <= 1
    np.testing.assert_allclose(rgb.X[:, 0], rgb.X[:, 1])  # grey PNG: equal channels
    assert "resized to 12x10" in rgb.normalisation


def test_image_folder_formats_and_16_bit(tmp_path):
    root = tmp_path / "mixed"
    make_folder(root / "a", {"x": 2}, mode="RGB", fmt="JPEG", ext=".jpg")
    make_folder(root / "b", {"y": 2}, fmt="PPM", ext=".pgm")
    for sub in ("a", "b"):
        for f in (root / sub).glob("*/*"):
            f.rename(root / sub / f.name)
        next(p for p in (root / sub).iterdir() if p.is_dir()).rmdir()
    deep = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(deep).save(root / "b" / "deep.png")
    ds = load_dataset({"name": "image_folder", "path": str(root), "size": [2, 2]})
    assert ds.X.shape == (5, 1, 2, 2) and ds.y.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_allclose(ds.X[4, 0], deep / 65535, atol=1e-6)  # b/: 0, 1, deep


def test_image_folder_errors(tmp_path):
    one = make_folder(tmp_path / "one", {"cat": 2})
    with pytest.raises(DataError, match="only the class folder 'cat'"):
        load_dataset({"name": "image_folder", "path": one})
    with pytest.raises(DataError, match="not a folder"):
        load_dataset({"name": "image_folder", "path": str(tmp_path / "missing")})
    root = make_folder(tmp_path / "two", {"a": 2, "b": 1})
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "two" / "b" / "big.png")
    with pytest.raises(DataError, match="is 9x9 but .* is 5x6.*'size'"):
        load_dataset({"name": "image_folder", "path": root})
    assert len(load_dataset({"name": "image_folder", "path": root, "size": [4, 4]})) == 4
    (tmp_path / "two" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(DataError, match="broken.png: cannot be decoded"):
        load_dataset({"name": "image_folder", "path": root, "size": [4, 4]})
    (tmp_path / "two" / "c").mkdir()
    with pytest.raises(DataError, match="has no images"):
        load_dataset({"name": "image_folder", "path": root, "size": [4, 4]})


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 9))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("width, height", [(10_000, 8_000), (30_000, 30_000)])
def test_image_folder_refuses_decompression_bombs(tmp_path, width, height):
    root = make_folder(tmp_path / "bomb", {"a": 1, "b": 1})
    (tmp_path / "bomb" / "b" / "huge.png").write_bytes(_png_claiming(width, height))
    with pytest.raises(DataError, match="huge.png: (is 10000x8000 pixels|cannot be decoded)"):
        load_dataset({"name": "image_folder", "path": root})


# ------------------------------------------------------------------------------ text


def test_text_round_trip(tmp_path):
    p = tmp_path / "poem.txt"
    p.write_text("To be, or not to be: that is the question. Über alles.\n", encoding="utf-8")
    ds = load_dataset({"name": "text", "path": str(p), "T": 8})
    text = p.read_text(encoding="utf-8")
    assert ds.vocab == sorted(set(text)) and ds.n_classes == len(ds.vocab)
    assert ds.X.shape == ((len(text) - 1) // 8, 8) and ds.X.dtype == np.int64
    assert "".join(ds.vocab[i] for i in ds.X[0]) == text[:8]
    assert "".join(ds.vocab[i] for i in ds.y[0]) == text[1:9]
    rnd = load_dataset({"name": "text", "path": str(p), "T": 8, "n": 40, "one_hot": True}, seed=1)
    assert rnd.X.shape == (40, 8, len(ds.vocab)) and rnd.X.dtype == np.float32
    for xs, ys in zip(rnd.X.argmax(-1), rnd.y, strict=True):
        s = "".join(ds.vocab[i] for i in xs)
        assert s in text and text[text.index(s) + 1 : text.index(s) + 9] == "".join(
            ds.vocab[i] for i in ys
        )


def test_text_errors(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_dataset({"name": "text", "path": str(p)})
    p.write_bytes("\ufeff".encode())
    with pytest.raises(DataError, match="no text"):
        load_dataset({"name": "text", "path": str(p)})
    p.write_bytes(b"short")
    with pytest.raises(DataError, match="5 characters.*T = 64"):
        load_dataset({"name": "text", "path": str(p)})
    p.write_bytes(b"hello \xff\xfe world, long enough " * 4)
    with pytest.raises(DataError, match="not UTF-8.*offset 6"):
        load_dataset({"name": "text", "path": str(p), "T": 4})
