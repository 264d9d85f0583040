"""Embedding: integer ids to learned vectors."""

from __future__ import annotations

import numpy as np

from engine.errors import ConfigError, DataError, ShapeError
from engine.layers.base import Layer, TorchBlock
from engine.settings import Opt


class Embedding(Layer):
    """A lookup table: out[n, t] = weight[ids[n, t]] (PyTorch's nn.Embedding).

    Equivalent to a one-hot vector times ``weight`` (lecture 002's one-hot "hello" RNN input),
    without building the one-hot vectors.
    Reference: engine.reference.embedding.embedding_forward / embedding_backward.
    Shapes: ids (N, T) integers in [0, num_embeddings) -> out (N, T, embedding_dim);
    weight (num_embeddings, embedding_dim), initialised N(0, 1) like PyTorch.
    Backward: dL/dweight[j] = sum of dout over the positions whose id is j (ids repeat: the
    rows are sorted by id and summed per id); integer ids get no gradient (returns None).
    """

    type_name = "Embedding"
    reads_ids = True
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out}[n, t] = W[\mathrm{id}_{n t}] = \mathrm{onehot}(\mathrm{id}_{n "
        r"t})^{\top} W$",
        r"$\frac{\partial L}{\partial W[j]} = \sum_{n, t:\ \mathrm{id}_{n t} = j} \delta_{n t}$",
    )
    family = "Recurrent"
    has_weights = True
    options = {
        "num_embeddings": Opt(
            "int", min=1, max=10_000_000, doc="size of the vocabulary: ids run from 0 to this - 1"
        ),
        "embedding_dim": Opt("int", min=1, max=65536, doc="length of each learned vector"),
    }
    starter = {"num_embeddings": 64, "embedding_dim": 16}

    @classmethod
    def summary(cls, cfg):
        return f"{cfg.get('num_embeddings')} → {cfg.get('embedding_dim')}"

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ShapeError(
                f"Embedding reads a sequence of integer ids (T,), got {tuple(in_shape)}: "
                "put it right after the Input of a token data set",
                block=self.name,
            )
        return (int(in_shape[0]), self.config["embedding_dim"])

    def param_shapes(self, in_shape):
        return {"weight": (self.config["num_embeddings"], self.config["embedding_dim"])}

    def init_rule(self, key, shape):
        if not self.config.get("init"):
            return "standard_normal", {}  # PyTorch's N(0, 1)
        return super().init_rule(key, shape)

    def macs(self, in_shape, out_shape):
        return 0  # a lookup: no multiply-adds

    def to_torch(self, in_shape):
        cfg = self.config
        return TorchBlock(
            f"nn.Embedding({cfg['num_embeddings']}, {cfg['embedding_dim']})", "{m}({0})"
        )

    def _ids(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            if not (np.issubdtype(x.dtype, np.floating) and np.all(np.mod(x, 1) == 0)):
                raise DataError(
                    f"Embedding needs integer ids, got values of type {x.dtype}: use a token "
                    "data set (ids), not features",
                    block=self.name,
                )
            x = x.astype(np.int64)
        if x.size:
            lo, hi = int(x.min()), int(x.max())
            num = self.config["num_embeddings"]
            if lo < 0 or hi >= num:
                raise ConfigError(
                    f"Embedding got ids from {lo} to {hi}, but num_embeddings is {num} (ids must "
                    f"be 0 to {num - 1}): set num_embeddings to at least {hi + 1}"
                    + (" and check the data: ids cannot be negative" if lo < 0 else ""),
                    block=self.name,
                )
        return x

    def forward(self, x, training=False):
        self.check_input(x)
        ids = self._ids(x)
        self._cache = ids
        return self.params["weight"][ids]

    def backward(self, dout):
        ids = self._cache.ravel()
        w = self.params["weight"]
        g = dout.reshape(-1, w.shape[1]).astype(w.dtype, copy=False)
        dw = np.zeros_like(w)
        if ids.size:
            # scatter-add (a row used k times receives the sum of its k gradients) as segment
            # sums of the rows sorted by id: np.add.at, a row at a time, took 2-7x as long
            # (char_lstm's 640 ids: 97 -> 21 us; benchmarks/NOTES.md)
            order = np.argsort(ids, kind="stable")
            s = ids[order]
            starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
            dw[s[starts]] = np.add.reduceat(g[order], starts, axis=0)
        self.grads["weight"] = dw
        return None
