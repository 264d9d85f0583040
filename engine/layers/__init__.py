"""Every block type as a Layer class; ``LAYER_TYPES`` maps a graph file's ``type`` to its class.

A Layer subclass with a ``type_name`` registers itself when its module is imported; each family
module is imported here, so ``LAYER_TYPES`` holds them all.
"""

from engine.layers.activation import Activation
from engine.layers.adaptive import AdaptiveAvgPool2D
from engine.layers.attention import Attention
from engine.layers.base import Layer, register
from engine.layers.conv import Conv2D
from engine.layers.conv1d import Conv1D
from engine.layers.conv_transpose import ConvTranspose2D
from engine.layers.dense import Dense
from engine.layers.embedding import Embedding
from engine.layers.gru import GRU
from engine.layers.lrn import LocalResponseNorm
from engine.layers.lstm import LSTM
from engine.layers.merge import Add, Concat
from engine.layers.norm import BatchNorm, Dropout, GaussianNoise
from engine.layers.pool import (
    AvgPool2D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    MaxPool2D,
    Subsample2D,
)
from engine.layers.rnn import RNN
from engine.layers.shape import Flatten, Input, Reshape, Slice, Transpose
from engine.layers.upsample import MaxUnpool2D, Upsample2D
from engine.settings import Opt

LAYER_TYPES: dict[str, type[Layer]] = Layer.registry

__all__ = [
    "LAYER_TYPES",
    "Layer",
    "Opt",
    "register",
    "Activation",
    "AdaptiveAvgPool2D",
    "Add",
    "Attention",
    "AvgPool2D",
    "BatchNorm",
    "Concat",
    "Conv1D",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GaussianNoise",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalMaxPool1D",
    "Input",
    "LSTM",
    "LocalResponseNorm",
    "MaxPool2D",
    "MaxUnpool2D",
    "RNN",
    "Reshape",
    "Slice",
    "Subsample2D",
    "Transpose",
    "Upsample2D",
]
