"""Exported code never runs code hidden in a graph (issue 13, section 1).

A graph's name, description and block ids reach the exported file. Python reads an encoding
declaration (``# coding: X``, PEP 263) from a file's first two lines; with ``raw_unicode_escape``
or ``utf-7`` a harmless-looking comment further down then decodes into live code. So: the first
two lines of every export are fixed text, the whole file is pure ASCII, and every user string goes
through ``engine.escaping.escape``. Checked here by properties over arbitrary unicode and every
codec name Python knows, and by exporting hostile graphs (made by the test) with the CLI and
running the scripts in a subprocess: they train, and the payload's marker file never appears.
"""

from __future__ import annotations

import ast
import copy
import encodings.aliases
import io
import json
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine import graph_json
from engine.cli import main as cli_main
from engine.escaping import escape, printable
from engine.export import export_code, naming
from engine.export.numpy_export import export_numpy
from engine.export.plan import make_plan
from engine.export.pytorch_export import export_pytorch

ROOT = Path(__file__).resolve().parent.parent
XOR = json.loads((ROOT / "presets" / "xor.json").read_text(encoding="utf-8"))

# Characters that have bitten code generators: line breaks of every kind, NUL, form feed (it
# resets indentation in the tokenizer), quotes, backslashes, comment and escape starters.
SPECIAL = ["\n", "\r", "\x0c", "\x0b", "\x00", "\x1b", "\x85", "\u2028", "\u2029", "\ufeff"]
SPECIAL += ["\\", "'", '"', "#", "\\u000a", "+AAo-", "coding:", "coding=", "\ud800", "\udc80"]
# Any code point, lone surrogates included, mixed with the special pieces.
PIECE = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL))
TEXT = st.lists(PIECE, max_size=30).map("".join)


def codec_names() -> list[str]:
    """Every codec name and alias Python knows, plus a few it does not."""
    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    return sorted(names | {"raw_unicode_escape", "utf-7", "latin-1", "utf_8", "no_such_codec"})


def declarations(codec: str) -> list[str]:
    """The ways a comment line declares ``codec`` (PEP 263's regex and editors' forms)."""
    return [
        f"coding: {codec}",
        f"coding={codec}",
        f"-*- coding: {codec} -*-",
        f"vim: set fileencoding={codec} :",
        f"\x0c# coding: {codec}",
    ]


def declared_encoding(code: str) -> str:
    """The encoding Python uses to read ``code`` as a file (utf-8 when nothing is declared)."""
    enc, _ = tokenize.detect_encoding(io.BytesIO(code.encode("ascii")).readline)
    return enc


# --- the one escaping function ------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_escape_is_one_printable_ascii_line_that_reads_back(s):
    for quote in ("'", '"'):
        e = escape(s, quote=quote)
        assert e.isascii() and e.isprintable(), e
        assert ast.literal_eval(quote + e + quote) == s
    wide = escape(s, ascii_only=False)
    assert wide.isprintable() and ast.literal_eval("'" + wide + "'") == s
    shown = printable(s)
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogate left: it can be printed and written


@settings(max_examples=400, deadline=None)
@given(st.one_of(TEXT, st.lists(TEXT, max_size=3), st.dictionaries(TEXT, TEXT, max_size=3)))
def test_literals_and_comments_are_inert(value):
    lit = naming.literal(value)
    assert lit.isascii() and lit.isprintable()
    assert ast.literal_eval(lit) == value
    assert ast.literal_eval(naming.pretty(value, 4, width=30)) == value
    c = naming.comment(value, max_len=40)
    assert c.isascii() and c.isprintable() and len(c) <= 40
    for line in naming.comment_lines(value if isinstance(value, str) else str(value)):
        assert line.startswith("#") and line.isascii() and line.isprintable()


@pytest.fixture(scope="module")
def plan():
    return make_plan(engine.Graph.from_dict(copy.deepcopy(XOR)))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TEXT, description=TEXT)
def test_no_name_or_description_makes_an_encoding_declaration(plan, name, description):
    plan.name, plan.description = name, description
    code = export_numpy(plan)
    assert code.isascii()
    assert code.split("\n")[:2] == ["# Exported from BlockProp (engine code).", "#"]
    assert declared_encoding(code) == "utf-8"
    ast.parse(code)


@settings(max_examples=40, deadline=None)
@given(block_id=TEXT.filter(graph_json.valid_id), path=TEXT.filter(bool), label=TEXT)
def test_ids_and_data_paths_reach_code_only_as_literals(block_id, path, label):
    """Block ids, data-set paths and column names from a graph, through both targets."""
    d = copy.deepcopy(XOR)
    d["nodes"][1]["id"] = block_id
    for e in d["edges"]:
        for end in ("source", "target"):
            e[end] = block_id if e[end] == "hidden" else e[end]
    if block_id in {n["id"] for n in d["nodes"][:1] + d["nodes"][2:]}:
        return  # ids must be unique
    d["training"]["dataset"] = {"name": "csv", "path": path, "label": label}
    g = engine.Graph.from_dict(d)
    for target in ("numpy", "pytorch"):
        code = export_code(g, target)
        assert code.isascii() and declared_encoding(code) == "utf-8"
        consts = {n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)}
        assert {path, label} <= consts
        assert block_id in consts or target == "pytorch"  # PyTorch: a NAME_MAP key
        if target == "pytorch":
            tree = ast.parse(code)
            name_map = next(
                n.value
                for n in tree.body
                if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "NAME_MAP"
            )
            assert block_id in ast.literal_eval(name_map)


