"""LSTM: the recurrent block with a cell state (the constant error carousel of lecture 004)."""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError
from engine.layers.recurrent import SEQ_OPTIONS, Recurrent, _start_dh
from engine.settings import Opt


def sigmoid_(a: np.ndarray) -> np.ndarray:
    """a <- sigma(a) in place, as (1 + tanh(a / 2)) / 2 (no overflow for large |a|)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")


class LSTM(Recurrent):
    """Long short-term memory (PyTorch's nn.LSTM, lecture 000's gate equations):

        i = sigma(W_ii x + b_ii + W_hi h + b_hi)    input gate
        f = sigma(W_if x + b_if + W_hf h + b_hf)    forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate cell
        o = sigma(W_io x + b_io + W_ho h + b_ho)    output gate
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    Reference: engine.reference.recurrent.lstm_step_forward / lstm_step_backward (through time:
    recurrent_forward / recurrent_backward).
    Shapes: x (N, T, F) -> out (N, T, D*H) with return_sequences, else (N, D*H);
    weight_ih (4H, F), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,), gates in the order
    i, f, g, o. Initial state h_0 = c_0 = 0.

    Initialisation: the forget-gate slice of ``bias_ih`` (rows H..2H) starts at 1, so the cell
    remembers by default at the start of training (Jozefowicz et al., 2015); every other bias is
    0. This holds whatever ``init`` is chosen for the weights, except ``zeros``, which zeros
    everything (the lecture's zero-initialisation experiment).
    Peepholes (``peepholes``, lecture 003; Gers and Schmidhuber, 2000): the gates also see the
    cell, through one weight per unit (diagonal W_ci, W_cf, W_co: weight_ci, weight_cf,
    weight_co (H,) per direction, starting at 0 so the block starts as the plain LSTM):

        i = sigma(... + w_ci * c_{t-1}),  f = sigma(... + w_cf * c_{t-1}),
        o = sigma(... + w_co * c_t)        (o sees the new cell)

    ``single_bias``: one bias per gate (bias_ih only), as the lectures count 4(H(F + H) + H).
    Inspection: gates = {"i", "f", "g", "o", "c"}, each (N, T, H), forward direction.
    """

    type_name = "LSTM"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$i_t = \sigma(W_{ii} x_t + W_{hi} h_{t-1} + b_i)$ (input gate)",
        r"$f_t = \sigma(W_{if} x_t + W_{hf} h_{t-1} + b_f)$ (forget gate)",
        r"$g_t = \tanh(W_{ig} x_t + W_{hg} h_{t-1} + b_g)$ (candidate cell)",
        r"$o_t = \sigma(W_{io} x_t + W_{ho} h_{t-1} + b_o)$ (output gate)",
        r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t \qquad h_t = o_t \odot \tanh(c_t)$",
    )
    n_gates = 4
    state_parts = 2
    options = {
        **SEQ_OPTIONS,
        "peepholes": Opt(
            "bool", default=False, doc="the gates also see the cell state (lecture 003's W_c)"
        ),
        "return_state": Opt(
            "bool",
            default=False,
            doc="output the final state [h_T; c_T] (2*D*H), to start a decoder LSTM (its "
            "port 1); off: the output return_sequences says",
        ),
    }

    @classmethod
    def summary(cls, cfg):
        text = super().summary(cfg)
        return text + " peepholes" if cfg.get("peepholes") else text

    def check_settings(self):
        if self.config["return_state"] and self.config["return_sequences"]:
            raise ConfigError(
                "'return_state' and 'return_sequences' exclude each other: the output is "
                "either every step's h or the final state [h_T; c_T]",
                block=self.name,
            )

    # Inside the engine the gate blocks are ordered o, i, f, g: the three sigmoid gates side by
    # side (one tanh call covers them, see _scan), and i, f, g, which all receive dL/dc, side by
    # side in backward. Parameters and gradients keep PyTorch's i, f, g, o.
    gate_blocks = (3, 0, 1, 2)

    def after_init(self, rng):
        super().after_init(rng)
        if self.config.get("init") != "zeros":
            h = self.config["hidden_size"]
            for sfx in self.suffixes:
                self.params["bias_ih" + sfx][h : 2 * h] = 1.0

    def to_torch(self, in_shape):
        tb = super().to_torch(in_shape)
        if self.config.get("init") != "zeros":  # the forget gate starts open, as above
            h = self.config["hidden_size"]
            rnn = "" if tb.module.startswith("RecurrentLoop") else ".rnn"
            tb.init_after += [
                f"{{m}}{rnn}.bias_ih{'' if rnn == '' else '_l0'}{s}[{h}:{2 * h}] = 1.0"
                for s in self.suffixes
            ]
        return tb

    def _extra_shapes(self, h):
        if not self.config.get("peepholes"):
            return {}
        return {"weight_ci": (h,), "weight_cf": (h,), "weight_co": (h,)}

    def default_init(self, key):
        return "zeros" if key in PEEPHOLES else super().default_init(key)

    def _step_weights(self, w):
        if self.config.get("peepholes"):  # plain sigmoids (the gates need c before o)
            fw = {"ih": w["weight_ih"], "b": w["bias_ih"] + w["bias_hh"], "hh": w["weight_hh"]}
            fw.update({k: w[k][:, None] for k in PEEPHOLES})
            return fw
        # sigma(a) = (1 + tanh(a / 2)) / 2: halving the sigmoid gates' rows of the weights and
        # biases lets one tanh call per step compute all four gates.
        h = self.config["hidden_size"]
        s = np.ones(4 * h, w["weight_ih"].dtype)
        s[: 3 * h] = 0.5
        return {
            "ih": w["weight_ih"] * s[:, None],
            "b": (w["bias_ih"] + w["bias_hh"]) * s,
            "hh": w["weight_hh"] * s[:, None],
        }

    def _fuses_input(self):
        return not self.config.get("peepholes")

    def _scan(self, xp, fw, tag):
        if self.config.get("peepholes"):
            return self._scan_peepholes(xp, fw, tag)
        z, whz = fw["z"], fw["hz"]  # z_k = [h_k; x_k; 1]: see Recurrent._fuses_input
        t, n = z.shape[0] - 1, z.shape[2]
        gh = whz.shape[0]
        h = gh // 4
        dt = z.dtype
        # Step k's block holds o, i, f, g after their non-linearities, then c_{t-1}: [i; f] and
        # [g; c_{t-1}] are side by side, so ONE multiply gives both terms of the new cell,
        # i * g and f * c_{t-1} (then one add). c_t lives in the next step's block.
        blocks = self._buf(tag + "gates_c", (t + 1, gh + h, n), dt)
        acts, c = blocks[:t, :gh], blocks[:, gh:]
        hs = z[:, :h]
        tc = self._buf(tag + "tc", (t, h, n), dt)  # tanh(c_t)
        hs[0] = fw.get("h0", 0)
        c[0] = fw.get("c0", 0)
        terms = self._buf("terms", (2 * h, n), dt)
        ig, fc = terms[:h], terms[h:]
        steps = self._step_views(
            tag + "views",
            (blocks, z, tc, terms),
            lambda: [
                (acts[k], z[k], acts[k, : 3 * h], blocks[k, h : 3 * h], blocks[k, 3 * h :])
                + (c[k + 1], tc[k], acts[k, :h], hs[k + 1])
                for k in range(t)
            ],
        )
        mul, add, tanh, matmul = np.multiply, np.add, np.tanh, np.matmul
        half = np.array(0.5, dt)  # not the Python float, which NumPy converts at every call
        # (the third argument of each call is its output: out= by keyword costs more a call)
        for a, zk, sig, i_f, g_c, c_new, tc_new, o, h_new in steps:
            matmul(whz, zk, a)  # the four gates' pre-activations
            tanh(a, a)
            mul(sig, half, sig)
            add(sig, half, sig)
            mul(i_f, g_c, terms)  # [i * g; f * c_{t-1}]
            add(ig, fc, c_new)
            tanh(c_new, tc_new)
            mul(o, tc_new, h_new)  # h = o * tanh(c)
        return {"hs": hs, "acts": acts, "c": c, "tc": tc, "blocks": blocks}

    def _scan_peepholes(self, xp, fw, tag):
        t, gh, n = xp.shape
        h = gh // 4
        dt = xp.dtype
        acts = self._buf(tag + "acts", (t, gh, n), dt)  # o, i, f, g after their non-linearities
        hs = self._buf(tag + "hs", (t + 1, h, n), dt)
        c = self._buf(tag + "c", (t + 1, h, n), dt)
        tc = self._buf(tag + "tc", (t, h, n), dt)
        hs[0] = fw.get("h0", 0)
        c[0] = fw.get("c0", 0)
        whh = fw["hh"]
        for k in range(t):
            a = acts[k]
            np.matmul(whh, hs[k], out=a)
            a += xp[k]
            a[h : 2 * h] += fw["weight_ci"] * c[k]  # i and f see c_{t-1}
            a[2 * h : 3 * h] += fw["weight_cf"] * c[k]
            sigmoid_(a[h : 3 * h])
            np.tanh(a[3 * h :], out=a[3 * h :])
            c[k + 1] = a[2 * h : 3 * h] * c[k] + a[h : 2 * h] * a[3 * h :]
            a[:h] += fw["weight_co"] * c[k + 1]  # o sees c_t
            sigmoid_(a[:h])
            np.tanh(c[k + 1], out=tc[k])
            np.multiply(a[:h], tc[k], out=hs[k + 1])
        return {"hs": hs, "acts": acts, "c": c, "tc": tc}

    def _scan_back_peepholes(self, dhs, dlast, sc, w):
        acts, c, tc = sc["acts"], sc["c"], sc["tc"]
        t, gh, n = acts.shape
        h = gh // 4
        dt = acts.dtype
        wci, wcf, wco = (w[k][:, None] for k in PEEPHOLES)
        dh = _start_dh(self, dhs, dlast, (t, h, n), dt)
        dpre = self._buf("b_dpre", (t, gh, n), dt)
        dc_next = np.zeros((h, n), dt)  # dL/dc_t through step t+1 (return_state: dL/dc_T)
        if sc.get("dc_last") is not None:
            dc_next += sc["dc_last"]
        whh_t = np.ascontiguousarray(w["weight_hh"].T)
        for k in range(t - 1, -1, -1):
            o, i, f, g = (acts[k, j * h : (j + 1) * h] for j in range(4))
            d_o, d_i, d_f, d_g = (dpre[k, j * h : (j + 1) * h] for j in range(4))
            np.multiply(dh[k] * tc[k], o * (1 - o), out=d_o)
            dc = dh[k] * o * (1 - tc[k] ** 2) + dc_next + wco * d_o  # o saw c_t
            np.multiply(dc * g, i * (1 - i), out=d_i)
            np.multiply(dc * c[k], f * (1 - f), out=d_f)
            np.multiply(dc * i, 1 - g * g, out=d_g)
            dc_next = dc * f + wci * d_i + wcf * d_f  # i and f saw c_{t-1}
            if k:
                np.matmul(whh_t, dpre[k], out=dh[k - 1])
                if dhs is not None:
                    dh[k - 1] += dhs[k - 1]
        sc["grads"] = {
            "weight_ci": np.einsum("thn,thn->h", dpre[:, h : 2 * h], c[:-1]),
            "weight_cf": np.einsum("thn,thn->h", dpre[:, 2 * h : 3 * h], c[:-1]),
            "weight_co": np.einsum("thn,thn->h", dpre[:, :h], c[1:]),
        }
        sc["dc0"] = dc_next
        return dpre, dpre, dh

    def _scan_back(self, dhs, dlast, sc, w):
        if self.config.get("peepholes"):
            return self._scan_back_peepholes(dhs, dlast, sc, w)
        acts, c, tc = sc["acts"], sc["c"], sc["tc"]
        t, gh, n = acts.shape
        h = gh // 4
        dt = acts.dtype
        o, i, f, g = (acts[:, j * h : (j + 1) * h] for j in range(4))
        # For all steps at once: p = d(pre-activation) factor per gate, so that
        #   dpre_o = dh * tanh(c) * o(1-o),  dpre_i = dc * g * i(1-i),
        #   dpre_f = dc * c_{t-1} * f(1-f),  dpre_g = dc * i * (1-g^2),
        # and od = o * (1 - tanh(c)^2), so that dc_t = dh_t * od + dc_{t+1} * f_{t+1}.
        p = self._buf("b_p", (t, gh, n), dt)
        sig, psig = acts[:, : 3 * h], p[:, : 3 * h]
        np.subtract(1, sig, out=psig)
        psig *= sig  # sigma' = s (1 - s) for o, i, f
        p[:, :h] *= tc
        p[:, h : 2 * h] *= g
        p[:, 2 * h : 3 * h] *= c[:-1]
        pg = p[:, 3 * h :]
        np.multiply(g, g, out=pg)
        np.subtract(1, pg, out=pg)
        pg *= i
        od = self._buf("b_od", (t, h, n), dt)
        np.multiply(tc, tc, out=od)
        np.subtract(1, od, out=od)
        od *= o
        dh = _start_dh(self, dhs, dlast, (t, h, n), dt)
        dpre = self._buf("b_dpre", (t, gh, n), dt)
        p3, dpre3 = p[:, h:].reshape(t, 3, h, n), dpre[:, h:].reshape(t, 3, h, n)
        dc = self._buf("b_dc", (h, n), dt)
        dc_next = self._buf("b_dc_next", (h, n), dt)  # dL/dc_t from step t+1: dc_{t+1} f_{t+1}
        dc_next[...] = 0 if sc.get("dc_last") is None else sc["dc_last"]
        whh_t = np.ascontiguousarray(w["weight_hh"].T)
        steps = self._step_views(
            "b_views",
            (dh, od, p, dpre, sc["blocks"], dhs),
            lambda: [
                (dh[k], od[k], p[k, :h], dpre[k, :h], p3[k], dpre3[k])
                + ((f[k], dpre[k], dh[k - 1], None if dhs is None else dhs[k - 1]) if k else ())
                for k in range(t - 1, -1, -1)
            ],
        )
        mul, add, matmul = np.multiply, np.add, np.matmul
        for dh_k, od_k, p_o, dpre_o, p_ifg, dpre_ifg, *back in steps:  # (3rd argument: out)
            mul(dh_k, od_k, dc)
            add(dc, dc_next, dc)
            mul(p_o, dh_k, dpre_o)
            mul(p_ifg, dc, dpre_ifg)  # i, f, g all receive dc
            if back:  # not step 0: dL/dc_{t-1} and dL/dh_{t-1}
                f_k, dpre_k, dh_prev, dhs_prev = back
                mul(dc, f_k, dc_next)
                matmul(whh_t, dpre_k, dh_prev)
                if dhs_prev is not None:
                    add(dh_prev, dhs_prev, dh_prev)
        sc["dc0"] = dc * f[0]  # dL/dc_0 (the initial cell state)
        return dpre, dpre, dh

    def _gates(self, sc):
        acts, h = sc["acts"], self.config["hidden_size"]
        out = {
            name: acts[:, j * h : (j + 1) * h].transpose(2, 0, 1) for j, name in enumerate("oifg")
        }
        out["c"] = sc["c"][1:].transpose(2, 0, 1)
        return {k: out[k] for k in ("i", "f", "g", "o", "c")}
