"""Every layer type against its textbook version in engine.reference (CS231n's layers.py beside
fast_layers.py): forward, input gradient and every parameter gradient agree in float64, over
shapes, strides and paddings; so do BatchNorm's running statistics, the recurrent blocks' gates
and their per-step gradient profile. Every block type must have a reference and name it.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from engine import conv_plan
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
    Layer,
    LocalResponseNorm,
    MaxPool2D,
    MaxUnpool2D,
    Reshape,
    Slice,
    Subsample2D,
    Transpose,
    Upsample2D,
)

TOL = {"rtol": 1e-9, "atol": 1e-10}


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def present(**arrays):
    """The gradients that exist (a layer without bias has no 'bias' key)."""
    return {k: v for k, v in arrays.items() if v is not None}


# --- how each block type runs its reference ----------------------------------------------------
# ref(layer, x, training) -> (out, backward, expected state after forward); backward(dout) ->
# (dx, parameter gradients, expected state after backward). States are {(attribute, key): array}.
def ref_dense(layer, x, training):
    p = layer.params
    out, cache = R.dense.dense_forward(x, p["weight"], p.get("bias"))

    def back(dout):
        dx, dw, db = R.dense.dense_backward(dout, cache)
        return dx, present(weight=dw, bias=db), {}

    return out, back, {}


def ref_activation(layer, x, training):
    cfg = layer.config
    out, cache = R.activation.activation_forward(x, cfg["fn"], cfg["negative_slope"])
    return out, lambda dout: (R.activation.activation_backward(dout, cache), {}, {}), {}


def ref_conv2d(layer, x, training):
    cfg, p = layer.config, layer.params
    kh, kw = p["weight"].shape[2:]
    pad = R.conv.pad4(cfg["padding"], kh, kw)
    out, cache = R.conv.conv2d_forward(
        x, p["weight"], p.get("bias"), pair(cfg["stride"]), pad, cfg["connections"], cfg["groups"]
    )

    def back(dout):
        dx, dw, db = R.conv.conv2d_backward(dout, cache)
        return dx, present(weight=dw, bias=db), {}

    return out, back, {}


def ref_conv1d(layer, x, training):
    cfg, p = layer.config, layer.params
    k, pad = cfg["kernel_size"], cfg["padding"]
    pads = {"same": R.conv.same_padding(k), "valid": (0, 0)}.get(pad, (pad, pad))
    out, cache = R.conv.conv1d_forward(x, p["weight"], p.get("bias"), cfg["stride"], pads)

    def back(dout):
        dx, dw, db = R.conv.conv1d_backward(dout, cache)
        return dx, present(weight=dw, bias=db), {}

    return out, back, {}


def ref_conv_transpose2d(layer, x, training):
    cfg, p = layer.config, layer.params
    out, cache = R.conv.conv_transpose2d_forward(
        x, p["weight"], p.get("bias"), pair(cfg["stride"]), pair(cfg["padding"])
    )

    def back(dout):
        dx, dw, db = R.conv.conv_transpose2d_backward(dout, cache)
        return dx, present(weight=dw, bias=db), {}

    return out, back, {}


def ref_pool(forward, backward):
    def ref(layer, x, training):
        cfg = layer.config
        stride = None if cfg["stride"] is None else pair(cfg["stride"])
        ceil = {"ceil_mode": True} if cfg.get("ceil_mode") else {}
        out, cache = forward(x, pair(cfg["kernel_size"]), stride, pair(cfg["padding"]), **ceil)
        return out, lambda dout: (backward(dout, cache), {}, {}), {}

    return ref


def ref_unpool(layer, x, training):
    cfg = layer.pool.config
    stride = None if cfg["stride"] is None else pair(cfg["stride"])
    _, pool_cache = R.pool.max_pool2d_forward(
        layer.pool_input, pair(cfg["kernel_size"]), stride, pair(cfg["padding"])
    )
    out, cache = R.pool.max_unpool2d_forward(x, pool_cache)
    return out, lambda dout: (R.pool.max_unpool2d_backward(dout, cache), {}, {}), {}


def ref_transpose(layer, x, training):
    out, cache = R.shape.transpose_forward(x)
    return out, lambda dout: (R.shape.transpose_backward(dout, cache), {}, {}), {}


def ref_global_1d(forward, backward):
    def ref(layer, x, training):
        out, cache = forward(x)
        return out, lambda dout: (backward(dout, cache), {}, {}), {}

    return ref


def ref_global_avg(layer, x, training):
    out, cache = R.pool.global_avg_pool2d_forward(x)
    return out, lambda dout: (R.pool.global_avg_pool2d_backward(dout, cache), {}, {}), {}


def ref_adaptive_avg(layer, x, training):
    out, cache = R.adaptive.adaptive_avg_pool2d_forward(x, pair(layer.config["output_size"]))
    return out, lambda dout: (R.adaptive.adaptive_avg_pool2d_backward(dout, cache), {}, {}), {}


def ref_subsample(layer, x, training):
    p = layer.params
    out, cache = R.pool.subsample2d_forward(
        x, p["weight"], p["bias"], pair(layer.config["kernel_size"])
    )

    def back(dout):
        dx, dw, db = R.pool.subsample2d_backward(dout, cache)
        return dx, {"weight": dw, "bias": db}, {}

    return out, back, {}


def ref_upsample(layer, x, training):
    out, cache = R.pool.upsample2d_forward(x, pair(layer.config["scale"]))
    return out, lambda dout: (R.pool.upsample2d_backward(dout, cache), {}, {}), {}


def ref_flatten(layer, x, training):
    out, cache = R.shape.flatten_forward(x)
    return out, lambda dout: (R.shape.flatten_backward(dout, cache), {}, {}), {}


def ref_reshape(layer, x, training):
    out, cache = R.shape.reshape_forward(x, tuple(layer.config["shape"]))
    return out, lambda dout: (R.shape.reshape_backward(dout, cache), {}, {}), {}


def ref_slice(layer, x, training):
    out, cache = R.shape.slice_forward(x, layer.config["start"], layer.config["stop"])
    return out, lambda dout: (R.shape.slice_backward(dout, cache), {}, {}), {}


def ref_batchnorm(layer, x, training):
    cfg, p, b = layer.config, layer.params, layer.buffers
    out, cache, mean, var = R.norm.batchnorm_forward(
        x,
        p["weight"],
        p["bias"],
        training,
        b["running_mean"].copy(),
        b["running_var"].copy(),
        cfg["momentum"],
        cfg["eps"],
    )

    def back(dout):
        dx, dgamma, dbeta = R.norm.batchnorm_backward(dout, cache)
        return dx, {"weight": dgamma, "bias": dbeta}, {}

    state = {("buffers", "running_mean"): mean, ("buffers", "running_var"): var}
    return out, back, state


def ref_lrn(layer, x, training):
    cfg = layer.config
    out, cache = R.norm.lrn_forward(x, cfg["size"], cfg["alpha"], cfg["beta"], cfg["k"])
    return out, lambda dout: (R.norm.lrn_backward(dout, cache), {}, {}), {}


class FixedUniform:
    """Stands in for Dropout's generator: these uniforms, so the mask is known."""

    def __init__(self, u):
        self.u = u

    def random(self, shape, dtype=np.float64):
        assert tuple(shape) == self.u.shape
        return self.u.astype(dtype)


