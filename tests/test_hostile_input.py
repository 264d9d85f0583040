"""Hostile and clumsy input gets one line and exit status 2, never a traceback (issue 13,
section 3): huge integers, deep nesting, lone surrogates and control characters anywhere in a
graph file; IDX headers with too many dimensions; integer settings far out of range; Ctrl+C
during start-up. Every hostile file is made here, and each case runs through the command line
(check, train, export) and, for the file-format cases, through the app's open and paste.
"""

from __future__ import annotations

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
from hostile_files import (
    CONTROL_IDS,
    ROOT,
    assert_one_line,
    big_int_texts,
    cli_cases,
    deep_texts,
    nested,
    run_cli,
    surrogate_texts,
    with_id,
    write,
    xor,
)

import engine
from engine import cli
from engine.data import DATASET_OPTIONS
from engine.errors import ConfigError, GraphError
from engine.graph_json import MAX_DEPTH, parse_json
from engine.layers import LAYER_TYPES
from engine.optim import OPTIMIZER_OPTIONS
from engine.schedules import SCHEDULE_OPTIONS
from engine.settings import INT_LIMIT, SIZE_LIMIT, check_value
from engine.training_spec import TRAINING_OPTIONS


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
