"""The vanilla (Elman) RNN (lecture 001/002): the simplest cell on the shared machinery of
``recurrent.py``; its gradient through time is the one that vanishes."""

from __future__ import annotations

import numpy as np

from engine.layers.recurrent import SEQ_OPTIONS, Recurrent, _start_dh
from engine.settings import Opt


class RNN(Recurrent):
    """Elman RNN: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), f = tanh or relu.

    Reference: engine.reference.recurrent.rnn_step_forward / rnn_step_backward (through time:
    recurrent_forward / recurrent_backward).
    Shapes: x (N, T, F) -> out (N, T, D*H) with return_sequences, else (N, D*H);
    weight_ih (H, F), weight_hh (H, H), bias_ih (H,), bias_hh (H,) (PyTorch's nn.RNN).
    BPTT (lecture 001): dL/dh_{t-1} = (dL/dh_t * f'(a_t)) W_hh, so the gradient is multiplied
    by (1 - h_t^2) W_hh at every step back: it vanishes when those factors are small.
    Inspection: gates = {"h": hidden states (N, T, H)}.
    """

    type_name = "RNN"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$",
        r"$\frac{\partial L}{\partial h_{t-1}} = W_{hh}^{\top} \left( (1 - h_t^2) \odot "
        r"\frac{\partial L}{\partial h_t} \right)$",
    )
    n_gates = 1
    options = {
        "hidden_size": SEQ_OPTIONS["hidden_size"],
        "nonlinearity": Opt(
            "choice", default="tanh", choices=("tanh", "relu"), doc="activation of the hidden state"
        ),
        "return_sequences": SEQ_OPTIONS["return_sequences"],
        "bidirectional": SEQ_OPTIONS["bidirectional"],
        "single_bias": SEQ_OPTIONS["single_bias"],
    }

    def _step_weights(self, w):
        # both biases are constant over time: add them to the projection once
        return {"ih": w["weight_ih"], "b": w["bias_ih"] + w["bias_hh"], "hh": w["weight_hh"]}

    def _fuses_input(self):
        return True

    def _scan(self, xp, fw, tag):
        z, whz = fw["z"], fw["hz"]  # z_k = [h_k; x_k; 1]: see Recurrent._fuses_input
        h = whz.shape[0]
        hs = z[:, :h]
        hs[0] = fw.get("h0", 0)
        steps = self._step_views(
            tag + "views", (z,), lambda: list(zip(z[:-1], hs[1:], strict=True))
        )
        matmul = np.matmul
        if self.config["nonlinearity"] == "relu":
            zero = np.array(0, z.dtype)  # not the Python int, which NumPy converts every call
            for zk, a in steps:
                matmul(whz, zk, out=a)
                np.maximum(a, zero, out=a)
        else:
            tanh = np.tanh
            for zk, a in steps:
                matmul(whz, zk, out=a)
                tanh(a, out=a)
        return {"hs": hs}

    def _scan_back(self, dhs, dlast, sc, w):
        hs = sc["hs"]
        t, h, n = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        dt = hs.dtype
        # f'(a_k) for every step at once: 1 - h^2 (tanh) or [h > 0] (relu)
        fprime = self._buf("b_fprime", (t, h, n), dt)
        if self.config["nonlinearity"] == "relu":
            np.greater(hs[1:], 0, out=fprime)
        else:
            np.multiply(hs[1:], hs[1:], out=fprime)
            np.subtract(1, fprime, out=fprime)
        dh = _start_dh(self, dhs, dlast, (t, h, n), dt)
        da = self._buf("b_dpre", (t, h, n), dt)
        whh_t = np.ascontiguousarray(w["weight_hh"].T)
        for k in range(t - 1, -1, -1):
            np.multiply(dh[k], fprime[k], out=da[k])
            if k:
                np.matmul(whh_t, da[k], out=dh[k - 1])  # dL/dh_{k-1} = W_hh^T da_k (+ output)
                if dhs is not None:
                    dh[k - 1] += dhs[k - 1]
        return da, da, dh

    def _gates(self, sc):
        return {"h": sc["hs"][1:].transpose(2, 0, 1)}
