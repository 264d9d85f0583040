"""Pure forward functions (no state, no gradients): conv2d, conv1d, conv_transpose2d, max_pool2d,
avg_pool2d, global_avg_pool2d, upsample2d; and the im2col machinery the layers share.

A convolution (the lectures' sliding dot product; strictly a cross-correlation, as in PyTorch:
out[f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * x[c, y*S + i, x*S + j]) runs as ONE matrix
product per chunk of the batch (CS231n's im2col):

    cols (C*kh*kw, positions)  = every input patch laid out as a column
    out  (F, positions)        = weight.reshape(F, C*kh*kw) @ cols

How the columns are laid out, and why (measured on LeNet-5; see benchmarks/engine_vs_torch.py):
- The padded input is copied once into a channel-major buffer (C, N, R), R = one padded map
  flattened. The columns are then ONE copy from an ``as_strided`` view of that buffer.
- Stride 1 ("wide rows"): each output row is computed for all Wp padded columns, not just the
  OW valid ones. Then, for a kernel offset (i, j), the patch values of one sample are the
  contiguous run buffer[c, n, i*Wp + j : i*Wp + j + OH*Wp], so building the columns and
  scattering their gradients back (col2im) move long contiguous runs instead of rows of OW
  values. The Wp - OW extra columns per row are computed and dropped (their output gradient is
  zero, so they add nothing going back).
- The batch is cut into chunks so the column buffer stays small (cache-sized); the backward pass
  rebuilds the columns chunk by chunk instead of keeping a big copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.errors import ConfigError, ShapeError

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)

# Size of one chunk's column buffer. 1-2 MiB keeps it in a core's L2 cache; measured on LeNet-5
# (batch 64) 1 MiB was fastest, and it bounds the memory big images need.
CHUNK_BYTES = 1 << 20


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


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int,
                     pad_after: int | None = None) -> int:
    """Lecture 000: floor((W - K + 2P) / S) + 1 (with P on each side; here the two sides may
    differ, as for "same" with an even kernel)."""
    pad_after = pad_before if pad_after is None else pad_after
    return (size + pad_before + pad_after - kernel) // stride + 1


def _check_4d(x: np.ndarray, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what} expects a batch of images (N, C, H, W), got {x.shape}")


class Conv2dPlan:
    """Geometry and reusable scratch buffers of one 2-D cross-correlation.

    Shapes: x (N, C, H, W) * weight (F, C, kh, kw) -> out (N, F, OH, OW). A layer keeps one plan
    per input shape, so buffers are allocated once; the arrays it hands out are always fresh.
    """

    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                 stride: tuple[int, int], pad: Pad4, dtype: Any = np.float32):
        self.N, self.C, self.H, self.W = (int(d) for d in x_shape)
        self.F, c_w, self.kh, self.kw = (int(d) for d in w_shape)
        if c_w != self.C:
            raise ShapeError(f"the weight reads {c_w} channels but the input has {self.C}: "
                             f"input {tuple(x_shape)}, weight {tuple(w_shape)}")
        self.sh, self.sw = stride
        self.pt, self.pb, self.pl, self.pr = pad
        self.Hp = self.H + self.pt + self.pb
        self.Wp = self.W + self.pl + self.pr
        if self.kh > self.Hp or self.kw > self.Wp:
            raise ShapeError(f"kernel {self.kh}x{self.kw} is larger than the padded input "
                             f"{self.Hp}x{self.Wp}: use padding or a smaller kernel")
        self.OH = (self.Hp - self.kh) // self.sh + 1
        self.OW = (self.Wp - self.kw) // self.sw + 1
        self.dtype = np.dtype(dtype)
        self.wide = self.sh == 1 and self.sw == 1  # the "wide rows" layout (module docstring)
        self.OWx = self.Wp if self.wide else self.OW  # columns computed per output row
        self.P = self.OH * self.OWx  # positions computed per sample
        self.R = self.Hp * self.Wp + (self.kw - 1 if self.wide else 0)  # flat padded map length
        self.K = self.C * self.kh * self.kw
        per_sample = self.K * self.P * self.dtype.itemsize
        self.chunk = max(1, min(self.N, CHUNK_BYTES // max(per_sample, 1)))
        self.chunks = [(n0, min(self.N, n0 + self.chunk)) for n0 in range(0, self.N, self.chunk)]
        self._xpad: np.ndarray | None = None
        self._gout: np.ndarray | None = None
        self._cols = np.empty(self.K * self.chunk * self.P, self.dtype)
        self._mat = np.empty(max(self.F, self.K) * self.chunk * self.P, self.dtype)
        self._cols_key: tuple | None = None  # (n0, n1, version) the column buffer holds
        self._version = 0

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return self.N, self.F, self.OH, self.OW

    # --- input side ------------------------------------------------------------------------
    def load_input(self, x: np.ndarray) -> None:
        """Copy x into the zero-padded channel-major buffer (C, N, R); the border stays zero."""
        if self._xpad is None:
            self._xpad = np.zeros((self.C, self.N, self.R), self.dtype)
        inner = self._xpad[:, :, : self.Hp * self.Wp].reshape(self.C, self.N, self.Hp, self.Wp)
        np.copyto(inner[:, :, self.pt: self.pt + self.H, self.pl: self.pl + self.W],
                  x.transpose(1, 0, 2, 3))
        self._version += 1

    def columns(self, n0: int, n1: int) -> np.ndarray:
        """im2col for samples n0..n1: (C*kh*kw, m*P), row (c, i, j), column (n, oh, ow)."""
        m = n1 - n0
        shape = (self.C, self.kh, self.kw, m, self.OH, self.OWx)
        cols = self._cols[: self.K * m * self.P].reshape(shape)
        key = (n0, n1, self._version)
        if self._cols_key != key:
            src = self._xpad[:, n0:n1]
            e = src.itemsize
            s_c, s_n = src.strides[0], src.strides[1]
            view = as_strided(src, shape, (s_c, self.Wp * e, e, s_n, self.sh * self.Wp * e,
                                           self.sw * e), writeable=False)
            np.copyto(cols, view)
            self._cols_key = key
        return cols.reshape(self.K, m * self.P)

    def product(self, a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
        """a @ b into the reusable result buffer (valid until the next call)."""
        out = self._mat[: rows * b.shape[1]].reshape(rows, b.shape[1])
        return np.matmul(a, b, out=out)

    def write_output(self, res: np.ndarray, out: np.ndarray, n0: int, n1: int,
                     bias: np.ndarray | None) -> None:
        """Drop the extra columns of res (F, m*P) and store it (+ bias) in out[n0:n1] (NCHW)."""
        m = n1 - n0
        view = res.reshape(self.F, m, self.OH, self.OWx)[:, :, :, : self.OW].transpose(1, 0, 2, 3)
        if bias is None:
            np.copyto(out[n0:n1], view)
        else:
            np.add(view, bias.reshape(1, -1, 1, 1), out=out[n0:n1])

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        self.load_input(x)
        out = np.empty(self.out_shape, self.dtype)
        wm = w.reshape(self.F, self.K)
        for n0, n1 in self.chunks:
            self.write_output(self.product(wm, self.columns(n0, n1), self.F), out, n0, n1, b)
        return out

    # --- gradient side ---------------------------------------------------------------------
    def load_output_grad(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, F, OH, OW) laid out like the positions: (F, N*P), zero at extra columns.
        It stays available as ``output_grad`` until the next call."""
        if self._gout is None:
            self._gout = np.zeros((self.F, self.N, self.OH, self.OWx), self.dtype)
        np.copyto(self._gout[:, :, :, : self.OW], dout.transpose(1, 0, 2, 3))
        return self.output_grad

    @property
    def output_grad(self) -> np.ndarray:
        return self._gout.reshape(self.F, self.N * self.P)

    def new_input_grad(self) -> np.ndarray:
        """A fresh zero buffer for col2im, laid out like the padded input (C, N, R)."""
        return np.zeros((self.C, self.N, self.R), self.dtype)

    def add_columns(self, dcols: np.ndarray, n0: int, n1: int, dxpad: np.ndarray) -> None:
        """col2im: add each column's values back where its patch came from (one slice per
        kernel offset; overlapping patches add up)."""
        m = n1 - n0
        d = dcols.reshape(self.C, self.kh, self.kw, m, self.OH, self.OWx)
        if self.wide:
            flat = dxpad[:, n0:n1]
            for i in range(self.kh):
                for j in range(self.kw):
                    s = i * self.Wp + j
                    target = flat[:, :, s: s + self.P]
                    target += d[:, i, j].reshape(self.C, m, self.P)
            return
        grid = dxpad[:, n0:n1, : self.Hp * self.Wp].reshape(self.C, m, self.Hp, self.Wp)
        hi, wi = self.sh * (self.OH - 1) + 1, self.sw * (self.OW - 1) + 1
        for i in range(self.kh):
            for j in range(self.kw):
                target = grid[:, :, i: i + hi: self.sh, j: j + wi: self.sw]
                target += d[:, i, j]

    def input_view(self, xpad: np.ndarray) -> np.ndarray:
        """The unpadded (N, C, H, W) view of a (C, N, R) buffer."""
        grid = xpad[:, :, : self.Hp * self.Wp].reshape(self.C, self.N, self.Hp, self.Wp)
        return grid[:, :, self.pt: self.pt + self.H, self.pl: self.pl + self.W].transpose(
            1, 0, 2, 3)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Any = 1,
           padding: Any = 0, plan: Conv2dPlan | None = None) -> np.ndarray:
    """2-D cross-correlation (PyTorch's conv2d).

    Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) -> out (N, F, OH, OW),
    OH = floor((H + 2P - kh) / S) + 1. padding: int, [ph, pw], "valid" or "same" (stride 1).
    ``plan`` (from a layer) reuses scratch buffers; results are the same without it.
    """
    _check_4d(x, "conv2d")
    if plan is None:
        kernel = (int(w.shape[2]), int(w.shape[3]))
        st = pair(stride)
        plan = Conv2dPlan(x.shape, w.shape, st, padding4(padding, kernel, st), x.dtype)
    return plan.forward(x, w, b)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1,
           padding: Any = 0) -> np.ndarray:
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
    plan = Conv2dPlan((x.shape[0], x.shape[1], 1, x.shape[2]), (*w.shape[:2], 1, k),
                      (1, int(stride)), pad, x.dtype)
    return plan.forward(x[:, :, None, :], w[:, :, None, :], b)[:, :, 0, :]


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """(W - 1) * S - 2P + K: the size a convolution with these settings maps back to W."""
    return (size - 1) * stride - 2 * padding + kernel


