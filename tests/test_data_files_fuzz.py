"""Property tests of the user's data files: random or damaged CSV, NPZ, IDX, image-folder and
text files either load or raise a BlockPropError, nothing else.
"""

import gzip
import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_files import _npy_bytes, _zip, loads_or_data_error

Image = pytest.importorskip("PIL.Image")

# derandomize: the same examples every run (CI stays reproducible); no example database on disk
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """fresh(name) -> a path in a new empty folder (module scope: hypothesis reruns the test)."""
    root, counter = tmp_path_factory.mktemp("fuzz"), itertools.count()

    def make(name: str) -> Path:
        d = root / str(next(counter))
        d.mkdir()
        return d / name

    return make


def mutate(data: st.DataObject, raw: bytes) -> bytes:
    """Damage a file the ways files get damaged: cut short, bytes flipped, inserted, emptied."""
    how = data.draw(
        st.sampled_from(
            ["keep", "keep", "keep", "truncate", "flip", "flip", "insert", "append", "empty"]
        )
    )
    if how == "truncate" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if how == "flip" and raw:
        b = bytearray(raw)
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            b[i] = data.draw(st.integers(0, 255))
        return bytes(b)
    if how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        return raw[:i] + data.draw(st.binary(min_size=1, max_size=16)) + raw[i:]
    if how == "append":
        return raw + data.draw(st.binary(min_size=1, max_size=64))
    if how == "empty":
        return b""
    return raw


CELL = st.one_of(
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.sampled_from(
        [
            "",
            "nan",
            "inf",
            "-",
            "cat",
            "dog",
            '"',
            '"a,b"',
            "1e999",
            "0x10",
            " 3 ",
            "1_0",
            "\x00",
            "é",
            "1,5",
            "\r",
        ]
    ),
    st.text(max_size=4),
)


@FUZZ
@given(data=st.data())
def test_fuzz_csv_loads_or_raises_data_error(fresh, data):
    if data.draw(st.booleans()):  # random cells
        rows = data.draw(st.lists(st.lists(CELL, max_size=5), max_size=7))
    else:  # a good table with a few bad cells, perhaps a short row or a header
        width = data.draw(st.integers(1, 4))
        number = st.floats(-1e6, 1e6, width=32).map(lambda v: f"{v:g}")
        label = st.one_of(st.integers(0, 3).map(str), st.sampled_from(["a", "b", "0.5", "-1"]))
        rows = [
            data.draw(st.lists(number, min_size=width, max_size=width)) + [data.draw(label)]
            for _ in range(data.draw(st.integers(1, 6)))
        ]
        if data.draw(st.booleans()):
            rows.insert(0, [f"c{j}" for j in range(width)] + ["y"])
        for _ in range(data.draw(st.integers(0, 2))):
            r = data.draw(st.integers(0, len(rows) - 1))
            c = data.draw(st.integers(0, len(rows[r])))
            if data.draw(st.booleans()) and c < len(rows[r]):
                rows[r][c] = data.draw(CELL)
            else:
                rows[r].insert(c, data.draw(CELL))
    delim = data.draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join(delim.join(r) for r in rows)
    enc = data.draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    raw = mutate(data, text.encode(enc, errors="replace"))
    p = fresh("f.csv")
    p.write_bytes(raw)
    spec = {
        "name": "csv",
        "path": str(p),
        "label": data.draw(st.one_of(st.integers(-6, 6), st.sampled_from(["y", "a", ""]))),
        "header": data.draw(st.sampled_from(["auto", True, False])),
        "task": data.draw(st.sampled_from(["auto", "classification", "regression"])),
        "standardize": data.draw(st.booleans()),
    }
    loads_or_data_error(spec)


ARRAY = st.sampled_from(
    [
        np.zeros((4, 3)),
        np.arange(4),
        np.arange(4.0) / 3,
        np.array(["a", "b", "a", "c"]),
        np.array([1, "x", None, 2.5], dtype=object),
        np.zeros((4, 2), complex),
        np.zeros((5, 2)),
        np.array([np.nan, 1, 2, 3]),
        np.zeros((4, 2, 2), np.uint8),
        np.float64(2.0),
        np.zeros(0),
        np.array([b"a", b"b", b"c", b"d"]),
        np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")]),
        np.array([-3, 7, 7, 1000]),
        np.array([True, False, True, True]),
        np.zeros((4, 3), ">f8"),
    ]
)


