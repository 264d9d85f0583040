"""GRU: the gated recurrent unit (lecture 001/003), with PyTorch's exact formula."""

from __future__ import annotations

import numpy as np

from engine.layers.lstm import sigmoid_
from engine.layers.recurrent import SEQ_OPTIONS, Recurrent, _start_dh
from engine.settings import Opt


class GRU(Recurrent):
    """Gated recurrent unit. ``convention`` "pytorch" (the default; nn.GRU, Keras's
    reset_after):

        r = sigma(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z = sigma(W_iz x + b_iz + W_hz h + b_hz)          update gate: 1 KEEPS the old state
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     candidate (reset after the product)
        h_t = (1 - z) * n + z * h_{t-1}

    ``convention`` "lecture" (lecture 001's slide; Cho et al., 2014):

        n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)     candidate (reset before the product)
        h_t = (1 - z) * h_{t-1} + z * n                   update gate: 1 TAKES the candidate

    The two are different cells (not a renaming: the reset gate acts before or after W_hn);
    the parameters have the same shapes and names either way.

    Reference: engine.reference.recurrent.gru_step_forward / gru_step_backward (through time:
    recurrent_forward / recurrent_backward).
    Shapes: x (N, T, F) -> out (N, T, D*H) with return_sequences, else (N, D*H);
    weight_ih (3H, F), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,), gates in the order
    r, z, n. Initial state h_0 = 0.
    Inspection: gates = {"r", "z", "n"}, each (N, T, H), forward direction.
    """

    type_name = "GRU"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$r_t = \sigma(W_{ir} x_t + W_{hr} h_{t-1} + b_r)$ (reset gate)",
        r"$z_t = \sigma(W_{iz} x_t + W_{hz} h_{t-1} + b_z)$ (update gate)",
        r"$n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$",
        r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$",
        r"lecture: $n_t = \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})$",
        r"lecture: $h_t = (1 - z_t) \odot h_{t-1} + z_t \odot n_t$",
    )
    n_gates = 3
    options = {
        **SEQ_OPTIONS,
        "convention": Opt(
            "choice",
            default="pytorch",
            choices=("pytorch", "lecture"),
            doc="pytorch: h = (1-z) n + z h_prev, reset after W_hn h; lecture: h = (1-z) h_prev "
            "+ z n, reset before the product (Cho et al.)",
        ),
    }

    @classmethod
    def summary(cls, cfg):
        text = super().summary(cfg)
        return text + " lecture" if cfg.get("convention") == "lecture" else text

    @property
    def lecture(self) -> bool:
        return self.config.get("convention") == "lecture"

    def _step_weights(self, w):
        if self.lecture:  # both biases sit outside the products: one sum; plain sigmoids
            h = self.config["hidden_size"]
            return {
                "ih": w["weight_ih"],
                "b": w["bias_ih"] + w["bias_hh"],
                "hh": w["weight_hh"][: 2 * h],
                "hn": w["weight_hh"][2 * h :],
            }
        # sigma(a) = (1 + tanh(a / 2)) / 2, with the halving folded into the r and z rows.
        # b_hr and b_hz are constant over time and join the projection; b_hn cannot (r scales it).
        h = self.config["hidden_size"]
        s = np.ones(3 * h, w["weight_ih"].dtype)
        s[: 2 * h] = 0.5
        b = w["bias_ih"].copy()
        b[: 2 * h] += w["bias_hh"][: 2 * h]
        return {
            "ih": w["weight_ih"] * s[:, None],
            "b": b * s,
            "hh": w["weight_hh"] * s[:, None],
            "b_hn": w["bias_hh"][2 * h :, None],
        }

    def _scan(self, xp, fw, tag):
        if self.lecture:
            return self._scan_lecture(xp, fw, tag)
        t, gh, n = xp.shape
        h = gh // 3
        dt = xp.dtype
        acts = self._buf(tag + "acts", (t, gh, n), dt)  # r, z, n after their non-linearities
        hh = self._buf(tag + "hh", (t, gh, n), dt)  # W_hh h_{t-1} (+ b_hn in the n block)
        hs = self._buf(tag + "hs", (t + 1, h, n), dt)
        hs[0] = fw.get("h0", 0)
        whh, b_hn = fw["hh"], fw["b_hn"]
        steps = self._step_views(  # made once while the workspace is reused (as the LSTM's)
            tag + "views",
            (hh, acts, hs, xp),
            lambda: [
                (hh[k], hs[k], hh[k, 2 * h :], acts[k, : 2 * h], hh[k, : 2 * h], xp[k, : 2 * h])
                + (acts[k, 2 * h :], acts[k, :h], xp[k, 2 * h :], hs[k + 1], acts[k, h : 2 * h])
                for k in range(t)
            ],
        )
        mul, add, sub, tanh, matmul = np.multiply, np.add, np.subtract, np.tanh, np.matmul
        half = np.array(0.5, hs.dtype)  # not the Python float, which NumPy converts every call
        for hk, h_prev, hn, rz, hh_rz, xp_rz, cand, r, xp_n, h_new, z in steps:
            matmul(whh, h_prev, out=hk)
            add(hn, b_hn, out=hn)
            add(hh_rz, xp_rz, out=rz)
            tanh(rz, out=rz)
            mul(rz, half, out=rz)
            add(rz, half, out=rz)
            mul(r, hn, out=cand)
            add(cand, xp_n, out=cand)
            tanh(cand, out=cand)
            # h = (1 - z) n + z h_{t-1} = n + z (h_{t-1} - n)
            sub(h_prev, cand, out=h_new)
            mul(h_new, z, out=h_new)
            add(h_new, cand, out=h_new)
        return {"hs": hs, "acts": acts, "hh": hh}

    def _scan_lecture(self, xp, fw, tag):
        t, gh, n = xp.shape
        h = gh // 3
        dt = xp.dtype
        acts = self._buf(tag + "acts", (t, gh, n), dt)  # r, z, n after their non-linearities
        rh = self._buf(tag + "rh", (t, h, n), dt)  # r * h_{t-1}, what W_hn reads
        hs = self._buf(tag + "hs", (t + 1, h, n), dt)
        hs[0] = fw.get("h0", 0)
        w_rz, w_n = fw["hh"], fw["hn"]
        for k in range(t):
            a = acts[k]
            np.matmul(w_rz, hs[k], out=a[: 2 * h])
            a[: 2 * h] += xp[k, : 2 * h]
            sigmoid_(a[: 2 * h])
            np.multiply(a[:h], hs[k], out=rh[k])  # reset before the product
            cand = a[2 * h :]
            np.matmul(w_n, rh[k], out=cand)
            cand += xp[k, 2 * h :]
            np.tanh(cand, out=cand)
            # h = (1 - z) h_{t-1} + z n = h_{t-1} + z (n - h_{t-1})
            np.subtract(cand, hs[k], out=hs[k + 1])
            hs[k + 1] *= a[h : 2 * h]
            hs[k + 1] += hs[k]
        return {"hs": hs, "acts": acts, "rh": rh}

    def _scan_back_lecture(self, dhs, dlast, sc, w):
        acts, rh, hs = sc["acts"], sc["rh"], sc["hs"]
        t, gh, n = acts.shape
        h = gh // 3
        dt = acts.dtype
        w_rz_t = np.ascontiguousarray(w["weight_hh"][: 2 * h].T)
        w_n_t = np.ascontiguousarray(w["weight_hh"][2 * h :].T)
        dh = _start_dh(self, dhs, dlast, (t, h, n), dt)
        dpre = self._buf("b_dpre", (t, gh, n), dt)
        d_rh = np.empty((h, n), dt)
        back = np.empty((h, n), dt)
        for k in range(t - 1, -1, -1):
            r, z, cand = (acts[k, j * h : (j + 1) * h] for j in range(3))
            d_r, d_z, d_n = (dpre[k, j * h : (j + 1) * h] for j in range(3))
            # dn = dh z, dz = dh (n - h_{t-1}), dh_{t-1} = dh (1 - z) + ...
            np.multiply(dh[k] * z, 1 - cand * cand, out=d_n)
            np.multiply(dh[k] * (cand - hs[k]), z * (1 - z), out=d_z)
            np.matmul(w_n_t, d_n, out=d_rh)  # dL/d(r * h_{t-1})
            np.multiply(d_rh * hs[k], r * (1 - r), out=d_r)
            if k == 0:  # dL/dh_0, for an initial state given on port 1
                sc["dh0"] = (
                    dh[0] * (1 - z) + d_rh * r + w["weight_hh"][: 2 * h].T @ dpre[0, : 2 * h]
                )
            if k:
                np.matmul(w_rz_t, dpre[k, : 2 * h], out=back)
                dh[k - 1] = dh[k] * (1 - z) + d_rh * r + back
                if dhs is not None:
                    dh[k - 1] += dhs[k - 1]
        # W_hn reads r * h_{t-1}, the other rows h_{t-1}: dW_hh by blocks, over T * N columns
        cols = (gh, t * n)
        dp = dpre.transpose(1, 0, 2).reshape(cols)
        sc["dw_hh"] = np.concatenate(
            [
                dp[: 2 * h] @ hs[:-1].transpose(1, 0, 2).reshape(h, t * n).T,
                dp[2 * h :] @ rh.transpose(1, 0, 2).reshape(h, t * n).T,
            ]
        )
        return dpre, dpre, dh

    def _scan_back(self, dhs, dlast, sc, w):
        if self.lecture:
            return self._scan_back_lecture(dhs, dlast, sc, w)
        acts, hh, hs = sc["acts"], sc["hh"], sc["hs"]
        t, gh, n = acts.shape
        h = gh // 3
        dt = acts.dtype
        r, z, cand = acts[:, :h], acts[:, h : 2 * h], acts[:, 2 * h :]
        # For all steps at once, with dh the total gradient reaching h_t:
        #   dpre_n = dh (1-z)(1-n^2)                  (also d of the input projection's n block)
        #   dpre_r = dpre_n (W_hn h + b_hn) r(1-r),    dpre_z = dh (h_{t-1} - n) z(1-z)
        #   d(W_hn h + b_hn) = dpre_n * r,            dh_{t-1} = dh z + W_hh^T dhh
        # p and q hold those factors so that dxp_k = dh_k * p_k and dhh_k = dh_k * q_k.
        p = self._buf("b_p", (t, gh, n), dt)
        pn = p[:, 2 * h :]
        np.multiply(cand, cand, out=pn)
        np.subtract(1, pn, out=pn)
        omz = self._buf("b_omz", (t, h, n), dt)  # 1 - z, then reused for z (1 - z)
        np.subtract(1, z, out=omz)
        pn *= omz
        pr = p[:, :h]
        np.subtract(1, r, out=pr)
        pr *= r
        pr *= hh[:, 2 * h :]
        pr *= pn
        pz = p[:, h : 2 * h]
        np.subtract(hs[:-1], cand, out=pz)
        omz *= z
        pz *= omz
        q = self._buf("b_q", (t, gh, n), dt)
        q[...] = p
        q[:, 2 * h :] *= r
        dh = _start_dh(self, dhs, dlast, (t, h, n), dt)
        dxp = self._buf("b_dxp", (t, gh, n), dt)
        dhh = self._buf("b_dhh", (t, gh, n), dt)
        p3, q3 = p.reshape(t, 3, h, n), q.reshape(t, 3, h, n)
        dxp3, dhh3 = dxp.reshape(t, 3, h, n), dhh.reshape(t, 3, h, n)
        through_z = self._buf("b_tz", (h, n), dt)
        whh_t = np.ascontiguousarray(w["weight_hh"].T)
        steps = self._step_views(
            "b_views",
            (p, q, dh, dxp, dhh, acts, dhs),
            lambda: [
                (p3[k], dh[k], dxp3[k], q3[k], dhh3[k])
                + ((dhh[k], dh[k - 1], z[k], None if dhs is None else dhs[k - 1]) if k else ())
                for k in range(t - 1, -1, -1)
            ],
        )
        mul, add, matmul = np.multiply, np.add, np.matmul
        for p_k, dh_k, dxp_k, q_k, dhh_k, *back in steps:
            mul(p_k, dh_k, out=dxp_k)
            mul(q_k, dh_k, out=dhh_k)
            if back:  # not step 0: dL/dh_{t-1}
                dhh_flat, dh_prev, z_k, dhs_prev = back
                matmul(whh_t, dhh_flat, out=dh_prev)
                mul(dh_k, z_k, out=through_z)
                add(dh_prev, through_z, out=dh_prev)
                if dhs_prev is not None:
                    add(dh_prev, dhs_prev, out=dh_prev)
        return dxp, dhh, dh

    def _dh0(self, dhh, dh, sc, w):
        if self.lecture:
            return sc["dh0"]
        h = self.config["hidden_size"]
        return w["weight_hh"].T @ dhh[0] + dh[0] * sc["acts"][0, h : 2 * h]  # h = ... + z h_prev

    def _gates(self, sc):
        acts, h = sc["acts"], self.config["hidden_size"]
        return {
            name: acts[:, j * h : (j + 1) * h].transpose(2, 0, 1) for j, name in enumerate("rzn")
        }
