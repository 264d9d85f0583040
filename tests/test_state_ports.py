"""Recurrent state ports (issue 17): an initial state on port 1 of RNN / LSTM / GRU, and the
LSTM's return_state output [h_T; c_T], so an encoder's final state starts a decoder."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from gradcheck import check_layer

import engine
from engine.errors import ConfigError, ShapeError
from engine.export import export_code
from engine.layers import GRU, LSTM, RNN

pytest_plugins = ["gui_support"]  # fixtures: make_window

N, T, F, H = 3, 4, 2, 3

VARIANTS = [
    (RNN, {}),
    (RNN, {"nonlinearity": "relu"}),
    (LSTM, {}),
    (LSTM, {"peepholes": True}),
    (GRU, {}),
    (GRU, {"convention": "lecture"}),
]


def _state_size(cls, bidirectional):
    return (2 if cls is LSTM else 1) * H * (2 if bidirectional else 1)


def _randomize(layer, rng):
    for v in layer.params.values():
        v[...] = rng.standard_normal(v.shape) * 0.5


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("seq", [False, True])
@pytest.mark.parametrize(("cls", "cfg"), VARIANTS)
def test_initial_state_gradients_match_central_differences(cls, cfg, seq, bidirectional):
    rng = np.random.default_rng(1)
    s = _state_size(cls, bidirectional)
    layer = cls(hidden_size=H, return_sequences=seq, bidirectional=bidirectional, **cfg)
    layer.build([(T, F), (s,)], rng)
    _randomize(layer, rng)  # peepholes start at 0: make every path count
    x = rng.standard_normal((N, T, F))
    h0 = rng.standard_normal((N, s))
    errors = check_layer(layer, [x, h0])
    assert {"x0", "x1"} <= set(errors)  # the state's gradient was checked too


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("given", [False, True])
@pytest.mark.parametrize("peepholes", [False, True])
def test_lstm_return_state_gradients(bidirectional, given, peepholes):
    rng = np.random.default_rng(2)
    layer = LSTM(hidden_size=H, return_state=True, bidirectional=bidirectional, peepholes=peepholes)
    s = _state_size(LSTM, bidirectional)
    layer.build([(T, F), (s,)] if given else (T, F), rng)
    _randomize(layer, rng)
    assert layer.out_shape == (s,)
    x = rng.standard_normal((N, T, F))
    check_layer(layer, [x, rng.standard_normal((N, s))] if given else x)


def test_a_zero_state_is_the_block_without_one():
    rng = np.random.default_rng(3)
    for cls, cfg in VARIANTS:
        a = cls(hidden_size=H, return_sequences=True, **cfg).build((T, F), rng)
        b = cls(hidden_size=H, return_sequences=True, **cfg).build(
            [(T, F), (_state_size(cls, False),)]
        )
        for k in a.params:
            b.params[k][...] = a.params[k]
        x = rng.standard_normal((N, T, F)).astype(np.float32)
        zero = np.zeros((N, _state_size(cls, False)), np.float32)
        np.testing.assert_array_equal(a.forward(x), b.forward([x, zero]))
        d = rng.standard_normal((N, T, H)).astype(np.float32)
        dx_a = a.backward(d)
        dx_b, dstate = b.backward(d)
        np.testing.assert_allclose(dx_a, dx_b, rtol=1e-6, atol=1e-7)
        assert dstate.shape == zero.shape and np.abs(dstate).max() > 0


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_matches_pytorch_with_initial_state(cell, bidirectional):
    torch = pytest.importorskip("torch")
    cls = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}[cell]
    rng = np.random.default_rng(4)
    d = 2 if bidirectional else 1
    s = _state_size(cls, bidirectional)
    kw = {"return_state": True} if cell == "LSTM" else {}
    layer = cls(hidden_size=H, bidirectional=bidirectional, **kw).build([(T, F), (s,)], rng)
    layer.astype(np.float64)
    _randomize(layer, rng)
    ref = getattr(torch.nn, cell)(F, H, batch_first=True, bidirectional=bidirectional).double()
    with torch.no_grad():
        for k, v in layer.params.items():
            name = (
                k.replace("_reverse", "") + "_l0" + ("_reverse" if k.endswith("_reverse") else "")
            )
            getattr(ref, name).copy_(torch.from_numpy(v))
    x = rng.standard_normal((N, T, F))
    st = rng.standard_normal((N, s))
    out = layer.forward([x, st])
    dout = rng.standard_normal(out.shape)
    dx, dst = layer.backward(dout)

    tx = torch.tensor(x, requires_grad=True)
    tst = torch.tensor(st, requires_grad=True)
    h0 = tst[:, : d * H].reshape(-1, d, H).transpose(0, 1).contiguous()
    if cell == "LSTM":
        c0 = tst[:, d * H :].reshape(-1, d, H).transpose(0, 1).contiguous()
        _, (hn, cn) = ref(tx, (h0, c0))
        tout = torch.cat([*hn, *cn], dim=1)
    else:
        _, hn = ref(tx, h0)
        tout = torch.cat(list(hn), dim=1)
    (tout * torch.from_numpy(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dst, tst.grad.numpy(), atol=1e-10)
    for k, v in layer.grads.items():
        name = k.replace("_reverse", "") + "_l0" + ("_reverse" if k.endswith("_reverse") else "")
        np.testing.assert_allclose(v, getattr(ref, name).grad.numpy(), atol=1e-10, err_msg=k)


def test_bad_settings_and_state_shapes_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="exclude each other"):
        LSTM(name="enc", hidden_size=4, return_state=True, return_sequences=True)
    with pytest.raises(ShapeError, match=r"port 1 takes the initial state \(8,\) \(\[h_0; c_0\]"):
        LSTM(name="dec", hidden_size=4).build([(5, 2), (4,)])
    with pytest.raises(ShapeError, match=r"GRU's port 1 takes the initial state \(8,\)"):
        GRU(name="dec", hidden_size=4, bidirectional=True).build([(5, 2), (4,)])


def encoder_decoder(cell="LSTM", bidirectional=False, **dec):
    """Input -> encoder (final state) -> the decoder's port 1; the Input is also the decoder's
    sequence (port 0). The decoder outputs every step."""
    g = engine.Graph(name="encoder-decoder")
    g.add_node("Input", {"shape": [6, 3]}, node_id="in")
    enc = {"hidden_size": 4, "bidirectional": bidirectional}
    if cell == "LSTM":
        enc["return_state"] = True
    g.add_node(cell, enc, node_id="enc")
    g.add_node(
        cell,
        {"hidden_size": 4, "return_sequences": True, "bidirectional": bidirectional, **dec},
        node_id="dec",
    )
    for s, t, port in (("in", "enc", 0), ("in", "dec", 0), ("enc", "dec", 1)):
        g.add_edge(s, t, port)
    return g


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_an_encoder_state_starts_the_decoder_in_a_model(cell):
    g = encoder_decoder(cell, bidirectional=True)
    a = engine.analyze(g)
    assert a.ok, a.problems
    s = (2 if cell == "LSTM" else 1) * 8
    assert a.shapes["enc"] == (s,) and a.in_shapes["dec"] == [(6, 3), (s,)]
    m = engine.build_model(g, seed=1).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((5, 6, 3))
    out = m.forward(x)
    zero = m.layers["dec"].forward([x, np.zeros((5, s))])
    assert np.abs(out - zero).max() > 1e-3  # the encoder's state changed the decoder's run
    out = m.forward(x)
    R = np.random.default_rng(1).standard_normal(out.shape)
    m.backward(R)
    g_enc = m.grads["enc.weight_ih"].copy()
    eps, p = 1e-6, m.params["enc.weight_ih"]
    p[0, 0] += eps
    up = np.sum(m.forward(x) * R)
    p[0, 0] -= 2 * eps
    down = np.sum(m.forward(x) * R)
    p[0, 0] += eps
    assert abs((up - down) / (2 * eps) - g_enc[0, 0]) < 1e-6 * max(1.0, abs(g_enc[0, 0]))


def test_a_wrong_state_is_one_problem_naming_the_decoder():
    g = encoder_decoder("LSTM")
    g.set_config("enc", {**g.config_of("enc"), "return_state": False})
    a = engine.analyze(g)
    assert not a.ok
    (p,) = a.problems
    assert p.block == "dec" and "port 1 takes the initial state (8,)" in p.message


@pytest.mark.parametrize("variant", [{}, {"peepholes": True}, {"bidirectional": True}])
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_pytorch_export_matches_the_engine(cell, variant, tmp_path):
    torch = pytest.importorskip("torch")
    if "peepholes" in variant and cell != "LSTM":
        variant = {"single_bias": True}  # the loop module (RecurrentLoop) for RNN/GRU too
    bi = variant.pop("bidirectional", False)
    g = encoder_decoder(cell, bidirectional=bi, **variant)
    if variant:
        g.set_config("enc", {**g.config_of("enc"), **variant})
    m = engine.build_model(g, seed=2)
    engine.save_weights(m, tmp_path / "w.npz")
    script = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    path = tmp_path / "encdec.py"
    path.write_text(script, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("encdec", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    x = np.random.default_rng(3).standard_normal((4, 6, 3)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "variant", [{}, {"peepholes": True}, {"bidirectional": True}, {"convention": "lecture"}]
)
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_onnx_export_runs_like_the_engine(cell, variant, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from engine.export.onnx import export_onnx

    variant = dict(variant)
    if ("peepholes" in variant and cell != "LSTM") or ("convention" in variant and cell != "GRU"):
        variant = {"single_bias": True}
    bi = variant.pop("bidirectional", False)
    g = encoder_decoder(cell, bidirectional=bi, **variant)
    g.set_config("enc", {**g.config_of("enc"), **variant})
    m = engine.build_model(g, seed=4)
    rng = np.random.default_rng(5)
    for v in m.params.values():  # peepholes start at 0: every path counts
        v[...] = rng.standard_normal(v.shape) * 0.5
    engine.save_weights(m, tmp_path / "w.npz")
    s = ort.InferenceSession(
        export_onnx(g, str(tmp_path / "w.npz")), providers=["CPUExecutionProvider"]
    )
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    got = s.run(None, {s.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("state_first", [False, True])
def test_the_canvas_offers_the_state_port_and_wires_it(make_window, state_first):
    from gui_helpers import settle

    w = make_window()
    g = w.graph
    g.add_node("Input", {"shape": [6, 3]}, node_id="in")
    g.add_node("LSTM", {"hidden_size": 4, "return_state": True}, node_id="enc")
    g.add_node("LSTM", {"hidden_size": 4, "return_sequences": True}, node_id="dec")
    g.add_edge("in", "enc")
    settle(w)
    block = w.scene.blocks["dec"]
    assert len(block.in_ports) == 1  # nothing wired yet: the sequence's port
    wires = [("enc", 1), ("in", 0)] if state_first else [("in", 0), ("enc", 1)]
    for src, port in wires:
        v = w.controller.connect(src, "dec", port)
        assert v.ok, v.reason
        settle(w)
        assert len(block.in_ports) == 2  # the state's port 1 is offered, and no more
    assert sorted((s, p) for s, _, p in g.in_edges("dec")) == [("enc", 1), ("in", 0)]
    assert w.live.flush().ok
    g.add_node("Dense", {"units": 5}, node_id="wrong")
    g.add_edge("in", "wrong")
    settle(w)
    w.controller.disconnect("enc", "dec")
    settle(w)
    v = w.controller.connect("wrong", "dec", 1)
    assert not v.ok and "port 1 takes the initial state (8,)" in v.reason
