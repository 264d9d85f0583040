"""RNN, LSTM, GRU: gradients (BPTT), PyTorch equivalence, the time-gradient profile, gates,
initialisation and shape errors."""

import numpy as np
import pytest
from gradcheck import check_layer, numeric_grad, rel_error

from engine.errors import ConfigError, ShapeError
from engine.layers import GRU, LSTM, RNN
from engine.reference.recurrent import rnn_step_forward

CELLS = {
    "rnn_tanh": (RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
}


def make(cell, hidden=3, seq_len=4, features=2, seed=0, **kw):
    cls, extra = CELLS[cell]
    return cls(hidden_size=hidden, **extra, **kw).build(
        (seq_len, features), np.random.default_rng(seed)
    )


# --- gradients ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("seq_len", [1, 3, 7])
@pytest.mark.parametrize("cell", list(CELLS))
def test_gradients(cell, seq_len, batch, return_sequences, bidirectional):
    layer = make(
        cell, seq_len=seq_len, return_sequences=return_sequences, bidirectional=bidirectional
    )
    rng = np.random.default_rng(seq_len * 10 + batch)
    # moderate biases so relu units are neither all on nor all off, and sigmoids not saturated
    for k, v in layer.params.items():
        if k.startswith("bias"):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    check_layer(layer, rng.standard_normal((batch, seq_len, 2)))


# --- against finite differences, on the textbook RNN step (engine.reference.recurrent) ----------
def rnn_reference(x, p, bump=None):
    """The tanh RNN one step at a time; ``bump`` (T, N, H) is added to each h_t (to
    differentiate with respect to h_t)."""
    h = np.zeros((x.shape[0], p["weight_hh"].shape[0]))
    outs = []
    for s in range(x.shape[1]):
        h, _ = rnn_step_forward(x[:, s], h, p)
        if bump is not None:
            h = h + bump[s]
        outs.append(h)
    return np.stack(outs, axis=1)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_time_grad_equals_finite_differences_of_dl_dh(return_sequences):
    rng = np.random.default_rng(3)
    layer = make("rnn_tanh", hidden=4, seq_len=5, features=3, return_sequences=return_sequences)
    layer.astype(np.float64)
    x = rng.standard_normal((2, 5, 3))
    ref = rnn_reference(x, layer.params)
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out, ref if return_sequences else ref[:, -1], atol=1e-12)
    r = rng.standard_normal(out.shape)
    layer.backward(r)
    bump = np.zeros((5, 2, 4))

    def loss():
        o = rnn_reference(x, layer.params, bump)
        return float(np.sum((o if return_sequences else o[:, -1]) * r))

    dl_dh = numeric_grad(loss, bump)  # total dL/dh_t, through every later step
    expected = np.sqrt(np.mean(dl_dh**2, axis=(1, 2)))
    assert layer.time_grad.shape == (5,)
    assert rel_error(layer.time_grad, expected) < 1e-6


def test_time_grad_vanishes_towards_early_steps():
    """Lecture 001/002: with small recurrent weights dL/dh_t shrinks at every step back."""
    rng = np.random.default_rng(0)
    layer = RNN(hidden_size=16, init="uniform", init_limit=0.05).build((15, 4), rng)
    out = layer.forward(rng.standard_normal((8, 15, 4)).astype(np.float32), training=True)
    layer.backward(out - 1.0)  # MSE-like loss on the last output only
    tg = layer.time_grad
    assert tg.shape == (15,) and np.all(np.isfinite(tg))
    assert tg[0] < 1e-6 * tg[-1]
    assert np.all(np.diff(tg) > 0)  # monotone: the further back, the weaker


def test_time_grad_reverse_is_in_time_order():
    # the backward direction's loss sits at time 0, so its profile decays towards the end
    rng = np.random.default_rng(1)
    layer = RNN(hidden_size=8, bidirectional=True, init="uniform", init_limit=0.05)
    layer.build((12, 3), rng)
    layer.forward(rng.standard_normal((4, 12, 3)).astype(np.float32), training=True)
    layer.backward(np.ones((4, 16), np.float32))
    assert layer.time_grad[0] < layer.time_grad[-1]
    assert layer.time_grad_reverse[-1] < layer.time_grad_reverse[0]
    assert layer.time_grad_reverse.shape == (12,)


