"""Modules (composite blocks): graph format version 2, group / ungroup / make unique, editing a
definition, nesting, analysis through instances, training and both exports, hostile files."""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest

import engine
from engine.errors import BlockPropError, ConfigError, GraphError
from engine.export import export_code
from engine.graph import Graph, load_graph
from engine.modules import edit
from engine.modules.definition import MODULE_KEY, MODULE_TYPE

RES = ["c0", "r0", "d0", "add0"]


def res_graph(blocks: int = 2, filters: int = 4) -> Graph:
    """Input -> residual blocks (conv, relu, conv, add with the block's input) -> Dense."""
    g = Graph("res")
    g.add_node("Input", {"shape": [1, 8, 8]}, (0, 0), node_id="in")
    g.add_node(
        "Conv2D", {"filters": filters, "kernel_size": 3, "padding": "same"}, (50, 0), node_id="stem"
    )
    g.add_edge("in", "stem")
    prev = "stem"
    for k in range(blocks):
        conv = {"filters": filters, "kernel_size": 3, "padding": "same"}
        g.add_node("Conv2D", conv, (100 * k + 100, 0), node_id=f"c{k}")
        g.add_node("Activation", {"fn": "relu"}, (100 * k + 100, 50.5), node_id=f"r{k}")
        g.add_node("Conv2D", conv, (100 * k + 100, 100), node_id=f"d{k}")
        g.add_node("Add", {}, (100 * k + 100, 150), node_id=f"add{k}")
        g.add_edge(prev, f"c{k}")
        g.add_edge(f"c{k}", f"r{k}")
        g.add_edge(f"r{k}", f"d{k}")
        g.add_edge(f"d{k}", f"add{k}", 0)
        g.add_edge(prev, f"add{k}", 1)
        prev = f"add{k}"
    g.add_node("Flatten", {}, (900, 0), node_id="fl")
    g.add_node("Dense", {"units": 10}, (1000, 0), node_id="out")
    g.add_edge(prev, "fl")
    g.add_edge("fl", "out")
    g.set_meta("training", {"dataset": {"name": "digits"}, "seed": 3})
    return g


def two_instances() -> tuple[Graph, str, str]:
    """The residual graph with both blocks instances of one definition "Res"."""
    g = res_graph()
    a = edit.group(g, RES, "Res")
    b = edit.group(g, ["c1", "r1", "d1", "add1"], "Tmp")
    g.set_config(b, {MODULE_KEY: "Res"})
    g.set_module("Tmp", None)
    return g, a, b


def test_group_then_ungroup_gives_back_the_graph_exactly():
    g = res_graph()
    before = g.to_dict()
    params = engine.analyze(g).total_params
    inst = edit.group(g, RES, "Res")
    d = g.to_dict()
    assert d["version"] == 2 and list(d["modules"]) == ["Res"]
    assert g.type_of(inst) == MODULE_TYPE and inst not in RES
    assert [n for n in g.nodes() if n in RES] == []
    assert g.inputs_of(inst) == ["stem"] and g.outputs_of(inst) == ["c1", "add1"]
    a = engine.analyze(g)
    assert a.ok and a.total_params == params and a.shapes[inst] == (4, 8, 8)
    assert a.params[inst] == 2 * (4 * 4 * 9 + 4)
    assert a.flat.params[f"{inst}/c0"] == 4 * 4 * 9 + 4 and a.members[inst][0] == f"{inst}/c0"
    text = engine.summary_text(a)  # app.py check: the instance, then its blocks indented
    assert f"{inst} (module Res)" in text and f"  {inst}/d0 (Conv2D)" in text
    edit.ungroup(g, inst)
    assert g.to_dict() == before
    assert before["version"] == 1 and "modules" not in before


def test_group_refuses_what_cannot_be_one_module():
    g = res_graph()
    with pytest.raises(GraphError, match="one output"):
        edit.group(g, ["d0", "c1"], "X")  # two blocks feed the rest
    with pytest.raises(GraphError, match="Input"):
        edit.group(g, ["in", "stem"], "X")
    edit.group(g, RES, "Res")
    with pytest.raises(GraphError, match="exists already"):
        edit.group(g, ["fl"], "Res")
    with pytest.raises(GraphError, match="one output"):
        edit.group(g, ["c1", "r1", "d1", "fl", "out"], "Y")  # d1 leaves, 'out' ends


