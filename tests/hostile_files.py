"""Hostile graph files made in memory for tests/test_hostile_input.py (the command line) and
tests/test_hostile_app.py (the app): huge integers, deep nesting, lone surrogates and control
characters in each kind of place, and the checks every refusal must pass.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from engine import cli
from engine.graph_json import MAX_DEPTH

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
