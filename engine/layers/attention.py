"""Attention: each query step reads a weighted average of the memory (lecture 001, Bahdanau and
Luong attention)."""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock, code
from engine.settings import Opt

SCORES = ("dot", "general", "concat", "additive")
# Values per sample of the largest array inside (the scores (Tq, Tm), or tanh's layer
# (Tq, Tm, A) for concat and additive): above this a block is refused before anything runs
# (the analysis's memory estimate counts outputs, not this).
MAX_INNER = 1 << 22

TORCH_ATTENTION = '''
class Attention(nn.Module):
    """BlockProp's Attention: scores of each query step against each memory step (dot, general,
    concat or additive), a softmax over the memory steps that are not padding, the context
    vectors (N, Tq, Fm) = weights @ memory. ``mask`` (N, Tm): 0 marks a padded memory step."""

    def __init__(self, score, query_size, memory_size, attention_size=0):
        super().__init__()
        self.score = score
        self.query_size = query_size
        if score == "general":
            self.weight = nn.Parameter(torch.empty(query_size, memory_size))
        elif score == "concat":
            self.weight = nn.Parameter(torch.empty(attention_size, query_size + memory_size))
            self.v = nn.Parameter(torch.empty(attention_size))
        elif score == "additive":
            self.weight_query = nn.Parameter(torch.empty(attention_size, query_size))
            self.weight_memory = nn.Parameter(torch.empty(attention_size, memory_size))
            self.v = nn.Parameter(torch.empty(attention_size))

    def forward(self, query, memory, mask=None):
        if self.score == "dot":
            s = query @ memory.transpose(1, 2)
        elif self.score == "general":
            s = query @ self.weight @ memory.transpose(1, 2)
        else:
            if self.score == "concat":
                wq, wm = self.weight[:, : self.query_size], self.weight[:, self.query_size :]
            else:
                wq, wm = self.weight_query, self.weight_memory
            s = torch.tanh((query @ wq.T)[:, :, None] + (memory @ wm.T)[:, None]) @ self.v
        if mask is not None:
            keep = (mask != 0)[:, None, :]
            s = s.masked_fill(~keep, float("-inf"))
            # a query whose memory is all padding reads nothing (softmax of -inf only: NaN -> 0)
            return torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0) @ memory
        return torch.softmax(s, dim=-1) @ memory
'''