def test_no_codec_name_python_knows_forms_a_declaration(plan):
    pytest.importorskip("torch")  # the PyTorch script is only generated, not run: no torch needed
    names = codec_names()
    assert len(names) > 300
    for codec in names:
        for text in declarations(codec):
            plan.name = text
            plan.description = f"{text}\n{text}\n\\u000aimport os+AAo-import os"
            for code in (export_numpy(plan), export_pytorch(plan)):
                assert code.isascii()
                assert declared_encoding(code) == "utf-8", (codec, text)
                assert code.split("\n")[1] == "#"
    compile(code, "exported.py", "exec")


# --- hostile graphs, exported by the CLI and run -------------------------------------------
def payload(marker: Path) -> str:
    return f"import os; open({str(marker)!r}, 'w').close()"


def hostile_graphs(marker: Path) -> dict[str, dict]:
    """Graph files whose name, description and ids try every trick against the export."""
    code = payload(marker)
    raw = code.encode("ascii").decode("ascii")
    utf7 = f"+AAo-{code}+AAo-"  # UTF-7 for "\n" + code + "\n"
    assert utf7.encode("ascii").decode("utf-7") == f"\n{code}\n"
    cases = {
        "raw_unicode_escape": (
            "coding: raw_unicode_escape",
            f"x\\u000a{raw}\\u000a#",
            "\\u000a" + raw.replace(" ", "") + "\\u000a#",
        ),
        "utf7": ("# -*- coding: utf-7 -*-", f"x{utf7}#", f"coding: utf-7{utf7}"),
        "vim_utf7": ("vim: set fileencoding=utf-7 :", f"{utf7}", "b"),
        "latin1": ("coding: latin-1 caf\u00e9 \u03a9", "\u00e9\u00e8 \u2192 \U0001f680", "x"),
        "unknown_codec": ("coding: no_such_codec", "coding: no_such_codec", "coding=bogus"),
        "newline": (f"x\n{code}\n#", f"\n{code}\n", "hidden"),
        "carriage_return": (f"x\r{code}\r#", f"a\r{code}\r", "cr"),
        "form_feed": (f"\x0c{code}", f"\x0c\n{code}", "ff"),
        "separators": (f"a\u2028{code}\u2029\x85{code}", f"\x00{code}", "sep"),
        "surrogate": ("a\ud800b", "\udc80", "sur"),
        "quotes": ("'''\"\"\"\\", f'"""); {code}; ("""', "q'\"\\"),
    }
    out = {}
    for key, (name, description, block_id) in cases.items():
        d = copy.deepcopy(XOR)
        d["name"], d["description"] = name, description
        old = d["nodes"][1]["id"]
        d["nodes"][1]["id"] = block_id
        for e in d["edges"]:
            for end in ("source", "target"):
                if e[end] == old:
                    e[end] = block_id
        out[key] = d
    return out


DRIVER = """
import runpy, sys
for path in sys.argv[1:]:
    sys.argv = [path, "--steps", "2"]
    ns = runpy.run_path(path, run_name="__main__")
    if "build_graph" in ns:
        print("NAME", ascii(ns["build_graph"]().name))
    print("RAN", path)
"""


@pytest.mark.parametrize("target", ["numpy", "pytorch"])
def test_hostile_graphs_export_to_scripts_that_only_train(target, tmp_path, capsys):
    if target == "pytorch":
        pytest.importorskip("torch")
    marker = tmp_path / "PWNED"
    graphs = hostile_graphs(marker)
    scripts = []
    for key, d in graphs.items():
        g_path = tmp_path / f"{key}.json"
        # a lone surrogate cannot be written as UTF-8: JSON's \\ud800 escape carries it
        g_path.write_text(json.dumps(d, ensure_ascii=True), encoding="ascii")
        out = tmp_path / f"{key}_{target}.py"
        status = cli_main(["export", str(g_path), "--to", target, "-o", str(out)])
        err = capsys.readouterr().err
        if key == "surrogate":  # refused on load, with one line naming the problem
            assert status == 2 and "surrogate" in err and "\n" not in err.strip(), err
            continue
        assert status == 0, err
        code = out.read_text(encoding="ascii")  # pure ASCII, or this raises
        assert declared_encoding(code) == "utf-8", key
        assert code.split("\n")[1] == "#"
        ast.parse(code)
        scripts.append(out)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, scripts)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert not marker.exists(), "a payload in the graph ran"
    assert r.stdout.count("RAN") == len(scripts) == len(graphs) - 1
    assert r.stdout.count("stopped after 2 steps") == len(scripts)  # each one trained
    if target == "numpy":  # the text survives exactly, as data
        names = [ast.literal_eval(line[5:]) for line in r.stdout.splitlines() if line[:4] == "NAME"]
        assert names == [d["name"] for k, d in graphs.items() if k != "surrogate"]


def test_export_to_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    g_path = tmp_path / "xor.json"
    g_path.write_text(json.dumps(XOR), encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    cases = {
        str(tmp_path / "folder"): "it is a folder",
        str(tmp_path / "missing" / "out.py"): "there is no folder",
        str(tmp_path / "file" / "out.py"): "there is no folder",
        "": "the output path is empty",
    }
    for out, why in cases.items():
        status = cli_main(["export", str(g_path), "--to", "numpy", "-o", out])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and why in err, err
        assert out in err and ".tmp" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "xor.json"]
    assert list((tmp_path / "folder").iterdir()) == []
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        status = cli_main(["export", str(g_path), "--to", "numpy", "-o", str(tmp_path / "ro/x.py")])
        err = capsys.readouterr().err
        assert status == 2 and "ro/x.py: " in err and ".tmp" not in err, err