def conv_transpose2d_plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any,
                          padding: Any, dtype: Any = np.float32) -> Conv2dPlan:
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


def conv_transpose_forward(plan: Conv2dPlan, x: np.ndarray, w: np.ndarray,
                           b: np.ndarray | None) -> np.ndarray:
    """Run a transposed convolution with its plan: col2im(weight^T @ x)."""
    g = plan.load_output_grad(x)
    wm = w.reshape(plan.F, plan.K)
    out = plan.new_input_grad()
    for n0, n1 in plan.chunks:
        gc = g[:, n0 * plan.P: n1 * plan.P]
        plan.add_columns(plan.product(wm.T, gc, plan.K), n0, n1, out)
    view = plan.input_view(out)
    return view + b.reshape(1, -1, 1, 1) if b is not None else view


def conv_transpose2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None,
                     stride: Any = 1, padding: Any = 0) -> np.ndarray:
    """Transposed convolution (PyTorch's conv_transpose2d; lecture 001's "transpose
    convolution"): the input-gradient of conv2d with the same weight, stride and padding.

    Shapes: x (N, in_c, H, W), w (in_c, out_c, kh, kw), b (out_c,) -> (N, out_c, Ho, Wo),
    Ho = (H - 1) * S - 2P + kh.
    """
    _check_4d(x, "conv_transpose2d")
    return conv_transpose_forward(conv_transpose2d_plan(x.shape, w.shape, stride, padding,
                                                        x.dtype), x, w, b)