# --- semantics without torch ----------------------------------------------------------------------
@pytest.mark.parametrize("cell", list(CELLS))
def test_backward_direction_is_forward_on_reversed_time(cell):
    rng = np.random.default_rng(2)
    bi = make(cell, hidden=3, seq_len=5, return_sequences=True, bidirectional=True)
    uni = make(cell, hidden=3, seq_len=5, return_sequences=True)
    for k in uni.params:
        uni.params[k][...] = bi.params[k + "_reverse"]
    x = rng.standard_normal((2, 5, 2)).astype(np.float32)
    out = bi.forward(x)
    np.testing.assert_allclose(out[:, :, 3:], uni.forward(x[:, ::-1])[:, ::-1], atol=1e-6)
    bi_last = make(cell, hidden=3, seq_len=5, bidirectional=True)
    bi_last.params.update({k: v.copy() for k, v in bi.params.items()})
    last = bi_last.forward(x)
    # h_n: forward's state after the last step, backward's after the first
    np.testing.assert_allclose(last, np.concatenate([out[:, -1, :3], out[:, 0, 3:]], 1), atol=1e-6)


def test_gates_are_exposed_and_consistent():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    lstm = LSTM(hidden_size=5, return_sequences=True, bidirectional=True).build((6, 3), rng)
    out = lstm.forward(x)
    g = lstm.gates
    assert set(g) == {"i", "f", "g", "o", "c"} and all(v.shape == (2, 6, 5) for v in g.values())
    for k in "ifo":
        assert np.all((g[k] > 0) & (g[k] < 1))
    np.testing.assert_allclose(g["o"] * np.tanh(g["c"]), out[:, :, :5], atol=1e-6)
    np.testing.assert_allclose(
        g["c"][:, 1], g["f"][:, 1] * g["c"][:, 0] + g["i"][:, 1] * g["g"][:, 1], atol=1e-6
    )
    gru = GRU(hidden_size=5, return_sequences=True).build((6, 3), rng)
    out = gru.forward(x)
    assert set(gru.gates) == {"r", "z", "n"}
    z, n = gru.gates["z"], gru.gates["n"]
    np.testing.assert_allclose((1 - z[:, 0]) * n[:, 0], out[:, 0], atol=1e-6)  # h_0 = 0
    rnn = RNN(hidden_size=5, return_sequences=True).build((6, 3), rng)
    out = rnn.forward(x)
    np.testing.assert_allclose(out, rnn.gates["h"])


