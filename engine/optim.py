"""Optimizers, L1/L2 regularisation and gradient clipping, with the lecture's formulas.

``make_optimizer({"name": "adam", "lr": 1e-3})`` returns an Optimizer whose ``step(params, grads)``
updates every parameter array IN PLACE (never rebinds it); its state is keyed by parameter name,
``lr`` is a plain attribute the trainer may change between steps.

The update rules, exactly as lecture 001 ("Gradient Descent Variations") writes them; g is the
gradient, lr is eta, and every operation is element-wise:

=========  ===================================================================  ==============
name       update (state starts at 0; t counts this parameter's steps from 1)   PyTorch
=========  ===================================================================  ==============
sgd        w <- w - lr g                                                        SGD: exact
momentum   v <- gamma v + lr g ;  w <- w - v                                    SGD(momentum):
                                                                                exact if lr
                                                                                is constant
nesterov   v <- gamma v + lr grad(w - gamma v_old) ; w <- w - v                 SGD(nesterov):
           (stored weights are the look-ahead point, see Nesterov)              same as above
adagrad    G <- G + g^2 ;  w <- w - lr g / sqrt(G + eps)                        custom
adadelta   E <- rho E + (1 - rho) g^2 ;  w <- w - lr g / sqrt(E + eps)          custom
rmsprop    the same with rho = 0.9 (the slide: "set the gamma to 0.9 in         custom
           Adadelta"); rho stays a setting
adam       m <- b1 m + (1-b1) g ; v <- b2 v + (1-b2) g^2 ;                      custom
           m^ = m / (1 - b1^t) ; v^ = v / (1 - b2^t) ; w <- w - lr m^ / sqrt(v^ + eps)
=========  ===================================================================  ==============

The lecture keeps eps inside the square root (PyTorch: sqrt(.) + eps, outside) and its Adadelta
slide stops at the decaying average with a learning rate (Zeiler's full Adadelta, which is
torch.optim.Adadelta, then replaces lr by RMS of past updates). ``TORCH_EQUIVALENT`` spells out,
per optimizer, how PyTorch gives the same numbers, and ``RULES`` holds each update as a pure
function of plain arithmetic (runs on NumPy arrays and on torch tensors) for the exporter to copy
into a custom ``torch.optim.Optimizer`` where PyTorch has no equal (both in engine/optim_rules.py).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np

from engine.errors import ConfigError, ShapeError
from engine.settings import Opt, check_spec

# --- settings ------------------------------------------------------------------------------------


def _lr(default: float) -> Opt:
    return Opt("float", default=default, min=0.0, min_exclusive=True, doc="learning rate (eta)")


def _decay(default: float, doc: str) -> Opt:
    return Opt("float", default=default, min=0.0, max=1.0, max_exclusive=True, doc=doc)


def _eps(default: float) -> Opt:
    return Opt(
        "float",
        default=default,
        min=0.0,
        min_exclusive=True,
        doc="added inside the square root (lecture 001), keeps it from being 0",
    )


OPTIMIZER_OPTIONS: dict[str, dict[str, Opt]] = {
    "sgd": {"lr": _lr(0.01)},
    "momentum": {"lr": _lr(0.01), "momentum": _decay(0.9, "gamma: weight of the past velocity")},
    "nesterov": {"lr": _lr(0.01), "momentum": _decay(0.9, "gamma: weight of the past velocity")},
    "adagrad": {"lr": _lr(0.01), "eps": _eps(1e-8)},
    "adadelta": {
        "lr": _lr(1e-3),
        "rho": _decay(0.95, "gamma: decay of the mean of g^2"),
        "eps": _eps(1e-6),
    },
    "rmsprop": {
        "lr": _lr(1e-3),
        "rho": _decay(0.9, "decay of the mean of g^2 (lecture: 0.9)"),
        "eps": _eps(1e-8),
    },
    "adam": {
        "lr": _lr(1e-3),
        "beta1": _decay(0.9, "decay of the mean gradient m"),
        "beta2": _decay(0.999, "decay of the mean squared gradient v"),
        "eps": _eps(1e-8),
    },
}

# name -> {hyperparameter: default}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    name: {k: o.default for k, o in opts.items()} for name, opts in OPTIMIZER_OPTIONS.items()
}


def check_optimizer_spec(spec: Any) -> dict:
    """Complete, checked copy of an optimizer spec (defaults filled in), or ConfigError.

    A bare name ("adam") means that optimizer with its defaults.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f'optimizer must be an object like {{"name": "adam", "lr": 0.001}}, got {spec!r}'
        )
    name = spec.get("name")
    if not isinstance(name, str) or name not in OPTIMIZER_OPTIONS:
        raise ConfigError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_OPTIONS)}"
        )
    settings = {k: v for k, v in spec.items() if k != "name"}
    return {"name": name, **check_spec(f"optimizer {name!r}", settings, OPTIMIZER_OPTIONS[name])}


