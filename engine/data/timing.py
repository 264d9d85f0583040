"""Built-in timing task: generating timed spikes (Gers, Schraudolph & Schmidhuber 2002).

The task where an LSTM's peepholes (lecture 003) matter: a small network must emit a spike at
exactly the right step, so its output gate has to open when the cell has counted far enough,
and without peepholes the gates never see the cell. ``make_timed_spikes`` is the generator,
NumPy only (the PyTorch export copies its source, see engine/export/standalone_data.py).
"""

from __future__ import annotations

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements
from engine.errors import ConfigError
from engine.settings import Opt

TIMED_SPIKES_OPTIONS = {
    "n": Opt("int", default=2_000, min=1, max=1_000_000, doc="number of sequences"),
    "T": Opt("int", default=40, min=2, max=10_000, doc="sequence length"),
    "min_interval": Opt("int", default=8, min=1, max=10_000, doc="shortest interval d"),
    "max_interval": Opt("int", default=8, min=1, max=10_000, doc="longest interval d"),
    "cues": Opt(
        "int",
        default=1,
        min=1,
        max=2,
        doc="input spikes: 1, a trigger (d fixed: min_interval = max_interval); 2, d steps "
        "apart, so the input shows d",
    ),
}


def make_timed_spikes(rng, n, T, min_interval, max_interval, cues):
    """Input spikes at t0 + k d for k < cues, targets at t0 + k d for k >= cues (to the end),
    with d ~ U{min_interval..max_interval}, t0 ~ U{0..d-1}: X, y (N, T, 1) float32."""
    d = rng.integers(min_interval, max_interval + 1, n)[:, None]
    t0 = (rng.random(n)[:, None] * d).astype(np.int64)
    steps = np.arange(T)[None, :] - t0  # steps since the first input spike
    spike = (steps >= 0) & (steps % d == 0)
    X = spike & (steps < cues * d)
    y = spike & (steps >= cues * d)
    return X[:, :, None].astype(np.float32), y[:, :, None].astype(np.float32)


def spikes_right(y: np.ndarray, pred: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Per sequence, whether the output crosses 0.5 at every target spike (within
    ``tolerance`` steps) and nowhere else (more than ``tolerance`` steps from any target).

    Shapes: y, pred (N, T) or (N, T, 1) -> (N,) bool.
    """
    y = np.asarray(y).reshape(len(y), -1) > 0.5
    fired = np.asarray(pred).reshape(len(pred), -1) > 0.5
    near_y, near_fired = y.copy(), fired.copy()
    for s in range(1, tolerance + 1):  # widen each spike by s steps either way
        near_y[:, s:] |= y[:, :-s]
        near_y[:, :-s] |= y[:, s:]
        near_fired[:, s:] |= fired[:, :-s]
        near_fired[:, :-s] |= fired[:, s:]
    missed = (y & ~near_fired).any(axis=1)
    extra = (fired & ~near_y).any(axis=1)
    return ~missed & ~extra


def load_timed_spikes(cfg: dict, rng: np.random.Generator) -> Dataset:
    """Generating timed spikes (GTS; Gers, Schraudolph & Schmidhuber 2002, JMLR 3).

    An interval d is drawn from [min_interval, max_interval] and a start t0 from [0, d). Input:
    1 at the ``cues`` steps t0, t0 + d (one trigger, or two spikes that show d), 0 elsewhere.
    Target: the interval continued, 1 at t0 + cues * d, t0 + (cues + 1) * d, ... up to the end
    of the sequence, 0 elsewhere. A network must count d steps and fire exactly then.
    Shapes: X (N, T, 1), y (N, T, 1) float32. Answering the mean everywhere scores the MSE
    given in meta and gets no sequence right; a run's accuracy (val_acc) is the share of
    sequences ``spikes_right`` counts right (meta["score"]).
    """
    lo, hi, T, cues = cfg["min_interval"], cfg["max_interval"], cfg["T"], cfg["cues"]
    if lo > hi:
        raise ConfigError(
            f"data set 'timed_spikes': 'min_interval' {lo} is larger than 'max_interval' {hi}"
        )
    if cues == 1 and lo != hi:
        raise ConfigError(
            "data set 'timed_spikes': one cue (a trigger) cannot show the interval: set "
            f"min_interval = max_interval (now {lo} and {hi}), or cues = 2"
        )
    if T < (cues + 1) * hi:
        raise ConfigError(
            f"data set 'timed_spikes': T = {T} may leave no room for a target spike after "
            f"{cues} input spike(s) up to {hi} steps apart: make T at least "
            f"(cues + 1) * max_interval = {(cues + 1) * hi}"
        )
    check_elements(cfg["n"] * T * 2, "the timed spikes' X and y")
    X, y = make_timed_spikes(rng, **cfg)
    return Dataset(
        X,
        y,
        "regression",
        name="timed_spikes",
        description=DATASETS_HERE["timed_spikes"].description,
        meta={
            "baseline_mse": float(y.var()),
            "baseline": "answering the fraction of target steps everywhere (no sequence right)",
            "channels": ["input spike"],
            "score": "spikes_right",  # the runs' accuracy: sequences with every spike on time
        },
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "timed_spikes": DatasetSpec(
        "Timed spikes (Gers 2002): after a trigger (or two spikes d apart), spike every d steps",
        TIMED_SPIKES_OPTIONS,
        load_timed_spikes,
    ),
}
