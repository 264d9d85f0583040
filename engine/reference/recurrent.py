"""Recurrent blocks one time step at a time: RNN, LSTM and GRU cells, and the loop through time
(with bidirectional and return_sequences) that runs them forward and back (BPTT).

The same weights are used at every step (lecture 002: "RNN weights shared over time"), so
backpropagation through time (lecture 004) runs the steps backwards, and each step
- receives dL/dh_t: from this step's output (if the block returns the sequence, or t is the
  last step) plus what flows back from step t+1 (and dL/dc_t for the LSTM's cell);
- returns dL/dx_t, dL/dh_{t-1} (and dL/dc_{t-1}), and its share of the weight gradients,
  which are summed over the steps.
For the RNN, dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) W_hh (lecture 001's (1 - tanh^2(z_t)) W_hh):
a product of such factors over many steps is why gradients vanish or explode.

Parameters are PyTorch's: weight_ih (G*H, F), weight_hh (G*H, H), bias_ih, bias_hh (G*H,) with
the G gates stacked in PyTorch's order (LSTM i, f, g, o; GRU r, z, n); a bidirectional block's
backward direction has its own set, named with ``_reverse``. Rows here are samples: x_t (N, F),
h_t (N, H). The initial state is zero. (engine/layers/rnn.py, lstm.py and gru.py, on the
machinery of recurrent.py, compute the same with time-major arrays, the input terms in the
step's one product or all projections in one product, the sigmoid gates side by side and
sigma(a) = (1 + tanh(a/2)) / 2 so one tanh call covers them.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """sigma(a) = 1 / (1 + e^-a); sigma' = sigma (1 - sigma)."""
    return 1.0 / (1.0 + np.exp(-a))


def _preactivation(x: np.ndarray, h_prev: np.ndarray, p: Params) -> np.ndarray:
    """x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh: every gate's input, (N, G*H)."""
    return x @ p["weight_ih"].T + p["bias_ih"] + h_prev @ p["weight_hh"].T + p["bias_hh"]