def ref_dropout(layer, x, training):
    rate = layer.config["rate"]
    u = np.random.default_rng(5).random(x.shape)
    layer.rng = FixedUniform(u)  # the layer's next mask: keep where u >= rate
    out, cache = R.norm.dropout_forward(x, u >= rate, rate, training)
    return out, lambda dout: (R.norm.dropout_backward(dout, cache), {}, {}), {}


class FixedNormal:
    """Stands in for GaussianNoise's generator: this draw, so the noise is known."""

    def __init__(self, z):
        self.z = z

    def standard_normal(self, shape, dtype=np.float64):
        assert tuple(shape) == self.z.shape
        return self.z.astype(dtype)


def ref_gaussian_noise(layer, x, training):
    z = np.random.default_rng(6).standard_normal(x.shape)
    layer.rng = FixedNormal(z)  # the layer's next draw
    out, cache = R.norm.gaussian_noise_forward(x, z.astype(x.dtype), layer.config["std"], training)
    return out, lambda dout: (R.norm.gaussian_noise_backward(dout, cache), {}, {}), {}


def ref_embedding(layer, x, training):
    out, cache = R.embedding.embedding_forward(x, layer.params["weight"])
    return out, lambda dout: (None, {"weight": R.embedding.embedding_backward(dout, cache)}, {}), {}


