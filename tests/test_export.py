"""Export to Python: the engine target, safety, errors, golden files (the GUI code view:
test_export_gui.py).

The PyTorch target's numbers are checked in test_export_torch.py. Graph files used here live in
tests/golden/graphs/; the expected exports in tests/golden/ (regenerate them with
BLOCKPROP_UPDATE_GOLDEN=1 after an intended change, and read the diff).
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from standard_files import place_for

import engine
from engine.errors import BlockPropError, ConfigError, GraphError
from engine.export import export_code, naming

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
GRAPHS = GOLDEN / "graphs"
PRESETS = sorted((ROOT / "presets").glob("*.json"))
UPDATE = os.environ.get("BLOCKPROP_UPDATE_GOLDEN") == "1"

HOSTILE = [
    'x"); import os; os.system("touch pwned") #',
    "a\nb",
    "\\",
    "\\\\'",
    "__import__('os')",
    "Ωμέγα→🚀",
    "'''",
    '"""',
    "\r\u2028\x00\x0c",
    "in",
    "class",
    "self",
    "training",
    "a-b",
    "a_b",
    "1st",
    "",
    "   ",
]


def graph(name: str) -> engine.Graph:
    return engine.load_graph(GRAPHS / f"{name}.json")


def load_module(path: Path, name: str = "exported"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(tmp_path: Path, code: str, name: str = "exported.py") -> Path:
    p = tmp_path / name
    p.write_text(code, encoding="utf-8")
    return p


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


# --- naming ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [h for h in HOSTILE if h])
def test_literal_is_one_token_that_evaluates_back(s):
    lit = naming.literal(s)
    assert "\n" not in lit and "\r" not in lit
    assert ast.literal_eval(lit) == s
    nested = {"a": [s, (s,), {s: None}], "b": 1.5, "c": True}
    assert ast.literal_eval(naming.literal(nested)) == nested
    assert ast.literal_eval(naming.pretty(nested, 0, width=20)) == nested


def test_literal_refuses_what_is_not_data():
    with pytest.raises(ValueError):
        naming.literal(float("nan"))
    with pytest.raises(ValueError):
        naming.literal(object())


@pytest.mark.parametrize("s", HOSTILE)
def test_comment_is_one_printable_line(s):
    c = naming.comment(s * 30)
    assert c.isprintable() and "\n" not in c and len(c) <= 90
    for line in naming.comment_lines(s + "\n" + s):
        assert line.startswith("#") and line.isprintable()


def test_identifiers_are_safe_unique_and_readable():
    ids = [*HOSTILE, "conv1", "conv1", "forward", "parameters", "x", "torch", "print", "_x"]
    idents = naming.identifiers(dict.fromkeys(ids))  # unique ids
    values = list(idents.values())
    assert len(set(values)) == len(values)
    for v in values:
        assert naming.is_safe_identifier(v), v
    assert idents["conv1"] == "conv1"
    assert idents["a-b"] != idents["a_b"]
    assert idents["1st"] == "b1st"
    assert idents["class"].startswith("class_")
    assert idents["forward"] != "forward" and idents["parameters"] != "parameters"


# --- the engine target ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "cnn", "seq", "seq2", "lenet5", "hostile"])
def test_numpy_export_builds_the_same_model(name, tmp_path):
    g = graph(name)
    code = export_code(g, "numpy")
    compile(code, "exported.py", "exec")
    mod = load_module(write(tmp_path, code))
    model = mod.build_model()
    ref = engine.build_model(g, seed=g.training.get("seed", 0))
    assert list(model.layers) == list(ref.layers)
    assert model.params.keys() == ref.params.keys()
    for k, v in ref.params.items():
        np.testing.assert_array_equal(model.params[k], v, err_msg=k)
    for n, layer in ref.layers.items():
        assert model.layers[n].get_config() == layer.get_config()


def test_numpy_export_reads_like_a_program():
    code = export_code(graph("mlp"), "numpy")
    assert "hidden = add(g, layers.Dense(units=16, name='hidden'), in_1)" in code
    assert "    add(g, layers.Dense(units=10, name='out'), relu)" in code
    assert "# hidden (Dense) -> (16,), 1,040 params" in code
    assert "engine.build_model(build_graph(), seed=SEED)" in code
    assert "SEED = 3" in code
    tree = ast.parse(code)
    main = [n for n in tree.body if isinstance(n, ast.If)]
    assert len(main) == 1 and "__main__" in ast.unparse(main[0].test)


@pytest.mark.parametrize("name", ["mlp", "cnn", "seq", "seq2", "lenet5"])
def test_numpy_export_trains_with_the_same_losses(name, tmp_path):
    g = graph(name)
    mod = load_module(write(tmp_path, export_code(g, "numpy")))
    steps = 3
    ours = [e for e in itertools.islice(mod.make_trainer().run(), steps)]
    ref = [e for e in itertools.islice(engine.Trainer.from_graph(g).run(), steps)]
    assert [e["event"] for e in ours] == ["step"] * steps
    assert [e["loss"] for e in ours] == [e["loss"] for e in ref]
    assert [e["grad_rms"] for e in ours] == [e["grad_rms"] for e in ref]


def test_numpy_script_runs_as_a_program_and_saves(tmp_path):
    g = graph("mlp")
    script = write(tmp_path, export_code(g, "numpy"))
    r = run([str(script), "--steps", "2", "--save", "w.npz"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "step 2" in r.stdout and "saved the weights" in r.stdout
    model = engine.build_model(g)
    engine.load_weights(model, tmp_path / "w.npz")  # the engine reads what the script wrote


def test_numpy_export_with_weights_loads_them(tmp_path):
    g = graph("seq2")
    trained = engine.build_model(g, seed=7)
    engine.save_weights(trained, tmp_path / "my weights 'q'.npz")
    os.chdir(tmp_path)  # the CLI checks a relative path from the working directory
    try:
        code = export_code(g, "numpy", weights="my weights 'q'.npz")
    finally:
        os.chdir(ROOT)
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    mod = load_module(write(tmp_path, code))
    os.chdir(sub)  # a relative WEIGHTS path also resolves next to the script
    try:
        model = mod.build_model()
    finally:
        os.chdir(ROOT)
    for k, v in trained.state().items():
        np.testing.assert_array_equal(model.state()[k], v)


# --- safety ---------------------------------------------------------------------------------------
def hostile_graph() -> engine.Graph:
    g = graph("hostile")
    g.set_meta("name", 'x"""\'\'\'; import os; os.system("touch pwned_name")\n#')
    return g


@pytest.mark.parametrize("target", ["numpy", "pytorch"])
def test_hostile_names_export_to_code_that_only_builds(target, tmp_path):
    g = hostile_graph()
    if target == "pytorch":
        pytest.importorskip("torch")
    code = export_code(g, target)
    tree = ast.parse(code)
    # every block id and the graph's strings appear only as string constants
    consts = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    inline = ("Input", "Add", "Concat", "GlobalAvgPool2D")  # no module in the PyTorch script
    for n in g.nodes():
        if target == "numpy" or g.type_of(n) not in inline:
            assert n in consts, n
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not {"os.system", "__import__", "eval", "exec"} & calls
    script = write(tmp_path, code)
    probe = (
        "import importlib.util, sys\n"
        "s = importlib.util.spec_from_file_location('m', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(s); s.loader.exec_module(m)\n"
        "model = m.build_model()\n"
        "print('built', type(model).__name__)\n"
    )
    r = run(["-c", probe, str(script)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "built" in r.stdout
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["exported.py"], left  # nothing "pwned" was created
    if target == "numpy":
        assert set(load_module(script).build_model().layers) == set(g.nodes())


def test_hostile_strings_in_every_setting_stay_data():
    g = hostile_graph()
    code = export_code(g, "numpy")
    mod_globals: dict = {}
    tree = ast.parse(code)
    assign = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "TRAINING"
    )
    mod_globals["TRAINING"] = ast.literal_eval(assign.value)
    assert mod_globals["TRAINING"]["dataset"]["path"] == g.training["dataset"]["path"]


# --- errors ---------------------------------------------------------------------------------------
def test_invalid_graph_is_refused_naming_the_block():
    g = graph("mlp")
    g.remove_edge("hidden", "relu")
    with pytest.raises(GraphError) as e:
        export_code(g, "numpy")
    assert "relu" in str(e.value) and "cannot export" in str(e.value)
    g2 = graph("mlp")
    g2.set_config("in", {"shape": [1, 8, 8]})  # Dense after an image: a shape problem
    with pytest.raises(GraphError) as e:
        export_code(g2, "pytorch")
    assert e.value.block == "hidden" and "Flatten" in str(e.value)


def test_bad_settings_and_targets_are_user_errors():
    g = graph("mlp")
    with pytest.raises(ConfigError, match="target"):
        export_code(g, "tensorflow")
    with pytest.raises(ConfigError, match="weights"):
        export_code(g, "numpy", weights="")
    g.set_meta("training", {"optimizer": {"name": "lbfgs"}})
    with pytest.raises(ConfigError, match="optimizer"):
        export_code(g, "numpy")
    g.set_meta("training", {"dataset": {"name": "moons", "points": 5}})
    with pytest.raises(ConfigError, match="points"):
        export_code(g, "pytorch")  # the script spells out every option of its loader
    export_code(g, "numpy")  # passed on to engine.data, which reports it when the script runs


def test_weights_that_do_not_fit_are_refused_at_export(tmp_path):
    g = graph("mlp")
    with pytest.raises(engine.WeightsError, match="no such file"):
        export_code(g, "pytorch", weights=str(tmp_path / "missing.npz"))
    other = graph("seq2")
    engine.save_weights(engine.build_model(other), tmp_path / "other.npz")
    with pytest.raises(engine.WeightsError, match="does not fit"):
        export_code(g, "numpy", weights=str(tmp_path / "other.npz"))
    code = export_code(g, "numpy", weights="later.npz", check_weights=False)
    assert "WEIGHTS = 'later.npz'" in code


def test_block_without_pytorch_counterpart_is_named(monkeypatch):
    from engine.layers import LAYER_TYPES

    monkeypatch.setattr(LAYER_TYPES["Subsample2D"], "to_torch", lambda self, in_shape: None)
    with pytest.raises(GraphError) as e:
        export_code(graph("cnn"), "pytorch")
    assert e.value.block == "ss" and "no PyTorch export" in str(e.value)
    assert isinstance(e.value, BlockPropError)
    export_code(graph("cnn"), "numpy")  # the engine target still works


def test_every_block_type_has_a_pytorch_form():
    from engine.layers import LAYER_TYPES, Layer

    missing = {t for t, cls in LAYER_TYPES.items() if cls.to_torch is Layer.to_torch}
    assert not missing, missing


def test_cli_export_writes_the_file(tmp_path):
    out = tmp_path / "out.py"
    r = run(["app.py", "export", str(GRAPHS / "mlp.json"), "--to", "pytorch", "-o", str(out)], ROOT)
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == export_code(graph("mlp"), "pytorch")
    bad = tmp_path / "bad.json"
    d = json.loads((GRAPHS / "mlp.json").read_text(encoding="utf-8"))
    d["edges"] = d["edges"][1:]
    bad.write_text(json.dumps(d), encoding="utf-8")
    r = run(["app.py", "export", str(bad), "--to", "numpy"], ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "hidden" in r.stderr


# --- golden files ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,target",
    [
        ("mlp", "numpy"),
        ("mlp", "pytorch"),
        ("cnn", "pytorch"),
        ("lenet5", "numpy"),
        ("lenet5", "pytorch"),
        ("hostile", "numpy"),
    ],
)
def test_golden(name, target):
    code = export_code(graph(name), target)
    path = GOLDEN / f"{name}.{target}.py.txt"
    if UPDATE:
        path.write_text(code, encoding="utf-8")
    assert path.exists(), f"missing {path}: run with BLOCKPROP_UPDATE_GOLDEN=1"
    assert code == path.read_text(encoding="utf-8"), (
        f"the export of {name} to {target} changed; if intended, regenerate the golden files "
        "with BLOCKPROP_UPDATE_GOLDEN=1 and review the diff"
    )


def test_export_is_deterministic():
    g = graph("cnn")
    assert export_code(g, "pytorch") == export_code(graph("cnn"), "pytorch")
    assert export_code(g, "numpy") == export_code(g.copy(), "numpy")


# --- presets (the list grows as presets are added) ------------------------------------------------
@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_exports_and_the_engine_script_trains_a_step(path, tmp_path, monkeypatch):
    g = engine.load_graph(path)
    place_for(g, monkeypatch, tmp_path / "cache")  # the standard sets: generated files
    for target in ("numpy", "pytorch"):
        compile(export_code(g, target), f"{path.stem}.{target}.py", "exec")
    mod = load_module(write(tmp_path, export_code(g, "numpy")), f"preset_{path.stem}")
    if g.training.get("dataset") is None:
        assert list(mod.build_model().layers) == list(engine.build_model(g).layers)
        return
    ours = next(e for e in mod.make_trainer().run() if e["event"] == "step")
    ref = next(e for e in engine.Trainer.from_graph(g).run() if e["event"] == "step")
    assert ours["loss"] == ref["loss"]


def test_block_variables_never_shadow_the_scripts_own_names():
    """Every top-level name either script defines is reserved, so a block called "add" or
    "train" gets a variable of its own."""
    for name in ("mlp", "cnn", "seq", "seq2"):
        for target in ("numpy", "pytorch"):
            tree = ast.parse(export_code(graph(name), target))
            for node in tree.body:
                names = []
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [(a.asname or a.name).split(".")[0] for a in node.names]
                for n in names:
                    assert n in naming.SCRIPT_NAMES, (target, n)
    # data loaders and optimizer rules that other graphs pull in
    from engine.export import standalone_data
    from engine.optim_rules import RULES

    for fn, _, needs in standalone_data.MAKERS.values():
        assert {fn, *needs} <= naming.SCRIPT_NAMES
    assert {r.__name__ for r in RULES.values()} <= naming.SCRIPT_NAMES
    idents = naming.identifiers(["add", "train", "Net", "split"])
    assert all(v not in naming.SCRIPT_NAMES for v in idents.values())


def test_exported_scripts_pass_the_linter(tmp_path):
    """The scripts are meant to be read and kept: they pass ruff (pyflakes, pycodestyle,
    bugbear, imports) at the project's line length."""
    pytest.importorskip("ruff")
    for name in ("mlp", "cnn", "seq", "seq2", "hostile"):
        for target in ("numpy", "pytorch"):
            write(
                tmp_path,
                export_code(graph(name), target, weights="w.npz", check_weights=False),
                f"{name}_{target}.py",
            )
    r = run(
        [
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,B,UP,I",
            "--target-version",
            "py310",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