@pytest.mark.parametrize("cell", list(CELLS))
def test_float32_stays_float32(cell):
    layer = make(cell, hidden=4, seq_len=3, return_sequences=True, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 2)).astype(np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    assert layer.time_grad.dtype == np.float32


# --- initialisation -------------------------------------------------------------------------------
def test_default_init():
    h = 6
    lstm = LSTM(hidden_size=h, bidirectional=True).build((4, 3), np.random.default_rng(0))
    for sfx in ("", "_reverse"):
        w = lstm.params["weight_hh" + sfx].astype(np.float64)
        np.testing.assert_allclose(w.T @ w, np.eye(h), atol=1e-5)  # orthogonal columns
        b = lstm.params["bias_ih" + sfx]
        assert np.all(b[h : 2 * h] == 1) and np.all(b[:h] == 0) and np.all(b[2 * h :] == 0)
        assert np.all(lstm.params["bias_hh" + sfx] == 0)
        limit = np.sqrt(6 / (3 + 4 * h))
        wih = lstm.params["weight_ih" + sfx]
        assert np.abs(wih).max() <= limit and np.abs(wih).max() > 0.5 * limit
    rnn = RNN(hidden_size=h).build((4, 3), np.random.default_rng(0))
    np.testing.assert_allclose(
        rnn.params["weight_hh"] @ rnn.params["weight_hh"].T, np.eye(h), atol=1e-5
    )
    assert all(v.dtype == np.float32 for v in lstm.params.values())


def test_chosen_init_keeps_forget_bias_except_zeros():
    h = 4
    normal = LSTM(hidden_size=h, init="normal", init_std=0.1).build((3, 2))
    assert np.all(normal.params["bias_ih"][h : 2 * h] == 1)
    assert abs(float(normal.params["weight_hh"].std()) - 0.1) < 0.05
    zeros = LSTM(hidden_size=h, init="zeros").build((3, 2))
    assert all(np.all(v == 0) for v in zeros.params.values())


def test_param_shapes_and_output_shapes():
    gru = GRU(hidden_size=5, bidirectional=True, return_sequences=True)
    assert gru.output_shape((7, 3)) == (7, 10)
    assert gru.param_shapes((7, 3)) == {
        "weight_ih": (15, 3),
        "weight_hh": (15, 5),
        "bias_ih": (15,),
        "bias_hh": (15,),
        "weight_ih_reverse": (15, 3),
        "weight_hh_reverse": (15, 5),
        "bias_ih_reverse": (15,),
        "bias_hh_reverse": (15,),
    }
    assert LSTM(hidden_size=4).output_shape((9, 2)) == (4,)
    assert LSTM(hidden_size=4).param_count((9, 2)) == 4 * 4 * (2 + 4 + 2)


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_image_input_is_refused_with_reshape_hint(cls):
    with pytest.raises(ShapeError) as e:
        cls(hidden_size=4, name="rec1").build((1, 28, 28))
    msg = str(e.value)
    assert "rec1" in msg and "Reshape" in msg and "(1, 28, 28)" in msg and "[28, 28]" in msg
    with pytest.raises(ShapeError, match="Reshape"):
        cls(hidden_size=4).build((10,))


def test_wrong_input_shape_names_block_expected_and_actual():
    layer = LSTM(hidden_size=3, name="lstm7").build((5, 2))
    with pytest.raises(ShapeError) as e:
        layer.forward(np.zeros((4, 6, 2), np.float32))
    msg = str(e.value)
    assert "lstm7" in msg and "(N, 5, 2)" in msg and "(4, 6, 2)" in msg


@pytest.mark.parametrize(
    "cfg",
    [
        {"hidden_size": 0},
        {"hidden_size": -2},
        {"hidden_size": 1.5},
        {},
        {"hidden_size": 3, "nonlinearity": "sigmoid"},
        {"hidden_size": 3, "bidirectional": "yes"},
    ],
)
def test_bad_settings_are_refused_when_built(cfg):
    with pytest.raises(ConfigError) as e:
        RNN(name="r1", **cfg)
    assert "r1" in str(e.value)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize(
    "cfg",
    [
        {"hidden_size": 0},
        {"hidden_size": 3, "nonlinearity": "relu"},
        {"hidden_size": 3, "return_sequences": 1},
    ],
)
def test_gated_cells_refuse_bad_settings(cls, cfg):
    with pytest.raises(ConfigError):
        cls(name="g", **cfg)


# --- PyTorch equivalence --------------------------------------------------------------------------
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("cell", list(CELLS))
def test_matches_pytorch(cell, return_sequences, bidirectional):
    torch = pytest.importorskip("torch")
    cls, extra = CELLS[cell]
    tcls = {RNN: torch.nn.RNN, LSTM: torch.nn.LSTM, GRU: torch.nn.GRU}[cls]
    n, t, f, h = 3, 6, 4, 5
    rng = np.random.default_rng(7)
    layer = cls(
        hidden_size=h, return_sequences=return_sequences, bidirectional=bidirectional, **extra
    ).build((t, f), rng)
    for k, v in layer.params.items():  # non-zero biases so every term is tested
        if k.startswith("bias"):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    ref = tcls(f, h, batch_first=True, bidirectional=bidirectional, **extra)
    names = {n_.replace("_l0", ""): p for n_, p in ref.named_parameters()}
    assert set(names) == set(layer.params)
    with torch.no_grad():
        for k, p in names.items():
            assert tuple(p.shape) == layer.params[k].shape
            p.copy_(torch.from_numpy(layer.params[k]))
    x = rng.standard_normal((n, t, f)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    seq, h_n = ref(xt)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    expected = seq if return_sequences else torch.cat(list(h_n), dim=1)
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out, expected.detach().numpy(), atol=1e-5)
    r = rng.standard_normal(out.shape).astype(np.float32)
    (expected * torch.from_numpy(r)).sum().backward()
    dx = layer.backward(r)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-4)
    for k, p in names.items():
        np.testing.assert_allclose(layer.grads[k], p.grad.numpy(), atol=1e-4, err_msg=k)


