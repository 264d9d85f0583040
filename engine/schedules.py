"""Learning-rate schedules: the lecture's decay formulas (000, "Learning Rate Decay").

``make_schedule(spec)`` returns a Schedule; ``schedule.lr(lr0, epoch)`` is the learning rate for
``epoch`` (counting from 0, so epoch 0 gives ``lr0``). With t = epoch:
- constant:     a_t = a_0
- step:         a_t = a_0 * beta^floor(t / h)   (beta = ``gamma`` in (0, 1), h = ``step_size``)
- exponential:  a_t = a_0 * e^(-beta t)          (beta = ``k`` > 0)
- time:         a_t = a_0 / (1 + beta t)         (beta = ``k`` > 0)
``SCHEDULE_TORCH_EQUIVALENT`` says how to get the same rates from ``torch.optim.lr_scheduler``
(stepped once per epoch); all three are exact.
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import ConfigError
from engine.settings import Opt, check_spec

SCHEDULE_OPTIONS: dict[str, dict[str, Opt]] = {
    "constant": {},
    "step": {
        "step_size": Opt("int", default=10, min=1, doc="h: epochs between decays"),
        "gamma": Opt(
            "float",
            default=0.5,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            max_exclusive=True,
            doc="beta: factor applied every step_size epochs",
        ),
    },
    "exponential": {
        "k": Opt("float", default=0.1, min=0.0, min_exclusive=True, doc="beta in e^(-beta t)"),
    },
    "time": {
        "k": Opt("float", default=0.1, min=0.0, min_exclusive=True, doc="beta in 1/(1 + beta t)"),
    },
}

# name -> {hyperparameter: default}
SCHEDULES: dict[str, dict[str, Any]] = {
    name: {k: o.default for k, o in opts.items()} for name, opts in SCHEDULE_OPTIONS.items()
}

# How to reproduce each schedule with torch.optim.lr_scheduler (scheduler.step() once per epoch,
# after the epoch). "kwargs" values are Python expressions in the spec's keys.
SCHEDULE_TORCH_EQUIVALENT: dict[str, dict[str, Any]] = {
    "constant": {"exact": True, "torch": None, "kwargs": {}, "note": "no scheduler"},
    "step": {
        "exact": True,
        "torch": "torch.optim.lr_scheduler.StepLR",
        "kwargs": {"step_size": "step_size", "gamma": "gamma"},
        "note": "StepLR: lr0 * gamma ** (epoch // step_size)",
    },
    "exponential": {
        "exact": True,
        "torch": "torch.optim.lr_scheduler.ExponentialLR",
        "kwargs": {"gamma": "math.exp(-k)"},
        "note": "lr0 * exp(-k)^t = lr0 * e^(-k t)",
    },
    "time": {
        "exact": True,
        "torch": "torch.optim.lr_scheduler.LambdaLR",
        "kwargs": {"lr_lambda": "lambda t: 1.0 / (1.0 + k * t)"},
        "note": "LambdaLR multiplies lr0 by 1 / (1 + k t)",
    },
}


def check_schedule_spec(spec: Any) -> dict:
    """Complete, checked copy of a schedule spec (defaults filled in), or ConfigError.

    ``None`` means constant; a bare name ("step") means that schedule with its defaults.
    """
    if spec is None:
        spec = {"name": "constant"}
    elif isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f'learning-rate schedule must be an object like {{"name": "step", '
            f'"step_size": 10, "gamma": 0.5}}, got {spec!r}'
        )
    name = spec.get("name")
    if not isinstance(name, str) or name not in SCHEDULE_OPTIONS:
        raise ConfigError(
            f"unknown learning-rate schedule {name!r}; choose one of {', '.join(SCHEDULE_OPTIONS)}"
        )
    settings = {k: v for k, v in spec.items() if k != "name"}
    return {"name": name, **check_spec(f"schedule {name!r}", settings, SCHEDULE_OPTIONS[name])}


class Schedule:
    """The learning rate as a function of the epoch (lecture 000's decay formulas)."""

    def __init__(self, spec: Any = None) -> None:
        self.spec = check_schedule_spec(spec)
        self.name = self.spec["name"]

    def lr(self, lr0: float, epoch: int) -> float:
        """Learning rate for ``epoch`` (0-based) given the initial rate ``lr0``."""
        t = epoch
        s = self.spec
        if self.name == "step":
            return lr0 * s["gamma"] ** (t // s["step_size"])  # a0 beta^floor(t/h)
        if self.name == "exponential":
            return lr0 * math.exp(-s["k"] * t)  # a0 e^(-beta t)
        if self.name == "time":
            return lr0 / (1.0 + s["k"] * t)  # a0 / (1 + beta t)
        return lr0

    def __repr__(self) -> str:
        return f"Schedule({self.spec!r})"


def make_schedule(spec: dict | str | None) -> Schedule:
    """Schedule from a spec such as {"name": "exponential", "k": 0.05}; None means constant."""
    return Schedule(spec)
