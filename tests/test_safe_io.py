"""Hostile files, made here: graph, weights and data paths that are devices, FIFOs or folders;
files larger than what the OS reports; archives that inflate to gigabytes; headers that lie.
Each is refused with one BlockPropError naming the file, before memory grows. Everything that
could allocate without limit if broken runs in a child process with its memory capped
(tests/memcap.py), so a regression fails here instead of taking the machine's memory."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from memcap import outcomes, run_capped

import engine
from engine.errors import DataError, GraphError, WeightsError
from engine.safe_io import fmt_size, open_regular, read_limited

pytestmark = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
pytest_plugins = ["gui_support"]  # make_window

SMALL_GRAPH = {
    "format": "blockprop-graph",
    "version": 1,
    "name": "small",
    "nodes": [
        {"id": "in", "type": "Input", "config": {"shape": [4]}, "pos": [0, 0]},
        {"id": "d", "type": "Dense", "config": {"units": 3}, "pos": [100, 0]},
    ],
    "edges": [{"source": "in", "target": "d", "target_port": 0}],
}


@pytest.fixture
def specials(tmp_path):
    """name -> a path that is no regular file: links to endless devices, a FIFO, a folder."""
    paths = {}
    for dev in ("zero", "urandom"):
        paths[dev] = tmp_path / f"{dev}.bin"
        paths[dev].symlink_to(f"/dev/{dev}")
    paths["fifo"] = tmp_path / "pipe.bin"
    os.mkfifo(paths["fifo"])  # nobody ever writes: an open that blocks would hang for ever
    paths["folder"] = tmp_path / "folder.bin"
    paths["folder"].mkdir()
    paths["link_to_fifo"] = tmp_path / "fifo_link.bin"
    paths["link_to_fifo"].symlink_to(paths["fifo"])
    return paths


EXPECTED = {
    "zero": "is a character device",
    "urandom": "is a character device",
    "fifo": "is a named pipe (FIFO)",
    "link_to_fifo": "is a named pipe (FIFO)",
    "folder": "is a folder",
}


def test_graph_weights_and_data_paths_must_be_regular_files(specials, tmp_path):
    """Every reader, one special path at a time; in a capped child with a timeout, because
    the unfixed readers read /dev/zero until memory ran out and blocked on the FIFO."""
    graph = tmp_path / "g.json"
    engine.Graph.from_dict(SMALL_GRAPH).save(graph)
    paths = {k: str(v) for k, v in specials.items()}
    got = outcomes(
        f"""
        import json
        import engine
        from engine.data import load_dataset
        from engine.errors import BlockPropError

        paths = {paths!r}
        model = engine.build_model(engine.load_graph({str(graph)!r}))
        readers = {{
            "graph": lambda p: engine.load_graph(p),
            "weights": lambda p: engine.load_weights(model, p),
            "csv": lambda p: load_dataset({{"name": "csv", "path": p}}),
            "text": lambda p: load_dataset({{"name": "text", "path": p}}),
            "npz": lambda p: load_dataset({{"name": "npz", "path": p}}),
            "idx": lambda p: load_dataset({{"name": "idx", "images": p, "labels": p}}),
        }}
        for reader, read in readers.items():
            for kind, p in paths.items():
                try:
                    read(p)
                    print(json.dumps([reader, kind, type(None).__name__, ""]))
                except BlockPropError as e:
                    print(json.dumps([reader, kind, type(e).__name__, str(e)]))
        """,
        timeout=60,
    )
    assert len(got) == 6 * len(paths)
    errors = {"graph": "GraphError", "weights": "WeightsError"}
    for reader, kind, error, message in got:
        assert error == errors.get(reader, "DataError"), (reader, kind, message)
        assert message.startswith(paths[kind] + ": "), message
        assert EXPECTED[kind] in message, message
        assert "\n" not in message


def test_the_command_line_refuses_special_files_in_one_line(specials, tmp_path):
    graph = tmp_path / "g.json"
    engine.Graph.from_dict(SMALL_GRAPH).save(graph)
    for kind in ("zero", "fifo"):
        for args in (
            ["check", specials[kind]],
            ["export", graph, "--to", "numpy", "--weights", specials[kind]],
        ):
            r = run_capped(
                f"import sys, engine.cli; sys.exit(engine.cli.main({[str(a) for a in args]!r}))",
                timeout=60,
            )
            assert r.returncode == 2, r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and EXPECTED[kind] in lines[0], r.stderr
            assert lines[0].startswith(f"app.py: {specials[kind]}: ")


def test_image_folder_skips_no_special_file_into_a_read(specials, tmp_path):
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.png").symlink_to("/dev/zero")
    got = outcomes(
        f"""
        import json
        from engine.data import load_dataset
        from engine.errors import DataError
        try:
            load_dataset({{"name": "image_folder", "path": {str(root)!r}}})
        except DataError as e:
            print(json.dumps(str(e)))
        """,
        timeout=60,
    )
    assert len(got) == 1 and "has no images" in got[0]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_limits_hold_for_what_is_read_not_for_the_size_the_os_reports(tmp_path, monkeypatch):
    """/proc files report size 0 however much they hold: the limit still holds."""
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0 and len(status.read_bytes()) > 200
    with pytest.raises(DataError, match="holds more than the limit of 100 bytes"):
        read_limited(status, 100, DataError, "text file")
    assert read_limited(status, 1 << 20, DataError)[:5] == b"Name:"
    import engine.data.base as base

    monkeypatch.setattr(base, "MAX_TEXT_BYTES", 64)
    with pytest.raises(DataError, match=r"status: the text file holds more than the limit of 64"):
        engine.data.load_dataset({"name": "text", "path": str(status)})
    link = tmp_path / "g.json"
    link.symlink_to(status)
    monkeypatch.setattr(engine.graph, "MAX_FILE_BYTES", 64)
    with pytest.raises(GraphError, match="graph file holds more than the limit of 64 bytes"):
        engine.load_graph(link)


def test_size_limits_and_messages(tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 5000)
    monkeypatch.setattr(engine.graph, "MAX_FILE_BYTES", 4096)
    with pytest.raises(GraphError, match=r"big.json: the graph file is 4.88 KiB, more than the "):
        engine.load_graph(big)
    with pytest.raises(GraphError, match="graph file not found"):
        engine.load_graph(tmp_path / "nope.json")
    assert [fmt_size(n) for n in (1, 512, 1536, 50 * 1024**2, 2 * 1024**3)] == [
        "1 byte",
        "512 bytes",
        "1.5 KiB",
        "50 MiB",
        "2 GiB",
    ]
    with open_regular(big, GraphError) as f:  # an opened regular file reads normally
        assert f.read(3) == b"   " and os.get_blocking(f.fileno())
        assert stat.S_ISREG(os.fstat(f.fileno()).st_mode)


def test_a_path_swapped_for_a_fifo_after_the_check_is_refused_not_waited_on(tmp_path, monkeypatch):
    """The check before opening can be raced: the open itself never blocks and fstat
    decides."""
    fifo, regular = tmp_path / "p", tmp_path / "r"
    os.mkfifo(fifo)
    regular.write_bytes(b"x")
    real_stat = os.stat
    monkeypatch.setattr(
        os, "stat", lambda p, *a, **k: real_stat(regular if p == str(fifo) else p, *a, **k)
    )
    with pytest.raises(DataError, match="named pipe"):
        read_limited(fifo, 100, DataError)


# ------------------------------------------------------------------------ archives and headers


def _npy(header: dict, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def _zip_by_hand(members: list[tuple[str, int, int, bytes, int]]) -> bytes:
    """A zip of (name, method, crc, data, uncompressed size) members, headers written here."""
    out, central = bytearray(), bytearray()
    for name, method, crc, data, size in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0
        )
        out += n + data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(n),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += n
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0
    )
    return bytes(out + central + end)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 2 MB .npz whose X.npy inflates to 2 GiB of zeros: header (2**29,) float32, a valid
    deflate stream and CRC. The stream repeats one fully flushed block of 16 MiB of zeros
    (identical bytes each time), so making it takes a second, not a minute of deflate."""
    chunk = bytes(16 * 1024**2)
    header = _npy({"descr": "<f4", "fortran_order": False, "shape": (2**29,)})
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(header) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    assert z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH) == block
    repeats = 2**31 // len(chunk)
    stream = head + block * repeats + z.flush()
    crc = zlib.crc32(header)
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    y = _npy({"descr": "<i8", "fortran_order": False, "shape": (4,)}, bytes(32))
    raw = _zip_by_hand(
        [
            ("X.npy", zipfile.ZIP_DEFLATED, crc, stream, len(header) + 2**31),
            ("y.npy", zipfile.ZIP_STORED, zlib.crc32(y), y, len(y)),
        ]
    )
    assert len(raw) < 3 * 1024**2
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    path.write_bytes(raw)
    with zipfile.ZipFile(path) as zf, zf.open("X.npy") as f:  # a real archive: it inflates
        assert f.read(len(header)) == header and f.read(1 << 20) == bytes(1 << 20)
    return path


