"""Recurrent blocks: the machinery RNN, LSTM and GRU share.

The cells live in ``rnn.py``, ``lstm.py`` and ``gru.py``; they only write the per-step maths. The
same cells one step at a time, with the lectures' equations: engine/reference/recurrent.py.

How a recurrent block runs (lecture 001/004, backpropagation through time):
- The input projection of every time step is computed before the loop in one stacked matmul,
  ``xp_t = weight_ih @ x_t^T + bias`` for all t at once, so the loop only does the recurrent
  part ``weight_hh @ h_{t-1}`` and the gate non-linearities. The RNN and the LSTM (without
  peepholes) stack ``[h_{t-1}; x_t; 1]`` instead, one product per step (``_fuses_input``): more
  columns in the step's product cost less than the projection and one addition a step.
- Arrays inside are time-major and feature-major: ``(T, features, N)``. Each step then reads
  and writes contiguous ``(features, N)`` blocks, every gate is a contiguous block of rows, and
  the per-step matmuls have the shapes BLAS runs fastest (measured: benchmarks/). The backward
  direction of a bidirectional block reads a time-reversed copy of x, so "step k" means "the
  k-th step this direction takes" (time T-1-k for it).
- ``_scan`` keeps ``hs (T + 1, H, N)`` with ``hs[0] = 0`` (zero initial state) and ``hs[k + 1]``
  the state after step k. Backward fills ``dh[k]`` = dL/dh_k (the gradient from this step's
  output plus everything flowing back from later steps) and the gradients of the
  pre-activations, then forms ``dW_hh = sum_k dpre_k h_{k-1}^T`` and ``dW_ih = sum_k dpre_k x_k``
  each as ONE matmul over all T * N columns.

What the app plots: after ``backward``, ``time_grad`` (T,) is the RMS over batch and hidden units
of dL/dh_t for the forward direction (``time_grad_reverse`` for the backward one): the vanishing
gradient of lecture 001/002 made visible. After ``forward``, ``gates`` holds the forward
direction's gate activations as ``(N, T, H)`` arrays. They are views of the layer's workspace
(no copying on every step): the next ``forward`` overwrites them, so copy what you keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine import blas_threads
from engine.errors import ShapeError
from engine.layers.base import Layer, TorchBlock, code
from engine.settings import Opt

SEQ_OPTIONS = {
    "hidden_size": Opt("int", min=1, max=65536, doc="number of hidden units H"),
    "return_sequences": Opt(
        "bool", default=False, doc="output every step's hidden state (T, H); off: only the last"
    ),
    "bidirectional": Opt(
        "bool", default=False, doc="also run backwards in time; features double (forward, backward)"
    ),
    "single_bias": Opt(
        "bool",
        default=False,
        doc="one bias per gate, b (the lectures' parameter count); off: PyTorch's two, "
        "b_ih + b_hh, whose sum acts as one",
    ),
}

TORCH_RECURRENT = '''
class Recurrent(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU (batch_first) returning what BlockProp's block returns: every
    step (N, T, D*H) with return_sequences, else the final hidden state (N, D*H): forward's
    after the last step, then backward's after the first (PyTorch's h_n); with return_state
    (LSTM) [h_n; c_n]. The initial state is zero, or ``state`` (N, S): h_0 (the LSTM's
    [h_0; c_0]), each with the directions side by side."""

    CELLS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}

    def __init__(self, cell, input_size, hidden_size, return_sequences=False,
                 bidirectional=False, return_state=False, **kw):
        super().__init__()
        self.rnn = self.CELLS[cell](input_size, hidden_size, batch_first=True,
                                    bidirectional=bidirectional, **kw)
        self.return_sequences, self.return_state = return_sequences, return_state
        self.parts = 2 if cell == "LSTM" else 1
        # BlockProp's names -> this module's ("weight_ih" -> "rnn.weight_ih_l0", ...)
        self.ENGINE_NAMES = {f"{w}{s}": f"rnn.{w}_l0{s}" for s in ("", "_reverse")
                             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def forward(self, x, state=None):
        init = None
        if state is not None:  # (N, D*H) blocks -> PyTorch's (D, N, H)
            d = 2 if self.rnn.bidirectional else 1
            init = [s.reshape(len(x), d, -1).transpose(0, 1).contiguous()
                    for s in state.chunk(self.parts, dim=1)]
            init = tuple(init) if self.parts == 2 else init[0]
        out, h = self.rnn(x, init)
        if self.return_sequences:
            return out
        if self.return_state:  # (h_n, c_n) -> [h_n; c_n]
            return torch.cat([*h[0], *h[1]], dim=1)
        h_n = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n); h_n (D, N, H)
        return torch.cat(list(h_n), dim=1)
