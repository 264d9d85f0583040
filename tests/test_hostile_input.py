"""Hostile and clumsy input gets one line and exit status 2, never a traceback (issue 13,
section 3): huge integers, deep nesting, lone surrogates and control characters anywhere in a
graph file; IDX headers with too many dimensions; integer settings far out of range; Ctrl+C
during start-up. Every hostile file is made here, and each case runs through the command line
(check, train, export) and, for the file-format cases, through the app's open and paste.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QMimeData

import engine
from engine import cli, graph_json
from engine.data import DATASET_OPTIONS
from engine.errors import BlockPropError, ConfigError, GraphError
from engine.graph_json import MAX_DEPTH, parse_json
from engine.layers import LAYER_TYPES
from engine.optim import OPTIMIZER_OPTIONS
from engine.schedules import SCHEDULE_OPTIONS
from engine.settings import INT_LIMIT, SIZE_LIMIT, check_value
from engine.training_spec import TRAINING_OPTIONS

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window

ROOT = Path(__file__).resolve().parent.parent
XOR = json.loads((ROOT / "presets" / "xor.json").read_text(encoding="utf-8"))
MARK = 987654321  # a number the tests replace in a graph file's text
BIG = "1" + "0" * 5000  # past Python's 4,300-digit limit for int("...")


def xor(**changes) -> dict:
    d = copy.deepcopy(XOR)
    d["training"]["epochs"] = 1
    d.update(changes)
    return d


def with_id(d: dict, new: str, index: int = 1) -> dict:
    """``d`` with node ``index`` renamed to ``new`` (its wires follow)."""
    d = copy.deepcopy(d)
    old = d["nodes"][index]["id"]
    d["nodes"][index]["id"] = new
    for e in d["edges"]:
        for end in ("source", "target"):
            if e[end] == old:
                e[end] = new
    return d


def big_int_texts() -> dict[str, str]:
    """Graph files with a 5,001-digit integer in each kind of place."""
    places = {
        "config": lambda d: d["nodes"][1]["config"].__setitem__("units", MARK),
        "pos": lambda d: d["nodes"][0].__setitem__("pos", [MARK, 0]),
        "port": lambda d: d["edges"][0].__setitem__("target_port", MARK),
        "seed": lambda d: d["training"].__setitem__("seed", MARK),
        "version": lambda d: d.__setitem__("version", MARK),
        "dataset": lambda d: d["training"]["dataset"].__setitem__("repeat", MARK),
        "negative": lambda d: d["nodes"][1]["config"].__setitem__("units", -MARK),
    }
    out = {}
    for key, put in places.items():
        d = xor()
        put(d)
        out[key] = json.dumps(d).replace(str(MARK), BIG)
    return out


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def deep_texts() -> dict[str, str]:
    out = {}
    for depth in (MAX_DEPTH + 1, 600, 100_000):
        d = xor()
        d["nodes"][1]["config"]["units"] = MARK
        out[f"config_{depth}"] = json.dumps(d).replace(str(MARK), nested(depth))
        d = xor()
        d["training"]["dataset"]["repeat"] = MARK
        out[f"training_{depth}"] = json.dumps(d).replace(str(MARK), nested(depth))
    return out


def surrogate_texts() -> dict[str, str]:
    """Lone surrogates (JSON escapes that are no character) in ids, names, settings."""
    cases = {
        "id": with_id(xor(), "hid\ud800den"),
        "name": xor(name="xor \udc80"),
        "description": xor(description="\ud83d alone"),
        "setting": xor(),
        "path": xor(),
        "key": xor(),
    }
    cases["setting"]["nodes"][2]["config"]["fn"] = "sigm\udfffoid"
    cases["path"]["training"]["dataset"] = {"name": "csv", "path": "data\udc80.csv"}
    cases["key"]["training"]["dataset"]["\udc00"] = 1
    return {k: json.dumps(d, ensure_ascii=True) for k, d in cases.items()}


CONTROL_IDS = {
    "nul": "hid\x00den",
    "esc": "\x1b[2J\x1b[31mred",
    "newline": "line\nbreak",
    "cr": "a\rb",
    "bidi": "abc\u202edef",
    "separator": "a\u2028b",
    "bell": "ding\x07",
}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    status = cli.main(args)
    out = capsys.readouterr()
    return status, out.out, out.err


def assert_one_line(status: int, err: str, *words: str) -> None:
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("app.py: "), err
    assert "Traceback" not in err
    assert lines[0].isprintable(), ascii(lines[0])  # nothing raw reaches the terminal
    for w in words:
        assert w in lines[0], (w, lines[0])


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


COMMANDS = [["check"], ["train"], ["export", "--to", "numpy"]]


def cli_cases(tmp_path: Path, texts: dict[str, str]):
    for key, text in texts.items():
        p = write(tmp_path, f"{key}.json", text)
        for cmd in COMMANDS:
            yield key, [cmd[0], str(p), *cmd[1:]]


# --- the file format, through the command line ---------------------------------------------------
def test_integers_past_python_limit_are_one_line(tmp_path, capsys):
    for key, args in cli_cases(tmp_path, big_int_texts()):
        status, _, err = run_cli(args, capsys)
        assert_one_line(status, err, "5,001 digits", f"{key}.json")


def test_deep_nesting_is_one_line(tmp_path, capsys):
    for key, args in cli_cases(tmp_path, deep_texts()):
        status, _, err = run_cli(args, capsys)
        assert_one_line(status, err, "nested", f"{key}.json")
        if not key.endswith("100000"):  # the reader names where (at 100,000 JSON itself fails)
            assert "nodes[1].config.units" in err or "training.dataset.repeat" in err, err


def test_lone_surrogates_are_refused_naming_the_field(tmp_path, capsys):
    where = {
        "id": "nodes[1].id",
        "name": "name",
        "description": "description",
        "setting": "nodes[2].config.fn",
        "path": "training.dataset.path",
        "key": "training.dataset",
    }
    for key, args in cli_cases(tmp_path, surrogate_texts()):
        status, _, err = run_cli(args, capsys)
        assert_one_line(status, err, "lone surrogate", where[key])


def test_control_characters_in_ids_are_refused(tmp_path, capsys):
    texts = {k: json.dumps(with_id(xor(), v)) for k, v in CONTROL_IDS.items()}
    texts["edge"] = json.dumps(xor())
    edge = json.loads(texts["edge"])
    edge["edges"][0]["source"] = "in\x1b[0m"
    texts["edge"] = json.dumps(edge)
    for _key, args in cli_cases(tmp_path, texts):
        status, _, err = run_cli(args, capsys)
        assert_one_line(status, err, "control or invisible characters")
        assert "\x1b" not in err and "\x00" not in err
    for bad in CONTROL_IDS.values():
        with pytest.raises(GraphError, match="control or invisible"):
            engine.Graph().add_node("Input", {"shape": [2]}, node_id=bad)


def test_names_are_printed_escaped(tmp_path, capsys):
    d = xor(name="\x1b[31mred\nsecond line\u202e", description="\x1b]0;title\x07")
    p = write(tmp_path, "g.json", json.dumps(d))
    status, out, err = run_cli(["check", str(p)], capsys)
    assert status == 0, err
    assert all(line.isprintable() for line in out.splitlines())
    assert 'Model: "\\x1b[31mred\\nsecond line\\u202e"' in out
    status, out, _ = run_cli(["presets"], capsys)
    assert status == 0 and all(line.isprintable() for line in out.splitlines())
    # an error that names a weird (but allowed) block id quotes it escaped
    e = GraphError("no such block", block="it's \u00e9", file="a\nb.json")
    assert str(e) == "a\\nb.json: block 'it\\'s \u00e9': no such block"


def test_a_graph_that_passed_can_be_saved_and_read_back(tmp_path):
    g = engine.Graph.from_dict(xor(name="Ωμέγα \x00\x1b name", description="a\u2028b"))
    g.save(tmp_path / "g.json")
    assert engine.load_graph(tmp_path / "g.json").to_dict() == g.to_dict()
    g.set_meta("name", "made by code \ud800")  # cannot come from a file; save still works
    g.save(tmp_path / "s.json")
    with pytest.raises(GraphError, match=r"name holds the lone surrogate '\\ud800'"):
        engine.load_graph(tmp_path / "s.json")


def test_parse_json_accepts_what_real_graphs_hold():
    for p in (ROOT / "presets").glob("*.json"):
        parse_json(p.read_text(encoding="utf-8"))
    assert parse_json(nested(MAX_DEPTH - 1)) is not None
    assert parse_json('{"a": -123456789012345678901234567890}')["a"] < 0
    with pytest.raises(GraphError, match="31 digits"):
        parse_json("[1234567890123456789012345678901]")


# --- settings ------------------------------------------------------------------------------------
def declarations():
    """Every integer setting the project declares: layers, data sets, training, optimizers,
    schedules."""
    for t, cls in LAYER_TYPES.items():
        for k, o in cls.all_options().items():
            yield f"{t}.{k}", o
    for group in (DATASET_OPTIONS, OPTIMIZER_OPTIONS, SCHEDULE_OPTIONS):
        for name, opts in group.items():
            for k, o in opts.items():
                yield f"{name}.{k}", o
    for k, o in TRAINING_OPTIONS.items():
        yield f"training.{k}", o


def test_every_integer_setting_has_a_bound():
    seen = 0
    for where, opt in declarations():
        big = 10**20  # past every bound (the largest declared: a seed below 2**63)
        values = {
            "int": [big],
            "size": [big, [1, big]],
            "padding": [big, [big, 0]],
            "shape": [[1, big]],
            "connections": [[[0, big]]],
        }.get(opt.kind)
        if values is None:
            continue
        seen += 1
        for v in values:
            with pytest.raises(ConfigError):
                check_value("b", where, v, opt)
        with pytest.raises(ConfigError, match="4,300 digits"):
            check_value("b", where, 10**5000 if opt.kind == "int" else [10**5000] * 2, opt)
    assert seen > 40


def conv_graph(stride) -> dict:
    return {
        "format": "blockprop-graph",
        "version": 1,
        "name": "stride",
        "nodes": [
            {"id": "in", "type": "Input", "config": {"shape": [1, 8, 8]}},
            {
                "id": "c",
                "type": "Conv2D",
                "config": {"filters": 2, "kernel_size": 3, "stride": stride},
            },
            {"id": "f", "type": "Flatten"},
            {"id": "d", "type": "Dense", "config": {"units": 10}},
        ],
        "edges": [
            {"source": "in", "target": "c", "target_port": 0},
            {"source": "c", "target": "f", "target_port": 0},
            {"source": "f", "target": "d", "target_port": 0},
        ],
        "training": {"dataset": "digits", "epochs": 1, "batch_size": 256},
    }


def test_huge_stride_is_refused_by_check_and_the_largest_trains(tmp_path, capsys):
    for stride in (10**18, [1, 10**18], SIZE_LIMIT + 1):
        p = write(tmp_path, "s.json", json.dumps(conv_graph(stride)))
        for cmd in (["check", str(p)], ["train", str(p)]):
            status, _, err = run_cli(cmd, capsys)
            assert_one_line(status, err, "block 'c'", "'stride'", f"{SIZE_LIMIT:,}")
    p = write(tmp_path, "ok.json", json.dumps(conv_graph([SIZE_LIMIT, 1])))
    status, out, err = run_cli(["train", str(p)], capsys)
    assert status == 0, err
    assert "finished: 1 epochs" in out
    assert INT_LIMIT == 2**31 - 1


# --- data files ----------------------------------------------------------------------------------
def test_idx_header_with_too_many_dimensions(tmp_path, capsys):
    for ndim in (65, 70, 255, 6):
        images = tmp_path / f"images{ndim}.idx"
        images.write_bytes(
            b"\0\0\x08" + bytes([ndim]) + struct.pack(f">{ndim}I", *[1] * ndim) + b"\0"
        )
        labels = tmp_path / "labels.idx"
        labels.write_bytes(b"\0\0\x08\x01" + struct.pack(">I", 1) + b"\0")
        d = xor()
        d["training"]["dataset"] = {"name": "idx", "images": str(images), "labels": str(labels)}
        p = write(tmp_path, "idx.json", json.dumps(d))
        status, _, err = run_cli(["train", str(p)], capsys)
        assert_one_line(status, err, f"{ndim} dimensions", images.name)


# --- Ctrl+C --------------------------------------------------------------------------------------
def test_ctrl_c_anywhere_before_training_is_one_line_and_130(monkeypatch, tmp_path, capsys):
    p = write(tmp_path, "g.json", json.dumps(xor()))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    check, train, export = ["check", str(p)], ["train", str(p)], ["export", str(p), "--to", "numpy"]
    calls = {"load_graph": [check, train, export], "analyze": [check, train], "Trainer": [train]}
    for target, commands in calls.items():
        with monkeypatch.context() as m:
            stub = SimpleNamespace(from_graph=interrupted) if target == "Trainer" else interrupted
            m.setattr(cli, target, stub)
            for cmd in commands:
                status, _, err = run_cli(cmd, capsys)
                assert status == 130 and err == "app.py: interrupted\n", (target, cmd, err)
    with monkeypatch.context() as m:
        m.setattr(cli, "build_parser", interrupted)
        status, _, err = run_cli(["presets"], capsys)
        assert status == 130 and err == "app.py: interrupted\n"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_ctrl_c_while_the_program_starts(tmp_path):
    """SIGINT while app.py imports its libraries: one line, exit 130, no traceback."""
    p = write(tmp_path, "g.json", json.dumps(xor()))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    interrupted = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "train", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        maps = Path(f"/proc/{proc.pid}/maps")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:  # wait until app.py's own code runs (it is importing numpy)
                if "numpy" in maps.read_text():
                    break
            except OSError:
                pass
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        assert proc.returncode in (130, 0), (proc.returncode, err)
        if proc.returncode == 130:
            interrupted += 1
            assert err.strip().count("\n") <= 1 and err.startswith("app.py: "), err
    assert interrupted >= 3


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
