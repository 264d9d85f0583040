"""File > Import ONNX… and File > Export > ONNX model… in the app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from engine.export.onnx import export_onnx  # noqa: E402
from gui import onnx_io  # noqa: E402

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window
ROOT = Path(__file__).resolve().parent.parent


def test_main_window_is_an_onnx_window_with_the_menu_entries(window):
    from test_window_api import mismatches

    from gui.window_api import OnnxWindow

    assert isinstance(window, OnnxWindow) and mismatches(window, OnnxWindow) == []
    file_actions = window.menu("File").actions()
    texts = [a.text() for a in file_actions]
    assert texts.index("Import &ONNX…") == texts.index("Open &Recent") - 1
    export = window.code_view_actions["menu"].menu()
    assert window.onnx_actions["export"] in export.actions()


def test_import_puts_the_model_on_the_canvas_and_saves_its_weights(
    window, qtbot, tmp_path, monkeypatch
):
    g = engine.load_graph(ROOT / "presets" / "cnn_bn_dropout.json")
    (tmp_path / "m.onnx").write_bytes(export_onnx(g))
    monkeypatch.setattr(onnx_io, "ask_onnx_to_open", lambda w: str(tmp_path / "m.onnx"))
    monkeypatch.setattr(onnx_io, "ask_save", lambda w, title, suggested, f: suggested)
    assert window.onnx_actions["import"] in window.menu("File").actions()
    window.onnx_actions["import"].trigger()
    qtbot.waitUntil(lambda: len(window.graph) == len(g), timeout=10000)
    assert sorted(window.graph.nodes()) == sorted(g.nodes())
    assert set(window.scene.blocks) == set(g.nodes()) and window.errors == []
    assert len(window.scene.wires) == len(g.edges())
    model = engine.build_model(window.graph)
    engine.load_weights(model, tmp_path / "m.npz")  # saved where suggested, fits the graph
    # undo has nothing to undo: the import is a fresh graph, not an edit
    assert not window.files.stack.canUndo()


def test_import_of_an_unsupported_model_shows_one_line_and_keeps_the_canvas(
    window, qtbot, tmp_path
):
    before = window.graph.to_dict()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    onnx_io.import_model(window, str(bad))
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10000)
    title, text = window.errors[0]
    assert title == "Cannot import ONNX model" and "not an ONNX model" in text
    assert "\n" not in text
    assert window.graph.to_dict() == before


def test_export_writes_a_model_that_runs(window, qtbot, tmp_path):
    window.files.load(str(ROOT / "presets" / "lenet5.json"))
    out = tmp_path / "lenet.onnx"
    onnx_io.export_model(window, str(out))
    qtbot.waitUntil(lambda: out.exists(), timeout=10000)
    qtbot.waitUntil(lambda: "Exported" in window.statusBar().currentMessage(), timeout=10000)
    assert "initial weights" in window.statusBar().currentMessage()
    model = engine.build_model(window.graph, seed=int(window.graph.training.get("seed", 0)))
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape)).astype(np.float32)
    s = ort.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.forward(x), rtol=1e-5, atol=1e-5)