# --- pooling -------------------------------------------------------------------------------
def pool_geometry(h: int, w: int, kernel: Any, stride: Any, padding: Any
                  ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """(kernel, stride, padding, OH, OW) as pairs; stride None means the kernel size."""
    kh, kw = pair(kernel)
    sh, sw = pair(kernel if stride is None else stride)
    ph, pw = pair(padding)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ShapeError(f"pooling window {kh}x{kw} is larger than the padded input "
                         f"{h + 2 * ph}x{w + 2 * pw}: use padding or a smaller kernel")
    return (kh, kw), (sh, sw), (ph, pw), (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def padded(x: np.ndarray, ph: int, pw: int, fill: float) -> np.ndarray:
    """x with ph rows and pw columns of ``fill`` on each side (x itself when there are none)."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    xp[:, :, ph: ph + h, pw: pw + w] = x
    return xp


def window_views(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], oh: int,
                 ow: int) -> list[np.ndarray]:
    """For each kernel offset (i, j) in row-major order, the strided slice holding that
    element of every window: views[i*kw + j][n, c, y, x] = xp[n, c, y*sh + i, x*sw + j]."""
    (kh, kw), (sh, sw) = kernel, stride
    hi, wi = sh * (oh - 1) + 1, sw * (ow - 1) + 1
    return [xp[:, :, i: i + hi: sh, j: j + wi: sw] for i in range(kh) for j in range(kw)]


def max_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0,
               return_indices: bool = False) -> Any:
    """Max over each window; padding counts as -inf (PyTorch's max_pool2d).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW). With ``return_indices`` also the position
    (i*kw + j) inside its window of each max, the FIRST one in row-major order when several
    are equal (as PyTorch: ties are common after ReLU, and the gradient goes to one input only).
    """
    _check_4d(x, "max_pool2d")
    k, s, (ph, pw), oh, ow = pool_geometry(x.shape[2], x.shape[3], kernel_size, stride, padding)
    views = window_views(padded(x, ph, pw, -np.inf), k, s, oh, ow)
    out = views[0].copy()
    if not return_indices:
        for v in views[1:]:
            np.maximum(out, v, out=out)
        return out
    idx = np.zeros(out.shape, np.uint8 if len(views) < 256 else np.int32)
    bigger = np.empty(out.shape, bool)
    for p, v in enumerate(views[1:], 1):
        np.greater(v, out, out=bigger)  # strictly: an equal later value does not take over
        np.maximum(out, v, out=out)
        # p exceeds every index stored so far, so "idx = p where bigger" is a maximum
        np.maximum(idx, np.multiply(bigger, p, dtype=idx.dtype), out=idx)
    return out, idx


def avg_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = None,
               padding: Any = 0) -> np.ndarray:
    """Mean of each window; padded zeros count (PyTorch's count_include_pad=True).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW)
    """
    _check_4d(x, "avg_pool2d")
    k, s, (ph, pw), oh, ow = pool_geometry(x.shape[2], x.shape[3], kernel_size, stride, padding)
    views = window_views(padded(x, ph, pw, 0.0), k, s, oh, ow)
    out = views[0].copy()
    for v in views[1:]:
        out += v
    out *= 1.0 / (k[0] * k[1])
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