def ref_recurrent(layer, x, training):
    cfg = layer.config
    out, cache = R.recurrent.recurrent_forward(
        layer.type_name,
        x,
        layer.params,
        cfg["return_sequences"],
        cfg["bidirectional"],
        cfg.get("nonlinearity", "tanh"),
        cfg.get("convention", "pytorch"),
    )
    gates = {("gates", k): v for k, v in R.recurrent.recurrent_gates(cache).items()}

    def back(dout):
        dx, grads, dh = R.recurrent.recurrent_backward(dout, cache)
        rms = [np.sqrt(np.mean(d**2, axis=(1, 2))) for d in dh]  # RMS of dL/dh_t per step
        state = {("time_grad", None): rms[0]}
        if len(rms) == 2:
            state[("time_grad_reverse", None)] = rms[1]
        return dx, grads, state

    return out, back, gates


def ref_add(layer, xs, training):
    out, cache = R.merge.add_forward(xs)
    return out, lambda dout: (R.merge.add_backward(dout, cache), {}, {}), {}


def ref_concat(layer, xs, training):
    out, cache = R.merge.concat_forward(xs, layer.config["axis"])
    return out, lambda dout: (R.merge.concat_backward(dout, cache), {}, {}), {}


def ref_attention(layer, xs, training):
    mask = xs[2] if len(xs) == 3 else None
    out, cache = R.attention.attention_forward(
        xs[0], xs[1], layer.params, layer.config["score"], mask
    )
    state = {("alignment", None): cache[4]}

    def back(dout):
        dq, dm, grads = R.attention.attention_backward(dout, cache)
        return [dq, dm] + ([None] if mask is not None else []), grads, {}

    return out, back, state


REFERENCES = {
    "Dense": ref_dense,
    "Activation": ref_activation,
    "Conv2D": ref_conv2d,
    "Conv1D": ref_conv1d,
    "ConvTranspose2D": ref_conv_transpose2d,
    "MaxPool2D": ref_pool(R.pool.max_pool2d_forward, R.pool.max_pool2d_backward),
    "AvgPool2D": ref_pool(R.pool.avg_pool2d_forward, R.pool.avg_pool2d_backward),
    "GlobalAvgPool2D": ref_global_avg,
    "AdaptiveAvgPool2D": ref_adaptive_avg,
    "MaxUnpool2D": ref_unpool,
    "GlobalAvgPool1D": ref_global_1d(
        R.pool.global_avg_pool1d_forward, R.pool.global_avg_pool1d_backward
    ),
    "GlobalMaxPool1D": ref_global_1d(
        R.pool.global_max_pool1d_forward, R.pool.global_max_pool1d_backward
    ),
    "Transpose": ref_transpose,
    "Subsample2D": ref_subsample,
    "Upsample2D": ref_upsample,
    "Flatten": ref_flatten,
    "Reshape": ref_reshape,
    "Slice": ref_slice,
    "BatchNorm": ref_batchnorm,
    "LocalResponseNorm": ref_lrn,
    "Dropout": ref_dropout,
    "GaussianNoise": ref_gaussian_noise,
    "Embedding": ref_embedding,
    "RNN": ref_recurrent,
    "LSTM": ref_recurrent,
    "GRU": ref_recurrent,
    "Add": ref_add,
    "Concat": ref_concat,
    "Attention": ref_attention,
}
NO_REFERENCE = {"Input": "passes its data through: nothing to compute"}


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


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_fast_layer_agrees_with_its_reference(case):
    layer, shape, training = case
    rng = np.random.default_rng(11)
    layer = build(type(layer)(**layer.config), shape, rng)  # a fresh copy per run
    x = make_input(layer, shape, rng)
    ref_out, ref_backward, ref_state = REFERENCES[layer.type_name](layer, x, training)
    out = layer.forward(x, training=training)
    assert out.dtype == np.float64
    assert_close(out, ref_out, "forward")
    for where, value in ref_state.items():
        assert_close(state_of(layer, where), value, f"{where} after forward")
    dout = rng.standard_normal(out.shape)
    ref_dx, ref_grads, ref_after = ref_backward(dout.copy())
    dx = layer.backward(dout.copy())
    if ref_dx is None:
        assert dx is None
    else:
        assert_close(dx, ref_dx, "dx")
    assert set(ref_grads) == set(layer.params)
    for k, g in ref_grads.items():
        assert_close(layer.grads[k], g, f"grad {k}")
    for where, value in ref_after.items():
        assert_close(state_of(layer, where), value, f"{where} after backward")


