"""The standard data sets' download: a loopback HTTP server (127.0.0.1, Range supported) serves
files the tests generate in the real formats (IDX gzip, CIFAR-10 binary in a tar.gz, plain
text), with the pinned checksums replaced by the generated files' for the test."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from standard_files import cifar_like, mnist_like

from engine.data import ByteImages, download, load_dataset, needs_download, prepare, standard
from engine.data.download import DownloadCancelled, Remote, Source
from engine.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- loopback server


class Loopback:
    """Serves ``files`` under any prefix: GET /<prefix>/<name>. ``cut[name] = k`` sends only k
    bytes of the next answer for name, then closes; ``broken`` prefixes answer 503; ``corrupt``
    prefixes serve flipped bytes. ``log`` records (path, Range header, bytes sent)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.broken: set[str] = set()
        self.corrupt: set[str] = set()
        self.log: list[tuple[str, str | None, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                prefix, _, name = self.path.lstrip("/").partition("/")
                rng = self.headers.get("Range")
                if prefix in server.broken or name not in server.files:
                    server.log.append((self.path, rng, 0))
                    self.send_error(503 if prefix in server.broken else 404)
                    return
                data = server.files[name]
                if prefix in server.corrupt:
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        server.log.append((self.path, rng, 0))
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                k = server.cut.pop(name, None)
                sent = body if k is None else body[:k]
                self.wfile.write(sent)
                self.wfile.flush()
                server.log.append((self.path, rng, len(sent)))
                if k is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKPROP_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BLOCKPROP_DATA_MIRROR", raising=False)
    s = Loopback()
    yield s
    s.close()


def serve(server: Loopback, monkeypatch, name: str, files: dict, mirrors=("m1",)) -> Source:
    """Serve ``files`` as data set ``name``'s, with their own sums pinned for the test."""
    server.files.update(files)
    old = standard.SOURCES[name]
    remotes = tuple(Remote(r.name, hashlib.sha256(files[r.name]).hexdigest()) for r in old.files)
    src = Source(old.folder, tuple(f"{server.url}/{m}/" for m in mirrors), remotes)
    monkeypatch.setitem(standard.SOURCES, name, src)
    return src


def folder(name: str) -> Path:
    return download.data_dir() / standard.SOURCES[name].folder


# ---------------------------------------------------------------------------- tests


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BLOCKPROP_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.data_dir() == tmp_path / "xdg" / "blockprop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert download.data_dir() == Path.home() / ".cache" / "blockprop"
    monkeypatch.setenv("BLOCKPROP_DATA_DIR", str(tmp_path / "mine"))
    assert download.data_dir() == tmp_path / "mine"


def test_pinned_sums_are_sha256_hex():
    for src in standard.SOURCES.values():
        for r in src.files:
            assert len(r.sha256) == 64 and int(r.sha256, 16) >= 0, r.name
        assert all(m.startswith("https://") for m in src.mirrors), src.folder


def test_first_download_then_load_keeps_bytes(server, monkeypatch):
    files, arrays = mnist_like()
    serve(server, monkeypatch, "mnist", files)
    assert needs_download("mnist")
    seen = []
    prepare({"name": "mnist"}, progress=lambda d, t, n: seen.append((n, d, t)))
    assert not needs_download("mnist")
    assert sorted(p.name for p in folder("mnist").iterdir()) == sorted(files)
    last = {n: (d, t) for n, d, t in seen}
    assert all(last[n] == (len(files[n]), len(files[n])) for n in files)
    ds = load_dataset({"name": "mnist"})
    assert isinstance(ds.X, ByteImages) and ds.X.raw.dtype == np.uint8
    assert ds.X.shape == (200, 1, 28, 28) and ds.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(ds.X.raw[:, 0], arrays["train_x"])
    batch = ds.X[[3, 7]]
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch, arrays["train_x"][[3, 7]][:, None] / np.float32(255))
    np.testing.assert_array_equal(ds.y, arrays["train_y"])
    test = load_dataset({"name": "mnist", "split": "test", "n": 20, "pad": [32, 32]})
    assert test.X.shape == (20, 1, 32, 32)
    np.testing.assert_array_equal(test.X.raw[:, 0, 2:30, 2:30], arrays["test_x"][:20])
    assert test.X.raw[:, :, :2].max() == 0
    flat = load_dataset({"name": "mnist", "flatten": True, "n": 5})
    assert flat.X.shape == (5, 784)


def test_resume_after_a_cut(server, monkeypatch):
    files, _ = mnist_like(n_train=600)
    serve(server, monkeypatch, "mnist", files)
    name = "train-images-idx3-ubyte.gz"
    whole = len(files[name])
    server.cut[name] = 1000
    with pytest.raises(DataError) as e:
        prepare("mnist")
    assert "connection closed" in str(e.value) and name in str(e.value)
    part = folder("mnist") / (name + ".part")
    assert not (folder("mnist") / name).exists()  # nothing under the final name
    kept = part.stat().st_size
    assert 0 < kept <= 1000
    server.log.clear()
    prepare("mnist")
    resumed = [(p, r, n) for p, r, n in server.log if p.endswith(name)]
    assert resumed == [(f"/m1/{name}", f"bytes={kept}-", whole - kept)]
    assert (folder("mnist") / name).read_bytes() == files[name] and not part.exists()


def test_mirrors_fail_over_in_order_and_the_lab_mirror_comes_first(server, monkeypatch):
    files, _ = mnist_like(n_train=20, n_test=5)
    serve(server, monkeypatch, "mnist", files, mirrors=("down", "m1"))
    server.broken.add("down")
    monkeypatch.setenv("BLOCKPROP_DATA_MIRROR", f"{server.url}/lab")
    server.broken.add("lab")
    prepare("mnist")
    first = [p for p, _, _ in server.log if p.endswith("train-labels-idx1-ubyte.gz")]
    assert first == [
        "/lab/train-labels-idx1-ubyte.gz",
        "/down/train-labels-idx1-ubyte.gz",
        "/m1/train-labels-idx1-ubyte.gz",
    ]
    assert load_dataset("mnist").X.shape == (20, 1, 28, 28)


def test_a_corrupt_file_is_refused_and_never_kept(server, monkeypatch):
    files, _ = mnist_like(n_train=20, n_test=5)
    serve(server, monkeypatch, "mnist", files, mirrors=("bad",))
    server.corrupt.add("bad")
    with pytest.raises(DataError) as e:
        prepare("mnist")
    msg = str(e.value)
    assert "SHA-256 does not match" in msg and "\n" not in msg
    assert not any(folder("mnist").iterdir())  # neither a final nor a .part file
    # the same with a good mirror after the bad one: the good copy is used
    serve(server, monkeypatch, "mnist", files, mirrors=("bad", "m1"))
    prepare("mnist")
    # a file damaged in the cache is set aside (.bad) and fetched again
    target = folder("mnist") / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(b"garbage")
    assert load_dataset({"name": "mnist", "split": "test"}).y.shape == (5,)
    assert target.read_bytes() == files[target.name]
    assert (target.parent / (target.name + ".bad")).read_bytes() == b"garbage"


def test_cancel_stops_and_leaves_no_final_file(server, monkeypatch):
    files, _ = mnist_like(n_train=2000)
    serve(server, monkeypatch, "mnist", files)
    monkeypatch.setattr(download, "CHUNK", 4096)
    calls = []

    def progress(done, total, name):
        calls.append(done)

    with pytest.raises(DownloadCancelled) as e:
        prepare("mnist", progress=progress, cancel=lambda: len(calls) >= 3)
    assert "cancelled" in str(e.value)
    assert not (folder("mnist") / "train-images-idx3-ubyte.gz").exists()
    part = folder("mnist") / "train-images-idx3-ubyte.gz.part"
    assert part.stat().st_size == 2 * 4096  # two blocks arrived before the cancel
    prepare("mnist")  # goes on from there
    assert not part.exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_is_one_line_naming_the_url_and_the_folder(server, monkeypatch):
    files, _ = mnist_like(n_train=10, n_test=5)
    port = closed_port()
    serve(server, monkeypatch, "mnist", files)
    old = standard.SOURCES["mnist"]
    monkeypatch.setitem(
        standard.SOURCES, "mnist", Source(old.folder, (f"http://127.0.0.1:{port}/x/",), old.files)
    )
    with pytest.raises(DataError) as e:
        load_dataset("mnist")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"http://127.0.0.1:{port}/x/train-images-idx3-ubyte.gz" in msg
    assert str(folder("mnist")) in msg and "as train-images-idx3-ubyte.gz" in msg
    assert "refused" in msg.lower()


def test_cifar10_binary_from_the_archive(server, monkeypatch):
    monkeypatch.setattr(standard, "CIFAR_PER_FILE", 30)
    archive, arrays = cifar_like(30, evil=True)
    serve(server, monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": archive})
    assert needs_download("cifar10")
    prepare("cifar10")
    assert not needs_download("cifar10")
    ds = load_dataset({"name": "cifar10"})
    assert ds.X.shape == (150, 3, 32, 32) and isinstance(ds.X, ByteImages)
    x1, y1 = arrays["data_batch_1.bin"]
    np.testing.assert_array_equal(ds.X.raw[:30], x1)
    np.testing.assert_array_equal(ds.y[:30], y1)
    test = load_dataset({"name": "cifar10", "split": "test", "n": 7})
    np.testing.assert_array_equal(test.X.raw, arrays["test_batch.bin"][0][:7])
    assert test.class_names[0] == "airplane" and test.n_classes == 10
    cache = download.data_dir()
    assert not (cache / "evil.bin").exists() and not (cache.parent / "evil.bin").exists()
    assert not list(cache.rglob("*.part"))


def test_shakespeare_text(server, monkeypatch):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20
    serve(server, monkeypatch, "shakespeare", {"input.txt": text.encode()})
    ds = load_dataset({"name": "shakespeare", "T": 25})
    assert ds.X.shape == (len(text) // 25 - (len(text) % 25 == 0), 25)
    assert "".join(ds.vocab[i] for i in ds.X[0]) == text[:25]
    assert ds.task == "sequence_classification"


def test_trainer_keeps_bytes_and_converts_per_batch(server, monkeypatch):
    from engine.graph import Graph
    from engine.trainer import Trainer

    files, _ = mnist_like(n_train=100, n_test=5)
    serve(server, monkeypatch, "mnist", files)
    graph = json.loads((ROOT / "presets" / "lenet5.json").read_text())
    graph["training"]["dataset"] = {"name": "mnist", "pad": [32, 32]}
    graph["training"]["epochs"] = 1
    t = Trainer.from_graph(Graph.from_dict(graph))
    X, _ = t.train_data
    assert isinstance(X, ByteImages) and X.raw.dtype == np.uint8 and len(X) == 80
    events = list(t.run())
    assert events[-1]["reason"] == "finished"
    assert np.isfinite(events[-2]["val_loss"])


def lenet_graph(tmp_path: Path) -> Path:
    graph = json.loads((ROOT / "presets" / "lenet5.json").read_text())
    graph["training"]["dataset"] = {"name": "mnist", "pad": [32, 32]}
    p = tmp_path / "lenet_mnist.json"
    p.write_text(json.dumps(graph))
    return p


def test_cli_train_mnist_end_to_end(server, monkeypatch, tmp_path, capsys):
    from engine.cli import main

    files, _ = mnist_like(n_train=120, n_test=10)
    serve(server, monkeypatch, "mnist", files)
    status = main(["train", str(lenet_graph(tmp_path)), "--dataset", "mnist", "--epochs", "1"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "train-images-idx3-ubyte.gz [#########################] 100%" in err
    assert "finished: 1 epochs" in out
    # the second run finds the files: no download, no bar
    assert main(["train", str(lenet_graph(tmp_path)), "--epochs", "1"]) == 0
    assert "[#" not in capsys.readouterr().err


def test_cli_offline_exits_2_with_one_line(server, monkeypatch, tmp_path, capsys):
    from engine.cli import main

    files, _ = mnist_like(n_train=10, n_test=5)
    serve(server, monkeypatch, "mnist", files)
    port = closed_port()
    old = standard.SOURCES["mnist"]
    monkeypatch.setitem(
        standard.SOURCES, "mnist", Source(old.folder, (f"http://127.0.0.1:{port}/",), old.files)
    )
    status = main(["train", str(lenet_graph(tmp_path)), "--epochs", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "[" not in line]
    assert status == 2
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and str(folder("mnist")) in lines[0]


def test_the_pytorch_scripts_loaders_read_the_same_data(server, monkeypatch):
    from engine.data import DATASET_OPTIONS
    from engine.data.base import check_options
    from engine.export import standalone_data

    monkeypatch.setattr(standard, "CIFAR_PER_FILE", 12)
    files, _ = mnist_like(n_train=40, n_test=8)
    serve(server, monkeypatch, "mnist", files)
    serve(server, monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": cifar_like(12)[0]})
    text = "To be, or not to be, that is the question:\n" * 10
    serve(server, monkeypatch, "shakespeare", {"input.txt": text.encode()})
    for spec in (
        {"name": "mnist", "pad": [32, 32], "n": 30},
        {"name": "mnist", "split": "test", "flatten": True},
        {"name": "cifar10", "split": "test"},
        {"name": "shakespeare", "T": 16, "n": 5},
    ):
        ds = load_dataset(spec, seed=3)
        name = spec["name"]
        cfg = check_options(name, spec, DATASET_OPTIONS[name])
        fn, takes_rng, _ = standalone_data.MAKERS[name]
        f = getattr(standalone_data, fn)
        X, y = f(np.random.default_rng(3), **cfg) if takes_rng else f(**cfg)
        assert X.dtype == ds.X.dtype and X.shape == ds.X.shape, spec
        np.testing.assert_array_equal(X, np.asarray(ds.X))
        np.testing.assert_array_equal(y, ds.y)


# ---------------------------------------------------------------------------- the app's dialog


def test_app_download_dialog_then_ready(server, monkeypatch, qtbot):
    from PySide6.QtWidgets import QWidget

    from gui.training.download import DataDownload

    files, _ = mnist_like(n_train=50, n_test=5)
    serve(server, monkeypatch, "mnist", files)
    parent = QWidget()
    qtbot.addWidget(parent)
    ready = []
    d = DataDownload(parent, {"name": "mnist"}, on_ready=lambda: ready.append(True))
    assert d.dialog.isVisible()  # shown at once, while the worker thread downloads
    qtbot.waitUntil(lambda: d.finished, timeout=10_000)
    assert ready == [True] and d.error == "" and not d.dialog.isVisible()
    assert not needs_download("mnist")


def test_app_download_cancel_and_offline_dialog(server, monkeypatch, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton, QWidget

    from gui.training.download import DataDownload

    files, _ = mnist_like(n_train=3000)
    serve(server, monkeypatch, "mnist", files)
    monkeypatch.setattr(download, "CHUNK", 1024)
    gate = threading.Event()
    real = download._get

    def slow_get(*a, **k):  # hold the first file until Cancel was pressed
        gate.wait(5)
        return real(*a, **k)

    monkeypatch.setattr(download, "_get", slow_get)
    parent = QWidget()
    qtbot.addWidget(parent)
    ready = []
    d = DataDownload(parent, {"name": "mnist"}, on_ready=lambda: ready.append(True))
    qtbot.mouseClick(d.dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)  # Cancel
    gate.set()
    qtbot.waitUntil(lambda: d.finished, timeout=10_000)
    assert d.cancelled and not ready and d.message_box is None
    assert not (folder("mnist") / "train-images-idx3-ubyte.gz").exists()
    # offline: a dialog with the one line (URL, folder and file name)
    port = closed_port()
    old = standard.SOURCES["mnist"]
    monkeypatch.setitem(
        standard.SOURCES, "mnist", Source(old.folder, (f"http://127.0.0.1:{port}/",), old.files)
    )
    d = DataDownload(parent, {"name": "mnist"}, on_ready=lambda: ready.append(True))
    qtbot.waitUntil(lambda: d.finished, timeout=10_000)
    assert not ready and d.message_box is not None and d.message_box.isVisible()
    text = d.message_box.text()
    assert f"127.0.0.1:{port}" in text and str(folder("mnist")) in text and "\n" not in text
    d.message_box.close()
