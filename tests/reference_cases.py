"""The cases tests/test_reference.py runs every block type through: (layer, input shape(s)
with the batch axis, training), and how each case's input, layer and comparison are made.
"""

from __future__ import annotations

import numpy as np
from reference_runners import TOL

from engine import reference as R
from engine.layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    AdaptiveAvgPool2D,
    Add,
    Attention,
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv1D,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GaussianNoise,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalMaxPool1D,
    LocalResponseNorm,
    MaxPool2D,
    MaxUnpool2D,
    Reshape,
    Slice,
    Subsample2D,
    Transpose,
    Upsample2D,
)


# --- the cases: (layer, input shape(s) with the batch axis, training) ---------------------------
def tied_images(seed, shape):
    """ReLU of mostly negative values: windows full of equal values (max pooling's ties)."""
    x = np.random.default_rng(seed).standard_normal(shape) - 1.2
    x[..., ::3, 1::2] = 0.7
    return np.maximum(x, 0.0)


C3_SMALL = [[0], [1, 2], [0, 2], [2]]  # a connection table: filter f reads these input maps
POOL_SETTINGS = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 1]},
    {"kernel_size": 2, "stride": 3},
    {"kernel_size": 2, "padding": [1, 0]},
]

# MaxUnpool2D cases: pool id -> (its settings, the unpool's input (its output) OH x OW, H x W)
UNPOOL_POOLS = {
    "p2": ({"kernel_size": 2}, (3, 4), (7, 8)),
    "p3": ({"kernel_size": 3, "padding": 1}, (3, 3), (7, 8)),
    "p23": ({"kernel_size": [2, 3], "stride": [2, 3], "padding": [1, 0]}, (4, 2), (7, 6)),
}