@pytest.mark.parametrize("cell", list(CELLS))
def test_time_grad_matches_pytorch_hooks(cell):
    """dL/dh_t from torch cells unrolled by hand (retain_grad on every h_t), both directions."""
    torch = pytest.importorskip("torch")
    cls, extra = CELLS[cell]
    tcell = {RNN: torch.nn.RNNCell, LSTM: torch.nn.LSTMCell, GRU: torch.nn.GRUCell}[cls]
    n, t, f, h = 3, 6, 4, 5
    rng = np.random.default_rng(8)
    layer = cls(hidden_size=h, return_sequences=True, bidirectional=True, **extra).build(
        (t, f), rng
    )
    x = rng.standard_normal((n, t, f)).astype(np.float32)
    r = rng.standard_normal((n, t, 2 * h)).astype(np.float32)
    layer.forward(x, training=True)
    layer.backward(r)
    xt = torch.from_numpy(x)
    for d, sfx in enumerate(("", "_reverse")):
        c = tcell(f, h, **extra)
        with torch.no_grad():
            for k, p in c.named_parameters():
                p.copy_(torch.from_numpy(layer.params[k + sfx]))
        state = torch.zeros(n, h) if cls is not LSTM else (torch.zeros(n, h), torch.zeros(n, h))
        hs = {}
        for s in range(t - 1, -1, -1) if d else range(t):
            state = c(xt[:, s], state)
            hidden = state[0] if cls is LSTM else state
            hidden.retain_grad()
            hs[s] = hidden
        loss = sum((hs[s] * torch.from_numpy(r[:, s, d * h : (d + 1) * h])).sum() for s in range(t))
        loss.backward()
        expected = np.array([float(hs[s].grad.pow(2).mean().sqrt()) for s in range(t)])
        got = layer.time_grad_reverse if d else layer.time_grad
        np.testing.assert_allclose(got, expected, rtol=1e-4)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_workspace_reuse_never_leaks_into_results(cell, return_sequences):
    """Internal arrays are reused between calls; outputs, dx and grads must not be."""
    rng = np.random.default_rng(9)
    layer = make(cell, hidden=4, seq_len=5, return_sequences=return_sequences, bidirectional=True)
    x1, x2 = (rng.standard_normal((3, 5, 2)).astype(np.float32) for _ in range(2))
    out1 = layer.forward(x1, training=True)
    keep = out1.copy()
    r = np.ones_like(out1)
    dx1 = layer.backward(r)
    grads1 = {k: v.copy() for k, v in layer.grads.items()}
    gates1 = {k: v.copy() for k, v in layer.gates.items()}
    layer.forward(x2, training=True)
    np.testing.assert_array_equal(out1, keep)  # the first output is untouched
    layer.backward(r)
    dx1_again = dx1.copy()
    # the caller reuses its input buffer: the gradients of that forward must not change
    x3 = x1.copy()
    layer.forward(x3, training=True)
    x3[...] = 0
    dx3 = layer.backward(r)
    np.testing.assert_allclose(dx3, dx1_again, atol=1e-6)
    for k in grads1:
        np.testing.assert_allclose(layer.grads[k], grads1[k], atol=1e-6)
    for k in gates1:
        np.testing.assert_allclose(layer.gates[k], gates1[k], atol=1e-6)


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_training_skips_the_input_gradient_of_a_block_fed_by_the_data(cell):
    import engine

    g = engine.Graph()
    g.add_node("Input", {"shape": [5, 3]}, node_id="in")
    g.add_node(cell, {"hidden_size": 4, "bidirectional": True}, node_id="r")
    g.add_node("Dense", {"units": 2}, node_id="d")
    g.add_edge("in", "r")
    g.add_edge("r", "d")
    m = engine.build_model(g, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    dy = np.ones((3, 2), np.float32)
    m.forward(x, training=True)
    dx = m.backward(dy)
    full = {k: v.copy() for k, v in m.grads.items()}
    assert dx is not None and dx.shape == x.shape
    m.forward(x, training=True)
    assert m.backward(dy, input_grad=False) is None
    for k, v in m.grads.items():
        np.testing.assert_allclose(v, full[k], rtol=1e-6, atol=1e-7)
    m.forward(x, training=True)
    np.testing.assert_allclose(m.backward(dy), dx, rtol=1e-6)  # asked again, given again


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_a_block_reused_at_changing_batch_sizes_computes_what_a_fresh_one_does(
    cell, return_sequences
):
    """Its per-step views of the workspace are kept between calls: a new batch size (the
    validation pass between training steps) must not leave them pointing at old arrays."""
    rng = np.random.default_rng(4)
    used = make(cell, hidden=4, seq_len=5, return_sequences=return_sequences, bidirectional=True)
    for n in (3, 6, 3, 3, 1):
        x = rng.standard_normal((n, 5, 2)).astype(np.float32)
        fresh = make(
            cell, hidden=4, seq_len=5, return_sequences=return_sequences, bidirectional=True
        )
        outs = [layer.forward(x, training=True) for layer in (used, fresh)]
        np.testing.assert_array_equal(outs[0], outs[1])
        d = rng.standard_normal(outs[0].shape).astype(np.float32)
        dxs = [layer.backward(d) for layer in (used, fresh)]
        np.testing.assert_array_equal(dxs[0], dxs[1])
        for k, g in fresh.grads.items():
            np.testing.assert_array_equal(used.grads[k], g, err_msg=k)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_a_copied_block_computes_with_its_own_arrays(cell):
    """A deep copy of a block that has run holds copies of its per-step views: it must make
    them again from its own workspace, not write into arrays nobody reads."""
    import copy

    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    used = make(cell, hidden=4, seq_len=5, return_sequences=True)
    used.forward(x, training=True)
    used.backward(np.ones((3, 5, 4), np.float32))
    twin, fresh = copy.deepcopy(used), make(cell, hidden=4, seq_len=5, return_sequences=True)
    x2 = rng.standard_normal((3, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(twin.forward(x2, training=True), fresh.forward(x2, training=True))
    d = rng.standard_normal((3, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(twin.backward(d), fresh.backward(d))
    for k, g in fresh.grads.items():
        np.testing.assert_array_equal(twin.grads[k], g, err_msg=k)
