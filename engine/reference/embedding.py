"""Embedding: integer ids to learned vectors, as the one-hot product it stands for.

Lecture 002's character RNN feeds "hello" as one-hot vectors over the vocabulary [h, e, l, o];
a dense layer without bias on a one-hot vector just picks one row of its weight. The
Embedding block is that product, with a V x D table:

    out[n, t] = onehot(ids[n, t]) @ W = W[ids[n, t]]
    dW        = sum_{n, t} onehot(ids[n, t])^T dout[n, t]   (row j: the sum of dout where id == j)

The ids are integers, so there is no gradient with respect to the input. (The engine looks the
rows up and scatter-adds the gradient without building one-hot vectors.)
"""

from __future__ import annotations

import numpy as np


def one_hot(ids: np.ndarray, vocabulary: int) -> np.ndarray:
    """ids (N, T) -> (N, T, V) with a 1 at each id."""
    return np.eye(vocabulary)[ids]


def embedding_forward(ids: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = onehot(ids) @ W. Shapes: ids (N, T) in [0, V), w (V, D) -> out (N, T, D)."""
    hot = one_hot(ids, w.shape[0])
    return hot @ w, hot


def embedding_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dW = sum over (n, t) of onehot^T dout: a row used k times gets the sum of k gradients."""
    hot = cache
    vocabulary, dim = hot.shape[-1], dout.shape[-1]
    return hot.reshape(-1, vocabulary).T @ dout.reshape(-1, dim)