@FUZZ
@given(data=st.data())
def test_fuzz_npz_loads_or_raises_data_error(fresh, data):
    arrays = {
        k: data.draw(ARRAY)
        for k in data.draw(st.sampled_from([("X", "y"), ("X",), ("y",), ("X", "y", "z")]))
    }
    buf = io.BytesIO()
    if data.draw(st.booleans()):
        np.savez_compressed(buf, **arrays)
        raw = buf.getvalue()
    elif data.draw(st.booleans()):
        np.savez(buf, **arrays)
        raw = buf.getvalue()
    else:  # a hand-made header whose shape claim may be absurd
        dims = data.draw(st.lists(st.one_of(st.integers(0, 6), st.integers(-3, 2**62)), max_size=4))
        descr = data.draw(st.sampled_from(["<f4", "|u1", ">i8", "|O", "<c8", "<U2", "|b1"]))
        payload = data.draw(st.binary(max_size=64))
        header = {"descr": descr, "fortran_order": data.draw(st.booleans()), "shape": tuple(dims)}
        member = _npy_bytes(header, payload, data.draw(st.sampled_from([(1, 0), (2, 0), (3, 0)])))
        raw = _zip(
            {
                "X.npy": member,
                "y.npy": _npy_bytes(
                    {"descr": "<i8", "fortran_order": False, "shape": (4,)}, np.arange(4).tobytes()
                ),
            }
        )
    p = fresh("f.npz")
    p.write_bytes(mutate(data, raw))
    loads_or_data_error(
        {
            "name": "npz",
            "path": str(p),
            "ids": data.draw(st.booleans()),
            "task": data.draw(st.sampled_from(["auto", "regression"])),
        }
    )


@FUZZ
@given(data=st.data())
def test_fuzz_idx_loads_or_raises_data_error(fresh, data):
    def idx_bytes():
        if data.draw(st.booleans()):
            arr = np.arange(data.draw(st.integers(1, 3)) * 4, dtype=np.uint8).reshape(-1, 2, 2)
            return bytes([0, 0, 8, 3]) + struct.pack(">3I", *arr.shape) + arr.tobytes()
        magic = data.draw(st.sampled_from([b"\0\0", b"\0\1", b"\x1f\x8b"]))
        code = data.draw(st.sampled_from([8, 9, 11, 12, 13, 14, 0, 255]))
        dims = data.draw(
            st.lists(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)), max_size=4)
        )
        ndim = data.draw(st.sampled_from([len(dims), len(dims) + 1, 255]))
        head = magic + bytes([code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
        return head + data.draw(st.binary(max_size=96))

    paths = []
    for name in ("images", "labels"):
        raw = mutate(data, idx_bytes())
        if data.draw(st.booleans()):
            raw = mutate(data, gzip.compress(raw))
        p = fresh(name)
        p.write_bytes(raw)
        paths.append(str(p))
    loads_or_data_error(
        {"name": "idx", "images": paths[0], "labels": paths[1], "flatten": data.draw(st.booleans())}
    )


def _image_bytes(fmt: str, mode: str) -> bytes:
    arr = np.random.default_rng(0).integers(
        0, 256, (7, 5, 3) if mode == "RGB" else (7, 5), dtype=np.uint8
    )
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, fmt)
    return buf.getvalue()


IMAGES = {
    (f, m): _image_bytes(f, m)
    for f in ("PNG", "JPEG", "PPM", "BMP", "GIF", "TIFF")
    for m in ("L", "RGB")
}
EXT = {"PNG": ".png", "JPEG": ".jpg", "PPM": ".pgm", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif"}


@FUZZ
@given(data=st.data())
def test_fuzz_image_folder_loads_or_raises_data_error(fresh, data):
    root = fresh("imgs")
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(data.draw(st.integers(1, 3))):
            fmt, mode = data.draw(st.sampled_from(sorted(IMAGES)))
            ext = data.draw(st.sampled_from([EXT[fmt], ".png", ".jpeg"]))
            (root / cls / f"{i}{ext}").write_bytes(mutate(data, IMAGES[fmt, mode]))
    if data.draw(st.integers(0, 9)) == 0:
        (root / "empty").mkdir()
    size = data.draw(st.sampled_from([None, [4, 4], [1, 9]]))
    loads_or_data_error(
        {
            "name": "image_folder",
            "path": str(root),
            "size": size,
            "grayscale": data.draw(st.booleans()),
        }
    )


@FUZZ
@given(data=st.data())
def test_fuzz_text_loads_or_raises_data_error(fresh, data):
    if data.draw(st.booleans()):
        raw = data.draw(st.text(max_size=80)).encode("utf-8")
    else:
        raw = data.draw(st.binary(max_size=80))
    p = fresh("f.txt")
    p.write_bytes(mutate(data, raw))
    ds = loads_or_data_error(
        {
            "name": "text",
            "path": str(p),
            "T": data.draw(st.integers(1, 12)),
            "one_hot": data.draw(st.booleans()),
            "n": data.draw(st.sampled_from([None, 3])),
        }
    )
    if ds is not None:
        assert ds.y.max() < len(ds.vocab)