def smallest_cases():
    """One case per block type (training mode if it has one, then the smallest input), per
    activation function, Conv2D with a connection table, and every recurrent cell in its
    fullest form (bidirectional, returning the sequence)."""
    best = {}
    for case in CASES:
        layer, shape, training = case
        key = layer.type_name
        if key in ("RNN", "LSTM", "GRU"):
            cfg = layer.config
            if not (cfg["bidirectional"] and cfg["return_sequences"]):
                continue
            key = f"{key}-{cfg.get('nonlinearity', '')}-{cfg.get('peepholes')}"
            key += f"-{cfg.get('convention')}-{cfg['single_bias']}"
        elif key == "Activation":  # every function (softmax's Jacobian above all)
            key = f"{key}-{layer.config['fn']}"
        elif key == "Conv2D":  # with and without a connection table, grouped
            key = f"{key}-{layer.config['connections'] is None}-{layer.config['groups'] > 1}"
        elif key == "Attention":  # every score, masked
            if len(shape) != 3:
                continue
            key = f"{key}-{layer.config['score']}"
        size = sum(np.prod(s) for s in shape) if isinstance(shape, list) else np.prod(shape)
        rank = (not training, size)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, case)
    return [case for _, case in best.values()]


@pytest.mark.parametrize("case", smallest_cases(), ids=[case_id(c) for c in smallest_cases()])
def test_reference_backward_is_the_derivative_of_its_forward(case):
    """The textbook code stands on its own: central differences of the reference's forward
    give its backward (float64, relative error below 1e-6)."""
    layer, shape, training = case
    rng = np.random.default_rng(12)
    layer = build(type(layer)(**layer.config), shape, rng)
    x = make_input(layer, shape, rng)
    if isinstance(layer, MaxPool2D):  # distinct values: a tie has no derivative to check
        x = rng.permutation(x.size).reshape(x.shape) / 10.0
    ref = REFERENCES[layer.type_name]
    out, backward, _ = ref(layer, x, training)
    r = rng.standard_normal(out.shape)
    dx, grads, _ = backward(r.copy())

    def loss():
        return float(np.sum(ref(layer, x, training)[0] * r))

    xs, dxs = (x, dx) if isinstance(x, list) else ([x], [dx])
    for i, (xi, dxi) in enumerate(zip(xs, dxs, strict=True)):
        if np.issubdtype(xi.dtype, np.floating):
            assert rel_error(dxi, numeric_grad(loss, xi)) < 1e-6, f"dx{i}"
    for k, g in grads.items():
        assert rel_error(g, numeric_grad(loss, layer.params[k])) < 1e-6, k


def engine_block_types():
    return {
        name: cls
        for name, cls in Layer.registry.items()
        if cls.__module__.startswith("engine.layers.")  # not classes made up inside tests
    }


def test_every_block_type_has_a_reference_and_cases():
    types = set(engine_block_types())
    assert types - set(NO_REFERENCE) == set(REFERENCES)
    assert {c[0].type_name for c in CASES} == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(engine_block_types()))