def test_a_decompression_bomb_is_refused_from_its_header(bomb, tmp_path):
    """Data set and weights file alike; the child has 1.5 GiB: loading the array would fail."""
    graph = tmp_path / "g.json"
    engine.Graph.from_dict(SMALL_GRAPH).save(graph)
    weights = tmp_path / "w.npz"  # the same bomb, named as the model's weights
    weights.write_bytes(bomb.read_bytes().replace(b"X.npy", b"W.npy"))
    got = outcomes(
        f"""
        import json
        import engine
        from engine.data import load_dataset
        from engine.errors import BlockPropError
        from engine.weights import read_weights
        model = engine.build_model(engine.load_graph({str(graph)!r}))
        for read in (
            lambda: load_dataset({{"name": "npz", "path": {str(bomb)!r}}}),
            lambda: engine.load_weights(model, {str(weights)!r}),
            lambda: read_weights({str(weights)!r}),
        ):
            try:
                read()
                print(json.dumps("loaded"))
            except BlockPropError as e:
                print(json.dumps(str(e)))
        """,
        timeout=60,
    )
    assert "arrays X (536870912,) and y (4,), as stored and as converted would take 6 GiB" in got[0]
    assert "does not fit this graph" in got[1] and "unexpected W, y" in got[1]
    assert "its arrays hold 2 GiB, more than the limit of 1 GiB" in got[2]