def test_editing_a_definition_changes_every_instance():
    g, a, b = two_instances()
    assert g.instances_of("Res") == [a, b]
    sub = edit.definition_graph(g, "Res")
    sub.set_config("c0", {"filters": 4, "kernel_size": 1, "padding": "same"})
    sub.add_node("Dropout", {"rate": 0.5}, (0, 200), node_id="drop")
    sub.remove_edge("r0", "d0")
    sub.add_edge("r0", "drop")
    sub.add_edge("drop", "d0")
    g.set_module("Res", edit.updated_definition(g.modules["Res"], sub))
    an = engine.analyze(g)
    assert an.ok
    for inst in (a, b):
        assert an.flat.params[f"{inst}/c0"] == 4 * 4 + 4  # the 1x1 kernel in both
        assert an.flat.types[f"{inst}/drop"] == "Dropout"
    # exposing a setting: each instance sets its own value
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    assert g.modules["Res"]["params"]["width"]["default"] == 4
    g.set_config(b, {MODULE_KEY: "Res", "width": 8})
    an = engine.analyze(g)
    assert an.flat.shapes[f"{b}/c0"] == (8, 8, 8) and an.flat.shapes[f"{a}/c0"] == (4, 8, 8)
    assert an.ok  # d0 takes the 8 channels and gives back 4, as add0's other input
    with pytest.raises(ConfigError, match=f"{b}/c0"):
        g.set_config(b, {MODULE_KEY: "Res", "width": 0})


def test_make_unique_gives_one_instance_its_own_definition():
    g, a, b = two_instances()
    name = edit.make_unique(g, b)
    assert name == "Res 2" and g.config_of(b)[MODULE_KEY] == name
    sub = edit.definition_graph(g, name)
    sub.set_config("r0", {"fn": "tanh"})
    g.set_module(name, edit.updated_definition(g.modules[name], sub))
    flat = engine.analyze(g).flat
    assert flat is not None
    m = engine.build_model(g)
    assert m.layers[f"{b}/r0"].config["fn"] == "tanh"
    assert m.layers[f"{a}/r0"].config["fn"] == "relu"


def test_nesting_a_stage_of_residual_blocks_trains_and_round_trips(tmp_path):
    g, a, b = two_instances()
    stage = edit.group(g, [a, b], "Stage")
    assert g.modules["Stage"]["output"] == b
    an = engine.analyze(g)
    assert an.ok and an.shapes[stage] == (4, 8, 8)
    assert f"{stage}/{a}/c0" in an.flat.shapes
    path = tmp_path / "g.json"
    g.save(path)
    h = load_graph(path)
    assert h.to_dict() == g.to_dict()
    m = engine.build_model(h, seed=0)
    assert f"{stage}/{b}/d0.weight" in m.params
    tr = engine.Trainer(
        m, engine.data.load_dataset({"name": "digits"}, seed=0), epochs=1, batch_size=16
    )
    seen = None
    for ev in tr.run():
        if ev["event"] == "step":
            seen = ev["grad_rms"]
            break
    assert seen is not None and f"{stage}/{a}/c0" in seen and seen[f"{stage}/{a}/c0"] > 0


def test_version_1_files_load_unchanged_and_newer_versions_are_refused(tmp_path):
    g = res_graph()
    d = g.to_dict()
    assert Graph.from_dict(d).to_dict() == d
    newer = {**d, "version": 3}
    with pytest.raises(GraphError, match="newer BlockProp") as e:
        Graph.from_dict(newer)
    assert "\n" not in str(e.value)
    with pytest.raises(GraphError, match="unknown field 'modules'"):
        Graph.from_dict({**d, "modules": {}})  # version 1 holds no modules


def _v2(modules: dict, nodes: list | None = None) -> dict:
    d = res_graph().to_dict()
    d["version"] = 2
    d["modules"] = modules
    d["nodes"] += nodes or []
    return d


def _def(nodes, output, inputs=(), params=None, edges=()):
    return {
        "nodes": nodes,
        "edges": list(edges),
        "inputs": list(inputs),
        "output": output,
        "params": params or {},
    }


def _inst(nid, module):
    return {"id": nid, "type": MODULE_TYPE, "config": {MODULE_KEY: module}, "pos": [0, 0]}


DENSE = {"id": "x", "type": "Dense", "config": {"units": 2}, "pos": [0, 0]}