# --- optimizers ----------------------------------------------------------------------------------


class Optimizer:
    """Base class: ``step(params, grads)`` updates each ``params[k]`` in place from ``grads[k]``.

    Per parameter the state holds the step count ``t``, the arrays named in ``slots`` (zeros of
    the parameter's shape and dtype) and a scratch array, so a step allocates nothing.
    """

    name: ClassVar[str] = ""
    slots: ClassVar[tuple[str, ...]] = ()
    # While the parameter arrays hold at most this many values each on average, a step updates
    # them as ONE flat array (copied in, updated, copied back): the rule's NumPy calls once
    # instead of once per array (~0.7 us a call at these sizes). It pays for rules of many calls
    # on small arrays; above it the copies cost more than the calls save (0: never). Measured,
    # us per step, per array -> flat: Adam on adding_lstm's 6 arrays (2.9k values on average)
    # 53 -> 27, LeNet-5's 10 (6.2k) 115 -> 80, char_lstm's 7 (11k) 114 -> 98; SGD on LeNet-5
    # 18 -> 28 (benchmarks/NOTES.md). The rules are element-wise: the same numbers either way.
    flat_max_values: ClassVar[int] = 0

    def __init__(self, **hyper: Any) -> None:
        spec = check_optimizer_spec({"name": self.name, **hyper})
        self.lr: float = spec.pop("lr")
        del spec["name"]
        self.hyper: dict[str, float] = spec
        self.state: dict[str, dict[str, Any]] = {}
        self._given: tuple | None = None  # see use_flat

    def use_flat(
        self,
        params: list[np.ndarray],
        w: np.ndarray,
        grads: list[np.ndarray],
        g: np.ndarray,
    ) -> None:
        """Tell the optimizer that the caller keeps the parameters as the arrays ``params``,
        consecutive pieces of the 1-D ``w`` in the order ``step`` gets them, and hands it the
        gradients as the arrays ``grads``, pieces of ``g`` (engine.parallel's split step). A
        flat step then updates ``w`` from ``g`` where they are, copying nothing in or out, so
        it pays at any size (``flat_max_values`` only weighs the copies); a step given other
        arrays gathers them as before."""
        self._given = (tuple(params), w, tuple(grads), g)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr = float(self.lr)
        flat = self._flat_layout(params, grads)
        if flat is not None:
            self._flat_step(flat, params, grads, lr)
            return
        for key, w in params.items():
            g = grads[key]
            st = self.state.get(key)
            if st is None:
                st = self._new_state(key, w, g)
            st["t"] += 1
            self._update(w, g, st, lr)

    def _new_state(self, key: str, w: np.ndarray, g: np.ndarray) -> dict[str, Any]:
        if g.shape != w.shape:
            raise ShapeError(
                f"optimizer: gradient of {key!r} has shape {g.shape}, the parameter {w.shape}"
            )
        st: dict[str, Any] = {"t": 0, "buf": np.empty_like(w)}
        for slot in self.slots:
            st[slot] = np.zeros_like(w)
        self.state[key] = st
        return st

    def _flat_layout(
        self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
    ) -> dict[str, Any] | None:
        """The flat arrays of a small model's step (see ``flat_max_values``; any model's when
        its parameters are those ``use_flat`` named), made at its first step, or None: one
        array at a time. The per-parameter state's arrays are views of the flat ones, so a
        later step with other parameters goes on from the same state."""
        keys = tuple(params)
        flat = self.__dict__.get("_flat")
        if flat is not None:
            if flat is not False and flat["keys"] == keys:
                return flat
            self._flat = False  # once left, for good (the state's step counts go per parameter)
            return None
        ws = list(params.values())
        free = self._given is not None and self._given_w(params) is not None
        if self.state or len(ws) < 2:
            return None
        if not free and sum(w.size for w in ws) > self.flat_max_values * len(ws):
            return None
        dt = ws[0].dtype
        for k, w in params.items():
            g = grads.get(k)
            if g is None or w.dtype != dt or g.dtype != dt or g.shape != w.shape:
                return None
        total = sum(w.size for w in ws)
        st: dict[str, Any] = {"t": 0, "buf": np.empty(total, dt)}
        st.update({slot: np.zeros(total, dt) for slot in self.slots})
        parts, at = [], 0
        for k, w in params.items():
            part = slice(at, at + w.size)
            self.state[k] = {"t": 0}
            self.state[k].update({n: a[part].reshape(w.shape) for n, a in st.items() if n != "t"})
            parts.append((part, w.shape))
            at += w.size
        # the gathering buffers: made at the first step that needs them (see use_flat)
        self._flat = {"keys": keys, "total": total, "dt": dt, "st": st, "parts": parts}
        return self._flat

    def _given_w(self, params: dict[str, np.ndarray]) -> np.ndarray | None:
        """The flat array ``params`` are pieces of (``use_flat``), or None."""
        given = self._given[0]
        if len(given) == len(params) and all(
            a is b for a, b in zip(params.values(), given, strict=True)
        ):
            return self._given[1]
        return None

    def _given_g(self, keys: tuple[str, ...], grads: dict[str, np.ndarray]) -> np.ndarray | None:
        given = self._given[2]
        if len(given) == len(keys) and all(grads[k] is b for k, b in zip(keys, given, strict=True)):
            return self._given[3]
        return None

    @staticmethod
    def _gather(flat: dict[str, Any], name: str, arrays: list[np.ndarray]) -> np.ndarray:
        buf = flat.get(name)
        if buf is None:
            buf = flat[name] = np.empty(flat["total"], flat["dt"])
            flat[name + "_views"] = [buf[part].reshape(shape) for part, shape in flat["parts"]]
        np.concatenate([a.ravel() for a in arrays], out=buf)
        return buf

    def _flat_step(
        self,
        flat: dict[str, Any],
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        lr: float,
    ) -> None:
        keys = flat["keys"]
        w = g = None
        if self._given is not None:
            w, g = self._given_w(params), self._given_g(keys, grads)
        gathered = w is None
        if gathered:
            w = self._gather(flat, "w", list(params.values()))
        if g is None:
            g = self._gather(flat, "g", [grads[k] for k in keys])
        st = flat["st"]
        st["t"] += 1
        self._update(w, g, st, lr)
        if gathered:
            for p, v in zip(params.values(), flat["w_views"], strict=True):
                np.copyto(p, v)
        for k in keys:
            self.state[k]["t"] = st["t"]

    def _update(self, w: np.ndarray, g: np.ndarray, st: dict[str, Any], lr: float) -> None:
        raise TypeError(f"{type(self).__name__} does not define _update")

    def get_config(self) -> dict:
        """The spec that rebuilds this optimizer (current lr), JSON-ready."""
        return {"name": self.name, "lr": float(self.lr), **self.hyper}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """w <- w - lr g (001: w_new = w_old - alpha f'(w)). Equals torch.optim.SGD(lr)."""

    name = "sgd"

    def _update(self, w, g, st, lr):
        buf = st["buf"]
        np.multiply(g, lr, out=buf)
        w -= buf


