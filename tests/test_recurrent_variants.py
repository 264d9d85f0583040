"""The recurrent cells' lecture variants: LSTM peepholes (lecture 003: the gates see the cell),
the lecture's GRU (reset before the product, h = (1 - z) h_prev + z n) beside PyTorch's, and
one bias per gate (the lectures' parameter counts). Backward against central differences,
PyTorch parity through the exported module (forward and every gradient), parameter counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gradcheck import check_layer

import engine
from engine.export import export_code
from engine.layers import GRU, LSTM, RNN

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = [
    (LSTM, {"peepholes": True}),
    (LSTM, {"peepholes": True, "single_bias": True}),
    (LSTM, {"single_bias": True}),
    (GRU, {"convention": "lecture"}),
    (GRU, {"convention": "lecture", "single_bias": True}),
    (GRU, {"single_bias": True}),
    (RNN, {"single_bias": True}),
    (RNN, {"single_bias": True, "nonlinearity": "relu"}),
]


def vid(v):
    cls, cfg = v
    return cls.__name__ + "-" + "-".join(f"{k}={w}" for k, w in cfg.items())


def perturbed(layer, rng):
    """Every parameter away from its start (peepholes start at 0, biases at 0 or 1)."""
    for v in layer.params.values():
        v[...] = rng.uniform(-0.8, 0.8, v.shape)
    return layer


@pytest.mark.parametrize("seq", [False, True])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("variant", VARIANTS, ids=vid)
def test_gradients_match_central_differences(variant, bi, seq):
    cls, cfg = variant
    rng = np.random.default_rng(3)
    layer = cls(hidden_size=3, bidirectional=bi, return_sequences=seq, **cfg)
    layer.build((5, 2), rng).astype(np.float64)
    perturbed(layer, rng)
    errors = check_layer(layer, rng.standard_normal((3, 5, 2)))
    assert set(errors) == {*layer.params, "x0"}


def test_parameters_of_each_option():
    lstm = LSTM(hidden_size=4, peepholes=True, single_bias=True).build((6, 3))
    assert sorted(lstm.params) == [
        "bias_ih",
        "weight_cf",
        "weight_ci",
        "weight_co",
        "weight_hh",
        "weight_ih",
    ]
    assert lstm.params["weight_ci"].shape == (4,)
    assert not np.any(lstm.params["weight_co"])  # peepholes start closed: a plain LSTM
    np.testing.assert_array_equal(lstm.params["bias_ih"][4:8], 1.0)  # the forget gate's start
    assert LSTM.summary({"hidden_size": 4, "single_bias": True}) == "4 last 1 bias"
    assert GRU.summary({"hidden_size": 4, "convention": "lecture"}) == "4 last lecture"
    assert "update gate: 1 KEEPS the old state" in GRU.__doc__
    assert "update gate: 1 TAKES the candidate" in GRU.__doc__


def test_peepholes_at_zero_are_the_plain_lstm_and_open_they_differ():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 3))
    plain = LSTM(hidden_size=4, return_sequences=True).build((6, 3), np.random.default_rng(1))
    peep = LSTM(hidden_size=4, return_sequences=True, peepholes=True)
    peep.build((6, 3), np.random.default_rng(1))
    for k, v in plain.params.items():
        peep.params[k][...] = v
    np.testing.assert_allclose(peep.forward(x), plain.forward(x), atol=1e-6)
    peep.params["weight_cf"][...] = 2.0
    assert np.abs(peep.forward(x) - plain.forward(x)).max() > 1e-2


def test_the_two_gru_conventions_are_different_cells():
    """Same weights, different cells: the lecture's resets before W_hn and swaps z's roles.
    Checked by hand for one step from h_0 = 0 where they must agree only if z = 1/2 and W_hn
    plays no part: with h_0 = 0 the reset has nothing to act on, so h_1 = (1 - z) n (PyTorch)
    and z n (lecture); with biases 0 and x giving z = sigma(0) = 1/2, they are equal."""
    g1 = GRU(hidden_size=2).build((1, 1))
    g2 = GRU(hidden_size=2, convention="lecture").build((1, 1))
    for g in (g1, g2):
        g.params["weight_ih"][...] = np.array([[0.3], [-0.2], [0.0], [0.0], [0.5], [1.0]])
    x = np.array([[[1.0]]], np.float32)
    np.testing.assert_allclose(g1.forward(x), g2.forward(x), atol=1e-7)  # z = 1/2: equal
    n = np.tanh(np.array([0.5, 1.0]))
    np.testing.assert_allclose(g1.forward(x)[0], 0.5 * n, atol=1e-6)
    g1.params["weight_ih"][2:4] = 1.0  # z = sigma(1): now (1 - z) n against z n
    g2.params["weight_ih"][2:4] = 1.0
    z = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(g1.forward(x)[0], (1 - z) * n, atol=1e-6)
    np.testing.assert_allclose(g2.forward(x)[0], z * n, atol=1e-6)


def variant_graph() -> engine.Graph:
    g = engine.Graph(name="variants")
    g.add_node("Input", {"shape": [6, 2]}, node_id="in")
    g.add_node(
        "LSTM",
        {"hidden_size": 4, "return_sequences": True, "peepholes": True, "bidirectional": True},
        node_id="peep",
    )
    g.add_node(
        "GRU",
        {"hidden_size": 3, "return_sequences": True, "convention": "lecture", "single_bias": True},
        node_id="gru",
    )
    g.add_node("RNN", {"hidden_size": 3, "single_bias": True}, node_id="rnn")
    g.add_node("Dense", {"units": 2}, node_id="out")
    for s, t in (("in", "peep"), ("peep", "gru"), ("gru", "rnn"), ("rnn", "out")):
        g.add_edge(s, t)
    return g


def test_pytorch_export_matches_forward_and_every_gradient(tmp_path):
    torch = pytest.importorskip("torch")
    g = variant_graph()
    m = engine.build_model(g, seed=4)
    rng = np.random.default_rng(5)
    for layer in m.layers.values():
        perturbed(layer, rng)
    engine.save_weights(m, tmp_path / "w.npz")
    script = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert "class RecurrentLoop(nn.Module)" in script
    path = tmp_path / "variants.py"
    path.write_text(script, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("variants", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().double()
    x = rng.standard_normal((4, 6, 2))
    m.astype(np.float64)
    want = m.forward(x, training=True)
    dout = rng.standard_normal(want.shape)
    m.backward(dout)
    out = net(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), want, atol=1e-10)
    (out * torch.from_numpy(dout)).sum().backward()
    named = dict(net.named_parameters())
    for key, grad in m.grads.items():
        block, name = key.split(".", 1)
        got = named[f"{mod.NAME_MAP[block]}.{name}"].grad.numpy()
        np.testing.assert_allclose(got, grad, atol=1e-9, err_msg=key)
    assert len(named) == len(m.grads)  # no bias_hh where single_bias drops it
    fresh = mod.Net()
    mod.init_weights(fresh)
    assert torch.all(fresh.peep.bias_ih[4:8] == 1.0) and torch.all(fresh.peep.weight_ci == 0)


def test_single_bias_gives_the_lectures_parameter_count():
    """adding_lstm: LSTM(64) on 2 features, then Dense(1). The lecture's formula
    4 (H (F + H) + H) = 4 (64 * 66 + 64) = 17,152 for the LSTM, + 65 for the Dense = 17,217;
    PyTorch's second bias adds 4H = 256: 17,473."""
    g = engine.load_graph(ROOT / "presets" / "adding_lstm.json")
    assert engine.analyze(g).total_params == 17_473
    [lstm] = [n for n in g.nodes() if g.type_of(n) == "LSTM"]
    g.set_config(lstm, {**g.config_of(lstm), "single_bias": True})
    a = engine.analyze(g)
    assert a.total_params == 17_217
    assert a.params[lstm] == 4 * (64 * 66 + 64)


