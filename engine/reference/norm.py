"""Normalisation and regularisation: BatchNorm and Dropout, as the papers write them.

BatchNorm (Ioffe & Szegedy 2015; lecture 001's "Batch Normalization: Algorithm"): for each
channel, over the m values of a mini-batch B = {x_1..m},

    mu     = 1/m sum_i x_i                     mini-batch mean
    var    = 1/m sum_i (x_i - mu)^2            mini-batch variance
    xhat_i = (x_i - mu) / sqrt(var + eps)      normalise
    y_i    = gamma xhat_i + beta               scale and shift (gamma: ``weight``, beta: ``bias``)

At test time (lecture 001, "Training vs. Test") mu and var are replaced by running averages kept
during training. Backward is the paper's chain rule, one intermediate at a time.

Dropout (Srivastava et al. 2014; lectures 001, 002, 004): while training each value is kept
with probability 1 - rate, and the kept ones are scaled by 1 / (1 - rate) ("inverted"
dropout), so a unit's expected output is unchanged and inference uses the network as it is.

LocalResponseNorm (Krizhevsky et al. 2012, lecture 004's AlexNet "Norm" layers): each value
divided by (k + alpha/size * the sum of squares over size neighbouring maps)^beta.
"""

from __future__ import annotations

import numpy as np


def _channels_last(x: np.ndarray) -> np.ndarray:
    """(m, C): one column per channel. Images (N, C, H, W) normalise per channel C; vectors
    (N, F) and sequences (N, T, F) per feature (the last axis)."""
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(-1, x.shape[-1])


def _back_to(cols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of _channels_last for an array of ``shape``."""
    if len(shape) == 4:
        n, c, h, w = shape
        return cols.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return cols.reshape(shape)


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    training: bool,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, tuple, np.ndarray, np.ndarray]:
    """(out, cache, new running_mean, new running_var); the module docstring's algorithm.

    Training also updates the running statistics (PyTorch's rule, the variance unbiased):
        running_mean <- (1 - momentum) running_mean + momentum mu
        running_var  <- (1 - momentum) running_var  + momentum var * m / (m - 1)
    Inference normalises with them instead and leaves them as they are.
    Shapes: x (N, C, H, W), (N, F) or (N, T, F) -> out the same; gamma, beta, running_* (C,).
    """
    cols = _channels_last(x)  # (m, C)
    m = cols.shape[0]
    if training:
        mu = cols.sum(axis=0) / m
        var = ((cols - mu) ** 2).sum(axis=0) / m
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mu, var = running_mean, running_var
    xhat = (cols - mu) / np.sqrt(var + eps)
    y = gamma * xhat + beta
    cache = (x.shape, cols, mu, var, xhat, gamma, eps, training)
    return _back_to(y, x.shape), cache, running_mean, running_var


def batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dgamma, dbeta) by the paper's chain rule (Ioffe & Szegedy 2015, section 3):

        dxhat_i = dy_i gamma
        dvar    = sum_i dxhat_i (x_i - mu) * (-1/2) (var + eps)^(-3/2)
        dmu     = sum_i dxhat_i * (-1 / sqrt(var + eps)) + dvar * sum_i -2 (x_i - mu) / m
        dx_i    = dxhat_i / sqrt(var + eps) + dvar * 2 (x_i - mu) / m + dmu / m
        dgamma  = sum_i dy_i xhat_i,   dbeta = sum_i dy_i

    At inference mu and var are constants: dx_i = dy_i gamma / sqrt(var + eps).
    """
    shape, cols, mu, var, xhat, gamma, eps, training = cache
    dy = _channels_last(dout)
    m = cols.shape[0]
    dgamma = (dy * xhat).sum(axis=0)
    dbeta = dy.sum(axis=0)
    dxhat = dy * gamma
    if not training:
        return _back_to(dxhat / np.sqrt(var + eps), shape), dgamma, dbeta
    dvar = (dxhat * (cols - mu)).sum(axis=0) * -0.5 * (var + eps) ** -1.5
    dmu = (dxhat * -1 / np.sqrt(var + eps)).sum(axis=0) + dvar * (-2 * (cols - mu)).sum(axis=0) / m
    dx = dxhat / np.sqrt(var + eps) + dvar * 2 * (cols - mu) / m + dmu / m
    return _back_to(dx, shape), dgamma, dbeta


def dropout_forward(
    x: np.ndarray, keep: np.ndarray, rate: float, training: bool
) -> tuple[np.ndarray, tuple]:
    """out = x * keep / (1 - rate) while training, x at inference.

    ``keep`` (boolean, the shape of x) is the mask drawn for this step: the engine keeps a
    value when its uniform draw u ~ U(0, 1) is >= rate, so P(keep) = 1 - rate and
    E[out] = x. Shapes: x (N, *s) -> out (N, *s).
    """
    if not training:
        return x.copy(), None
    scale = keep / (1.0 - rate)
    return x * scale, scale


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout * keep / (1 - rate): dropped values pass no gradient (dout at inference)."""
    scale = cache
    return dout.copy() if scale is None else dout * scale


def gaussian_noise_forward(
    x: np.ndarray, z: np.ndarray, std: float, training: bool
) -> tuple[np.ndarray, bool]:
    """out = x + std * z while training, x at inference.

    ``z`` (the shape of x) is the standard normal draw for this step, z ~ N(0, 1), so the
    noise added has variance std^2 and E[out] = x. Shapes: x (N, *s) -> out (N, *s).
    """
    if not training:
        return x.copy(), False
    return x + std * z, True


def gaussian_noise_backward(dout: np.ndarray, cache: bool) -> np.ndarray:
    """dx = dout: the noise does not depend on x (d(x + std z)/dx = 1)."""
    return dout.copy()


def lrn_forward(
    x: np.ndarray, size: int, alpha: float, beta: float, k: float
) -> tuple[np.ndarray, tuple]:
    """Local response normalisation (Krizhevsky et al. 2012, section 3.3, as PyTorch's
    LocalResponseNorm), one map at a time:

        D[n, c] = k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x[n, c']^2
        out[n, c] = x[n, c] / D[n, c]^beta       (maps past either end count 0)

    Shapes: x (N, C, H, W) -> out (N, C, H, W).
    """
    n_maps = x.shape[1]
    d = np.zeros_like(x)
    for c in range(n_maps):
        for c2 in range(max(0, c - size // 2), min(n_maps, c + (size - 1) // 2 + 1)):
            d[:, c] += x[:, c2] ** 2
    d = k + alpha / size * d
    return x / d**beta, (x, d, size, alpha, beta)


def lrn_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx: x[j] reaches out[j] directly and every out[c] whose window holds j through D[c]:

    dout[c] * d out[c] / d x[j] = dout[c] * (delta_cj D[c]^-beta
                                  - x[c] beta D[c]^(-beta-1) * alpha / size * 2 x[j])
    """
    x, d, size, alpha, beta = cache
    n_maps = x.shape[1]
    dx = dout / d**beta
    for c in range(n_maps):
        g = dout[:, c] * x[:, c] * beta * d[:, c] ** (-beta - 1) * alpha / size
        for j in range(max(0, c - size // 2), min(n_maps, c + (size - 1) // 2 + 1)):
            dx[:, j] -= g * 2 * x[:, j]
    return dx
