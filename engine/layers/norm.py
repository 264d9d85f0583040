"""Normalisation and regularisation: BatchNorm, Dropout, GaussianNoise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine import norm_images
from engine.errors import ConfigError, ShapeError
from engine.functional import channel_sum
from engine.layers.base import Layer, TorchBlock, code
from engine.settings import Opt

TORCH_SEQUENCE_BATCHNORM = '''
class SequenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last axis of (N, T, F) sequences (BlockProp normalises features)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)
'''

TORCH_GAUSSIAN_NOISE = '''
class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise while training; the identity at inference (BlockProp's block)."""

    def __init__(self, std):
        super().__init__()
        self.std = std

    def forward(self, x):
        return x + self.std * torch.randn_like(x) if self.training else x
'''


class BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015; lecture 001's algorithm), PyTorch semantics.

    Per channel (images (C, H, W)) or per feature (vectors (F,), sequences (T, F): the last
    axis), over the batch (and the spatial / time positions), m values each:
        mu = mean(x),  var = mean((x - mu)^2),  xhat = (x - mu) / sqrt(var + eps)
        out = weight * xhat + bias                      (weight = gamma, bias = beta)
    Training uses the batch's mu and var and updates the buffers
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1)  (unbiased)
    Inference uses running_mean and running_var instead.
    Backward (training): with dxhat = dout * weight,
        dx = 1 / (m sqrt(var + eps)) * (m dxhat - sum(dxhat) - xhat sum(dxhat xhat))
        dweight = sum(dout xhat),  dbias = sum(dout).

    In a step split over two processes (engine.parallel) the sums over the batch are the two
    halves' together (``batch_sync``, engine.batch_sync): each half sends its count-weighted
    mean and sum of squared deviations (combined as Chan et al.'s parallel variance), and in
    backward its sums of dout and dout * xhat.

    Reference: engine.reference.norm.batchnorm_forward / batchnorm_backward.
    Shapes: x (N, C, H, W) -> same, weight/bias/running_* (C,); x (N, F) -> same, (F,);
    x (N, T, F) -> same, (F,). Note a 2-D sample is read as (T, F): features on the last axis.
    """

    type_name = "BatchNorm"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mu = \frac{1}{m} \sum_i x_i \qquad \sigma^2 = \frac{1}{m} \sum_i (x_i - \mu)^2$",
        r"$\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} \qquad y_i = \gamma "
        r"\hat{x}_i + \beta$",
    )
    family = "Normalisation and regularisation"
    has_weights = True
    options = {
        "momentum": Opt(
            "float",
            default=0.1,
            min=0.0,
            max=1.0,
            doc="weight of the new batch in the running statistics",
        ),
        "eps": Opt(
            "float",
            default=1e-5,
            min=0.0,
            min_exclusive=True,
            doc="added to the variance before the square root",
        ),
    }
    batch_statistics = True
    batch_sync: Any = None  # set by a split step (engine.parallel) while it runs

    @classmethod
    def summary(cls, cfg):
        return f"momentum {cfg.get('momentum', 0.1):g}"

    def to_torch(self, in_shape):
        s = tuple(int(d) for d in in_shape)
        eps, momentum = code(float(self.config["eps"])), code(float(self.config["momentum"]))
        kw = f"eps={eps}, momentum={momentum}"
        if len(s) == 3:
            return TorchBlock(f"nn.BatchNorm2d({s[0]}, {kw})", "{m}({0})")
        if len(s) == 2:
            return TorchBlock(
                f"SequenceBatchNorm({s[1]}, {kw})",
                "{m}({0})",
                {"SequenceBatchNorm": TORCH_SEQUENCE_BATCHNORM},
            )
        return TorchBlock(f"nn.BatchNorm1d({s[0]}, {kw})", "{m}({0})")

    def output_shape(self, in_shape):
        if not 1 <= len(in_shape) <= 3:
            raise ShapeError(
                f"BatchNorm takes features (F,), sequences (T, F) or images (C, H, W), "
                f"got {tuple(in_shape)}",
                block=self.name,
            )
        return tuple(in_shape)

    def _channels(self, in_shape) -> int:
        return int(in_shape[0]) if len(in_shape) == 3 else int(in_shape[-1])

    def param_shapes(self, in_shape):
        self.output_shape(in_shape)
        c = self._channels(in_shape)
        return {"weight": (c,), "bias": (c,)}

    def buffer_shapes(self, in_shape):
        c = self._channels(in_shape)
        return {"running_mean": (c,), "running_var": (c,)}

    def init_rule(self, key, shape):
        # PyTorch starts at the identity: gamma = 1, beta = 0. A chosen init applies to gamma.
        if key == "weight" and not self.config.get("init"):
            return "ones", {}
        return super().init_rule(key, shape)

    def default_init(self, key):
        return "zeros"

    def init_buffers(self):
        self.buffers["running_var"][...] = 1.0

    def _axes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(axes to reduce over, broadcast shape of a per-channel vector) for x.ndim == ndim."""
        if ndim == 4:
            return (0, 2, 3), (1, -1, 1, 1)
        if ndim == 3:
            return (0, 1), (1, 1, -1)
        return (0,), (1, -1)

    def forward(self, x, training=False):
        self.check_input(x)
        axes, bshape = self._axes(x.ndim)
        w = self.params["weight"].reshape(bshape)
        b = self.params["bias"].reshape(bshape)
        m = x.size // w.size
        sync = self.batch_sync if training else None
        if sync is not None:  # the other half's values are added: m of the whole batch
            m = m // sync.n_local * sync.n
        if training:
            if m < 2:
                raise ShapeError(
                    f"BatchNorm needs more than one value per channel to train, got input "
                    f"{tuple(x.shape)}: use a batch size of 2 or more",
                    block=self.name,
                )
            if sync is not None and x.ndim == 4:
                return self._forward_images_split(x, sync, m)
            if sync is not None:
                mu, var = self._split_moments(x, axes, bshape, sync)
                xc = x - mu
            elif x.ndim == 4 and (fast := norm_images.moments(x)) is not None:
                # images: two reading passes and one affine map (engine.norm_images)
                return self._forward_images(x, *fast, m)
            elif x.ndim == 4:
                # images: the sums per channel over samples first, then within each map
                # (engine.functional.channel_sum; 3x faster than mean over axes (0, 2, 3)
                # on a ResNet's maps, benchmarks/NOTES.md)
                mu = (channel_sum(x) / m).reshape(bshape)
                xc = x - mu
                sq = np.square(xc, out=self._scratch(xc.shape, xc.dtype))
                var = (channel_sum(sq) / m).reshape(bshape)
            else:
                mu = x.mean(axis=axes, keepdims=True)
                xc = x - mu
                var = np.mean(xc * xc, axis=axes, keepdims=True)
            inv_std = 1.0 / np.sqrt(var + self.config["eps"])
            self._update_running(mu, var, m)
        else:
            rm = self.buffers["running_mean"].reshape(bshape).astype(x.dtype, copy=False)
            rv = self.buffers["running_var"].reshape(bshape).astype(x.dtype, copy=False)
            inv_std = 1.0 / np.sqrt(rv + self.config["eps"])
            if x.ndim == 4:  # one affine map (as PyTorch infers); xhat only if backward asks
                self._cache = ("inference", x, rm, inv_std, axes, bshape, m)
                return norm_images.affine(x, *self.inference_affine(x.dtype))
            xc = x - rm
        if training and x.ndim == 4:  # xc is this call's own array: scaled where it is
            xhat = np.multiply(xc, inv_std.astype(xc.dtype, copy=False), out=xc)
        else:
            xhat = xc * inv_std
        self._cache = (xhat, inv_std, axes, bshape, m, training)
        out = xhat * w
        out += b
        return out

    def inference_affine(self, dtype: Any = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Inference on images as one affine map per channel, out = x * scale + shift:
        scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale, in
        ``dtype`` (default the parameters'); None unless the input is images. Read afresh each
        call, so a training step, a weights load or an edit is always seen (engine.inference
        runs it inside the convolution before this block)."""
        if self.in_shape is not None and len(self.in_shape) != 3:
            return None
        dtype = self.params["weight"].dtype if dtype is None else dtype
        rm = self.buffers["running_mean"].astype(dtype, copy=False)
        rv = self.buffers["running_var"].astype(dtype, copy=False)
        scale = self.params["weight"] * (1.0 / np.sqrt(rv + self.config["eps"]))
        return scale, self.params["bias"] - rm * scale

    def _update_running(self, mu: np.ndarray, var: np.ndarray, m: int) -> None:
        mom = self.config["momentum"]
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - mom
        rm += (mom * mu.reshape(-1)).astype(rm.dtype)
        rv *= 1 - mom
        rv += (mom * m / (m - 1) * var.reshape(-1)).astype(rv.dtype)

    def _forward_images(self, x, mu, var, m, sync=None):
        """Training on images with the statistics of engine.norm_images.moments (float64);
        ``sync``: a split step's, whose backward swaps its sums too."""
        inv_std = 1.0 / np.sqrt(var + self.config["eps"])
        self._update_running(mu, var, m)
        scale = self.params["weight"].astype(np.float64) * inv_std
        out = norm_images.affine(x, scale, self.params["bias"] - mu * scale)
        self._cache = ("images", x, mu, inv_std, sync, m)
        return out

    def _forward_images_split(self, x, sync, m):
        """Training on images in a split step: engine.norm_images's one-pass way with both
        halves' sums (one exchange). Where that would lose digits, the squared deviations
        from the whole batch's mean are swapped too: both halves hold the same totals, so
        both take that second exchange."""
        a, b = sync.exchange(norm_images.sums(x))
        total = a + b
        moments = norm_images.moments_from_sums(total, m)
        if moments is None:
            mu = total[0] / m
            xc = np.subtract(
                x, mu.astype(x.dtype).reshape(1, -1, 1, 1), out=self._scratch(x.shape, x.dtype)
            )
            m2 = channel_sum(np.square(xc, out=xc)).astype(np.float64)
            a, b = sync.exchange(m2)
            moments = mu, (a + b) / m
        return self._forward_images(x, *moments, m, sync)

    @staticmethod
    def _sums(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """``a`` summed over ``axes`` (per channel), in float64."""
        if a.ndim == 4:
            return channel_sum(a).astype(np.float64)
        return a.sum(axis=axes, dtype=np.float64)

    def _split_moments(self, x, axes, bshape, sync):
        """(mean, variance) over both halves of a split batch, shaped ``bshape``: each half's
        sum and sum of squared deviations from its own mean, combined as
        M2 = M2_a + M2_b + (mean_a - mean_b)^2 m_a m_b / m (Chan, Golub & LeVeque)."""
        s = self._sums(x, axes)
        per_sample = x.size // x.shape[0] // s.size
        xc = x - (s / (x.size // s.size)).astype(x.dtype).reshape(bshape)
        m2 = self._sums(np.square(xc, out=xc), axes)
        (sa, m2a), (sb, m2b) = sync.exchange(np.stack([s, m2]))
        ma, mb = per_sample * sync.n_first, per_sample * sync.n_second
        m = ma + mb
        var = (m2a + m2b + np.square(sa / ma - sb / mb) * (ma * mb / m)) / m
        return ((sa + sb) / m).astype(x.dtype).reshape(bshape), var.astype(x.dtype).reshape(bshape)

    def _scratch(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A reusable temporary of ``shape`` (squares and products summed right away)."""
        buf = getattr(self, "_tmp", None)
        size = math.prod(shape)
        if buf is None or buf.dtype != dtype or buf.size < size:
            buf = self._tmp = np.empty(size, dtype)
        return buf[:size].reshape(shape)

    def backward(self, dout):
        if isinstance(self._cache[0], str) and self._cache[0] == "inference":
            _, x, rm, inv_std, axes, bshape, m = self._cache  # (engine.explain's gradients)
            self._cache = ((x - rm) * inv_std, inv_std, axes, bshape, m, False)
        if isinstance(self._cache[0], str):  # "images": engine.norm_images
            _, x, mu, inv_std, sync, m = self._cache
            scratch, weight = self._scratch(x.shape, x.dtype), self.params["weight"]
            if sync is None:
                dx, self.grads["weight"], self.grads["bias"] = norm_images.backward(
                    dout, x, mu, inv_std, weight, scratch
                )
                return dx
            # split step: this half's gradients, and dx from both halves' sums (as in
            # _backward_split)
            g = norm_images.grad_sums(dout, x)
            self.grads["weight"] = norm_images.weight_grad(g, mu, inv_std).astype(dout.dtype)
            self.grads["bias"] = g[0].astype(dout.dtype)
            c = sync.n / sync.n_local
            a, b = sync.exchange(g / c)
            return norm_images.input_grad(dout, x, mu, inv_std, weight, a + b, m, scratch, c)
        xhat, inv_std, axes, bshape, m, training = self._cache
        if training and self.batch_sync is not None:
            return self._backward_split(dout, xhat, inv_std, axes, bshape, m, self.batch_sync)
        if dout.ndim == 4 and training:
            return self._backward_images(dout, xhat, inv_std, bshape, m)
        self.grads["weight"] = np.sum(dout * xhat, axis=axes)
        self.grads["bias"] = np.sum(dout, axis=axes)
        dxhat = dout * self.params["weight"].reshape(bshape)
        if not training:  # running statistics are constants
            return dxhat * inv_std
        sum_d = dxhat.sum(axis=axes, keepdims=True)
        sum_dx = np.sum(dxhat * xhat, axis=axes, keepdims=True)
        return (inv_std / m) * (m * dxhat - sum_d - xhat * sum_dx)

    def _backward_images(self, dout, xhat, inv_std, bshape, m):
        # The formula above with dxhat = dout * weight, regrouped per channel (k = weight *
        # inv_std): dx = k * dout - (k * dweight / m) * xhat - k * dbias / m; the sums per
        # channel as in forward. Four passes over the data instead of ten.
        dt = dout.dtype
        dbias = channel_sum(dout)
        prod = np.multiply(dout, xhat, out=self._scratch(dout.shape, dt))
        dweight = channel_sum(prod)
        self.grads["weight"], self.grads["bias"] = dweight, dbias
        k = self.params["weight"].astype(dt, copy=False) * inv_std.reshape(-1).astype(dt)
        dx = dout * k.reshape(bshape)
        np.multiply(xhat, (k * dweight / m).reshape(bshape), out=prod)
        dx -= prod
        dx -= (k * dbias / m).reshape(bshape)
        return dx

    def _backward_split(self, dout, xhat, inv_std, axes, bshape, m, sync):
        # As _backward_images with the sums over both halves. Each half's loss is the mean
        # over its own n_p samples, so its dout is c = n / n_p times the whole batch's: the
        # halves send their sums divided by c, and this half's dx is c times the whole
        # batch's formula (engine.parallel combines the halves' gradients the same way).
        dt = dout.dtype
        dbias = self._sums(dout, axes)
        dweight = self._sums(dout * xhat, axes)
        self.grads["weight"], self.grads["bias"] = dweight.astype(dt), dbias.astype(dt)
        c = sync.n / sync.n_local
        (ba, wa), (bb, wb) = sync.exchange(np.stack([dbias, dweight]) / c)
        k = self.params["weight"].astype(np.float64) * inv_std.reshape(-1)
        dx = dout * k.astype(dt).reshape(bshape)
        dx -= xhat * (c * k * (wa + wb) / m).astype(dt).reshape(bshape)
        dx -= (c * k * (ba + bb) / m).astype(dt).reshape(bshape)
        return dx


class Dropout(Layer):
    """Inverted dropout (Srivastava et al. 2014; lecture 001/004).

    Training: each value is kept with probability 1 - rate and scaled by 1 / (1 - rate), so
    the expected output equals the input and inference needs no rescaling:
        out = x * mask,  mask = [u >= rate] / (1 - rate),  u ~ U(0, 1);  dx = dout * mask.
    Inference: out = x.
    The masks come from the layer's own generator (a child of the one given to ``build``), so a
    run with the same seed drops the same units.

    Reference: engine.reference.norm.dropout_forward / dropout_backward.
    Shapes: x (N, *s) -> out (N, *s)
    """

    type_name = "Dropout"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = x \odot \frac{m}{1 - p}, \quad m_i \sim \mathrm{Bernoulli}(1 - p)$ "
        r"(training)",
        r"$\mathrm{out} = x$ (inference)",
    )
    family = "Normalisation and regularisation"
    options = {
        "rate": Opt(
            "float",
            default=0.5,
            min=0.0,
            max=1.0,
            max_exclusive=True,
            doc="fraction of values set to zero while training, 0 <= rate < 1",
        ),
    }
    starter = {"rate": 0.5}

    @classmethod
    def summary(cls, cfg):
        return f"rate {cfg.get('rate'):g}" if cfg.get("rate") is not None else ""

    def to_torch(self, in_shape):
        return TorchBlock(f"nn.Dropout({code(float(self.config['rate']))})", "{m}({0})")

    def __init__(self, name: str | None = None, **config: Any):
        rate = config.get("rate", 0.5)
        if isinstance(rate, (int, float)) and not isinstance(rate, bool) and not 0 <= rate < 1:
            why = (
                "would drop every value, so nothing would reach the next block"
                if rate >= 1
                else "cannot be negative: it is a probability"
            )
            raise ConfigError(
                f"Dropout rate {rate:g} {why}. Use a rate from 0 (keep everything) up to, but "
                "not including, 1; 0.5 is usual for dense layers, 0.1-0.3 for convolutions",
                block=name if name is not None else "dropout",
            )
        super().__init__(name=name, **config)
        self.rng: Any = None

    def after_init(self, rng):
        self.rng = rng.spawn(1)[0]

    def forward(self, x, training=False):
        self.check_input(x)
        rate = self.config["rate"]
        if not training or rate == 0:
            self._cache = None
            return x
        if self.rng is None:
            self.rng = np.random.default_rng(0)
        dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        u = self.rng.random(x.shape, dtype=dt)
        mask = (u >= rate).astype(x.dtype)
        mask *= x.dtype.type(1.0 / (1.0 - rate))
        self._cache = mask
        return x * mask

    def backward(self, dout):
        mask = self._cache
        return dout if mask is None else dout * mask


class GaussianNoise(Layer):
    """Additive Gaussian noise while training (lecture 001's denoising autoencoder corrupts its
    input this way; also a regulariser, like Dropout).

    Training: out = x + std * z,  z ~ N(0, 1) per value;  dx = dout (the noise does not depend
    on x). Inference: out = x. The noise comes from the layer's own generator (a child of the
    one given to ``build``), so a run with the same seed draws the same noise.

    Reference: engine.reference.norm.gaussian_noise_forward / gaussian_noise_backward.
    Shapes: x (N, *s) -> out (N, *s)
    """

    type_name = "GaussianNoise"
    formulas = (  # the lecture's maths (TeX, as matplotlib's mathtext reads it): its help page
        r"$\mathrm{out} = x + \sigma z, \quad z \sim \mathcal{N}(0, 1)$ (training); "
        r"$\mathrm{out} = x$ (inference)",
    )
    family = "Normalisation and regularisation"
    options = {
        "std": Opt(
            "float",
            default=0.1,
            min=0.0,
            doc="standard deviation of the noise added while training (0: none)",
        ),
    }
    starter = {"std": 0.1}

    @classmethod
    def summary(cls, cfg):
        return f"std {cfg.get('std'):g}" if cfg.get("std") is not None else ""

    def to_torch(self, in_shape):
        return TorchBlock(
            f"GaussianNoise({code(float(self.config['std']))})",
            "{m}({0})",
            {"GaussianNoise": TORCH_GAUSSIAN_NOISE},
        )

    def __init__(self, name: str | None = None, **config: Any):
        super().__init__(name=name, **config)
        self.rng: Any = None

    def after_init(self, rng):
        self.rng = rng.spawn(1)[0]

    def forward(self, x, training=False):
        self.check_input(x)
        std = self.config["std"]
        if not training or std == 0:
            return x
        if self.rng is None:
            self.rng = np.random.default_rng(0)
        dt = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        return x + self.rng.standard_normal(x.shape, dtype=dt) * dt.type(std)

    def backward(self, dout):
        return dout  # d(x + noise)/dx = 1