@pytest.mark.parametrize(
    "modules, match",
    [
        ({"A": _def([_inst("x", "A")], "x")}, r"contains itself \(A -> A\)"),
        (
            {"A": _def([_inst("x", "B")], "x"), "B": _def([_inst("y", "A")], "y")},
            r"contains itself \(A -> B -> A\)",
        ),
        ({"A": _def([_inst("x", "Nope")], "x")}, "not defined"),
        ({"A": _def([DENSE], "y")}, '"output" must name'),
        ({"A": _def([], "x")}, "at least one block"),
        ({"A": _def([DENSE, DENSE], "x")}, "two inner blocks"),
        ({"A": _def([{**DENSE, "id": "a/b"}], "a/b")}, "must not hold '/'"),
        ({"A": _def([DENSE], "x", inputs=[[{"block": "q", "port": 0}]])}, "does not hold"),
        ({"A": _def([DENSE], "x", params={"module": {"default": 1, "targets": []}})}, "identifier"),
        (
            {"A": _def([DENSE], "x", params={"u": {"default": -1, "targets": [["x", "units"]]}})},
            "units",
        ),
        (
            {"A": _def([DENSE], "x", params={"u": {"default": 1, "targets": [["x", "nope"]]}})},
            "not a setting",
        ),
        ({"A": {**_def([DENSE], "x"), "code": "import os"}}, "unknown field 'code'"),
        ({"A": _def([{**DENSE, "type": "Evil"}], "x")}, "unknown block type"),
        ({"A/B": _def([DENSE], "x")}, "no '/'"),
        ([], "must be an object"),
        ({"A": _def([{**DENSE, "config": {"units": 2, "bogus": 1}}], "x")}, "bogus"),
    ],
)
def test_hostile_definitions_are_refused_in_one_line(modules, match):
    with pytest.raises(BlockPropError, match=match) as e:
        Graph.from_dict(_v2(modules))
    assert "\n" not in str(e.value)


def test_expansion_bombs_and_deep_nesting_are_refused_fast():
    mods = {"L0": _def([{**DENSE, "id": f"b{i}"} for i in range(100)], "b0")}
    for k in range(1, 5):
        mods[f"L{k}"] = _def([_inst(f"b{i}", f"L{k - 1}") for i in range(100)], "b0")
    with pytest.raises(GraphError, match="expands to 1,000,000 blocks"):
        Graph.from_dict(_v2(mods))
    deep = {"D0": _def([DENSE], "x")}
    for k in range(1, 12):
        deep[f"D{k}"] = _def([_inst("x", f"D{k - 1}")], "x")
    with pytest.raises(GraphError, match="nests modules 9 deep"):
        Graph.from_dict(_v2(deep))
    with pytest.raises(ConfigError, match="has no parameter 'units'"):
        Graph.from_dict(
            _v2(
                {"A": _def([DENSE], "x")},
                [{**_inst("m", "A"), "config": {"module": "A", "units": 1}}],
            )
        )


def test_a_problem_inside_an_instance_names_its_path():
    g, a, b = two_instances()
    sub = edit.definition_graph(g, "Res")
    sub.set_config("d0", {"filters": 5, "kernel_size": 3, "padding": "same"})
    g.set_module("Res", edit.updated_definition(g.modules["Res"], sub))
    an = engine.analyze(g)
    assert an.problems[0].block == a and f"'{a}/add0'" in an.problems[0].message
    with pytest.raises(GraphError, match=f"{a}/add0"):
        engine.build_model(g)


def test_numpy_export_of_modules_builds_the_same_model(tmp_path):
    g, a, b = two_instances()
    code = export_code(g, "numpy")
    path = tmp_path / "exported.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("exported_modules", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    got, ref = mod.build_model(), engine.build_model(g, seed=3)
    assert got.params.keys() == ref.params.keys()
    for k, v in ref.params.items():
        np.testing.assert_array_equal(got.params[k], v, err_msg=k)


def test_set_module_refuses_dropping_what_instances_use():
    g, a, b = two_instances()
    with pytest.raises(GraphError, match="still used"):
        g.set_module("Res", None)
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    g.set_config(a, {MODULE_KEY: "Res", "width": 4})
    d = copy.deepcopy(g.modules["Res"])
    d["params"] = {}
    with pytest.raises(ConfigError, match="no parameter 'width'"):
        g.set_module("Res", d)


def test_restore_undoes_a_group_exactly_with_events():
    g = res_graph()
    before = g.to_dict()
    events = []
    g.subscribe(events.append)
    inst = edit.group(g, RES, "Res")
    after = g.to_dict()
    events.clear()
    g.restore(before)
    assert g.to_dict() == before and events
    g.restore(after)
    assert g.to_dict() == after and g.type_of(inst) == MODULE_TYPE
    assert json.loads(json.dumps(after)) == after


def test_pytorch_export_writes_a_class_per_definition_with_the_engines_numbers(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    g, a, b = two_instances()
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    g.set_config(b, {MODULE_KEY: "Res", "width": 6})
    stage = edit.group(g, [a, b], "Stage")
    m = engine.build_model(g, seed=1)
    rng = np.random.default_rng(0)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.1, v.shape)
    engine.save_weights(m, tmp_path / "w.npz")
    code = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert code.count("class ResModule(nn.Module):") == 1
    assert code.count("class StageModule(nn.Module):") == 1
    assert code.count("ResModule(") == 3  # the class and its two instances
    path = tmp_path / "net_modules.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("net_modules", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    assert sum(p.numel() for p in net.parameters()) == m.n_params == engine.analyze(g).total_params
    assert f"{stage}.{b}.c0.weight" in net.state_dict()
    x = rng.standard_normal((4, *m.input_shape)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)
    state = mod.engine_state(net)
    assert sorted(state) == sorted(m.state())


