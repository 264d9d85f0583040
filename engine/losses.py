"""Loss functions: value and gradient with respect to the network's output, by hand.

``get_loss(name)`` returns a Loss; ``forward(out, y)`` gives the mean loss as a float and keeps
what ``backward()`` needs; ``backward()`` returns dL/dout (same shape and dtype as ``out``).

Conventions (the same as PyTorch's ``reduction="mean"``, so exported code gives the same numbers):
- ``mse``: mean((out - y)^2) over every element (``nn.MSELoss``). The lecture (001, "Perceptron",
  "Error Back-Propagation") writes L = 1/2 (t - y)^2 so that dL/dy = y - t; that is
  ``get_loss("mse", half=True)`` (also reachable as ``get_loss("half_mse")``):
  mean(1/2 (out - y)^2), gradient (out - y) / n.
- ``cross_entropy``: softmax and negative log-likelihood fused (``nn.CrossEntropyLoss``), on logits
  (N, C) with class ids (N,), or (N, T, C) with (N, T) where the mean runs over N*T.
- ``bce_with_logits``: sigmoid and binary cross-entropy fused (``nn.BCEWithLogitsLoss``), on
  logits and float targets in [0, 1] of the same shape.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.errors import ConfigError, DataError, ShapeError
from engine.layers.activation import sigmoid

LOSSES = ("mse", "cross_entropy", "bce_with_logits")
# Other names get_loss accepts, with the settings they stand for.
LOSS_ALIASES = {"half_mse": ("mse", {"half": True})}


def _shape_text(shape: tuple) -> str:
    return str(tuple(int(d) for d in shape))


class Loss:
    """Base class: ``forward(out, y) -> float``, ``backward() -> dout``, ``predict(out)``."""

    name: ClassVar[str] = "loss"

    def __init__(self) -> None:
        self._cache: Any = None

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        raise TypeError(f"{type(self).__name__} does not define forward")

    def backward(self) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} does not define backward")

    def predict(self, out: np.ndarray) -> np.ndarray:
        """What the network predicts from ``out``: class ids, or the values themselves."""
        return out

    def counted(self, y: np.ndarray) -> int:
        """How many targets of ``y`` the loss and the accuracy count (all but padding)."""
        return int(np.asarray(y).size)

    def hits(self, out: np.ndarray, y: np.ndarray) -> int:
        """Correct predictions among the counted targets."""
        return int(np.count_nonzero(self.predict(out) == y))

    def _need_cache(self) -> Any:
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        return self._cache

    def _same_shape(self, out: np.ndarray, y: np.ndarray) -> None:
        if out.shape != y.shape:
            if out.size == y.size:
                hint = f" (reshape the targets to {_shape_text(out.shape)})"
            elif y.ndim > 1:
                hint = f" (the last block must output {_shape_text(y.shape[1:])} per sample)"
            else:
                hint = ""
            raise ShapeError(
                f"{self.name} loss: the network's output has shape {_shape_text(out.shape)} but "
                f"the targets have shape {_shape_text(y.shape)}; they must be equal{hint}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSE(Loss):
    """Mean squared error, mean over all elements.

    half=False (PyTorch ``MSELoss``): L = mean((out - y)^2),     dL/dout = 2 (out - y) / n
    half=True  (lecture 001):         L = mean(1/2 (out - y)^2), dL/dout = (out - y) / n
    where n = out.size. With one sample and one output, half=True is the lecture's
    L = 1/2 (t - y)^2 with dL/dy = y - t.

    Shapes: out (N, *s), y (N, *s) -> scalar
    """

    name = "mse"

    def __init__(self, half: bool = False) -> None:
        super().__init__()
        if not isinstance(half, bool):
            raise ConfigError(f"mse loss: 'half' must be true or false, got {half!r}")
        self.half = half
        if half:
            self.name = "half_mse"

    def forward(self, out, y):
        y = np.asarray(y)
        self._same_shape(out, y)
        diff = out - y.astype(out.dtype, copy=False)
        self._cache = diff
        scale = 0.5 if self.half else 1.0
        return float(scale * np.vdot(diff, diff) / diff.size)

    def backward(self):
        diff = self._need_cache()
        scale = 1.0 if self.half else 2.0
        return diff * (scale / diff.size)

    def __repr__(self) -> str:
        return f"MSE(half={self.half})"


class CrossEntropy(Loss):
    """Softmax + negative log-likelihood, fused and stable (log-sum-exp).

    L = mean_i [ logsumexp(z_i) - z_i[y_i] ]   with logsumexp(z) = m + log sum_c exp(z_c - m),
    m = max_c z_c, so no exp ever overflows (logits of 1e4 are fine).
    dL/dz_i = (softmax(z_i) - onehot(y_i)) / M, M = number of rows averaged (N, or N*T).

    ``ignore_index`` k (the training setting ``mask_padding``: k = 0, padding): targets equal to
    k count in neither the loss nor its gradient (PyTorch's ``ignore_index``); M is then the
    number of the other targets (the loss is 0 when there are none).

    Shapes: out (N, C) logits with y (N,) int class ids, or out (N, T, C) with y (N, T) -> scalar
    """

    name = "cross_entropy"

    def __init__(self, ignore_index: int | None = None) -> None:
        super().__init__()
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
        ):
            raise ConfigError(f"cross_entropy: 'ignore_index' must be an id, got {ignore_index!r}")
        self.ignore_index = ignore_index

    def counted(self, y):
        if self.ignore_index is None:
            return int(np.asarray(y).size)
        return int(np.count_nonzero(np.asarray(y) != self.ignore_index))

    def hits(self, out, y):
        right = self.predict(out) == y
        if self.ignore_index is not None:
            right &= np.asarray(y) != self.ignore_index
        return int(np.count_nonzero(right))

    def forward(self, out, y):
        y = np.asarray(y)
        self._check(out, y)
        C = out.shape[-1]
        z = out.reshape(-1, C)
        labels = y.reshape(-1).astype(np.intp, copy=False)
        rows = np.arange(z.shape[0])
        # m as the logit argmax picks (the same value; a max over the short last axis took 3x
        # as long), the sums of exp by einsum (3x faster than .sum(axis=1), and no BLAS call
        # whose threads this process does not manage)
        shifted = z - z[rows, z.argmax(axis=1)][:, None]
        e = np.exp(shifted)
        sum_e = np.einsum("ij->i", e)
        # -log softmax(z)[y] = log sum exp(shifted) - shifted[y]
        loss = np.log(sum_e) - shifted[rows, labels]
        keep = None if self.ignore_index is None else labels != self.ignore_index
        self._cache = (e, sum_e, rows, labels, out.shape, keep)
        if keep is None:
            return float(loss.mean())
        return float(loss[keep].sum() / max(1, int(keep.sum())))

    def backward(self):
        e, sum_e, rows, labels, shape, keep = self._need_cache()
        dz = e / sum_e[:, None]  # softmax
        dz[rows, labels] -= 1
        if keep is None:
            dz /= dz.shape[0]
        else:
            dz *= (keep / max(1, int(keep.sum()))).astype(dz.dtype)[:, None]
        return dz.reshape(shape)

    def predict(self, out):
        return out.argmax(axis=-1)

    def _check(self, out: np.ndarray, y: np.ndarray) -> None:
        if out.ndim not in (2, 3):
            raise ShapeError(
                f"cross_entropy loss expects logits of shape (N, C) or (N, T, C), got "
                f"{_shape_text(out.shape)}: insert Flatten and a Dense block with one unit "
                "per class before the output"
            )
        if y.shape != out.shape[:-1]:
            expect = "(N,)" if out.ndim == 2 else "(N, T)"
            hint = ""
            if y.shape == out.shape:
                hint = " (one-hot targets: pass the class ids, e.g. y.argmax(-1))"
            raise ShapeError(
                f"cross_entropy loss: logits of shape {_shape_text(out.shape)} need class ids "
                f"of shape {expect} = {_shape_text(out.shape[:-1])}, got "
                f"{_shape_text(y.shape)}{hint}"
            )
        if y.size == 0:
            return
        if not np.issubdtype(y.dtype, np.integer):
            if not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
                raise DataError(
                    f"cross_entropy loss needs integer class ids, got {y.dtype} values "
                    "that are not whole numbers (use mse for real-valued targets)"
                )
        C = out.shape[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= C:
            bad = hi if hi >= C else lo
            raise DataError(
                f"cross_entropy loss: class id {bad} is out of range: the network outputs "
                f"C={C} logits, so ids must be 0..{C - 1}; give the last Dense block at least "
                f"{hi + 1} units (labels go from {lo} to {hi})"
            )


class BCEWithLogits(Loss):
    """Sigmoid + binary cross-entropy, fused and stable.

    L = mean( max(x, 0) - x*y + log(1 + exp(-|x|)) )  (= -[y log s(x) + (1-y) log(1-s(x))])
    dL/dx = (sigmoid(x) - y) / n, n = x.size

    Shapes: out (N, *s) logits, y (N, *s) float targets in [0, 1] -> scalar
    """

    name = "bce_with_logits"

    def forward(self, out, y):
        y = np.asarray(y)
        self._same_shape(out, y)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise DataError(
                f"bce_with_logits loss needs targets between 0 and 1, got values from "
                f"{float(y.min()):g} to {float(y.max()):g} (use cross_entropy for class ids, "
                "mse for other values)"
            )
        y = y.astype(out.dtype, copy=False)
        loss = np.maximum(out, 0) - out * y + np.log1p(np.exp(-np.abs(out)))
        self._cache = (out, y)
        return float(loss.mean())

    def backward(self):
        x, y = self._need_cache()
        return ((sigmoid(x) - y) / x.size).astype(x.dtype, copy=False)

    def predict(self, out):
        return (out > 0).astype(np.int64)


_CLASSES: dict[str, type[Loss]] = {
    "mse": MSE,
    "cross_entropy": CrossEntropy,
    "bce_with_logits": BCEWithLogits,
}


def get_loss(name: str, **options: Any) -> Loss:
    """The loss called ``name`` (one of LOSSES, or "half_mse"); ``options``: mse takes ``half``."""
    if name in LOSS_ALIASES:
        base, preset = LOSS_ALIASES[name]
        return get_loss(base, **{**preset, **options})
    if name not in _CLASSES:
        valid = ", ".join([*LOSSES, *LOSS_ALIASES])
        raise ConfigError(f"unknown loss {name!r}; choose one of {valid}")
    if name == "cross_entropy" and set(options) <= {"ignore_index"}:
        return _CLASSES[name](**options)
    if options and name != "mse":
        raise ConfigError(f"{name} loss takes no settings, got {', '.join(options)}")
    if name == "mse" and set(options) - {"half"}:
        extra = ", ".join(sorted(set(options) - {"half"}))
        raise ConfigError(f"mse loss takes only the setting 'half', got {extra}")
    return _CLASSES[name](**options)