'''

TORCH_RECURRENT_LOOP = '''
class RecurrentLoop(nn.Module):
    """BlockProp's RNN / LSTM / GRU step by step, for what nn.RNN/LSTM/GRU cannot do:
    single_bias (one bias per gate), LSTM peepholes (the gates see the cell) and the lecture's
    GRU (reset before W_hn, h = (1 - z) h_prev + z n). The initial state is zero or ``state``
    (as in Recurrent); returns what the block returns. Parameters are named as BlockProp names
    them."""

    GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

    def __init__(self, cell, input_size, hidden_size, return_sequences=False,
                 bidirectional=False, nonlinearity="tanh", single_bias=False, peepholes=False,
                 convention="pytorch", return_state=False):
        super().__init__()
        self.return_state = return_state
        self.cell, self.hidden_size, self.return_sequences = cell, hidden_size, return_sequences
        self.nonlinearity, self.single_bias = nonlinearity, single_bias
        self.peepholes, self.convention = peepholes, convention
        self.suffixes = ("", "_reverse") if bidirectional else ("",)
        gh = self.GATES[cell] * hidden_size
        for s in self.suffixes:
            shapes = {"weight_ih": (gh, input_size), "weight_hh": (gh, hidden_size),
                      "bias_ih": (gh,)}
            if not single_bias:
                shapes["bias_hh"] = (gh,)
            if peepholes:
                shapes.update({k: (hidden_size,) for k in ("weight_ci", "weight_cf", "weight_co")})
            for k, shape in shapes.items():
                self.register_parameter(k + s, nn.Parameter(torch.zeros(shape)))

    def step(self, x, h, c, s):
        def p(k):
            return getattr(self, k + s)

        n = self.hidden_size
        b_hh = 0.0 if self.single_bias else p("bias_hh")
        ax = x @ p("weight_ih").T + p("bias_ih")
        w = p("weight_hh")
        if self.cell == "GRU" and self.convention == "lecture":
            ax = ax + b_hh
            r = torch.sigmoid(ax[:, :n] + h @ w[:n].T)
            z = torch.sigmoid(ax[:, n : 2 * n] + h @ w[n : 2 * n].T)
            cand = torch.tanh(ax[:, 2 * n :] + (r * h) @ w[2 * n :].T)
            return (1 - z) * h + z * cand, c
        ah = h @ w.T + b_hh
        if self.cell == "GRU":
            r = torch.sigmoid(ax[:, :n] + ah[:, :n])
            z = torch.sigmoid(ax[:, n : 2 * n] + ah[:, n : 2 * n])
            cand = torch.tanh(ax[:, 2 * n :] + r * ah[:, 2 * n :])
            return (1 - z) * cand + z * h, c
        a = ax + ah
        if self.cell == "RNN":
            return (torch.tanh(a) if self.nonlinearity == "tanh" else torch.relu(a)), c
        ai, af, ag, ao = a.split(n, dim=1)
        if self.peepholes:
            ai, af = ai + p("weight_ci") * c, af + p("weight_cf") * c
        c = torch.sigmoid(af) * c + torch.sigmoid(ai) * torch.tanh(ag)
        if self.peepholes:
            ao = ao + p("weight_co") * c
        return torch.sigmoid(ao) * torch.tanh(c), c

    def forward(self, x, state=None):
        n, t, _ = x.shape
        seqs, finals, cells = [], [], []
        d, m = len(self.suffixes), self.hidden_size
        for j, s in enumerate(self.suffixes):
            h = x.new_zeros(n, m) if state is None else state[:, j * m : (j + 1) * m]
            c = x.new_zeros(n, m)
            if state is not None and self.cell == "LSTM":
                c = state[:, (d + j) * m : (d + j + 1) * m]
            hs = [None] * t
            for k in (range(t) if s == "" else range(t - 1, -1, -1)):
                h, c = self.step(x[:, k], h, c, s)
                hs[k] = h
            seqs.append(torch.stack(hs, dim=1))
            finals.append(h)
            cells.append(c)
        if self.return_state:
            return torch.cat(finals + cells, dim=1)
        return torch.cat(seqs, dim=2) if self.return_sequences else torch.cat(finals, dim=1)