CASES = [
    (Dense(units=3), (4, 5), False),
    (Dense(units=2, bias=False), (3, 6), False),
    (Dense(units=4), (2, 3, 5), False),  # a sequence: the same weights at every step
    *[(Activation(fn=fn), (3, 2, 5), False) for fn in R.activation.FUNCTIONS],
    (Activation(fn="leaky_relu", negative_slope=0.2), (4, 6), False),
    (Conv2D(filters=4, kernel_size=3), (2, 3, 7, 7), False),
    (Conv2D(filters=4, kernel_size=3, stride=2, padding=1), (2, 3, 7, 6), False),
    (Conv2D(filters=3, kernel_size=[2, 3], stride=[2, 1], padding=[1, 0]), (1, 2, 8, 9), False),
    (Conv2D(filters=2, kernel_size=4, padding="same"), (2, 1, 6, 6), False),  # 1 before, 2 after
    (Conv2D(filters=3, kernel_size=3, padding="same", bias=False), (2, 2, 5, 5), False),
    (Conv2D(filters=3, kernel_size=3, padding="valid"), (2, 2, 5, 5), False),
    (Conv2D(filters=5, kernel_size=5, stride=3, padding=2), (3, 2, 9, 9), False),
    (Conv2D(filters=3, kernel_size=1), (2, 4, 1, 1), False),
    (Conv2D(filters=3, kernel_size=3, padding=1), (2, 1, 12, 29), False),  # long rows
    # wide enough to fold, but one sample: the weight's copy outweighs (not folded)
    (Conv2D(filters=12, kernel_size=3, padding=1), (1, 12, 3, 3), False),
    (Conv2D(filters=4, kernel_size=3, connections=C3_SMALL), (2, 3, 5, 5), False),
    (Conv2D(filters=4, kernel_size=3, groups=2), (2, 4, 5, 6), False),
    (Conv2D(filters=6, kernel_size=3, stride=2, padding=1, groups=3), (2, 3, 7, 7), False),
    (Conv2D(filters=3, kernel_size=3, padding=1, groups=3, bias=False), (2, 3, 4, 30), False),
    (Conv1D(filters=3, kernel_size=3), (2, 2, 9), False),
    (Conv1D(filters=3, kernel_size=2, stride=2, padding=1), (2, 2, 9), False),
    (Conv1D(filters=2, kernel_size=4, padding="same", bias=False), (2, 3, 8), False),
    (Conv1D(filters=2, kernel_size=3, padding="valid"), (1, 2, 6), False),
    (ConvTranspose2D(filters=2, kernel_size=3), (2, 3, 4, 5), False),
    (ConvTranspose2D(filters=2, kernel_size=3, stride=2, padding=1), (2, 3, 4, 4), False),
    (
        ConvTranspose2D(filters=3, kernel_size=[2, 3], stride=[2, 1], padding=[0, 1]),
        (1, 2, 3, 4),
        False,
    ),
    (ConvTranspose2D(filters=1, kernel_size=2, stride=3, bias=False), (2, 2, 3, 3), False),
    *[(MaxPool2D(**cfg), (2, 3, 7, 8), False) for cfg in POOL_SETTINGS],
    *[(AvgPool2D(**cfg), (2, 3, 7, 8), False) for cfg in POOL_SETTINGS],
    # ceil_mode (GoogLeNet's pools): a last window running past the map, or none to add
    (MaxPool2D(kernel_size=3, stride=2, ceil_mode=True), (2, 3, 7, 8), False),
    (MaxPool2D(kernel_size=2, ceil_mode=True), (2, 2, 7, 7), False),
    (MaxPool2D(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 2, 8, 6), False),
    (MaxPool2D(kernel_size=[3, 2], stride=[2, 3], ceil_mode=True), (1, 2, 6, 8), False),
    # the pool it undoes: UNPOOL_POOLS[its 'pool'] on the unpool's output shape (see build)
    *[(MaxUnpool2D(pool=p), (2, 3, *shape), False) for p, (_, shape, _) in UNPOOL_POOLS.items()],
    (GlobalAvgPool2D(), (3, 2, 5, 4), False),
    # overlapping windows (14 -> 4, 7 -> 3), tiling, growing (3 -> 5), one window
    (AdaptiveAvgPool2D(output_size=4), (2, 2, 14, 14), False),
    (AdaptiveAvgPool2D(output_size=[3, 2]), (2, 3, 7, 8), False),
    (AdaptiveAvgPool2D(output_size=5), (1, 2, 3, 3), False),
    (AdaptiveAvgPool2D(output_size=1), (2, 2, 5, 4), False),
    (GlobalAvgPool1D(), (3, 4, 7), False),
    (GlobalMaxPool1D(), (3, 4, 7), False),
    (Transpose(), (2, 5, 3), False),
    (Subsample2D(), (2, 3, 6, 6), False),
    (Subsample2D(kernel_size=3), (2, 2, 7, 8), False),  # rows/columns left over
    (Subsample2D(kernel_size=[2, 3]), (1, 2, 5, 6), False),
    (Upsample2D(), (2, 2, 3, 4), False),
    (Upsample2D(scale=[1, 3]), (2, 1, 3, 2), False),
    (Flatten(), (2, 3, 4, 2), False),
    (Reshape(shape=[6, 4]), (2, 2, 3, 4), False),
    (Slice(start=1, stop=3), (2, 4, 3), False),
    (Slice(start=0, stop=2), (3, 5), False),
    *[
        (BatchNorm(momentum=0.3, eps=1e-3), shape, training)
        for shape in ((6, 5), (4, 3, 5), (3, 2, 4, 5))
        for training in (True, False)
    ],
    (LocalResponseNorm(size=5, alpha=0.5, beta=0.75, k=2.0), (2, 7, 3, 4), False),
    (LocalResponseNorm(size=4, alpha=2.0, beta=0.6, k=1.0), (2, 5, 2, 3), False),  # even
    (LocalResponseNorm(size=9, alpha=1.0, beta=1.5, k=0.5), (1, 3, 2, 2), False),  # > C
    (Dropout(rate=0.3), (4, 3, 5), True),
    (Dropout(rate=0.5), (4, 6), False),
    (GaussianNoise(std=0.2), (4, 3, 5), True),
    (GaussianNoise(std=0.5), (4, 6), False),
    (Embedding(num_embeddings=6, embedding_dim=3), (2, 5), False),
    *[
        (cls(hidden_size=3, return_sequences=seq, bidirectional=bi, **extra), (3, 4, 2), True)
        for cls, extra in (
            (RNN, {"nonlinearity": "tanh"}),
            (RNN, {"nonlinearity": "relu"}),
            (LSTM, {}),
            (GRU, {}),
        )
        for seq in (False, True)
        for bi in (False, True)
    ],
    *[
        (cls(hidden_size=3, return_sequences=True, bidirectional=True, **extra), (3, 4, 2), True)
        for cls, extra in (
            (LSTM, {"peepholes": True}),
            (LSTM, {"peepholes": True, "single_bias": True}),
            (GRU, {"convention": "lecture"}),
            (GRU, {"convention": "lecture", "single_bias": True}),
            (GRU, {"single_bias": True}),
            (RNN, {"single_bias": True}),
        )
    ],
    (LSTM(hidden_size=2, peepholes=True), (2, 5, 3), True),
    (GRU(hidden_size=2, convention="lecture"), (2, 5, 3), True),
    (Add(), [(2, 3, 4, 4)] * 3, False),
    (Add(), [(3, 5), (3, 5)], False),
    (Concat(), [(2, 3, 4, 4), (2, 5, 4, 4)], False),
    (Concat(axis=-1), [(2, 4, 3), (2, 4, 2), (2, 4, 1)], False),
    (Concat(axis=1), [(2, 3, 2, 4), (2, 3, 5, 4)], False),
    *[
        (Attention(score=score, attention_size=3), [(2, 3, 4), (2, 5, 4), *mask], False)
        for score in ("dot", "general", "concat", "additive")
        for mask in ([], [(2, 5)])
    ],
    (Attention(score="general"), [(2, 2, 3), (2, 4, 5)], False),  # Fq != Fm
    (Attention(score="additive", attention_size=2), [(1, 3, 2), (1, 1, 4)], False),
]


