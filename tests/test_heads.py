"""Several outputs (engine.heads): extra heads with their loss weights, from the graph file to the
trainer's events and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.analysis import analyze
from engine.errors import ConfigError
from engine.graph import Graph
from engine.heads import HeadLosses, check_heads
from engine.model import build_model
from engine.trainer import Trainer
from engine.training_spec import check_training
from tests.gradcheck import numeric_grad, rel_error


def two_heads(weight: float = 0.3, epochs: int = 1) -> Graph:
    """Input -> Flatten -> Dense 16 -> tanh -> Dense 10 (main), with Dense 10 'aux' on the
    trunk's Dense."""
    g = Graph(
        "two heads",
        training={
            "dataset": {"name": "digits"},
            "epochs": epochs,
            "batch_size": 64,
            "optimizer": {"name": "adam", "lr": 0.01},
            "heads": [{"block": "aux", "weight": weight}],
        },
    )
    g.add_node("Input", {"shape": [1, 8, 8]}, node_id="in")
    g.add_node("Flatten", {}, node_id="flat")
    g.add_node("Dense", {"units": 16}, node_id="trunk")
    g.add_node("Activation", {"fn": "tanh"}, node_id="act")
    g.add_node("Dense", {"units": 10}, node_id="out")
    g.add_node("Dense", {"units": 10}, node_id="aux")
    for s, t in [("in", "flat"), ("flat", "trunk"), ("trunk", "act"), ("act", "out")]:
        g.add_edge(s, t)
    g.add_edge("trunk", "aux")
    return g


def test_analysis_takes_listed_ends_as_heads():
    a = analyze(two_heads())
    assert a.ok, a.problems
    assert a.output_id == "out" and a.heads == {"aux": 0.3}
    g = two_heads()
    g.set_meta("training", {k: v for k, v in g.training.items() if k != "heads"})
    a = analyze(g)  # without "heads" two ends are still a problem
    assert not a.ok and "has 2 ends" in str(a.problems[0])


@pytest.mark.parametrize(
    "heads, said",
    [
        ("aux", "'heads' must be a list"),
        ([{"block": "aux", "weight": -1}], "block 'aux': training: head: 'weight' must be >= 0"),
        ([{"block": "aux", "weight": float("nan")}], "'weight' must be a number"),
        ([{"block": "aux", "weight": 1e300}], "'weight' must be >= 0 and <= 1e+06"),
        ([{"block": "aux", "weight": True}], "'weight' must be a number"),
        ([{"block": "aux", "code": "rm -rf"}], "'code' is no setting of a head"),
        ([{"block": "aux"}, {"block": "aux"}], "listed twice"),
        ([{"block": ["x"]}], "item 0: 'block' must be the id of a block"),
        ([{"block": "a\x1b[2J"}], "item 0: 'block' must be the id of a block"),
        ([7], "item 0 must be an object"),
        ([{"block": "aux"}] * 65, "at most 64"),
    ],
)
def test_hostile_heads_refused_in_one_line(heads, said):
    with pytest.raises(ConfigError) as e:
        check_heads(heads)
    assert said in str(e.value) and "\n" not in str(e.value)
    g = two_heads()
    g.set_meta("training", {**g.training, "heads": heads})
    a = analyze(g)  # the canvas lists it as a problem, no traceback
    assert not a.ok and any(said in str(p) for p in a.problems)
    with pytest.raises(ConfigError):
        check_training({**g.training})


def test_heads_must_be_ends_of_the_graph():
    g = two_heads()
    g.set_meta("training", {**g.training, "heads": [{"block": "trunk"}]})
    msgs = [str(p) for p in analyze(g).problems]
    assert any("block 'trunk': listed as an output head" in m and "no successor" in m for m in msgs)
    g.set_meta("training", {**g.training, "heads": [{"block": "nope"}]})
    assert any(
        "names block 'nope', which is not in the graph" in str(p) for p in analyze(g).problems
    )
    g.set_meta("training", {**g.training, "heads": [{"block": "aux"}, {"block": "out"}]})
    assert any("one end must stay the main output" in str(p) for p in analyze(g).problems)


def test_check_training_keeps_heads_and_defaults_the_weight():
    spec = check_training({"dataset": "digits", "heads": [{"block": "aux"}]})
    assert spec["heads"] == [{"block": "aux", "weight": 1.0}]
    assert "heads" not in check_training({"dataset": "digits"})