class Attention(Layer):
    """Attention (lecture 001: Luong's dot / general / concat scores, Bahdanau's additive one).

    Input port 0 is the query sequence q (the decoder's states h_t), port 1 the memory m (the
    encoder's states h̄_s). For every query step t and memory step s a score e_ts is computed,

        dot       e_ts = q_t . m_s                                (Fq = Fm)
        general   e_ts = q_t^T W_a m_s                            W_a (Fq, Fm)
        concat    e_ts = v_a^T tanh(W_a [q_t; m_s])               W_a (A, Fq + Fm), v_a (A,)
        additive  e_ts = v_a^T tanh(W_q q_t + W_m m_s)            W_q (A, Fq), W_m (A, Fm)

    the alignment a_t = softmax_s(e_t) (over the memory steps) and the context vector
    c_t = sum_s a_ts m_s. Bahdanau's score reads the decoder's previous state s_{t-1} as its
    query: feed port 0 the states one step behind for his form. concat and additive are the same
    function family written two ways (Luong's one matrix on the concatenation, Bahdanau's two
    matrices, his W_a and U_a); neither has a bias. The lecture's slide writes concat's argument
    as [c_t; h_t]; Luong et al. (2015) score [h_t; h̄_s], as here.

    Masking: an optional port 2 takes (N, Tm) values, usually the source token ids: a memory
    step where it is 0 is padding (Keras's mask_zero convention, token 0 = padding) and gets
    weight 0; a query whose memory is all padding gets the context 0. No gradient flows to it.

    Reference: engine.reference.attention.attention_forward / attention_backward.
    Shapes: q (N, Tq, Fq), m (N, Tm, Fm)[, mask (N, Tm)] -> out (N, Tq, Fm).
    Inspection: ``alignment`` (N, Tq, Tm), the weights a_ts of the last forward; also as
    ``gates["a"]``, which the training snapshots send to the Activations panel (memory steps x
    output steps for the chosen validation sample).
    """

    type_name = "Attention"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"dot: $e_{ts} = q_t^{\top} m_s$$\qquad$general: $e_{ts} = q_t^{\top} W_a m_s$",
        r"concat: $e_{ts} = v_a^{\top} \tanh(W_a [q_t; m_s])$",
        r"additive: $e_{ts} = v_a^{\top} \tanh(W_q q_t + W_m m_s)$",
        r"$a_{ts} = \frac{\exp(e_{ts})}{\sum_{s'} \exp(e_{ts'})} \qquad c_t = \sum_s a_{ts}\, m_s$",
    )
    family = "Recurrent"
    has_weights = True
    shows_alignment = True
    arity = (2, 3)
    options = {
        "score": Opt(
            "choice",
            default="dot",
            choices=SCORES,
            doc="score of a query step against a memory step: dot, general (Luong), "
            "concat (Luong), additive (Bahdanau)",
        ),
        "attention_size": Opt(
            "int", default=32, min=1, max=65536, doc="size A of tanh's layer (concat, additive)"
        ),
    }
    starter = {"score": "additive", "attention_size": 32}

    def __init__(self, name=None, **config):
        super().__init__(name, **config)
        self.alignment: np.ndarray | None = None
        self.gates: dict[str, np.ndarray] = {}

    @classmethod
    def summary(cls, cfg):
        score = cfg.get("score", "dot")
        return (
            f"{score} {cfg.get('attention_size', 32)}" if score in ("concat", "additive") else score
        )

    # --- shapes and parameters -----------------------------------------------------------------
    def _sizes(self, in_shape) -> tuple[int, int, int, int]:
        shapes = [tuple(s) for s in in_shape]
        if not 2 <= len(shapes) <= 3:
            raise ShapeError(
                f"Attention takes a query and a memory (and optionally a mask), got "
                f"{len(shapes)} input(s)",
                block=self.name,
            )
        q, m = shapes[0], shapes[1]
        for port, s in (("query (port 0)", q), ("memory (port 1)", m)):
            if len(s) != 2:
                raise ShapeError(
                    f"Attention's {port} must be a sequence (time steps, features), got {s}",
                    block=self.name,
                )
        if len(shapes) == 3 and shapes[2] != (m[0],):
            raise ShapeError(
                f"Attention's mask (port 2) must be one value per memory step ({m[0]},), "
                f"got {shapes[2]}",
                block=self.name,
            )
        if self.config["score"] == "dot" and q[1] != m[1]:
            raise ShapeError(
                f"Attention score 'dot' needs query and memory features equal, got {q[1]} and "
                f"{m[1]}: choose score 'general', 'concat' or 'additive'",
                block=self.name,
            )
        inner = q[0] * m[0] * (self.config["attention_size"] if self._tanh_score else 1)
        if inner > MAX_INNER:
            raise ShapeError(
                f"Attention would hold {inner:,} values per sample inside (query steps x memory "
                f"steps{' x attention_size' if self._tanh_score else ''}; the limit is "
                f"{MAX_INNER:,}): use shorter sequences or a smaller attention_size",
                block=self.name,
            )
        return q[0], q[1], m[0], m[1]

    @property
    def _tanh_score(self) -> bool:
        return self.config["score"] in ("concat", "additive")

    def output_shape(self, in_shape):
        tq, _, _, fm = self._sizes(in_shape)
        return (tq, fm)

    def param_shapes(self, in_shape):
        _, fq, _, fm = self._sizes(in_shape)
        a = self.config["attention_size"]
        score = self.config["score"]
        if score == "general":
            return {"weight": (fq, fm)}
        if score == "concat":
            return {"weight": (a, fq + fm), "v": (a,)}
        if score == "additive":
            return {"weight_query": (a, fq), "weight_memory": (a, fm), "v": (a,)}
        return {}

    def macs(self, in_shape, out_shape):
        tq, fq, tm, fm = self._sizes(in_shape)
        a = self.config["attention_size"]
        read = tq * tm * fm  # the context: weights @ memory
        score = self.config["score"]
        if score == "dot":
            return read + tq * tm * fq
        if score == "general":
            return read + tm * fm * fq + tq * tm * fq
        return read + (tq * fq + tm * fm) * a + tq * tm * a

    def to_torch(self, in_shape):
        tq, fq, tm, fm = self._sizes(in_shape)
        args = [code(self.config["score"]), str(fq), str(fm)]
        if self.config["score"] in ("concat", "additive"):
            args.append(str(self.config["attention_size"]))
        inputs = ", ".join(f"{{{i}}}" for i in range(len(in_shape)))
        return TorchBlock(
            f"Attention({', '.join(args)})", f"{{m}}({inputs})", {"Attention": TORCH_ATTENTION}
        )

    def check_input(self, xs):
        if len(xs) != len(self.in_shape):
            raise ShapeError(
                f"Attention expects {len(self.in_shape)} inputs, got {len(xs)}", block=self.name
            )
        for i, (x, s) in enumerate(zip(xs, self.in_shape, strict=True)):
            if tuple(x.shape[1:]) != tuple(s):
                raise ShapeError(
                    f"Attention's input {i} must be (N, {', '.join(map(str, s))}), got "
                    f"{tuple(x.shape)}",
                    block=self.name,
                )

    # --- computing -----------------------------------------------------------------------------
    def _tanh_weights(self):
        p = self.params
        if self.config["score"] == "concat":
            fq = self.in_shape[0][1]
            return p["weight"][:, :fq], p["weight"][:, fq:]
        return p["weight_query"], p["weight_memory"]

    def forward(self, xs, training=False):
        self.check_input(xs)
        q, m = xs[0], xs[1]
        score = self.config["score"]
        cache = {"q": q, "m": m}
        if score == "dot":
            s = q @ m.transpose(0, 2, 1)
        elif score == "general":
            wm = m @ self.params["weight"].T  # (N, Tm, Fq): W_a m_s for every s
            cache["wm"] = wm
            s = q @ wm.transpose(0, 2, 1)
        else:
            wq, wmem = self._tanh_weights()
            # hidden[n, t, s] = tanh(W_q q_t + W_m m_s): (N, Tq, Tm, A)
            hidden = np.tanh((q @ wq.T)[:, :, None, :] + (m @ wmem.T)[:, None, :, :])
            cache["hidden"] = hidden
            s = hidden @ self.params["v"]
        keep = None
        if len(xs) == 3:
            keep = np.broadcast_to((np.asarray(xs[2]) != 0)[:, None, :], s.shape)
            s = np.where(keep, s, -np.inf)
        top = s.max(axis=-1, keepdims=True)
        top[~np.isfinite(top)] = 0.0  # a query whose memory is all padding
        e = np.exp(s - top)
        total = e.sum(axis=-1, keepdims=True)
        a = e / np.where(total > 0, total, 1.0)
        cache["a"] = a
        self._cache = cache
        self.alignment = a
        self.gates = {"a": a}
        return a @ m

    def backward(self, dout):
        c = self._cache
        q, m, a = c["q"], c["m"], c["a"]
        score = self.config["score"]
        # out = a @ m: dL/da = dout @ m^T, dL/dm = a^T @ dout (the reading part)
        da = dout @ m.transpose(0, 2, 1)
        dm = a.transpose(0, 2, 1) @ dout
        # softmax: ds = a * (da - sum_s a da); masked steps have a = 0, so ds = 0 there
        ds = a * (da - np.sum(a * da, axis=-1, keepdims=True))
        if score == "dot":
            dq = ds @ m
            dm += ds.transpose(0, 2, 1) @ q
        elif score == "general":
            w = self.params["weight"]
            dq = ds @ c["wm"]
            dwm = ds.transpose(0, 2, 1) @ q  # (N, Tm, Fq)
            dm += dwm @ w
            # sums over samples and steps as one matmul each (einsum would loop)
            self.grads["weight"] = dwm.reshape(-1, dwm.shape[-1]).T @ m.reshape(-1, m.shape[-1])
        else:
            hidden = c["hidden"]
            wq, wmem = self._tanh_weights()
            a_size = hidden.shape[-1]
            self.grads["v"] = ds.reshape(-1) @ hidden.reshape(-1, a_size)
            dz = ds[..., None] * self.params["v"] * (1.0 - hidden * hidden)
            dpq = dz.sum(axis=2)  # (N, Tq, A): W_q q_t appears in every s
            dpm = dz.sum(axis=1)  # (N, Tm, A): W_m m_s appears in every t
            dq = dpq @ wq
            dm += dpm @ wmem
            gq = dpq.reshape(-1, a_size).T @ q.reshape(-1, q.shape[-1])
            gm = dpm.reshape(-1, a_size).T @ m.reshape(-1, m.shape[-1])
            if score == "concat":
                self.grads["weight"] = np.concatenate([gq, gm], axis=1)
            else:
                self.grads["weight_query"] = gq
                self.grads["weight_memory"] = gm
        grads = [dq, dm]
        if len(self.in_shape) == 3:
            grads.append(None)  # the mask: no gradient
        return grads