def test_the_summary_explains_pytorchs_second_bias():
    g = engine.load_graph(ROOT / "presets" / "adding_lstm.json")
    [lstm] = [n for n in g.nodes() if g.type_of(n) == "LSTM"]
    text = engine.summary_text(g)
    assert "Trainable params: 17,473" in text
    assert (
        f"Note: {lstm} (LSTM): 256 of its 17,408 params are PyTorch's second bias b_hh "
        "(b_ih + b_hh act as one); the lectures count one bias per gate: 17,152 with single_bias"
    ) in text
    g.set_config(lstm, {**g.config_of(lstm), "single_bias": True})
    text = engine.summary_text(g)
    assert "Trainable params: 17,217" in text and "Note:" not in text


def test_the_summary_panel_shows_the_note_beside_the_block(qtbot):
    from gui.summary import NOTE, PARAMS, SummaryPanel

    g = engine.load_graph(ROOT / "presets" / "adding_lstm.json")
    [lstm] = [n for n in g.nodes() if g.type_of(n) == "LSTM"]
    panel = SummaryPanel()
    qtbot.addWidget(panel)
    panel.set_analysis(engine.analyze(g))
    rows = {panel.table.item(r, 0).text(): r for r in range(panel.table.rowCount())}
    note = panel.table.item(rows[lstm], NOTE)
    assert note.text().startswith("256 of its 17,408 params are PyTorch's second bias b_hh")
    assert note.toolTip() == note.text()
    assert panel.table.item(rows[lstm], PARAMS).text() == "17,408"
    assert all(panel.table.item(r, NOTE).text() == "" for n, r in rows.items() if n != lstm)


def test_onnx_export_runs_the_variants_like_the_engine(tmp_path):
    """Peepholes are ONNX LSTM's P input; the lecture's GRU is ONNX's linear_before_reset=0
    GRU with the z rows negated (z' = 1 - z); one bias: Rb = 0."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx

    g = variant_graph()
    m = engine.build_model(g, seed=4)
    rng = np.random.default_rng(6)
    for layer in m.layers.values():
        perturbed(layer, rng)
    engine.save_weights(m, tmp_path / "w.npz")
    data = export_onnx(g, str(tmp_path / "w.npz"))
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("convention", "label"),
    [
        ("pytorch", "update gate z (PyTorch's GRU: 1 keeps h_prev) (units x time)"),
        ("lecture", "update gate z (lecture's GRU: 1 takes n) (units x time)"),
    ],
)
def test_the_gates_panel_names_the_grus_convention(qtbot, convention, label):
    pytest.importorskip("pyqtgraph")
    from gui.training.panels.activations import ActivationsPanel

    class Ctrl:
        graph = engine.Graph()

    Ctrl.graph.add_node("Input", {"shape": [5, 2]}, node_id="in")
    Ctrl.graph.add_node("GRU", {"hidden_size": 3, "convention": convention}, node_id="gru")
    panel = ActivationsPanel(Ctrl())
    qtbot.addWidget(panel)
    assert panel._gru_convention("gru") == convention
    assert panel._gru_convention("in") is None and panel._gru_convention("gone") is None
    panel._build("vec", ["r", "z", "n"], panel._gru_convention("gru"))
    texts = [getattr(i, "text", None) for i in panel.view.ci.items]
    assert label in texts and "reset gate r (units x time)" in texts