def _zip(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def test_weights_headers_are_checked_before_anything_is_read(tmp_path, monkeypatch):
    g = engine.Graph.from_dict(SMALL_GRAPH)
    model = engine.build_model(g)
    good = tmp_path / "good.npz"
    engine.save_weights(model, good)
    engine.load_weights(model, good)  # the checks pass a real file

    def write(name, members):
        p = tmp_path / name
        p.write_bytes(_zip(members))
        return p

    w = model.params["d.weight"]
    f4 = {"descr": "<f4", "fortran_order": False}
    bias = _npy({**f4, "shape": (3,)}, bytes(12))
    cases = {
        # A header that claims 2 GiB in a 200-byte member: refused, nothing allocated.
        "liar": (
            {"d.weight.npy": _npy({**f4, "shape": (2**29,)}, b"\0" * 64), "d.bias.npy": bias},
            r"array 'd.weight' claims shape \(536870912,\) \(2,147,483,648 bytes\) but the "
            r"archive holds only 64",
        ),
        "shape": (
            {"d.weight.npy": _npy({**f4, "shape": (4, 3)}, bytes(48)), "d.bias.npy": bias},
            r"wrong shape: d.weight \(4, 3\) in the file, \(3, 4\) in the graph",
        ),
        "pickle": (
            {
                "d.weight.npy": _npy({"descr": "|O", "fortran_order": False, "shape": (3, 4)}),
                "d.bias.npy": bias,
            },
            "holds Python objects, which would need unpickling",
        ),
        "not_npy": ({"d.weight": b"hello", "d.bias.npy": bias}, "is not an .npy array"),
        "longdouble": (
            {
                "d.weight.npy": _npy(
                    {"descr": "<f16", "fortran_order": False, "shape": (3, 4)}, bytes(192)
                ),
                "d.bias.npy": bias,
            },
            "d.weight must hold numbers",
        ),
        "truncated_data": (
            {"d.weight.npy": _npy({**f4, "shape": w.shape}, bytes(48))[:-10], "d.bias.npy": bias},
            "archive holds only 38",
        ),
    }
    for name, (members, message) in cases.items():
        with pytest.raises(WeightsError, match=message):
            engine.load_weights(model, write(f"{name}.npz", members))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(WeightsError, match="is a single .npy array, not a readable .npz archive"):
        engine.load_weights(model, single)
    before = model.params["d.weight"].copy()
    assert np.array_equal(model.params["d.weight"], before)  # refused files changed nothing

    # Lower the caps: the file and the arrays without a model.
    import engine.weights as weights

    monkeypatch.setattr(weights, "MAX_WEIGHTS_BYTES", 40)
    with pytest.raises(WeightsError, match="its arrays hold 60 bytes, more than the limit of 40"):
        weights.read_weights(good)
    engine.load_weights(model, good)  # with the model, its own shapes are the limit
    monkeypatch.setattr(weights, "MAX_FILE_BYTES", 100)
    with pytest.raises(WeightsError, match="the weights file is .*, more than the limit of 100"):
        engine.load_weights(model, good)


def test_a_zip_directory_of_millions_of_members_is_refused_before_it_is_parsed(tmp_path):
    """The end record claims a 1 GiB directory: refused from those 22 bytes."""
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 40_000, 40_000, 1024**3, 0, 0)
    p = tmp_path / "dir.npz"
    p.write_bytes(b"\0" * 100 + end)
    with pytest.raises(DataError, match="its zip directory is 1 GiB, more than the limit"):
        engine.data.load_dataset({"name": "npz", "path": str(p)})