class Momentum(Optimizer):
    """001 "Momentum": v_t = gamma v_{t-1} + eta grad J(w_t) ; w_{t+1} = w_t - v_t.

    PyTorch keeps b = mu b + g and steps w -= lr b; by induction v = lr b while lr is constant,
    so torch.optim.SGD(lr, momentum=gamma) gives the same weights. When lr changes, PyTorch
    rescales the whole history by the new lr, the lecture's v keeps the old rates.
    """

    name = "momentum"
    flat_max_values = 4_000  # (Optimizer.flat_max_values)
    slots = ("v",)

    def _update(self, w, g, st, lr):
        v, buf = st["v"], st["buf"]
        v *= self.hyper["momentum"]
        np.multiply(g, lr, out=buf)
        v += buf
        w -= v


class Nesterov(Optimizer):
    """001 "NAG": v_t = gamma v_{t-1} + eta grad J(w_t - gamma v_{t-1}) ; w_{t+1} = w_t - v_t.

    The trainer computes gradients at the stored weights, so the stored weights are the
    look-ahead point u_t = w_t - gamma v_{t-1} (Sutskever et al. 2013; PyTorch and Keras do the
    same). Then grad J(u_t) is exactly the lecture's gradient and
        u_{t+1} = w_{t+1} - gamma v_t = u_t + gamma v_{t-1} - (1 + gamma) v_t
                = u_t - gamma v_t - eta g_t          (since v_t - gamma v_{t-1} = eta g_t).
    u and w coincide once v has decayed. With constant lr this is torch.optim.SGD(lr,
    momentum=gamma, nesterov=True): b = mu b + g, u -= lr (g + mu b), and v = lr b.
    """

    name = "nesterov"
    flat_max_values = 6_000  # (Optimizer.flat_max_values)
    slots = ("v",)

    def _update(self, w, g, st, lr):
        v, buf = st["v"], st["buf"]
        gamma = self.hyper["momentum"]
        v *= gamma
        np.multiply(g, lr, out=buf)
        v += buf
        w -= buf  # - eta g
        np.multiply(v, gamma, out=buf)
        w -= buf  # - gamma v_t


