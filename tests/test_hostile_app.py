"""Hostile input through the app (issue 13, section 3): opening and pasting hostile graph
files shows one message and keeps the graph; hostile recovery and runs files are skipped; a
hostile file on the command line that starts the app says so and exits; ONNX names and
metadata; the inspector's text. The command line's cases are in test_hostile_input.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hostile_files import (
    BIG,
    MARK,
    ROOT,
    XOR,
    big_int_texts,
    deep_texts,
    nested,
    run_cli,
    surrogate_texts,
    with_id,
    write,
    xor,
)
from PySide6.QtCore import QMimeData

import engine
from engine import cli, graph_json
from engine.errors import BlockPropError, GraphError
from engine.graph_json import MAX_DEPTH

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


# --- the app: open, paste, recovery --------------------------------------------------------------
def gui_texts() -> dict[str, str]:
    texts = {f"int_{k}": v for k, v in big_int_texts().items() if k in ("config", "pos", "seed")}
    texts.update({f"deep_{k}": v for k, v in deep_texts().items() if "config" in k})
    texts.update({f"sur_{k}": v for k, v in surrogate_texts().items() if k in ("id", "name")})
    texts["nul_id"] = json.dumps(with_id(xor(), "a\x00b"))
    return texts


def test_app_open_shows_one_message_and_keeps_the_graph(window, tmp_path):
    before = window.graph.to_dict()
    for key, text in gui_texts().items():
        p = write(tmp_path, f"{key}.json", text)
        window.errors.clear()
        assert not window.files.load(str(p))
        assert len(window.errors) == 1, key
        title, message = window.errors[0]
        assert title == "Cannot open graph" and p.name in message and "\n" not in message
        assert window.graph.to_dict() == before


def test_app_paste_refuses_with_a_message(window):
    from PySide6.QtGui import QGuiApplication

    from gui import clipboard

    shown = []
    window.statusBar().messageChanged.connect(shown.append)
    for key, text in gui_texts().items():
        mime = QMimeData()
        mime.setText(text)
        before = window.graph.to_dict()
        if key == "nul_id":  # it parses; on paste the bad id is replaced by a fresh one
            nodes, _ = clipboard.remap_fragment(window.graph, clipboard.read_fragment(mime))
            assert len(nodes) == len(XOR["nodes"]) and all(
                graph_json.valid_id(nd["id"]) for nd in nodes
            )
            continue
        with pytest.raises(GraphError, match="the clipboard's blocks cannot be read"):
            clipboard.read_fragment(mime)
        QGuiApplication.clipboard().setMimeData(mime)
        window.actions.paste.trigger()  # no exception escapes; the status bar says why
        assert window.graph.to_dict() == before
        assert shown and shown[-1].startswith("Cannot paste: the clipboard's"), (key, shown[-1:])
    QGuiApplication.clipboard().clear()


def test_app_recovery_files_that_are_hostile_are_skipped(make_window, gui_env):
    folder = gui_env / "recovery"
    folder.mkdir(exist_ok=True)
    for key, text in gui_texts().items():
        graph = "GRAPH"
        doc = json.dumps({"format": "blockprop-recovery", "pid": 999999, "graph": graph})
        (folder / f"recovery-999999-{key}.json").write_text(
            doc.replace('"GRAPH"', text), encoding="utf-8"
        )
    from gui import files as files_mod

    found = files_mod.find_recoveries(folder)
    assert [p.name for p, _ in found] == ["recovery-999999-nul_id.json"]
    w = make_window()
    w.files.ask_restore = lambda data: True
    assert not w.files.offer_recovery()  # the one that parses has a bad id: refused, shown
    assert len(w.errors) == 1 and "control or invisible" in w.errors[0][1]


def test_app_saves_a_graph_holding_a_surrogate(window, tmp_path):
    window.controller.set_meta("name", "bad \ud800 name")
    window.files.autosave()
    assert window.files.recovery_path.exists()
    path = tmp_path / "s.json"
    window.files.ask_save_path = lambda: str(path)
    window.actions.save.trigger()
    assert path.exists() and "\\ud800" in path.read_text(encoding="utf-8")
    with pytest.raises(BlockPropError, match="lone surrogate"):
        engine.load_graph(path)


def test_app_runs_file_with_a_huge_number_is_a_problem_not_a_crash(tmp_path):
    from gui.training.runs_file import FORMAT, VERSION, load_runs

    p = tmp_path / "g.runs.json"
    doc = json.dumps({"format": FORMAT, "version": VERSION, "runs": [{"id": MARK}]})
    p.write_text(doc.replace(str(MARK), BIG), encoding="utf-8")
    runs, problems = load_runs(p)
    assert runs == [] and len(problems) == 1 and "cannot read the runs" in problems[0]


def test_app_started_with_a_hostile_file_says_so_and_exits(tmp_path):
    """``python app.py FILE`` (here with --screenshot, which needs no screen) on each kind."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    texts = gui_texts()
    for key in ("int_config", "deep_config_600", "sur_id"):
        p = write(tmp_path, f"{key}.json", texts[key])
        r = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), str(p), "--screenshot", str(tmp_path / "s.png")],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        lines = [line for line in r.stderr.splitlines() if line.startswith("app.py: ")]
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(lines) == 1 and p.name in lines[0], r.stderr


def test_onnx_import_of_hostile_names_and_metadata_gives_a_loadable_graph(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    xor_path = write(tmp_path, "xor.json", json.dumps(xor()))
    model = tmp_path / "xor.onnx"
    assert cli.main(["export", str(xor_path), "--to", "onnx", "-o", str(model)]) == 0

    def meta(m, key: str, value: str) -> None:
        next(p for p in m.metadata_props if p.key == key).value = value

    cases = {
        "separator_id": lambda m: setattr(m.graph.node[0], "name", "a\u2028b\u202e"),
        "esc_id": lambda m: setattr(m.graph.node[0], "name", "a\x1b[2Jb\x00"),
        "surrogate_name": lambda m: meta(m, "blockprop.name", json.dumps("x\ud800")),
        "deep_training": lambda m: meta(m, "blockprop.training", '{"x": ' + nested(900) + "}"),
        "big_training": lambda m: meta(m, "blockprop.training", '{"seed": ' + BIG + "}"),
    }
    for key, change in cases.items():
        m = onnx.load(str(model))
        change(m)
        hostile = tmp_path / f"{key}.onnx"
        onnx.save(m, str(hostile))
        out = tmp_path / f"{key}.json"
        status, _, err = run_cli(["import", str(hostile), "-o", str(out)], capsys)
        assert status == 0, (key, err)
        g = engine.load_graph(out)  # what was written reads back
        assert len(g) == len(XOR["nodes"]) and all(graph_json.valid_id(n) for n in g.nodes())


def test_inspector_text_with_deep_lists_or_huge_numbers_is_a_hint_not_a_crash():
    from gui.editors import parse_value

    deep, big = nested(2000), "[[" + "1" * 5000 + "]]"
    for text in (deep, big, nested(MAX_DEPTH + 1)):
        with pytest.raises(ValueError, match="not valid JSON"):
            parse_value("connections", text)
        assert parse_value("choice", text) == text  # kept as typed; the engine refuses it
    assert parse_value("connections", "[[0, 1], [1, 2]]") == [[0, 1], [1, 2]]