def test_one_hot_text_is_refused_from_its_sizes_before_allocating(tmp_path):
    """n = 1e6 windows one-hot over 40 characters: 16 GB; refused in a 1.5 GiB child."""
    text = tmp_path / "t.txt"
    text.write_text("".join(chr(48 + i % 40) for i in range(20_000)), encoding="utf-8")
    two = tmp_path / "ab.txt"
    two.write_text("ab" * 10_000, encoding="utf-8")
    got = outcomes(
        f"""
        import json
        from engine.data import load_dataset
        from engine.errors import DataError
        cases = (({str(text)!r}, 1_000_000, True, 64), ({str(two)!r}, 100_000, True, 1000),
                 ({str(text)!r}, 100_000, False, 64))
        for path, n, one_hot, T in cases:
            try:
                ds = load_dataset({{"name": "text", "path": path, "n": n,
                                    "one_hot": one_hot, "T": T}})
                print(json.dumps([list(ds.X.shape), str(ds.X.dtype)]))
            except DataError as e:
                print(json.dumps(str(e)))
        """,
        timeout=60,
    )
    assert "one-hot X with 40 characters would hold 2,560,000,000 values, more than" in got[0]
    # Every array under the limit of values (2e8 one-hot), but X, y and one-hot X together not.
    assert "100,000 windows of T = 1000 one-hot over 2 characters would take 2.24 GiB" in got[1]
    assert got[2] == [[100_000, 64], "int64"]  # ids only: 100 MB, within the limits


def test_the_apps_open_paths_refuse_special_files(qtbot, make_window, specials, tmp_path):
    """File > Open (and a dropped file), the runs beside a graph, the preset list and the
    recovery files: a device or FIFO is a message or skipped, never a hang or a read."""
    from gui.files import find_recoveries
    from gui.preset_dialog import list_presets
    from gui.training.runs_file import load_runs

    w = make_window(show=False)
    for kind in ("zero", "fifo"):
        assert not w.files.load(str(specials[kind]))
        title, text = w.errors[-1]
        assert title == "Cannot open graph" and EXPECTED[kind] in text
        runs, problems = load_runs(specials[kind])
        assert runs == [] and EXPECTED[kind] in problems[0]
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.json")
    engine.Graph.from_dict(SMALL_GRAPH).save(folder / "ok.json")
    infos = {i.path.name: i for i in list_presets(folder)}
    assert infos["ok.json"].error == "" and infos["ok.json"].blocks == 2
    assert "character device" in infos["zero.json"].error
    assert "named pipe" in infos["pipe.json"].error
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "recovery-1.json").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "rec" / "recovery-2.json")
    assert find_recoveries(tmp_path / "rec") == []


def test_data_files_are_sized_with_their_converted_copies(tmp_path, monkeypatch):
    """X as stored plus X as float32 (and y as int64): all alive at once while loading."""
    import engine.data.base as base

    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.zeros((100, 3)), y=np.zeros(100, np.int64))
    idx = tmp_path / "i.idx"
    idx.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 100, 2, 2) + bytes(400))
    labels = tmp_path / "l.idx"
    labels.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 100) + bytes(100))
    engine.data.load_dataset({"name": "npz", "path": str(npz)})
    engine.data.load_dataset({"name": "idx", "images": str(idx), "labels": str(labels)})
    monkeypatch.setattr(base, "MAX_DATA_BYTES", 4000)
    # 2,400 + 800 bytes stored, 2,400 + 800 converted: 6,400
    with pytest.raises(DataError, match=r"arrays X \(100, 3\) and y \(100,\), as stored and as "):
        engine.data.load_dataset({"name": "npz", "path": str(npz)})
    monkeypatch.setattr(base, "MAX_DATA_BYTES", 1000)
    with pytest.raises(DataError, match=r"IDX array \[100, 2, 2\] and its float32 copy would take"):
        engine.data.load_dataset({"name": "idx", "images": str(idx), "labels": str(labels)})