def test_each_layer_docstring_names_its_reference(name):
    """The app's block help links the textbook version named here."""
    if name in NO_REFERENCE:
        return
    doc = engine_block_types()[name].__doc__ or ""
    found = re.findall(r"Reference: engine\.reference\.(\w+)\.(\w+_forward)", doc)
    assert found, f"{name}'s docstring names no 'Reference: engine.reference.<module>.<fn>'"
    for module, fn in found:
        mod = importlib.import_module(f"engine.reference.{module}")
        assert callable(getattr(mod, fn)), f"{name}: engine.reference.{module}.{fn}"
        backward = fn.replace("_forward", "_backward")
        assert callable(getattr(mod, backward)), f"{name}: engine.reference.{module}.{backward}"


# --- the references reproduce the lectures' numbers --------------------------------------------
def test_reference_conv_and_pool_give_lecture_000s_numbers():
    image = np.array(
        [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]],
        dtype=float,
    )[None, None]
    kernel = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=float)[None, None]
    out, _ = R.conv.conv2d_forward(image, kernel)
    np.testing.assert_array_equal(out[0, 0], [[12, 12, 17], [10, 17, 19], [9, 6, 14]])
    pooled, _ = R.pool.max_pool2d_forward(image, (3, 3), (1, 1))
    np.testing.assert_array_equal(pooled[0, 0], [[3, 3, 3], [3, 3, 3], [3, 2, 3]])


def test_reference_lstm_step_follows_the_gate_equations():
    """Zero weights and a forget bias of 1: i = f = o = sigma(.), g = 0 except through b_g."""
    h, f = 2, 3
    p = {
        "weight_ih": np.zeros((4 * h, f)),
        "weight_hh": np.zeros((4 * h, h)),
        "bias_ih": np.array([0, 0, 1, 1, 0.5, 0.5, 0, 0], float),
        "bias_hh": np.zeros(4 * h),
    }
    c_prev = np.array([[2.0, -1.0]])
    hid, c, _ = R.recurrent.lstm_step_forward(np.ones((1, f)), np.zeros((1, h)), c_prev, p)
    sig = R.recurrent.sigmoid
    np.testing.assert_allclose(c, sig(1.0) * c_prev + 0.5 * np.tanh(0.5))
    np.testing.assert_allclose(hid, 0.5 * np.tanh(c))


def test_conv_cases_cover_every_fast_path():
    """The convolution cases run each of the plan's layouts: folded, wide rows (short and long
    rows) and strided im2col (engine/conv_plan.py)."""
    seen = set()
    for layer, shape, _ in CASES:
        if isinstance(layer, (Conv2D, Conv1D, ConvTranspose2D)):
            rng = np.random.default_rng(0)
            built = build(type(layer)(**layer.config), shape, rng)
            built.forward(make_input(built, shape, rng))
            (plan,) = built._plans.values()
            plan = plan[0] if isinstance(plan, list) else plan  # Conv2D: one plan per group
            if plan.folded:
                seen.add("folded")
            elif plan.wide:
                seen.add(
                    "wide, long rows"
                    if plan.OW >= conv_plan.WIDE_FORWARD_BELOW
                    else "wide, short rows"
                )
            else:
                seen.add("strided")
    assert seen == {"folded", "wide, long rows", "wide, short rows", "strided"}


def test_folding_counts_the_copy_of_the_weight():
    """The folded layout copies the weight each call: for a wide layer on one sample (ResNet-18
    inference, 512 maps at 7x7) that costs more than its smaller columns save."""
    same = (1, 1), (1, 1, 1, 1)
    assert not conv_plan.Conv2dPlan((1, 512, 7, 7), (512, 512, 3, 3), *same).folded
    assert not conv_plan.Conv2dPlan((1, 12, 3, 3), (12, 12, 3, 3), *same).folded
    assert conv_plan.Conv2dPlan((4, 12, 3, 3), (12, 12, 3, 3), *same).folded
    assert conv_plan.Conv2dPlan((64, 64, 8, 8), (64, 64, 3, 3), *same).folded  # ResNet-20
    assert conv_plan.Conv2dPlan((1, 64, 56, 56), (64, 64, 3, 3), *same).folded  # ResNet-18
