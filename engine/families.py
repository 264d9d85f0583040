"""Families of presets that teach by comparison: train them all and overlay their curves.

One table: a family's name, what it compares, and its presets (files in presets/, in the
order they train). The app's "Train the family and compare" (Train menu) finds the family of
the graph in the window by the preset it came from (its name) and trains every member.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"

FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "optimizers": (
        "the same CNN under SGD, momentum, RMSprop and Adam",
        ("optimizers_sgd", "optimizers_momentum", "optimizers_rmsprop", "optimizers_adam"),
    ),
    "init": (
        "the same MLP from zero, small normal and He initial weights",
        ("init_zero", "init_normal", "init_he"),
    ),
    "depth": (
        "deep MLPs: sigmoid, ReLU, residual, sigmoid with BatchNorm",
        ("deep_sigmoid_mlp", "deep_relu_mlp", "residual_mlp", "deep_sigmoid_batchnorm"),
    ),
    "recurrent": (
        "the adding problem with a plain RNN, an LSTM and a GRU",
        ("adding_rnn", "adding_lstm", "adding_gru"),
    ),
}


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Graph name -> preset file stem, for the family members (read once)."""
    out = {}
    for _what, members in FAMILIES.values():
        for stem in members:
            try:
                name = json.loads((PRESETS_DIR / f"{stem}.json").read_text("utf-8")).get("name")
            except (OSError, ValueError):
                continue
            if isinstance(name, str):
                out[name] = stem
    return out


def family_of(graph_name: str | None) -> str | None:
    """The family of the preset named ``graph_name``, or None."""
    stem = _names().get(graph_name or "")
    return next((f for f, (_w, members) in FAMILIES.items() if stem in members), None)


def members(family: str) -> list[Path]:
    """The preset files of ``family``, in training order."""
    return [PRESETS_DIR / f"{stem}.json" for stem in FAMILIES[family][1]]
