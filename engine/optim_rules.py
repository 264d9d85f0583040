"""The lecture's update rules as pure functions, and how PyTorch gives the same numbers.

``RULES[name](w, g, state, lr, **hyper) -> (new_w, new_state)`` (state starts as {}) is each
optimizer's update exactly as engine.optim's classes apply it, in plain arithmetic, so the same
function runs on NumPy arrays (the tests' reference) and on torch tensors (the PyTorch export
copies it into a custom ``torch.optim.Optimizer`` where PyTorch has no equal).
``TORCH_EQUIVALENT`` says, per optimizer, which torch optimizer is equal and when.
"""

from __future__ import annotations

from typing import Any

# --- the same maths as pure functions (reference for tests and for the PyTorch exporter) ---------
# Each takes (w, g, state, lr, **hyperparameters) and returns (new_w, new_state); state starts
# as {}. Only arithmetic operators are used, so they run unchanged on torch tensors.


def sgd_rule(w, g, state, lr):
    return w - lr * g, state


def momentum_rule(w, g, state, lr, momentum):
    v = momentum * state.get("v", 0 * w) + lr * g
    return w - v, {"v": v}


def nesterov_rule(w, g, state, lr, momentum):
    # w is the look-ahead point; g the gradient there (see Nesterov)
    v = momentum * state.get("v", 0 * w) + lr * g
    return w - momentum * v - lr * g, {"v": v}


def adagrad_rule(w, g, state, lr, eps):
    G = state.get("G", 0 * w) + g * g
    return w - lr * g / (G + eps) ** 0.5, {"G": G}


def adadelta_rule(w, g, state, lr, rho, eps):
    E = rho * state.get("E", 0 * w) + (1 - rho) * g * g
    return w - lr * g / (E + eps) ** 0.5, {"E": E}


def rmsprop_rule(w, g, state, lr, rho, eps):
    E = rho * state.get("E", 0 * w) + (1 - rho) * g * g
    return w - lr * g / (E + eps) ** 0.5, {"E": E}


def adam_rule(w, g, state, lr, beta1, beta2, eps):
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", 0 * w) + (1 - beta1) * g
    v = beta2 * state.get("v", 0 * w) + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (v_hat + eps) ** 0.5, {"t": t, "m": m, "v": v}


RULES = {
    "sgd": sgd_rule,
    "momentum": momentum_rule,
    "nesterov": nesterov_rule,
    "adagrad": adagrad_rule,
    "adadelta": adadelta_rule,
    "rmsprop": rmsprop_rule,
    "adam": adam_rule,
}

# How to get the same weights in PyTorch.
#   "equal": "exact"       - the torch optimizer below, always;
#            "constant_lr" - the torch optimizer below while lr never changes (no schedule, no
#                            set_lr); otherwise a custom optimizer running RULES[name];
#            "custom"      - no torch optimizer is equal: a custom one running RULES[name].
#   "torch", "kwargs": the equal torch optimizer (for "custom": the closest one, for reference);
#   kwargs values are Python expressions in the spec's keys.
TORCH_EQUIVALENT: dict[str, dict[str, Any]] = {
    "sgd": {
        "equal": "exact",
        "torch": "torch.optim.SGD",
        "kwargs": {"lr": "lr"},
        "note": "w -= lr g in both",
    },
    "momentum": {
        "equal": "constant_lr",
        "torch": "torch.optim.SGD",
        "kwargs": {"lr": "lr", "momentum": "momentum"},
        "note": "lecture v = gamma v + lr g, w -= v; PyTorch b = mu b + g, w -= lr b; "
        "v = lr b while lr is constant",
    },
    "nesterov": {
        "equal": "constant_lr",
        "torch": "torch.optim.SGD",
        "kwargs": {"lr": "lr", "momentum": "momentum", "nesterov": "True"},
        "note": "both store the look-ahead weights w - gamma v; v = lr b while lr is constant",
    },
    "adagrad": {
        "equal": "custom",
        "torch": "torch.optim.Adagrad",
        "kwargs": {"lr": "lr", "eps": "eps"},
        "note": "lecture lr g / sqrt(G + eps); PyTorch lr g / (sqrt(G) + eps)",
    },
    "adadelta": {
        "equal": "custom",
        "torch": "torch.optim.RMSprop",
        "kwargs": {"lr": "lr", "alpha": "rho", "eps": "eps"},
        "note": "the slide's Adadelta is lr g / sqrt(E[g^2] + eps), i.e. RMSprop with eps "
        "inside the root (torch.optim.Adadelta is Zeiler's full rule, not this)",
    },
    "rmsprop": {
        "equal": "custom",
        "torch": "torch.optim.RMSprop",
        "kwargs": {"lr": "lr", "alpha": "rho", "eps": "eps"},
        "note": "lecture lr g / sqrt(E + eps); PyTorch lr g / (sqrt(E) + eps)",
    },
    "adam": {
        "equal": "custom",
        "torch": "torch.optim.Adam",
        "kwargs": {"lr": "lr", "betas": "(beta1, beta2)", "eps": "eps"},
        "note": "lecture lr m^ / sqrt(v^ + eps); PyTorch lr m^ / (sqrt(v^) + eps)",
    },
}
