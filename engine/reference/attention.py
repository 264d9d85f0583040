"""Attention as lecture 001 writes it (Luong et al., 2015; Bahdanau et al., 2015), one query step
and one memory step at a time.

For a query step h_t (the decoder's state) and every memory step h̄_s (the encoder's states):

    score(h_t, h̄_s) = h_t . h̄_s                         dot
                    = h_t^T W_a h̄_s                     general
                    = v_a^T tanh(W_a [h_t; h̄_s])        concat
                    = v_a^T tanh(W_q h_t + W_m h̄_s)     additive (Bahdanau's W_a, U_a)
    a_t(s) = exp(score(h_t, h̄_s)) / sum_s' exp(score(h_t, h̄_s'))   (padded s' left out)
    c_t = sum_s a_t(s) h̄_s

Backward, for one t: dL/da_t(s) = dL/dc_t . h̄_s, and dL/dh̄_s gets a_t(s) dL/dc_t; through
the softmax dL/de_s = a_t(s) (dL/da_t(s) - sum_s' a_t(s') dL/da_t(s')); then through the score.
"""

from __future__ import annotations

import numpy as np


def _score(kind, params, q, m):
    """e = score(q, m) for one query vector q and one memory vector m, and what backward needs."""
    if kind == "dot":
        return float(q @ m), None
    if kind == "general":
        return float(q @ params["weight"] @ m), None
    if kind == "concat":
        hidden = np.tanh(params["weight"] @ np.concatenate([q, m]))
    else:
        hidden = np.tanh(params["weight_query"] @ q + params["weight_memory"] @ m)
    return float(params["v"] @ hidden), hidden


def attention_forward(
    q: np.ndarray, m: np.ndarray, params: dict, score: str, mask: np.ndarray | None = None
) -> tuple[np.ndarray, tuple]:
    """Context vectors. Shapes: q (N, Tq, Fq), m (N, Tm, Fm), mask (N, Tm) or None (0 marks a
    padded memory step) -> out (N, Tq, Fm); also returns the alignment a (N, Tq, Tm)."""
    n, tq, _ = q.shape
    tm, fm = m.shape[1:]
    out = np.zeros((n, tq, fm), dtype=q.dtype)
    a = np.zeros((n, tq, tm), dtype=q.dtype)
    hiddens = {}
    for i in range(n):
        steps = [s for s in range(tm) if mask is None or mask[i, s] != 0]
        for t in range(tq):
            e = {}
            for s in steps:
                e[s], hiddens[i, t, s] = _score(score, params, q[i, t], m[i, s])
            if not steps:
                continue  # all padding: nothing to read, c_t = 0
            top = max(e.values())
            total = sum(np.exp(e[s] - top) for s in steps)
            for s in steps:
                a[i, t, s] = np.exp(e[s] - top) / total
                out[i, t] += a[i, t, s] * m[i, s]
    return out, (q, m, params, score, a, hiddens)


def attention_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, dict]:
    """dL/dq, dL/dm and the parameters' gradients from dL/dout (N, Tq, Fm)."""
    q, m, params, score, a, hiddens = cache
    dq, dm = np.zeros_like(q), np.zeros_like(m)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    fq = q.shape[2]
    for i, t, s in hiddens:
        dm[i, s] += a[i, t, s] * dout[i, t]
    for i in range(q.shape[0]):
        for t in range(q.shape[1]):
            da = {s: float(dout[i, t] @ m[i, s]) for (j, u, s) in hiddens if (j, u) == (i, t)}
            mean = sum(a[i, t, s] * da[s] for s in da)
            for s in da:
                de = a[i, t, s] * (da[s] - mean)
                hidden = hiddens[i, t, s]
                if score == "dot":
                    dq[i, t] += de * m[i, s]
                    dm[i, s] += de * q[i, t]
                elif score == "general":
                    w = params["weight"]
                    dq[i, t] += de * (w @ m[i, s])
                    dm[i, s] += de * (w.T @ q[i, t])
                    grads["weight"] += de * np.outer(q[i, t], m[i, s])
                else:
                    grads["v"] += de * hidden
                    dz = de * params["v"] * (1 - hidden**2)
                    if score == "concat":
                        w = params["weight"]
                        d_in = w.T @ dz
                        dq[i, t] += d_in[:fq]
                        dm[i, s] += d_in[fq:]
                        grads["weight"] += np.outer(dz, np.concatenate([q[i, t], m[i, s]]))
                    else:
                        dq[i, t] += params["weight_query"].T @ dz
                        dm[i, s] += params["weight_memory"].T @ dz
                        grads["weight_query"] += np.outer(dz, q[i, t])
                        grads["weight_memory"] += np.outer(dz, m[i, s])
    return dq, dm, grads