@pytest.mark.parametrize("target", ["numpy", "pytorch"])
def test_hostile_module_names_export_to_inert_code(target, tmp_path, monkeypatch):
    if target == "pytorch":
        pytest.importorskip("torch")
    g = res_graph(blocks=1)
    name = 'x"""); import os; os.system("touch pwned") #'
    inst = edit.group(g, RES, name, node_id="i'); open('pwned', 'w') #")
    with pytest.raises(GraphError, match="invisible"):
        edit.group(g, ["fl"], "bad\u202ename")
    code = export_code(g, target)
    path = tmp_path / f"hostile_{target}.py"
    path.write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location(f"hostile_{target}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.build_model()
    assert not (tmp_path / "pwned").exists()
    assert engine.analyze(g).params[inst] > 0


def test_onnx_export_of_modules_computes_the_engines_outputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from engine.export.onnx.exporter import export_model

    g, a, b = two_instances()
    m = engine.build_model(g, seed=2)
    proto = export_model(g, arrays=m.state())
    assert f"{a}/c0" in {nd.name for nd in proto.graph.node}
    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, *m.input_shape)).astype(np.float32)
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, m.forward(x), rtol=1e-4, atol=1e-4)


def test_a_parameters_setting_edited_in_the_definition_is_its_new_default():
    g, a, b = two_instances()
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    g.set_config(b, {MODULE_KEY: "Res", "width": 6})
    sub = edit.definition_graph(g, "Res")
    assert sub.config_of("c0")["filters"] == 4  # the default, as an instance sees it
    sub.set_config("c0", {**sub.config_of("c0"), "filters": 5})
    g.set_module("Res", edit.updated_definition(g.modules["Res"], sub))
    assert g.modules["Res"]["params"]["width"]["default"] == 5
    flat = engine.analyze(g).flat
    assert flat.shapes[f"{a}/c0"] == (5, 8, 8) and flat.shapes[f"{b}/c0"] == (6, 8, 8)


# --- a hostile v2 file, mutated at random: a Graph or a one-line BlockPropError, nothing else
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.text(max_size=6),
    st.sampled_from(["Res", "c0", "add0", "Module", "module", "filters", "x/y"]),
    st.lists(st.sampled_from(["c0", "filters", 0, 1]), max_size=3),
    st.dictionaries(st.sampled_from(["block", "port", "default", "targets"]), st.integers(0, 2)),
)


def _mutation_paths(d, path=()):
    """Every (container, key) inside the "modules" part."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        yield path + (k,)
        yield from _mutation_paths(v, path + (k,))


def _modular_file() -> dict:
    g, a, b = two_instances()
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    edit.group(g, [a, b], "Stage")
    return g.to_dict()


_BASE_V2 = _modular_file()
_PATHS = [("modules", *p) for p in _mutation_paths(_BASE_V2["modules"])] + [
    ("nodes", i, *p)
    for i, nd in enumerate(_BASE_V2["nodes"])
    if nd["type"] == MODULE_TYPE
    for p in _mutation_paths(nd)
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES, st.booleans()), min_size=1, max_size=3))
def test_mutated_module_definitions_load_or_fail_in_one_line(mutations):
    d = copy.deepcopy(_BASE_V2)
    for path, value, delete in mutations:
        node = d
        try:
            for k in path[:-1]:
                node = node[k]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        g = Graph.from_dict(d)
    except BlockPropError as e:
        assert "\n" not in str(e)
        return
    a = engine.analyze(g)  # whatever loaded can be analysed (problems, never an exception)
    assert a.order


def test_a_module_instance_can_be_an_extra_head():
    g = res_graph(blocks=1)
    g.add_node("GlobalAvgPool2D", {}, (500, 300), node_id="gap")
    g.add_node("Dense", {"units": 10}, (600, 300), node_id="aux")
    g.add_edge("stem", "gap")
    g.add_edge("gap", "aux")
    head = edit.group(g, ["gap", "aux"], "AuxHead")
    g.set_meta("training", {**g.training, "heads": [{"block": head, "weight": 0.3}]})
    a = engine.analyze(g)
    assert a.ok, a.problems
    assert a.heads == {head: 0.3} and a.output_id == "out"
    m = engine.build_model(g)
    assert m.heads == {f"{head}/aux": 0.3}