def _weight_grads(
    da_x: np.ndarray, da_h: np.ndarray, x: np.ndarray, h_prev: np.ndarray, p: Params
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Back through the two affine maps of a step, given the gradients of their outputs
    (da_x of x W_ih^T + b_ih, da_h of h W_hh^T + b_hh; the same array except in the GRU):
    (dx_t, dh_{t-1} through W_hh, this step's weight gradients)."""
    grads = {
        "weight_ih": da_x.T @ x,
        "bias_ih": da_x.sum(axis=0),
        "weight_hh": da_h.T @ h_prev,
        "bias_hh": da_h.sum(axis=0),
    }
    return da_x @ p["weight_ih"], da_h @ p["weight_hh"], grads


# --- RNN ---------------------------------------------------------------------------------------
def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, p: Params, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, dict]:
    """Elman RNN (lecture 004's char-RNN; PyTorch's nn.RNN):

        h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   f = tanh or relu

    Shapes: x (N, F), h_prev (N, H) -> h (N, H).
    """
    a = _preactivation(x, h_prev, p)
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
    return h, {"x": x, "h_prev": h_prev, "p": p, "a": a, "h": h, "nonlinearity": nonlinearity}


def rnn_step_backward(dh: np.ndarray, cache: dict) -> tuple[np.ndarray, np.ndarray, Params]:
    """(dx_t, dh_{t-1}, grads) from dh = dL/dh_t: da = dh * f'(a) (tanh' = 1 - h^2,
    relu' = [a > 0]), then dh_{t-1} = da W_hh, dx_t = da W_ih."""
    if cache["nonlinearity"] == "tanh":
        da = dh * (1.0 - cache["h"] ** 2)
    else:
        da = dh * (cache["a"] > 0)
    return _weight_grads(da, da, cache["x"], cache["h_prev"], cache["p"])


# --- LSTM --------------------------------------------------------------------------------------
def lstm_step_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, p: Params
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Long short-term memory (lecture 000's gate equations; lecture 001's four steps):

        i = sigma(W_ii x + b_ii + W_hi h_{t-1} + b_hi)     input gate
        f = sigma(W_if x + b_if + W_hf h_{t-1} + b_hf)     forget gate
        g = tanh (W_ig x + b_ig + W_hg h_{t-1} + b_hg)     candidate cell
        o = sigma(W_io x + b_io + W_ho h_{t-1} + b_ho)     output gate
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    Shapes: x (N, F), h_prev and c_prev (N, H) -> h, c (N, H).
    With peepholes (lecture 003; p holds weight_ci, weight_cf, weight_co (H,)) the gates also
    see the cell: i and f add w_ci * c_{t-1}, w_cf * c_{t-1}; o adds w_co * c_t.
    """
    hidden = h_prev.shape[1]
    a = _preactivation(x, h_prev, p)
    peep = "weight_ci" in p
    i = sigmoid(a[:, :hidden] + (p["weight_ci"] * c_prev if peep else 0.0))
    f = sigmoid(a[:, hidden : 2 * hidden] + (p["weight_cf"] * c_prev if peep else 0.0))
    g = np.tanh(a[:, 2 * hidden : 3 * hidden])
    c = f * c_prev + i * g
    o = sigmoid(a[:, 3 * hidden :] + (p["weight_co"] * c if peep else 0.0))
    h = o * np.tanh(c)
    cache = {"x": x, "h_prev": h_prev, "c_prev": c_prev, "p": p}
    cache.update(i=i, f=f, g=g, o=o, c=c)
    return h, c, cache


def lstm_step_backward(
    dh: np.ndarray, dc_next: np.ndarray, cache: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Params]:
    """(dx_t, dh_{t-1}, dc_{t-1}, grads) from dh = dL/dh_t and dc_next = dL/dc_t through
    c_{t+1} (the constant error carousel, lecture 004: dc_{t-1} = dc_t * f, no squashing):

        do = dh tanh(c_t)                      dc = dc_next + dh o (1 - tanh^2(c_t))
        di = dc g,  df = dc c_{t-1},  dg = dc i,  dc_{t-1} = dc f
        pre-activations: di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)
    """
    i, f, g, o, c = (cache[k] for k in ("i", "f", "g", "o", "c"))
    p, c_prev = cache["p"], cache["c_prev"]
    tanh_c = np.tanh(c)
    dao = dh * tanh_c * o * (1 - o)
    dc = dc_next + dh * o * (1.0 - tanh_c**2)
    if "weight_co" in p:  # o saw c_t
        dc = dc + dao * p["weight_co"]
    di, df, dg = dc * g, dc * c_prev, dc * i
    dai, daf = di * i * (1 - i), df * f * (1 - f)
    dc_prev = dc * f
    da = np.concatenate([dai, daf, dg * (1 - g**2), dao], axis=1)
    dx, dh_prev, grads = _weight_grads(da, da, cache["x"], cache["h_prev"], p)
    if "weight_ci" in p:  # i and f saw c_{t-1}
        dc_prev = dc_prev + dai * p["weight_ci"] + daf * p["weight_cf"]
        grads["weight_ci"] = (dai * c_prev).sum(axis=0)
        grads["weight_cf"] = (daf * c_prev).sum(axis=0)
        grads["weight_co"] = (dao * c).sum(axis=0)
    return dx, dh_prev, dc_prev, grads


# --- GRU ---------------------------------------------------------------------------------------
def gru_step_forward(
    x: np.ndarray, h_prev: np.ndarray, p: Params, convention: str = "pytorch"
) -> tuple[np.ndarray, dict]:
    """Gated recurrent unit, PyTorch's formula (nn.GRU):

        r = sigma(W_ir x + b_ir + W_hr h_{t-1} + b_hr)            reset gate
        z = sigma(W_iz x + b_iz + W_hz h_{t-1} + b_hz)            update gate
        n = tanh (W_in x + b_in + r * (W_hn h_{t-1} + b_hn))      candidate
        h_t = (1 - z) * n + z * h_{t-1}

    Here z = 1 keeps h_{t-1}. Lecture 001 (``convention="lecture"``, Cho et al.) resets
    before the product and lets z = 1 take the candidate:

        n = tanh (W_in x + b_in + W_hn (r * h_{t-1}) + b_hn),   h_t = (1 - z) h_{t-1} + z n

    Shapes: x (N, F), h_prev (N, H) -> h (N, H).
    """
    if convention == "lecture":
        return _gru_lecture_forward(x, h_prev, p)
    hidden = h_prev.shape[1]
    ax = x @ p["weight_ih"].T + p["bias_ih"]  # input parts of r, z, n
    ah = h_prev @ p["weight_hh"].T + p["bias_hh"]  # hidden parts of r, z, n
    r = sigmoid(ax[:, :hidden] + ah[:, :hidden])
    z = sigmoid(ax[:, hidden : 2 * hidden] + ah[:, hidden : 2 * hidden])
    hn = ah[:, 2 * hidden :]  # W_hn h_{t-1} + b_hn, which r scales
    n = np.tanh(ax[:, 2 * hidden :] + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, {"x": x, "h_prev": h_prev, "p": p, "r": r, "z": z, "n": n, "hn": hn}


def gru_step_backward(dh: np.ndarray, cache: dict) -> tuple[np.ndarray, np.ndarray, Params]:
    """(dx_t, dh_{t-1}, grads) from dh = dL/dh_t:

        dn = dh (1 - z),  dz = dh (h_{t-1} - n),  dh_{t-1} = dh z  (+ through W_hh below)
        dan = dn (1 - n^2)        the candidate's pre-activation: input part and r * hn
        dr = dan hn,  dhn = dan r
        dar = dr r(1-r),  daz = dz z(1-z)
    The input side's gradient is [dar, daz, dan]; the hidden side's [dar, daz, dhn].
    """
    if "rh" in cache:
        return _gru_lecture_backward(dh, cache)
    r, z, n, hn, h_prev = (cache[k] for k in ("r", "z", "n", "hn", "h_prev"))
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1 - n**2)
    dr = dan * hn
    dhn = dan * r
    dar, daz = dr * r * (1 - r), dz * z * (1 - z)
    da_x = np.concatenate([dar, daz, dan], axis=1)
    da_h = np.concatenate([dar, daz, dhn], axis=1)
    dx, dh_prev, grads = _weight_grads(da_x, da_h, cache["x"], h_prev, cache["p"])
    return dx, dh_prev + dh * z, grads


def _gru_lecture_forward(x: np.ndarray, h_prev: np.ndarray, p: Params) -> tuple[np.ndarray, dict]:
    hidden = h_prev.shape[1]
    ax = x @ p["weight_ih"].T + p["bias_ih"] + p["bias_hh"]
    w_hh = p["weight_hh"]
    r = sigmoid(ax[:, :hidden] + h_prev @ w_hh[:hidden].T)
    z = sigmoid(ax[:, hidden : 2 * hidden] + h_prev @ w_hh[hidden : 2 * hidden].T)
    rh = r * h_prev  # the reset acts before W_hn
    n = np.tanh(ax[:, 2 * hidden :] + rh @ w_hh[2 * hidden :].T)
    h = (1 - z) * h_prev + z * n
    return h, {"x": x, "h_prev": h_prev, "p": p, "r": r, "z": z, "n": n, "rh": rh}


def _gru_lecture_backward(dh: np.ndarray, cache: dict) -> tuple[np.ndarray, np.ndarray, Params]:
    """dn = dh z, dz = dh (n - h_{t-1}), dh_{t-1} = dh (1 - z) + ...; dan = dn (1 - n^2);
    d(r h_{t-1}) = dan W_hn, dr = that * h_{t-1}, and h_{t-1} also gets that * r."""
    r, z, n, rh, h_prev, p = (cache[k] for k in ("r", "z", "n", "rh", "h_prev", "p"))
    hidden = h_prev.shape[1]
    w_hh = p["weight_hh"]
    dan = dh * z * (1 - n**2)
    daz = dh * (n - h_prev) * z * (1 - z)
    d_rh = dan @ w_hh[2 * hidden :]
    dar = d_rh * h_prev * r * (1 - r)
    da = np.concatenate([dar, daz, dan], axis=1)
    grads = {
        "weight_ih": da.T @ cache["x"],
        "bias_ih": da.sum(axis=0),
        "weight_hh": np.concatenate(
            [np.concatenate([dar, daz], axis=1).T @ h_prev, dan.T @ rh], axis=0
        ),
        "bias_hh": da.sum(axis=0),
    }
    dh_prev = dh * (1 - z) + d_rh * r + np.concatenate([dar, daz], axis=1) @ w_hh[: 2 * hidden]
    return da @ p["weight_ih"], dh_prev, grads


# --- through time ------------------------------------------------------------------------------
KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")


def recurrent_forward(
    cell: str,
    x: np.ndarray,
    params: Params,
    return_sequences: bool = False,
    bidirectional: bool = False,
    nonlinearity: str = "tanh",
    convention: str = "pytorch",
) -> tuple[np.ndarray, dict]:
    """Run ``cell`` ("RNN", "LSTM" or "GRU") over x from h_0 = 0 (and c_0 = 0).

    A bidirectional block runs a second cell, with the ``_reverse`` parameters, from the last
    step to the first, and puts its states beside the first's (lecture 001's bidirectional RNN).
    Shapes: x (N, T, F) -> out (N, T, D*H) with return_sequences (every step's h_t), else
    (N, D*H): the state each direction ends on (t = T-1 forward, t = 0 backward); D = 2 if
    bidirectional else 1. ``params`` without bias_hh (single_bias): b_hh = 0 and no gradient for
    it; with weight_ci, weight_cf, weight_co: a peephole LSTM; ``convention``: the GRU's.
    """
    n_samples, steps, _ = x.shape
    directions = ("", "_reverse") if bidirectional else ("",)
    outputs, runs = [], []
    for sfx in directions:
        p = {k: params[k + sfx] for k in (*KEYS, *PEEPHOLES) if k + sfx in params}
        p.setdefault("bias_hh", np.zeros_like(p["bias_ih"]))  # single_bias
        hidden = p["weight_hh"].shape[1]
        order = list(range(steps)) if sfx == "" else list(range(steps - 1, -1, -1))
        h = np.zeros((n_samples, hidden))
        c = np.zeros((n_samples, hidden))
        states, caches = [None] * steps, [None] * steps
        for t in order:
            if cell == "LSTM":
                h, c, caches[t] = lstm_step_forward(x[:, t], h, c, p)
            elif cell == "GRU":
                h, caches[t] = gru_step_forward(x[:, t], h, p, convention)
            else:
                h, caches[t] = rnn_step_forward(x[:, t], h, p, nonlinearity)
            states[t] = h
        outputs.append(np.stack(states, axis=1) if return_sequences else h)
        runs.append((sfx, order, caches, hidden))
    cache = {"cell": cell, "x_shape": x.shape, "return_sequences": return_sequences, "runs": runs}
    cache["keys"] = [k for k in (*KEYS, *PEEPHOLES) if k in params]
    return np.concatenate(outputs, axis=-1), cache


def recurrent_backward(dout: np.ndarray, cache: dict) -> tuple[np.ndarray, Params, list]:
    """Backpropagation through time: (dx, grads, dh) with grads keyed like the parameters and
    dh[d] (T, N, H) the total dL/dh_t of direction d at each time t (what reaches h_t from
    its output and from the later steps: the engine plots its RMS over samples and units as
    the vanishing gradient profile)."""
    cell, seq = cache["cell"], cache["return_sequences"]
    dx = np.zeros(cache["x_shape"])
    grads: Params = {}
    dh_steps: list[Any] = []
    for d, (sfx, order, caches, hidden) in enumerate(cache["runs"]):
        d_out = dout[..., d * hidden : (d + 1) * hidden]  # this direction's part of the output
        sums = {k: np.zeros_like(caches[order[0]]["p"][k]) for k in cache["keys"]}
        dh_next = np.zeros((dout.shape[0], hidden))  # dL/dh_t through step t+1
        dc_next = np.zeros((dout.shape[0], hidden))  # dL/dc_t through step t+1 (LSTM)
        dh_total = np.zeros((len(order), dout.shape[0], hidden))
        for k, t in enumerate(reversed(order)):  # this direction's steps, last first
            if seq:
                dh = dh_next + d_out[:, t]
            else:
                dh = dh_next + (d_out if k == 0 else 0.0)  # only the final state was output
            dh_total[t] = dh
            if cell == "LSTM":
                dx_t, dh_next, dc_next, g = lstm_step_backward(dh, dc_next, caches[t])
            elif cell == "GRU":
                dx_t, dh_next, g = gru_step_backward(dh, caches[t])
            else:
                dx_t, dh_next, g = rnn_step_backward(dh, caches[t])
            dx[:, t] += dx_t
            for key in sums:  # shared weights: the steps' gradients add up
                sums[key] += g[key]
        grads.update({key + sfx: v for key, v in sums.items()})
        dh_steps.append(dh_total)
    return dx, grads, dh_steps


def recurrent_gates(cache: dict) -> dict[str, np.ndarray]:
    """The forward direction's gate values at every step, each (N, T, H), as the app shows
    them: RNN {"h"}, LSTM {"i", "f", "g", "o", "c"}, GRU {"r", "z", "n"}."""
    names = {"RNN": ("h",), "LSTM": ("i", "f", "g", "o", "c"), "GRU": ("r", "z", "n")}
    _, _, caches, _ = cache["runs"][0]
    return {k: np.stack([c[k] for c in caches], axis=1) for k in names[cache["cell"]]}
