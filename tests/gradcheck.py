"""The one central-difference gradient checker every layer test uses (float64).

rel_error(a, n) = ||a - n|| / max(||a|| + ||n||, tiny): a norm-wise relative error, so tiny
entries do not dominate. The bar is 1e-6.
"""

from __future__ import annotations

import numpy as np

TOL = 1e-6


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    n = np.asarray(n, np.float64)
    denom = max(np.linalg.norm(a) + np.linalg.norm(n), 1e-30)
    return float(np.linalg.norm(a - n) / denom)


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences; ``f`` takes no arguments and reads ``x`` in place."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
        it.iternext()
    return g


def check_layer(
    layer, x, seed: int = 0, training: bool = False, tol: float = TOL, wrt_input: bool = True
) -> dict[str, float]:
    """Check a built layer's backward against central differences, in float64.

    ``x`` is an array, or a list of arrays for multi-input layers. The scalar checked is
    sum(forward(x) * R) with a fixed random R. Returns the relative errors by name and asserts
    each is below ``tol``. Integer inputs (Embedding ids) are not differentiated.
    """
    layer.astype(np.float64)
    multi = isinstance(x, (list, tuple))
    xs = [
        np.array(v, dtype=np.float64)
        if np.issubdtype(np.asarray(v).dtype, np.floating)
        else np.asarray(v)
        for v in (x if multi else [x])
    ]
    arg = xs if multi else xs[0]
    rng = np.random.default_rng(seed)
    out = layer.forward(arg, training=training)
    R = rng.standard_normal(out.shape)

    def f():
        return float(np.sum(layer.forward(arg, training=training) * R))

    layer.forward(arg, training=training)
    dx = layer.backward(R.copy())
    dxs = dx if multi else [dx]
    grads = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
    errors = {}
    for k, p in layer.params.items():
        errors[k] = rel_error(grads[k], numeric_grad(f, p))
    if wrt_input:
        for i, v in enumerate(xs):
            if np.issubdtype(v.dtype, np.floating):
                errors[f"x{i}"] = rel_error(dxs[i], numeric_grad(f, v))
    bad = {k: e for k, e in errors.items() if not e < tol}
    assert not bad, f"{layer!r}: gradient check failed {bad}"
    return errors
