"""python app.py explain: the map files, and one line with exit status 2 for every user error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine
import engine.cli as cli
from engine.explain import explain

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "presets" / "lenet5.json"


@pytest.fixture
def lenet(tmp_path):
    """LeNet-5's graph, weights (seed 3) and a 32x32 digit-like input as .npy and .png."""
    m = engine.build_model(engine.load_graph(LENET), seed=3)
    engine.save_weights(m, tmp_path / "w.npz")
    x = np.zeros((1, 32, 32), np.float32)
    x[0, 8:24, 12:20] = 1.0
    np.save(tmp_path / "x.npy", x)
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(tmp_path / "x.png")
    return m, x, tmp_path


def run(*args) -> int:
    return cli.main(["explain", *map(str, args)])


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("app.py: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("method", ["gradcam", "saliency", "occlusion"])
def test_writes_the_overlay_and_the_raw_map(lenet, method, capsys):
    m, x, d = lenet
    assert run(LENET, "--weights", d / "w.npz", "--input", d / "x.npy", "--method", method,
               "--class", 4, "-o", d / "out") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"{method}" in out and "for class 4" in out and "32x32 float32" in out
    got = np.load(d / "out.npy")
    assert got.dtype == np.float32 and got.shape == (32, 32)
    np.testing.assert_array_equal(got, explain(m, x, method, cls=4).map)
    png = np.asarray(Image.open(d / "out.png"))
    assert png.shape == (256, 256, 3)  # 8x nearest-neighbour so a 32x32 map is visible


def test_a_png_input_through_app_py(lenet):
    m, x, d = lenet
    r = subprocess.run(
        [sys.executable, "app.py", "explain", str(LENET), "--weights", str(d / "w.npz"),
         "--input", str(d / "x.png"), "--block", "c1", "-o", str(d / "o.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "gradcam of block c1" in r.stdout
    np.testing.assert_allclose(
        np.load(d / "o.npy"), explain(m, x, "gradcam", block="c1").map, rtol=1e-5, atol=1e-6
    )


def gap_graph(path: Path) -> None:
    g = engine.Graph("gap")
    g.add_node("Input", {"shape": [1, 32, 32]}, node_id="in")
    g.add_node("Flatten", {}, node_id="fl")
    g.add_node("Dense", {"units": 3}, node_id="fc")
    g.add_edge("in", "fl")
    g.add_edge("fl", "fc")
    g.save(path)


def test_user_errors_are_one_line_with_status_2(lenet, capsys):
    m, x, d = lenet
    common = ["--weights", d / "w.npz", "-o", d / "out"]
    cases = []
    # no convolutional block
    gap_graph(d / "mlp.json")
    engine.save_weights(engine.build_model(engine.load_graph(d / "mlp.json")), d / "mlp.npz")
    cases.append(
        (["--weights", d / "mlp.npz", "--input", d / "x.npy", "-o", d / "o"], d / "mlp.json",
         "Grad-CAM needs a convolutional block")
    )  # fmt: skip
    # CAM without GlobalAvgPool2D -> Dense
    cases.append(([*common, "--input", d / "x.npy", "--method", "cam"], LENET,
                  "CAM needs the graph to end GlobalAvgPool2D -> Dense"))  # fmt: skip
    # wrong input size: a 28x28 picture for a 32x32 Input
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(d / "small.png")
    cases.append(([*common, "--input", d / "small.png"], LENET,
                  "small.png: is 1x28x28 but the graph's Input takes 1x32x32"))  # fmt: skip
    np.save(d / "wrong.npy", np.zeros((3, 32, 32), np.float32))
    cases.append(([*common, "--input", d / "wrong.npy"], LENET, "is 3x32x32 but"))
    # unreadable inputs
    cases.append(([*common, "--input", d / "missing.png"], LENET, "sample file not found"))
    cases.append(([*common, "--input", d], LENET, "is a folder, not a sample file"))
    cases.append(([*common, "--input", "/dev/zero"], LENET, "character device"))
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    cases.append(([*common, "--input", d / "bad.png"], LENET, "cannot be decoded as an image"))
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases.append(([*common, "--input", d / "obj.npy"], LENET, "holds object values"))
    (d / "cut.npy").write_bytes((d / "x.npy").read_bytes()[:-10])
    cases.append(([*common, "--input", d / "cut.npy"], LENET, "truncated or corrupt"))
    np.save(d / "nan.npy", np.full((1, 32, 32), np.nan, np.float32))
    cases.append(([*common, "--input", d / "nan.npy"], LENET, "NaN or infinite"))
    (d / "x.txt").write_text("1 2 3")
    cases.append(([*common, "--input", d / "x.txt"], LENET, "neither a .npy array nor an image"))
    # bad choices
    cases.append(([*common, "--input", d / "x.npy", "--block", "f6"], LENET,
                  "block 'f6': its output 84 is not maps over positions"))  # fmt: skip
    cases.append(([*common, "--input", d / "x.npy", "--block", "zz"], LENET, "no block 'zz'"))
    cases.append(([*common, "--input", d / "x.npy", "--class", 10], LENET,
                  "class 10 is not one of the output's classes 0..9"))  # fmt: skip
    cases.append(([*common, "--input", d / "x.npy", "--method", "saliency", "--block", "c1"],
                  LENET, "a block is chosen for gradcam only"))  # fmt: skip
    cases.append((["--weights", d / "w.npz", "--input", d / "x.npy", "-o", d / "no" / "o"],
                  LENET, "there is no folder"))  # fmt: skip
    cases.append(([*common, "--input", d / "x.npy", "--method", "lime"], LENET, "invalid choice"))
    cases.append((["--weights", d / "mlp.npz", "--input", d / "x.npy", "-o", d / "o"], LENET,
                   "does not fit this graph"))  # fmt: skip
    for args, graph, want in cases:
        assert run(graph, *args) == 2, want
        line = one_line(capsys)
        assert want in line, (want, line)
    assert not (d / "out.png").exists() and not (d / "out.npy").exists()


def test_a_text_model_prints_each_words_share(tmp_path, capsys):
    from engine.data import load_dataset
    from engine.data.reviews import words

    preset = ROOT / "presets" / "text_cnn_cam.json"
    m = engine.build_model(engine.load_graph(preset), seed=1)
    engine.save_weights(m, tmp_path / "w.npz")
    ids = load_dataset("reviews").X[4]
    np.save(tmp_path / "r.npy", ids)
    assert run(preset, "--weights", tmp_path / "w.npz", "--input", tmp_path / "r.npy",
               "--method", "cam", "-o", tmp_path / "c") == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    want = explain(m, ids, "cam").map
    assert lines[1].split() == [f"{t}({v:+.2g})" for t, v in zip(words(ids), want, strict=True)]
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), want)
    assert np.asarray(Image.open(tmp_path / "c.png")).shape == (24, 20 * 25, 3)
    np.save(tmp_path / "f.npy", ids + 0.5)
    assert run(preset, "--weights", tmp_path / "w.npz", "--input", tmp_path / "f.npy",
               "-o", tmp_path / "c") == 2  # fmt: skip
    assert "must be integer token ids" in one_line(capsys)
