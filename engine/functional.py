"""Pure forward functions (no state, no gradients): conv2d, conv1d, conv_transpose2d, max_pool2d,
avg_pool2d, global_avg_pool2d, upsample2d; and the padding/size helpers the layers share.

The convolutions run on engine.conv_plan.Conv2dPlan (im2col, "wide rows", "folded"; its
module docstring says what was measured); Conv2dPlan, Pad4 and CHUNK_BYTES are importable from
here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.conv_plan import (  # noqa: F401  (public here too)
    CHUNK_BYTES,
    Conv2dPlan,
    Pad4,
    plan_threads,
)
from engine.elementwise import relu  # noqa: F401  (public here too)
from engine.errors import ConfigError, ShapeError


def pair(value: Any) -> tuple[int, int]:
    """An int or a pair [h, w] as a tuple (h, w)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def same_padding(kernel: int) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1: K - 1 in total, the odd one after
    (PyTorch's padding="same": for an even kernel the extra row/column goes at the end)."""
    total = kernel - 1
    return total // 2, total - total // 2


def padding4(padding: Any, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)) -> Pad4:
    """(top, bottom, left, right) from an int, a pair [ph, pw], "valid" (0) or "same"."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        if tuple(stride) != (1, 1):
            raise ConfigError(
                'padding "same" keeps the size only at stride 1; with stride > 1 give the '
                "padding as a number (PyTorch refuses it too)"
            )
        t, b = same_padding(kernel[0])
        left, right = same_padding(kernel[1])
        return t, b, left, right
    ph, pw = pair(padding)
    return ph, ph, pw, pw


def conv_output_size(
    size: int, kernel: int, stride: int, pad_before: int, pad_after: int | None = None
) -> int:
    """Lecture 000: floor((W - K + 2P) / S) + 1 (with P on each side; here the two sides may
    differ, as for "same" with an even kernel)."""
    pad_after = pad_before if pad_after is None else pad_after
    return (size + pad_before + pad_after - kernel) // stride + 1


def _check_4d(x: np.ndarray, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what} expects a batch of images (N, C, H, W), got {x.shape}")


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    plan: Conv2dPlan | None = None,
) -> np.ndarray:
    """2-D cross-correlation (PyTorch's conv2d).

    Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) -> out (N, F, OH, OW),
    OH = floor((H + 2P - kh) / S) + 1. padding: int, [ph, pw], "valid" or "same" (stride 1).
    ``plan`` (from a layer) reuses scratch arrays; results are the same without it.
    """
    _check_4d(x, "conv2d")
    if plan is None:
        kernel = (int(w.shape[2]), int(w.shape[3]))
        st = pair(stride)
        plan = Conv2dPlan(x.shape, w.shape, st, padding4(padding, kernel, st), x.dtype)
    return plan.forward(x, w, b)


def conv1d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1, padding: Any = 0
) -> np.ndarray:
    """1-D cross-correlation over the last axis (PyTorch's conv1d), run as a 2-D one of height 1.

    Shapes: x (N, C, L), w (F, C, k), b (F,) -> out (N, F, OL), OL = floor((L + 2P - k)/S) + 1
    """
    if x.ndim != 3:
        raise ShapeError(f"conv1d expects a batch of sequences (N, C, L), got {x.shape}")
    k = int(w.shape[2])
    if padding in ("same", "valid"):
        pad = padding4(padding, (1, k), (1, int(stride)))
    else:
        pad = (0, 0, int(padding), int(padding))
    plan = Conv2dPlan(
        (x.shape[0], x.shape[1], 1, x.shape[2]),
        (*w.shape[:2], 1, k),
        (1, int(stride)),
        pad,
        x.dtype,
    )
    return plan.forward(x[:, :, None, :], w[:, :, None, :], b)[:, :, 0, :]


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """(W - 1) * S - 2P + K: the size a convolution with these settings maps back to W."""
    return (size - 1) * stride - 2 * padding + kernel


def conv_transpose2d_plan(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Any,
    padding: Any,
    dtype: Any = np.float32,
) -> Conv2dPlan:
    """The plan of the convolution whose input gradient a transposed convolution computes.

    Shapes: x (N, in_c, H, W), w (in_c, out_c, kh, kw) -> out (N, out_c, Ho, Wo); the plan's
    convolution maps (N, out_c, Ho, Wo) to (N, in_c, H, W) with the same weight.
    """
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    n, in_c, h, w = (int(d) for d in x_shape)
    if int(w_shape[0]) != in_c:
        raise ShapeError(f"the weight reads {w_shape[0]} channels but the input has {in_c}")
    ho = conv_transpose_output_size(h, int(w_shape[2]), sh, ph)
    wo = conv_transpose_output_size(w, int(w_shape[3]), sw, pw)
    if ho < 1 or wo < 1:
        raise ShapeError(f"transposed convolution output would be {ho}x{wo}: use less padding")
    return Conv2dPlan((n, int(w_shape[1]), ho, wo), w_shape, (sh, sw), (ph, ph, pw, pw), dtype)


@plan_threads
def conv_transpose_forward(
    plan: Conv2dPlan, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> np.ndarray:
    """Run a transposed convolution with its plan: col2im(weight^T @ x)."""
    plan.load_output_grad(x)
    wm = w.reshape(plan.F, plan.K)
    out = plan.new_input_grad()
    for n0, n1 in plan.chunks:
        plan.add_columns(plan.input_grad_columns(wm, n0, n1), n0, n1, out)
    out = plan.input_grad(out)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Any = 1, padding: Any = 0
) -> np.ndarray:
    """Transposed convolution (PyTorch's conv_transpose2d; lecture 001's "transpose
    convolution"): the input-gradient of conv2d with the same weight, stride and padding.

    Shapes: x (N, in_c, H, W), w (in_c, out_c, kh, kw), b (out_c,) -> (N, out_c, Ho, Wo),
    Ho = (H - 1) * S - 2P + kh.
    """
    _check_4d(x, "conv_transpose2d")
    return conv_transpose_forward(
        conv_transpose2d_plan(x.shape, w.shape, stride, padding, x.dtype), x, w, b
    )


# --- pooling -------------------------------------------------------------------------------
def pool_geometry(
    h: int, w: int, kernel: Any, stride: Any, padding: Any, ceil_mode: bool = False
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """(kernel, stride, padding, OH, OW) as pairs; stride None means the kernel size.
    ``ceil_mode`` (PyTorch's): OH = ceil((H + 2P - k) / S) + 1, a last window that runs past
    the padded input included, unless it would start in the padding after the input."""
    kh, kw = pair(kernel)
    sh, sw = pair(kernel if stride is None else stride)
    ph, pw = pair(padding)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ShapeError(
            f"pooling window {kh}x{kw} is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw}: use padding or a smaller kernel"
        )
    return (
        (kh, kw),
        (sh, sw),
        (ph, pw),
        *(
            _pooled_size(size, k, s, p, ceil_mode)
            for size, k, s, p in ((h, kh, sh, ph), (w, kw, sw, pw))
        ),
    )


def _pooled_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    if not ceil_mode:
        return (size + 2 * p - k) // s + 1
    out = -(-(size + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


def overhang(size: int, k: int, s: int, p: int, out: int) -> int:
    """Rows (or columns) the last of ``out`` windows reaches past the padded input (ceil_mode's
    partial window; 0 without one): padded with the fill value at the end only."""
    return max(0, (out - 1) * s + k - (size + 2 * p))


def channel_sum(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W) summed over everything but the channel axis (a bias gradient): over the
    samples first (whole maps added), then within each map: faster than
    ``a.sum(axis=(0, 2, 3))``."""
    return a.sum(axis=0).reshape(a.shape[1], -1).sum(axis=1)


def padded(x: np.ndarray, ph: int, pw: int, fill: float, eh: int = 0, ew: int = 0) -> np.ndarray:
    """x with ph rows and pw columns of ``fill`` on each side, and eh rows / ew columns more at
    the bottom / right (x itself when there are none)."""
    if ph == 0 and pw == 0 and eh == 0 and ew == 0:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), fill, x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def column_views(xp: np.ndarray, kw: int, sw: int, ow: int) -> list[np.ndarray]:
    """views[j][..., x] = xp[..., x*sw + j]: the j-th column of every window, for all rows."""
    return [xp[..., j : j + sw * (ow - 1) + 1 : sw] for j in range(kw)]


def row_views(a: np.ndarray, kh: int, sh: int, oh: int) -> list[np.ndarray]:
    """views[i][:, :, y] = a[:, :, y*sh + i]: the i-th row of every window."""
    return [a[:, :, i : i + sh * (oh - 1) + 1 : sh] for i in range(kh)]


def first_max(views: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise maximum over ``views`` and which view held it, the FIRST one on ties."""
    if len(views) == 2:  # the usual 2-wide window: the pick is "the second is bigger" as is
        # (no zeroed pick array and copy)
        bigger = np.greater(views[1], views[0])
        return np.maximum(views[0], views[1]), bigger.view(np.uint8)
    pick = np.zeros(views[0].shape, np.uint8 if len(views) < 256 else np.int32)
    if len(views) == 1:
        return views[0].copy(), pick
    bigger = np.greater(views[1], views[0])  # strictly: an equal later value does not win
    out = np.maximum(views[0], views[1])
    np.copyto(pick, bigger)
    for p, v in enumerate(views[2:], 2):
        np.greater(v, out, out=bigger)
        np.maximum(out, v, out=out)
        # p exceeds every index stored so far, so "pick = p where bigger" is a maximum
        np.maximum(pick, np.multiply(bigger, p, dtype=pick.dtype), out=pick)
    return out, pick


def max_pool2d(
    x: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    return_choices: bool = False,
    ceil_mode: bool = False,
) -> Any:
    """Max over each window; padding (and ``ceil_mode``'s overhang) counts as -inf (PyTorch's
    max_pool2d).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW)
    Windows are reduced in two passes, along their columns (every row) and then along their
    rows (far fewer operations than one pass per window element). ``return_choices`` also
    gives where each maximum was: ``cols`` (N, C, Hp, OW), the column in its window of the
    max of each row piece, and ``rows`` (N, C, OH, OW), the row of the window max. On ties
    both take the first, so the choice is the first maximum in row-major order, as PyTorch
    routes gradients (ties are common after ReLU: the gradient goes to one input only).
    """
    _check_4d(x, "max_pool2d")
    h, w = x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw), oh, ow = pool_geometry(
        h, w, kernel_size, stride, padding, ceil_mode
    )
    eh, ew = overhang(h, kh, sh, ph, oh), overhang(w, kw, sw, pw, ow)
    xp = padded(x, ph, pw, -np.inf, eh, ew)
    if not return_choices:
        return max_views(row_views(max_views(column_views(xp, kw, sw, ow)), kh, sh, oh))
    cols, col_pick = first_max(column_views(xp, kw, sw, ow))
    out, row_pick = first_max(row_views(cols, kh, sh, oh))
    return out, {"cols": col_pick, "rows": row_pick}


def avg_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0) -> np.ndarray:
    """Mean of each window; padded zeros count (PyTorch's count_include_pad=True).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW); summed along window columns, then rows.
    """
    _check_4d(x, "avg_pool2d")
    (kh, kw), (sh, sw), (ph, pw), oh, ow = pool_geometry(
        x.shape[2], x.shape[3], kernel_size, stride, padding
    )
    cols = sum_views(column_views(padded(x, ph, pw, 0.0), kw, sw, ow))
    out = sum_views(row_views(cols, kh, sh, oh))
    out *= 1.0 / (kh * kw)
    return out


def max_views(views: list[np.ndarray]) -> np.ndarray:
    """A fresh array: the element-wise maximum of ``views``."""
    out = views[0].copy()
    for v in views[1:]:
        np.maximum(out, v, out=out)
    return out


def sum_views(views: list[np.ndarray]) -> np.ndarray:
    """A fresh array: the element-wise sum of ``views``."""
    out = views[0].copy()
    for v in views[1:]:
        out += v
    return out


def window_sum2d(x: np.ndarray, kernel_size: Any) -> np.ndarray:
    """Sum of each non-overlapping k x k window (LeNet-5's subsampling before its weight);
    rows/columns that do not fill a window are dropped.

    Shapes: x (N, C, H, W) -> out (N, C, H // kh, W // kw)
    """
    _check_4d(x, "window_sum2d")
    kh, kw = pair(kernel_size)
    n, c, h, w = x.shape
    oh, ow = h // kh, w // kw
    if oh < 1 or ow < 1:
        raise ShapeError(f"window {kh}x{kw} is larger than the input {h}x{w}")
    return x[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow, kw).sum(axis=(3, 5))


def global_avg_pool2d(x: np.ndarray) -> np.ndarray:
    """Mean of each map. Shapes: x (N, C, H, W) -> out (N, C)"""
    _check_4d(x, "global_avg_pool2d")
    return x.mean(axis=(2, 3))


def upsample2d(x: np.ndarray, scale: Any = 2) -> np.ndarray:
    """Nearest-neighbour upsampling: each pixel becomes an sh x sw block.

    Shapes: x (N, C, H, W) -> out (N, C, H*sh, W*sw)
    """
    _check_4d(x, "upsample2d")
    sh, sw = pair(scale)
    n, c, h, w = x.shape
    big = np.broadcast_to(x[:, :, :, None, :, None], (n, c, h, sh, w, sw))
    return big.reshape(n, c, h * sh, w * sw)
