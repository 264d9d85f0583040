"""The textbook version of every layer: forward and backward written as the lectures write them.

engine/layers/ is the fast engine (im2col and folded convolutions, reordered LSTM gates, reused
workspaces); this package is the version a student reads, CS231n's ``layers.py`` beside its
``fast_layers.py``. Each function is loops or one clear vectorised expression, with the
lecture's formula in its docstring (lectures: 000 VE593, 001 Korea Univ., 002 NUS CS3244,
003 CMU 10-601, 004 UMBC CMSC 678). Nothing here is fast, and nothing in the engine calls it:
tests/test_reference.py runs every layer type through both and asserts they agree (forward,
backward and every parameter gradient, float64, over shapes, strides and paddings).

The convention is CS231n's:

    out, cache = dense_forward(x, w, b)       # cache: what backward needs
    dx, dw, db = dense_backward(dout, cache)  # dL/dx, dL/dw, dL/db from dL/dout

Shapes carry the batch axis first (N), images are (N, C, H, W), sequences (N, T, F). Weights
use the layers' (PyTorch's) layouts, so a layer's ``params`` can be passed as they are. Every
layer class's docstring names its reference function ("Reference: engine.reference....").

Modules, one per family (as engine/layers): dense (Dense), activation (Activation),
conv (Conv2D, Conv1D, ConvTranspose2D), pool (MaxPool2D, AvgPool2D, GlobalAvgPool2D,
Subsample2D, Upsample2D), adaptive (AdaptiveAvgPool2D), shape (Flatten, Reshape),
norm (BatchNorm, Dropout, LocalResponseNorm), embedding (Embedding), recurrent (RNN, LSTM,
GRU), merge (Add, Concat), attention (Attention).
"""

from engine.reference import (
    activation,
    adaptive,
    attention,
    conv,
    dense,
    embedding,
    merge,
    norm,
    pool,
    recurrent,
    shape,
)

__all__ = [
    "activation",
    "adaptive",
    "attention",
    "conv",
    "dense",
    "embedding",
    "merge",
    "norm",
    "pool",
    "recurrent",
    "shape",
]
