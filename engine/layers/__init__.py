"""Every block type as a Layer class; ``LAYER_TYPES`` maps a graph file's ``type`` to its class."""

from engine.layers import (
    activation,
    attention,
    conv,
    dense,
    embedding,
    gru,
    lstm,
    merge,
    norm,
    pool,
    recurrent,
    shape,
)
from engine.layers.base import Layer, register
from engine.settings import Opt

LAYER_TYPES: dict[str, type[Layer]] = Layer.registry

globals().update(LAYER_TYPES)  # engine.layers.Conv2D(...) etc.

__all__ = ["LAYER_TYPES", "Layer", "Opt", "register", *LAYER_TYPES]
del activation, attention, conv, dense, embedding, gru, lstm, merge, norm, pool, recurrent, shape