class Adagrad(Optimizer):
    """001 "Adagrad": G_t = G_{t-1} + g_t^2 ; w_{t+1} = w_t - eta / sqrt(G_t + eps) * g_t.

    eps sits inside the square root (PyTorch's Adagrad: lr g / (sqrt(G) + eps)); equal only as
    eps -> 0, so the exporter uses RULES["adagrad"].
    """

    name = "adagrad"
    flat_max_values = 8_000  # (Optimizer.flat_max_values)
    slots = ("G",)

    def _update(self, w, g, st, lr):
        G, buf = st["G"], st["buf"]
        np.multiply(g, g, out=buf)
        G += buf
        np.add(G, self.hyper["eps"], out=buf)
        np.sqrt(buf, out=buf)
        np.divide(g, buf, out=buf)
        buf *= lr
        w -= buf


class Adadelta(Optimizer):
    """001 "Adadelta": E[g^2]_t = gamma E[g^2]_{t-1} + (1 - gamma) g_t^2 ;
    w_{t+1} = w_t - eta / sqrt(E[g^2]_t + eps) * g_t   (gamma = ``rho``).

    This is the rule the slide gives (the decaying average that replaces Adagrad's sum). Zeiler's
    full Adadelta (torch.optim.Adadelta) goes on to replace eta by the RMS of past updates, so
    this is not it. It equals torch.optim.RMSprop(lr, alpha=rho, eps) only as eps -> 0 (PyTorch
    adds eps outside the square root): the exporter uses RULES["adadelta"].
    """

    name = "adadelta"
    flat_max_values = 12_000  # (Optimizer.flat_max_values)
    slots = ("E",)

    def _update(self, w, g, st, lr):
        _mean_square_step(w, g, st["E"], st["buf"], lr, self.hyper["rho"], self.hyper["eps"])


class RMSProp(Optimizer):
    """001 "RMSProp": E[g^2]_t = 0.9 E[g^2]_{t-1} + 0.1 g_t^2 ;
    w_{t+1} = w_t - eta / sqrt(E[g^2]_t + eps) * g_t   (0.9 = ``rho``, the default).

    PyTorch's RMSprop (alpha=rho) adds eps outside the square root: equal only as eps -> 0, so
    the exporter uses RULES["rmsprop"].
    """

    name = "rmsprop"
    flat_max_values = 12_000  # (Optimizer.flat_max_values)
    slots = ("E",)

    def _update(self, w, g, st, lr):
        _mean_square_step(w, g, st["E"], st["buf"], lr, self.hyper["rho"], self.hyper["eps"])


def _mean_square_step(w, g, E, buf, lr, rho, eps):
    # E <- rho E + (1 - rho) g^2 ; w <- w - lr g / sqrt(E + eps)
    E *= rho
    np.multiply(g, g, out=buf)
    buf *= 1.0 - rho
    E += buf
    np.add(E, eps, out=buf)
    np.sqrt(buf, out=buf)
    np.divide(g, buf, out=buf)
    buf *= lr
    w -= buf