def test_gradient_of_the_weighted_total_wrt_the_trunk():
    """d(L_main + 0.3 L_aux)/d(trunk weights) by backward from both heads = central
    differences (float64); the trunk gets both heads' gradients summed."""
    model = build_model(two_heads(0.3), seed=1).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 8, 8))
    y = rng.integers(0, 10, 5)
    hl = HeadLosses(model, "cross_entropy")

    def total() -> float:
        return hl.total(hl.batch_losses(model.forward(x, training=True), y))

    loss, _, per_head = hl.forward_backward(x, y, True, np.arange(5))
    assert loss == pytest.approx(per_head["out"] + 0.3 * per_head["aux"])
    for name in ("trunk.weight", "trunk.bias", "aux.weight", "out.weight"):
        analytic = model.grads[name].copy()
        numeric = numeric_grad(total, model.params[name])
        assert rel_error(analytic, numeric) < 1e-6, name
    # and the aux head really reaches the trunk: its gradient differs from the main one alone
    hl.losses["out"].forward(model.forward(x, training=True), y)
    model.backward(hl.losses["out"].backward())
    main_only = model.grads["trunk.weight"].copy()
    hl.forward_backward(x, y, True, np.arange(5))
    assert not np.allclose(main_only, model.grads["trunk.weight"])


def test_model_forward_returns_the_main_output_and_keeps_the_heads():
    model = build_model(two_heads())
    x = np.zeros((3, 1, 8, 8), np.float32)
    out = model.forward(x)
    assert out.shape == (3, 10)
    np.testing.assert_array_equal(out, model.block_outputs(x)["out"])
    assert set(model.head_outputs) == {"aux"}
    np.testing.assert_array_equal(model.head_outputs["aux"], model.block_outputs(x)["aux"])


def test_training_reports_each_heads_loss_and_they_fall():
    t = Trainer.from_graph(two_heads(epochs=3), processes="auto")
    assert t.processes == 1
    events = list(t.run())
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert set(steps[0]["heads"]) == {"out", "aux"}
    s = steps[0]
    assert s["loss"] == pytest.approx(s["heads"]["out"] + 0.3 * s["heads"]["aux"], rel=1e-6)
    for h in ("out", "aux"):
        assert epochs[-1]["train_heads"][h] < 0.5 * epochs[0]["train_heads"][h]
        assert epochs[-1]["val_heads"][h] < epochs[0]["val_heads"][h]
    v = epochs[-1]
    assert v["val_loss"] == pytest.approx(v["val_heads"]["out"] + 0.3 * v["val_heads"]["aux"])
    assert v["val_acc"] > 0.8
    assert events[-1]["reason"] == "finished"


def test_a_head_that_does_not_fit_the_targets_is_named():
    g = two_heads()
    g.set_config("aux", {"units": 7})
    with pytest.raises(Exception) as e:
        Trainer.from_graph(g)
    assert "block 'aux'" in str(e.value) and "10 classes" in str(e.value)


def test_single_output_events_unchanged():
    g = two_heads()
    g.remove_node("aux")
    g.set_meta("training", {k: v for k, v in g.training.items() if k != "heads"})
    events = list(Trainer.from_graph(g).run())
    assert "heads" not in events[0] and "train_heads" not in events[-2]