'''


def sequence_shape_error(layer: Layer, in_shape: tuple) -> ShapeError:
    """The error for a recurrent block fed something that is not a (T, features) sequence."""
    s = tuple(in_shape)
    if len(s) == 3:
        c, h, w = s
        hint = (
            f"got an image {s} (channels, height, width). Insert a Reshape block before it, "
            f"e.g. shape [{c * h}, {w}] (each image row becomes a time step)"
        )
    elif len(s) == 1:
        hint = (
            f"got a flat vector {s}. Insert a Reshape block before it, e.g. shape "
            f"[{s[0]}, 1] (one feature per time step)"
        )
    else:
        hint = f"got {s}"
    return ShapeError(
        f"{layer.type_name} reads a sequence (time steps, features); {hint}", block=layer.name
    )


class Recurrent(Layer):
    """Shared base of RNN, LSTM and GRU (not a block itself).

    Shapes: x (N, T, F) -> out (N, T, D*H) with return_sequences, else (N, D*H);
    D = 2 if bidirectional else 1. weight_ih (G*H, F), weight_hh (G*H, H), bias_ih (G*H,),
    bias_hh (G*H,) per direction, G gates in PyTorch's order; the backward direction's
    parameters end in ``_reverse``.

    Subclasses set ``n_gates``, optionally ``gate_blocks`` (the order of PyTorch's gate blocks
    inside the engine, to keep gates that share a non-linearity side by side), and implement
    ``_step_weights``, ``_scan``, ``_scan_back`` and ``_gates``.

    Initial state (port 1, optional; zero without it): a vector (N, S) with S = D*H, for the
    LSTM S = 2*D*H holding [h_0; c_0]; each is the forward direction's H values, then the
    backward one's (PyTorch's h_n order). It is what an encoder's last output gives (the
    LSTM's with ``return_state``), or a Dense block's (an image's features start a caption).
    Backward then also returns dL/d(state): ``[dx, dstate]``.
    """

    family = "Recurrent"
    has_weights = True
    arity = (1, 2)  # port 1: the initial state (optional)
    state_parts: int = 1  # arrays in the state: h (the LSTM: h and c)
    n_gates: int = 1
    gate_blocks: tuple[int, ...] | None = None
    options = SEQ_OPTIONS
    starter = {"hidden_size": 32}
    recurrent = True
    # False skips dx (backward then returns None): engine.Model sets it for a block fed
    # straight by the data in training, which needs no input gradient (as Conv2D's).
    needs_input_grad = True

    @classmethod
    def summary(cls, cfg):
        text = f"{cfg.get('hidden_size')} {'seq' if cfg.get('return_sequences') else 'last'}"
        if cfg.get("bidirectional"):
            text += " bi"
        if cfg.get("nonlinearity", "tanh") != "tanh":
            text += f" {cfg.get('nonlinearity')}"
        if cfg.get("single_bias"):
            text += " 1 bias"
        return text

    def state_size(self) -> int:
        return self.state_parts * self.config["hidden_size"] * len(self.suffixes)

    def state_text(self) -> str:
        d = "D*H" if self.config["bidirectional"] else "H"
        return f"[h_0; c_0], 2*{d}" if self.state_parts == 2 else f"h_0, {d}"

    def seq_shape(self, in_shape) -> tuple:
        """The sequence's shape (T, F) of ``in_shape`` (with a state input: its first)."""
        return tuple(in_shape[0]) if isinstance(in_shape, list) else tuple(in_shape)

    def check_state_shape(self, in_shape) -> None:
        if not isinstance(in_shape, list) or len(in_shape) < 2:
            return
        got, want = tuple(in_shape[1]), (self.state_size(),)
        if got != want:
            raise ShapeError(
                f"{self.type_name}'s port 1 takes the initial state ({want[0]},) "
                f"({self.state_text()}); got {got}",
                block=self.name,
            )

    def check_input(self, x):
        xs = x if isinstance(x, list) else [x]
        shapes = self.in_shape if isinstance(self.in_shape, list) else [self.in_shape]
        for a, s in zip(xs, shapes, strict=False):
            if s is not None and tuple(a.shape[1:]) != tuple(s):
                raise ShapeError(
                    f"{self.type_name} expects input of shape (N, {', '.join(map(str, s))}), "
                    f"got {tuple(a.shape)}",
                    block=self.name,
                )

    def input_problem(self, in_shape, source):
        if len(in_shape) != 3:
            return None
        c, h, w = in_shape
        t = self.type_name
        if c != 1:
            return (
                f"{t} reads sequences (T, F) but '{source}' gives an image "
                f"({c}, {h}, {w}): feed it a sequence, e.g. through Reshape to (T, F)",
                None,
            )
        return (
            f"{t} reads sequences (T, F) but '{source}' gives an image ({c}, {h}, {w}): "
            f"insert Reshape to ({h}, {w}) so each row is one time step",
            {
                "kind": "insert",
                "type": "Reshape",
                "source": source,
                "target": self.name,
                "config": {"shape": [h, w]},
            },
        )

    def param_note(self, in_shape):
        in_shape = self.seq_shape(in_shape)
        if self.config.get("single_bias") or len(in_shape) != 2:
            return ""
        count = self.param_count(in_shape)
        extra = self.n_gates * self.config["hidden_size"] * len(self.suffixes)
        return (
            f"{extra:,} of its {count:,} params are PyTorch's second bias b_hh (b_ih + b_hh act "
            f"as one); the lectures count one bias per gate: {count - extra:,} with single_bias"
        )

    def macs(self, in_shape, out_shape):
        # every weight (input and recurrent, both directions) is used once per time step
        shapes = self.param_shapes(in_shape)
        return sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith("weight")) * int(
            self.seq_shape(in_shape)[0]
        )

    def to_torch(self, in_shape):
        cfg = self.config
        args = [
            code(self.type_name),
            str(int(self.seq_shape(in_shape)[1])),
            str(cfg["hidden_size"]),
        ]
        if cfg["return_sequences"]:
            args.append("return_sequences=True")
        if cfg["bidirectional"]:
            args.append("bidirectional=True")
        if cfg.get("return_state"):
            args.append("return_state=True")
        if cfg.get("nonlinearity", "tanh") != "tanh":
            args.append(f"nonlinearity={code(cfg['nonlinearity'])}")
        call = "{m}({0}, {1})" if isinstance(in_shape, list) else "{m}({0})"  # port 1: state
        variants = {k: cfg[k] for k in ("single_bias", "peepholes") if cfg.get(k)}
        if cfg.get("convention", "pytorch") != "pytorch":
            variants["convention"] = cfg["convention"]
        if variants:  # options PyTorch's modules lack: the loop, with BlockProp's names
            args += [f"{k}={code(v)}" for k, v in variants.items()]
            return TorchBlock(
                f"RecurrentLoop({', '.join(args)})",
                call,
                {"RecurrentLoop": TORCH_RECURRENT_LOOP},
            )
        names = {
            f"{w}{s}": f"rnn.{w}_l0{s}"
            for s in self.suffixes
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
        return TorchBlock(
            f"Recurrent({', '.join(args)})", call, {"Recurrent": TORCH_RECURRENT}, names
        )

    # --- shapes and parameters -----------------------------------------------------------------
    @property
    def suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.config["bidirectional"] else ("",)

    def output_shape(self, in_shape):
        self.check_state_shape(in_shape)
        in_shape = self.seq_shape(in_shape)
        if len(in_shape) != 2:
            raise sequence_shape_error(self, in_shape)
        feats = self.config["hidden_size"] * len(self.suffixes)
        if self.config.get("return_state"):
            return (self.state_size(),)
        return (int(in_shape[0]), feats) if self.config["return_sequences"] else (feats,)

    def param_shapes(self, in_shape):
        in_shape = self.seq_shape(in_shape)
        if len(in_shape) != 2:
            raise sequence_shape_error(self, in_shape)
        h, f = self.config["hidden_size"], int(in_shape[1])
        gh = self.n_gates * h
        shapes = {}
        for sfx in self.suffixes:
            shapes.update({f"weight_ih{sfx}": (gh, f), f"weight_hh{sfx}": (gh, h)})
            shapes[f"bias_ih{sfx}"] = (gh,)
            if not self.config.get("single_bias"):
                shapes[f"bias_hh{sfx}"] = (gh,)
            shapes.update({k + sfx: s for k, s in self._extra_shapes(h).items()})
        return shapes

    def _extra_shapes(self, h: int) -> dict[str, tuple[int, ...]]:
        """Parameters beside the four PyTorch arrays (the LSTM's peepholes), per direction."""
        return {}

    def default_init(self, key):
        # Keras's recurrent defaults: Glorot-uniform input weights, orthogonal recurrent weights
        # (eigenvalues of modulus 1: the product over time neither explodes nor vanishes at
        # first), zero biases.
        if key.startswith("bias"):
            return "zeros"
        return "orthogonal" if key.startswith("weight_hh") else "xavier_uniform"

    def after_init(self, rng):
        self.gates: dict[str, np.ndarray] = {}
        self.time_grad: np.ndarray | None = None
        self.time_grad_reverse: np.ndarray | None = None

    def _rows(self) -> np.ndarray | None:
        """Row index turning PyTorch's gate order into the engine's (None: same order); made
        once (the hidden size is fixed once built)."""
        if self.gate_blocks is None:
            return None
        h = self.config["hidden_size"]
        kept = self.__dict__.get("_gate_rows")
        if kept is None or kept[0] != h:
            rows = np.concatenate([np.arange(b * h, (b + 1) * h) for b in self.gate_blocks])
            kept = self._gate_rows = (h, rows, np.argsort(rows))
        return kept[1]

    def _rows_back(self) -> np.ndarray | None:
        """The inverse of ``_rows``: the engine's gate order back into PyTorch's."""
        return None if self._rows() is None else self._gate_rows[2]

    # --- hooks for the subclasses ----------------------------------------------------------------
    def _step_weights(self, w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward-pass copies of the weights: ``ih`` and ``b`` for the projection, plus what
        ``_scan`` needs. ``w`` holds weight_ih/hh, bias_ih/hh in the engine's gate order."""
        raise TypeError(f"{type(self).__name__} does not define _step_weights ")

    def _fuses_input(self) -> bool:
        """True: ``_scan`` gets ``xp`` None, and ``fw["z"]`` (T+1, H+F+1, N) holding
        [h_k; x_k; 1] per step, whose first H rows it fills as its ``hs``, and ``fw["hz"]`` =
        [W_hh | W_ih | b] (G*H, H+F+1): one product a step gives every pre-activation."""
        return False

    def _scan(self, xp: np.ndarray, fw: dict[str, np.ndarray], tag: str) -> dict[str, Any]:
        """Run the recurrence over xp (T, G*H, N) (see ``_fuses_input``); return a cache
        holding ``hs`` (T+1, H, N). ``tag`` names this direction's workspace arrays."""
        raise TypeError(f"{type(self).__name__} does not define _scan ")

    def _scan_back(self, dhs, dlast, sc, w):
        """Backward through time. ``dhs`` (T, H, N) is dL/d(output of step k) or None when only
        ``dlast`` (H, N) reaches the last step. Returns (dxp, dhh, dh): gradients of the input
        projection and of the recurrent pre-activation (T, G*H, N), and dL/dh_k (T, H, N)."""
        raise TypeError(f"{type(self).__name__} does not define _scan_back ")

    def _gates(self, sc: dict[str, Any]) -> dict[str, np.ndarray]:
        """The forward direction's gate activations as (N, T, H) arrays."""
        raise TypeError(f"{type(self).__name__} does not define _gates ")

    def _buf(self, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A workspace array kept between calls (uninitialised). Big arrays allocated afresh at
        every step cost page faults that can exceed the arithmetic; reusing them avoids that.
        Only internal caches live here: outputs and input gradients are always new arrays."""
        ws = self.__dict__.setdefault("_workspace", {})
        a = ws.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = ws[key] = np.empty(shape, dtype)
        return a

    def _step_views(self, key: str, arrays: tuple, make: Callable[[], list]) -> list:
        """``make()``'s per-step views of the workspace ``arrays``, made again only when one of
        them is a new array: slicing a step's blocks afresh on every call cost up to a sixth of
        a small step (benchmarks/NOTES.md). The arrays are held here, so ``is`` cannot match
        another array that got the id of a freed one. The first step's first view must be one
        of ``arrays[0]``: a copied layer (copy.deepcopy, pickle) holds copies, not views, and
        makes its views again."""
        ws = self.__dict__.setdefault("_workspace", {})
        kept = ws.get(key)
        if kept is None or len(kept[0]) != len(arrays):
            kept = None
        elif not all(a is b for a, b in zip(kept[0], arrays, strict=True)):
            kept = None
        elif kept[1] and kept[1][0][0].base is not arrays[0]:
            kept = None
        if kept is None:
            kept = ws[key] = (arrays, make())
        return kept[1]

    # --- forward and backward --------------------------------------------------------------------
    def _time_major(self, key: str, a: np.ndarray, reverse: bool, axes: tuple) -> np.ndarray:
        """Workspace copy of ``a`` (N, T, ...) transposed by ``axes``, time reversed if asked."""
        src = a[:, ::-1] if reverse else a
        out = self._buf(key, tuple(src.shape[i] for i in axes), self._dtype)
        out[...] = src.transpose(axes)
        return out

    def forward(self, x, training=False):
        self.check_input(x)
        state = None
        if isinstance(x, list):
            x, state = x[0], (x[1] if len(x) > 1 else None)
        n, t, f = x.shape
        h = self.config["hidden_size"]
        p = self.params
        dtype = p["weight_ih"].dtype
        if np.issubdtype(x.dtype, np.floating):
            dtype = np.result_type(dtype, x.dtype)
        self._dtype = dtype
        rows = self._rows()
        caches, finals, seqs, cells = [], [], [], []
        n_dir = len(self.suffixes)
        for d, sfx in enumerate(self.suffixes):
            w = {
                k: p[k + sfx].astype(dtype, copy=False)
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                if k + sfx in p
            }
            if "bias_hh" not in w:  # single_bias: the one bias is bias_ih
                w["bias_hh"] = np.zeros_like(w["bias_ih"])
            if rows is not None:
                w = {k: v[rows] for k, v in w.items()}
            w.update({k: p[k + sfx].astype(dtype, copy=False) for k in self._extra_shapes(1)})
            fw = self._step_weights(w)
            if state is not None:  # (H, N) blocks of the given initial state
                for j, key in enumerate(("h0", "c0")[: self.state_parts]):
                    at = (j * n_dir + d) * h
                    fw[key] = np.ascontiguousarray(state[:, at : at + h].T, dtype=dtype)
            gh = fw["ih"].shape[0]
            x_steps = (x[:, ::-1] if d else x).transpose(1, 2, 0)  # (T, F, N)
            if self._fuses_input():
                # z_k = [h_k; x_k; 1] per step (its first H rows are the scan's hs): step k's
                # pre-activations are ONE product [W_hh | W_ih | b] @ z_k, and no projection
                # runs before the loop
                z = self._buf(f"z{d}", (t + 1, h + f + 1, n), dtype)
                z[:t, h : h + f] = x_steps
                z[:t, h + f] = 1
                z[t, h:] = 0
                xin, xp = z[:t, h:], None
                fw["z"] = z
                fw["hz"] = np.concatenate([fw["hh"], fw["ih"], fw["b"][:, None]], axis=1)
                step_macs = self._step_macs(gh, h + f + 1, n)
            else:
                # x as (T, F + 1, N) with a row of ones, so the bias rides along in the matmul:
                # xp_t = [W_ih | b] @ [x_t^T; 1] for every time step in one (stacked) matmul
                xin = self._buf(f"x{d}", (t, f + 1, n), dtype)
                xin[:, :f] = x_steps
                xin[:, f] = 1
                w_aug = np.concatenate([fw["ih"], fw["b"][:, None]], axis=1)
                xp = self._buf(f"xp{d}", (t, gh, n), dtype)
                with blas_threads.limited(gh * (f + 1) * n):  # one (gh, F+1) @ (F+1, N) a step
                    np.matmul(w_aug, xin, out=xp)
                step_macs = self._step_macs(gh, h, n)
            with blas_threads.limited(step_macs):
                sc = self._scan(xp, fw, str(d))
            hs = sc["hs"]
            finals.append(hs[t].T)
            if "c" in sc:
                cells.append(sc["c"][t].T)
            if self.config["return_sequences"]:
                seqs.append(hs[1:][::-1] if d else hs[1:])
            caches.append((w, xin, sc))
            if d == 0:
                self.gates = self._gates(sc)
        self._cache = ((n, t, f), caches, state is not None)
        if self.config.get("return_state"):  # the LSTM's [h_T; c_T]
            return np.concatenate(finals + cells, axis=1)
        if not self.config["return_sequences"]:
            return np.concatenate(finals, axis=1)
        out = np.empty((n, t, h * len(seqs)), dtype)
        for d, s in enumerate(seqs):
            out[:, :, d * h : (d + 1) * h] = s.transpose(2, 0, 1)
        return out

    def backward(self, dout):
        (n, t, f), caches, has_state = self._cache
        h = self.config["hidden_size"]
        n_dir = len(self.suffixes)
        dstate = np.zeros((n, self.state_size()), self._dtype) if has_state else None
        inv = self._rows_back()
        seq = self.config["return_sequences"]
        dt = self._dtype
        # (with an initial state on port 1 the block is not fed by the data alone: dx is kept)
        want_dx = self.needs_input_grad or has_state
        dx = self._buf("dx", (t, n, f), dt) if want_dx else None
        for d, sfx in enumerate(self.suffixes):
            w, xin, sc = caches[d]
            cols = slice(d * h, (d + 1) * h)
            if seq:  # dL/d(output of step k), (T, H, N) in this direction's order
                dhs, dlast = self._time_major("b_dhs", dout[:, :, cols], bool(d), (1, 2, 0)), None
            else:
                dhs, dlast = None, dout[:, cols].T
            # return_state: dL/dc_T seeds the cell's gradient
            sc["dc_last"] = (
                dout[:, (n_dir + d) * h : (n_dir + d + 1) * h].T
                if self.config.get("return_state")
                else None
            )
            gh = w["weight_hh"].shape[0]
            with blas_threads.limited(self._step_macs(gh, h, n)):
                dxp, dhh, dh = self._scan_back(dhs, dlast, sc, w)
            if has_state:  # dL/dh_0 (and dL/dc_0), this direction's block of the state
                dstate[:, cols] = self._dh0(dhh, dh, sc, w).T
                if self.state_parts == 2:
                    dstate[:, (n_dir + d) * h : (n_dir + d + 1) * h] = sc["dc0"].T
            # The sums over steps and samples below are single matmuls over T * N columns:
            #   dW_ih = sum_k dxp_k x_k,  dW_hh = sum_k dhh_k h_{k-1}^T,  dx_k = dxp_k^T W_ih.
            dxp2 = self._buf("b_dxp2", (gh, t, n), dt)
            dxp2[...] = dxp.transpose(1, 0, 2)
            dxp2 = dxp2.reshape(gh, t * n)
            if dhh is dxp:
                dhh2 = dxp2
            else:
                dhh2 = self._buf("b_dhh2", (gh, t, n), dt)
                dhh2[...] = dhh.transpose(1, 0, 2)
                dhh2 = dhh2.reshape(gh, t * n)
            hprev = self._buf("b_hprev", (h, t, n), dt)
            hprev[...] = sc["hs"][:-1].transpose(1, 0, 2)
            xrows = self._buf("b_xrows", (t, n, f), dt)  # x_k as rows, this direction's order
            xrows[...] = xin[:, :f].transpose(0, 2, 1)
            xrows = xrows.reshape(t * n, f)
            with blas_threads.limited(gh * t * n * max(f, h)):
                dw_ih = dxp2 @ xrows
                ones = self._buf("b_ones", (t * n,), dt)
                ones[...] = 1
                db_ih = dxp2 @ ones  # sums over steps and samples: a matrix-vector product
                # (the lecture's GRU reads r * h_{t-1} in its candidate: _scan_back gives dW_hh)
                dw_hh = sc["dw_hh"] if "dw_hh" in sc else dhh2 @ hprev.reshape(h, t * n).T
                db_hh = db_ih.copy() if dhh is dxp else dhh2 @ ones
                dx_k = (dxp2.T @ w["weight_ih"]).reshape(t, n, f) if want_dx else None
            if dx_k is None:
                pass
            elif d:
                dx += dx_k[::-1]
            else:
                dx[...] = dx_k
            for k, g in (
                ("weight_ih", dw_ih),
                ("weight_hh", dw_hh),
                ("bias_ih", db_ih),
                ("bias_hh", db_hh),
            ):
                if k + sfx in self.params:
                    self.grads[k + sfx] = g if inv is None else g[inv]
            for k, g in sc.get("grads", {}).items():  # the peepholes' gradients
                self.grads[k + sfx] = g
            # RMS over batch and hidden units of dL/dh at each step, in time order.
            rms = np.sqrt(np.einsum("thn,thn->t", dh, dh) / (n * h))
            if d == 0:
                self.time_grad = rms
            else:
                self.time_grad_reverse = rms[::-1].copy()
        if dx is None:
            return None
        dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        return [dx, dstate] if has_state else dx

    @staticmethod
    def _step_macs(gh: int, h: int, n: int) -> int:
        """Multiply-adds of the largest product inside the time loop, (G*H, H) @ (H, N) (or
        its transpose in backward): each is ONE BLAS call, on the threads engine.blas_threads
        gives its size (one below 8 M: a (512, 128) @ (128, 32) step product split over two
        threads on a busy machine took 12 ms instead of 35 us, benchmarks/NOTES.md)."""
        return gh * h * n

    def _dh0(self, dhh, dh, sc, w) -> np.ndarray:
        """dL/dh_0 (H, N): h_0 reaches the loss only through step 0's recurrent product."""
        return w["weight_hh"].T @ dhh[0]


def _start_dh(layer: Recurrent, dhs, dlast, shape, dtype) -> np.ndarray:
    """dh (T, H, N) with its last step set: the gradient reaching the final state."""
    dh = layer._buf("b_dh", shape, dtype)
    dh[-1] = dhs[-1] if dhs is not None else dlast
    return dh