class Adam(Optimizer):
    """001 "Adam": m_t = b1 m_{t-1} + (1 - b1) g_t ; v_t = b2 v_{t-1} + (1 - b2) g_t^2 ;
    m^_t = m_t / (1 - b1^t) ; v^_t = v_t / (1 - b2^t) ; w_{t+1} = w_t - eta / sqrt(v^_t + eps) m^_t.

    Defaults lr 1e-3, b1 0.9, b2 0.999, eps 1e-8 (Kingma & Ba). The slide keeps eps inside the
    square root; torch.optim.Adam uses sqrt(v^) + eps. Equal only as eps -> 0: the exporter
    uses RULES["adam"].
    """

    name = "adam"
    flat_max_values = 12_000  # (Optimizer.flat_max_values)
    slots = ("m", "v")

    def _update(self, w, g, st, lr):
        m, v, buf, t = st["m"], st["v"], st["buf"], st["t"]
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        m *= b1
        np.multiply(g, 1.0 - b1, out=buf)
        m += buf
        v *= b2
        np.multiply(g, g, out=buf)
        buf *= 1.0 - b2
        v += buf
        np.multiply(v, 1.0 / (1.0 - b2**t), out=buf)  # v^
        buf += self.hyper["eps"]
        np.sqrt(buf, out=buf)
        np.divide(m, buf, out=buf)
        buf *= lr / (1.0 - b1**t)  # m^ = m / (1 - b1^t)
        w -= buf


_CLASSES: dict[str, type[Optimizer]] = {
    c.name: c for c in (SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSProp, Adam)
}


def make_optimizer(spec: dict | str) -> Optimizer:
    """Optimizer from a spec such as {"name": "momentum", "lr": 0.01, "momentum": 0.9}."""
    spec = check_optimizer_spec(spec)
    cls = _CLASSES[spec.pop("name")]
    return cls(**spec)


# --- regularisation and clipping ----------------------------------------------------------------


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_weight(key: str) -> bool:
    return key.rsplit(".", 1)[-1].startswith("weight")


def regularize(
    params: dict[str, np.ndarray], grads: dict[str, np.ndarray], l1: float = 0.0, l2: float = 0.0
) -> float:
    """Add the L1/L2 penalty's gradient to the weights' grads (in place); return the penalty.

    penalty = l1 * sum|w| + l2 / 2 * sum w^2,  grad += l1 sign(w) + l2 w
    over parameters whose local name starts with "weight" (biases are left alone). Lecture 001
    writes the terms as lambda/(2m) sum|w_i| and lambda/(2m) sum w_i^2 (m training examples):
    that is l1 = lambda/(2m) and l2 = lambda/m. l2 equals PyTorch's ``weight_decay`` for SGD.
    """
    for name, v in (("l1", l1), ("l2", l2)):
        if not (_is_real(v) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"'{name}' regularisation must be a number >= 0, got {v!r}")
    if not (l1 or l2):
        return 0.0
    penalty = 0.0
    for key, w in params.items():
        if not _is_weight(key):
            continue
        g = grads[key]
        if l1:
            penalty += l1 * float(np.abs(w).sum())
            g += l1 * np.sign(w)
        if l2:
            penalty += 0.5 * l2 * float(np.vdot(w, w))
            g += l2 * w
    return penalty


def clip_grad_norm(
    grads: dict[str, np.ndarray],
    max_norm: float,
    sum_sq: float | None = None,
    flat: np.ndarray | None = None,
) -> float:
    """Scale all grads in place so their joint L2 norm is at most ``max_norm``; return the norm
    before clipping. PyTorch's ``clip_grad_norm_``: total = sqrt(sum ||g||^2), and every g is
    multiplied by max_norm / (total + 1e-6) when that is below 1 (a non-finite total makes every
    gradient non-finite, as in PyTorch, and the trainer stops as diverged). ``sum_sq``: the sum
    of squares when the caller has it already (the Trainer, from its gradient RMS). ``flat``:
    the 1-D array the grads are, together, the pieces of (a split step's combined gradient):
    scaled in one call, the same numbers.
    """
    if not (_is_real(max_norm) and math.isfinite(max_norm) and max_norm > 0):
        raise ConfigError(f"'clip_norm' must be a number > 0, got {max_norm!r}")
    if sum_sq is None:
        sum_sq = sum(float(np.vdot(g, g)) for g in grads.values())
    total = math.sqrt(sum_sq)
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # also true for nan
        for g in (flat,) if flat is not None else grads.values():
            g *= coef
    return total