def test_cli_train_prints_each_head(tmp_path, capsys):
    from engine.cli import main

    path = tmp_path / "g.json"
    two_heads().save(path)
    log = tmp_path / "log.jsonl"
    assert main(["train", str(path), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "heads out " in out and " aux " in out
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert any("heads" in e for e in lines if e.get("event") == "step")


def test_a_head_may_be_a_module_instance():
    from engine.modules import edit

    g = two_heads()
    inst = edit.group(g, ["aux"], "AuxHead", node_id="auxm")
    g.set_meta("training", {**g.training, "heads": [{"block": inst, "weight": 0.3}]})
    a = analyze(g)
    assert a.ok, a.problems
    assert a.heads == {inst: 0.3}
    t = Trainer.from_graph(g)
    step = next(iter(t.run()))
    (flat_id,) = set(step["heads"]) - {"out"}
    assert flat_id.startswith(f"{inst}/")


def _exported(g: Graph, tmp_path, weights=None):
    import importlib.util

    from engine.export import export_code

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = tmp_path / "net.py"
    path.write_text(export_code(g, "pytorch", weights=weights), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("net_heads", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return torch, mod


@pytest.mark.parametrize("modular", [False, True])
def test_pytorch_export_weights_the_heads_as_the_engine(tmp_path, modular):
    """Same weights, same batch: the exported total_loss (main + 0.3 x aux, heads returned by
    forward while training) equals the engine's within 1e-5; in eval mode only the main."""
    from engine.modules import edit
    from engine.weights import save_weights

    g = two_heads()
    if modular:  # the head as a module instance
        inst = edit.group(g, ["aux"], "AuxHead", node_id="auxm")
        g.set_meta("training", {**g.training, "heads": [{"block": inst, "weight": 0.3}]})
    model = build_model(g, seed=3)
    wpath = tmp_path / "w.npz"
    save_weights(model, wpath)
    torch, mod = _exported(g, tmp_path, weights=str(wpath))
    net = mod.build_model()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    hl = HeadLosses(model, "cross_entropy")
    ours = hl.total(hl.batch_losses(model.forward(x, training=True), y))
    net.train()
    out, extra = net(torch.from_numpy(x))
    assert set(extra) == set(model.heads)
    theirs = mod.total_loss(out, extra, torch.from_numpy(y)).item()
    assert theirs == pytest.approx(ours, rel=1e-5, abs=1e-5)
    net.eval()
    main = net(torch.from_numpy(x))
    np.testing.assert_allclose(main.detach().numpy(), model.forward(x), rtol=1e-5, atol=1e-5)


def test_onnx_gives_the_main_output_then_the_heads_and_imports_them_back():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from engine.export.onnx import export_onnx
    from engine.export.onnx.importer import import_model

    g = two_heads(0.25)
    model = build_model(g, seed=2)
    data = export_onnx(g, arrays=model.state())
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["out", "aux"]
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    main, aux = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(main, model.forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(aux, model.head_outputs["aux"], rtol=1e-5, atol=1e-5)
    back, _ = import_model(onnx.load_from_string(data), "two.onnx")
    assert back.training["heads"] == [{"block": "aux", "weight": 0.25}]
    assert analyze(back).heads == {"aux": 0.25}


def test_explanations_read_the_main_output_only():
    """Saliency of a two-head graph = that of the same graph without the head (each block's
    initial weights depend only on its id and the seed)."""
    from engine.explain import saliency

    g = two_heads()
    single = two_heads()
    single.remove_node("aux")
    single.set_meta("training", {k: v for k, v in single.training.items() if k != "heads"})
    x = np.random.default_rng(4).standard_normal((1, 8, 8)).astype(np.float32)
    a = saliency(build_model(g, seed=5), x, cls=3)
    b = saliency(build_model(single, seed=5), x, cls=3)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_allclose(a.map, b.map, rtol=1e-6, atol=1e-9)


def test_a_second_end_offers_to_become_an_extra_output():
    from engine.data_fit import apply_training_fix, fix_words

    g = two_heads()
    g.set_meta("training", {k: v for k, v in g.training.items() if k != "heads"})
    problems = analyze(g).problems
    assert {p.block for p in problems} == {"out", "aux"}
    assert "make it an extra output (the training setting 'heads')" in str(problems[0])
    fix = next(p.fix for p in problems if p.block == "aux")
    assert fix_words(fix) == "Make 'aux' an extra output (loss weight 0.3)"
    g.set_meta("training", apply_training_fix(g.training, fix))
    a = analyze(g)
    assert a.ok and a.heads == {"aux": 0.3} and a.output_id == "out"
    # a third end: the fix keeps the heads already listed
    g.add_node("Dense", {"units": 10}, node_id="aux2")
    g.add_edge("act", "aux2")
    fix = next(p.fix for p in analyze(g).problems if p.block == "aux2")
    g.set_meta("training", apply_training_fix(g.training, fix))
    assert analyze(g).heads == {"aux": 0.3, "aux2": 0.3}


def test_cli_check_names_a_bad_head_once(tmp_path, capsys):
    from engine.cli import main

    g = two_heads()
    g.set_meta("training", {**g.training, "heads": [{"block": "aux", "weight": "x"}]})
    path = tmp_path / "bad.json"
    g.save(path)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    said = [x for x in lines if "training: head: 'weight' must be a number" in x]
    assert len(said) == 1 and "block 'aux'" in said[0]