def case_id(case):
    layer, shape, training = case
    cfg = ",".join(f"{k}={v}" for k, v in layer.config.items() if not k.startswith("init"))
    return f"{layer.type_name}({cfg})-{shape}-{'train' if training else 'eval'}"


def make_input(layer, shape, rng):
    if isinstance(layer, Attention) and len(shape) == 3:  # token ids, 0 = padding
        ids = rng.integers(1, 9, shape[2])
        ids[0, 3:] = 0  # the first sample's last two memory steps are padding
        ids[1, :] = 0  # the second's all: its queries read nothing
        ids[1, 0] = 4  # ... but one
        return [rng.standard_normal(shape[0]), rng.standard_normal(shape[1]), ids]
    if isinstance(shape, list):
        return [rng.standard_normal(s) for s in shape]
    if isinstance(layer, Embedding):
        return rng.integers(0, layer.config["num_embeddings"], shape)
    if isinstance(layer, MaxPool2D):
        return tied_images(4, shape)
    return rng.standard_normal(shape)


def bind_pool(layer, shape):
    """A MaxUnpool2D's pool, run on tied images (the unpool's reference reads pool_input)."""
    cfg, _, (h, w) = UNPOOL_POOLS[layer.config["pool"]]
    pool = MaxPool2D(name=layer.config["pool"], **cfg)
    pool.build((shape[1], h, w)).astype(np.float64)
    layer.pool_input = tied_images(6, (shape[0], shape[1], h, w))
    pool.forward(layer.pool_input)
    layer.bind("pool", pool)


def build(layer, shape, rng):
    in_shape = [s[1:] for s in shape] if isinstance(shape, list) else shape[1:]
    if isinstance(layer, MaxUnpool2D):
        bind_pool(layer, shape)
    layer.build(in_shape, rng).astype(np.float64)
    for k, v in layer.params.items():  # non-trivial values everywhere (biases start at zero)
        v[...] = rng.uniform(-0.8, 0.8, v.shape) if k.startswith("bias") else v
    if isinstance(layer, BatchNorm):
        layer.params["weight"][...] = rng.uniform(0.5, 1.5, layer.params["weight"].shape)
        layer.buffers["running_mean"][...] = rng.uniform(-1, 1, layer.buffers["running_mean"].shape)
        layer.buffers["running_var"][...] = rng.uniform(0.5, 2, layer.buffers["running_var"].shape)
    if isinstance(layer, Conv2D) and layer.config["connections"] is not None:
        layer.params["weight"] *= layer._weight_mask  # as after init: the table holds
    return layer


def state_of(layer, where):
    attr, key = where
    value = getattr(layer, attr)
    return value if key is None else value[key]


def assert_close(actual, desired, what):
    if isinstance(desired, list):
        assert len(actual) == len(desired), what
        for i, (a, d) in enumerate(zip(actual, desired, strict=True)):
            if d is None:  # an input without a gradient (Attention's mask)
                assert a is None, f"{what}[{i}]"
                continue
            np.testing.assert_allclose(a, d, err_msg=f"{what}[{i}]", **TOL)
    else:
        assert np.shape(actual) == np.shape(desired), what
        np.testing.assert_allclose(actual, desired, err_msg=what, **TOL)
