"""How each block type runs its textbook version (engine.reference) for tests/test_reference.py:
``REFERENCES[type](layer, x, training) -> (out, backward, expected state)``, and the block types
that have none (NO_REFERENCE).
"""

from __future__ import annotations

import numpy as np

from engine import reference as R

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
    """Stands in for Dropout's generator: the same uniforms every call, so the mask is known
    (tests/test_norm_embedding.py uses it too)."""

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
