"""Pure forward functions (no state, no gradients): conv2d, conv1d, conv_transpose2d, max_pool2d,
avg_pool2d, global_avg_pool2d, upsample2d; and the im2col machinery the layers share.

A convolution (the lectures' sliding dot product; strictly a cross-correlation, as in PyTorch:
out[f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * x[c, y*S + i, x*S + j]) is a matrix product
(CS231n's im2col), one per sample, batched in one ``np.matmul`` per chunk of the batch:

    cols (C*kh*kw, positions)  = every input patch laid out as a column
    out  (F, positions)        = weight.reshape(F, C*kh*kw) @ cols

Choices measured on LeNet-5 (benchmarks/engine_vs_torch.py):
- The padded input is copied once into a buffer (N, C, R), R = one padded map flattened; the
  columns are then ONE copy from an ``as_strided`` view of it.
- Stride 1, "wide rows": each output row is computed for all Wp padded columns, not just the
  OW valid ones. The patch values for kernel offset (i, j) are then the contiguous run
  buffer[n, c, i*Wp + j : i*Wp + j + OH*Wp], so columns are built (and their gradients added
  back) in long runs instead of rows of OW values. The extra columns are dropped from the
  output; their output gradient is zero, so they add nothing going back.
- Stride 1, "folded" (Conv2dPlan, when it means fewer columns): shifts by kernel rows are made
  on the input and shifts by kernel columns on the other side of the product, so the columns
  are kh*kw / (kh + F*kw/C) times smaller and col2im needs kh additions instead of kh*kw.
- The batch is cut into chunks whose columns stay in cache while their product runs; the
  backward pass rebuilds them chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.errors import ConfigError, ShapeError

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)

# Size of one chunk's columns: small enough to stay in a core's L2 cache while its product
# runs (measured on LeNet-5, batch 64: 0.5 - 2 MiB best), and a bound on scratch memory.
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


class Conv2dPlan:
    """Geometry and reusable scratch buffers of one 2-D cross-correlation.

    Shapes: x (N, C, H, W) * weight (F, C, kh, kw) -> out (N, F, OH, OW). A layer keeps one plan
    per input shape, so buffers are allocated once; the arrays it hands out are always fresh.
    Everything is sample-major (N first), so each product is one batched ``np.matmul``: numpy
    runs the (F, C*kh*kw) @ (C*kh*kw, positions) product of every sample of a chunk in C.
    Per-sample products are small enough that BLAS runs each on one thread. One big product
    per chunk was measured a little faster on an idle machine but up to 20x slower on a busy
    one (BLAS worker threads waiting for a core), and this keeps a core free for the GUI.
    """

    def __init__(
        self,
        x_shape: tuple[int, ...],
        w_shape: tuple[int, ...],
        stride: tuple[int, int],
        pad: Pad4,
        dtype: Any = np.float32,
    ):
        self.N, self.C, self.H, self.W = (int(d) for d in x_shape)
        self.F, c_w, self.kh, self.kw = (int(d) for d in w_shape)
        if c_w != self.C:
            raise ShapeError(
                f"the weight reads {c_w} channels but the input has {self.C}: "
                f"input {tuple(x_shape)}, weight {tuple(w_shape)}"
            )
        self.sh, self.sw = stride
        self.pt, self.pb, self.pl, self.pr = pad
        self.Hp = self.H + self.pt + self.pb
        self.Wp = self.W + self.pl + self.pr
        if self.kh > self.Hp or self.kw > self.Wp:
            raise ShapeError(
                f"kernel {self.kh}x{self.kw} is larger than the padded input "
                f"{self.Hp}x{self.Wp}: use padding or a smaller kernel"
            )
        self.OH = (self.Hp - self.kh) // self.sh + 1
        self.OW = (self.Wp - self.kw) // self.sw + 1
        self.dtype = np.dtype(dtype)
        self.wide = self.sh == 1 and self.sw == 1  # the "wide rows" layout (module docstring)
        self.OWx = self.Wp if self.wide else self.OW  # columns computed per output row
        self.P = self.OH * self.OWx  # positions computed per sample
        self.R = self.Hp * self.Wp + (self.kw - 1 if self.wide else 0)  # flat padded map length
        self.K = self.C * self.kh * self.kw
        self.chunks = self._chunk(self.K * self.P)
        # Stride 1, folded: V = P + kw - 1 positions per sample, C*kh + F*kw rows of columns
        # (see "folded" below). It pays when those are fewer than im2col's C*kh*kw rows
        # (LeNet's C3: 30 + 80 < 150; C1: 5 + 30 > 25).
        self.V = self.P + self.kw - 1
        self.fold_chunks = self._chunk((self.C * self.kh + self.F * self.kw) * self.V)
        self.folded = self.wide and self.C * self.kh + self.F * self.kw < self.K
        self._pg = self.kw - 1 if self.wide else 0  # zeros around each sample's out-gradient
        self._xpad: np.ndarray | None = None
        self._gpad: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}

    def _chunk(self, values_per_sample: int) -> list[tuple[int, int]]:
        """Sample ranges whose columns fit in CHUNK_BYTES (at least one sample each)."""
        size = max(1, min(self.N, CHUNK_BYTES // max(values_per_sample * self.dtype.itemsize, 1)))
        return [(n0, min(self.N, n0 + size)) for n0 in range(0, self.N, size)]

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A reusable scratch array of ``shape`` (valid until the next request of ``name``)."""
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = np.empty(size, self.dtype)
        return buf[:size].reshape(shape)

    def _windows(
        self,
        name: str,
        src: np.ndarray,
        n0: int,
        n1: int,
        shape: tuple[int, ...],
        strides: tuple[int, ...],
    ) -> np.ndarray:
        """ONE copy of the overlapping windows ``as_strided(src[n0:n1], (m, *shape), strides)``
        (strides in elements) into the scratch array ``name``. (Keeping the whole batch's
        columns for the backward pass instead was measured slower: the chunk buffer stays in
        cache, a batch-sized one does not.)"""
        m = n1 - n0
        out = self._buffer(name, (m, *shape))
        e = src.itemsize
        np.copyto(
            out,
            as_strided(src[n0:n1], (m, *shape), tuple(st * e for st in strides), writeable=False),
        )
        return out

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return self.N, self.F, self.OH, self.OW

    # --- input side ------------------------------------------------------------------------
    def load_input(self, x: np.ndarray) -> None:
        """Copy x into the zero-padded buffer (N, C, R); the border stays zero."""
        if self._xpad is None:
            self._xpad = np.zeros((self.N, self.C, self.R), self.dtype)
        np.copyto(
            self._grid(self._xpad)[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W], x
        )

    def _grid(self, buf: np.ndarray) -> np.ndarray:
        """The (N, C, Hp, Wp) image view of a flat (N, C, R) buffer."""
        return buf[:, :, : self.Hp * self.Wp].reshape(buf.shape[0], self.C, self.Hp, self.Wp)

    def columns(self, n0: int, n1: int) -> np.ndarray:
        """im2col of samples n0..n1: (m, C*kh*kw, P), row (c, i, j), column (oh, ow)."""
        cols = self._windows(
            "cols",
            self._xpad,
            n0,
            n1,
            (self.C, self.kh, self.kw, self.OH, self.OWx),
            (self.C * self.R, self.R, self.Wp, 1, self.sh * self.Wp, self.sw),
        )
        return cols.reshape(n1 - n0, self.K, self.P)

    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a @ b (batched over samples) into a reusable buffer, valid until the next call."""
        return np.matmul(a, b, out=self._buffer("product", (b.shape[0], a.shape[-2], b.shape[-1])))

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        self.load_input(x)
        out = np.empty(self.out_shape, self.dtype)
        wm = w.reshape(self.F, self.K)
        wf = self.fold_forward_weight(w) if self.folded else None
        bias = None if b is None else b.reshape(1, -1, 1, 1)
        for n0, n1 in self.fold_chunks if self.folded else self.chunks:
            m = n1 - n0
            if self.wide:  # computed with Wp - OW extra columns per row: dropped below
                res = self._buffer("result", (m, self.F, self.OH, self.OWx))
            else:
                res = out[n0:n1]
            o = res.reshape(m, self.F, self.P)
            if self.folded:
                self._forward_folded(wf, n0, n1, o)
            else:
                np.matmul(wm, self.columns(n0, n1), out=o)
            # the copy without the extra columns, and the bias, while the chunk is in cache
            if self.wide:
                np.copyto(out[n0:n1], res[..., : self.OW])
            if bias is not None:
                out[n0:n1] += bias
        return out

    # --- gradient side ---------------------------------------------------------------------
    def load_output_grad(self, dout: np.ndarray) -> None:
        """dout (N, F, OH, OW) into (N, F, P + 2*pg) laid out like the positions: zero at the
        extra columns, and (stride 1) kw - 1 zeros before and after each sample's positions."""
        if self._gpad is None:
            self._gpad = np.zeros((self.N, self.F, self.P + 2 * self._pg), self.dtype)
        inner = self._gpad[:, :, self._pg : self._pg + self.P]
        np.copyto(inner.reshape(self.N, self.F, self.OH, self.OWx)[:, :, :, : self.OW], dout)

    def output_grad(self, n0: int, n1: int) -> np.ndarray:
        """The loaded dout of samples n0..n1 as (m, F, P)."""
        return self._gpad[n0:n1, :, self._pg : self._pg + self.P]

    def output_grad_sum(self) -> np.ndarray:
        """dout summed over batch and positions (the bias gradient)."""
        return self._gpad.sum(axis=2).sum(axis=0)

    def new_input_grad(self) -> np.ndarray:
        """A zeroed scratch gradient laid out like the padded input (N, C, R), reused between
        calls (copy what you hand out of it)."""
        dxpad = self._buffer("dxpad", (self.N, self.C, self.R))
        dxpad.fill(0)
        return dxpad

    def input_view(self, xpad: np.ndarray) -> np.ndarray:
        """The unpadded (N, C, H, W) view of a (N, C, R) buffer."""
        return self._grid(xpad)[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W]

    def add_columns(self, dcols: np.ndarray, n0: int, n1: int, dxpad: np.ndarray) -> None:
        """col2im: add each column (m, C*kh*kw, P) back where its patch came from (one slice
        per kernel offset; overlapping patches add up)."""
        m = n1 - n0
        d = dcols.reshape(m, self.C, self.kh, self.kw, self.OH, self.OWx)
        grid = self._grid(dxpad[n0:n1])
        hi, wi = self.sh * (self.OH - 1) + 1, self.sw * (self.OW - 1) + 1
        for i in range(self.kh):
            for j in range(self.kw):
                if self.wide:  # one contiguous run per sample and channel
                    s = i * self.Wp + j
                    target = dxpad[n0:n1, :, s : s + self.P]
                    target += d[:, :, i, j].reshape(m, self.C, self.P)
                else:
                    target = grid[:, :, i : i + hi : self.sh, j : j + wi : self.sw]
                    target += d[:, :, i, j]

    # --- stride 1, folded ------------------------------------------------------------------
    # With wide rows, input position p of a sample meets output position q = p - (i*Wp + j)
    # through weight (i, j). Split the shift into whole rows (i*Wp) and single columns (j):
    #   X[n, c, i, v] = xpad[n, c, v + i*Wp]                     (C*kh rows)
    #   G[n, f, j', v] = gpad[n, f, v + j'] = dout[n, f, v - j], j = kw-1-j'   (F*kw rows)
    # for v in [0, V), V = P + kw - 1. Each sum is then one product per sample:
    #   out[n, f, q]         = sum_j (W'' @ X)[n, (j, f), q + j],  W''[(j, f), (c, i)] = w[f,c,i,j]
    #   dW[f, c, i, j]       = sum_n (G @ X^T)[n, (f, j'), (c, i)]
    #   dx[n, c, v + i*Wp]  += (W' @ G)[n, (i, c), v],             W'[(i, c), (f, j')] = w[f,c,i,j]
    # kw (or kh) shifted additions instead of col2im's kh*kw, and far smaller columns.
    def fold_forward_weight(self, w: np.ndarray) -> np.ndarray:
        """W'' (kw*F, C*kh) above."""
        return np.ascontiguousarray(w.transpose(3, 0, 1, 2)).reshape(self.kw * self.F, -1)

    def _forward_folded(self, wf: np.ndarray, n0: int, n1: int, o: np.ndarray) -> None:
        """o (m, F, P) = sum_j (W'' @ X)[:, (j, f), q + j] for samples n0..n1."""
        y = self.product(wf, self.shifted_inputs(n0, n1)).reshape(n1 - n0, self.kw, self.F, -1)
        np.copyto(o, y[:, 0, :, : self.P])
        for j in range(1, self.kw):
            o += y[:, j, :, j : j + self.P]

    def shifted_inputs(self, n0: int, n1: int) -> np.ndarray:
        """X above for samples n0..n1, as (m, C*kh, V)."""
        x = self._windows(
            "rows",
            self._xpad,
            n0,
            n1,
            (self.C, self.kh, self.V),
            (self.C * self.R, self.R, self.Wp, 1),
        )
        return x.reshape(n1 - n0, self.C * self.kh, self.V)

    def shifted_inputs_t(self, n0: int, n1: int) -> np.ndarray:
        """X above as (m, V, C*kh), contiguous: ``G @ X^T`` runs ~1.7x faster with a
        contiguous right operand than with a transposed view."""
        x = self.shifted_inputs(n0, n1)
        xt = self._buffer("rows_t", (n1 - n0, self.V, self.C * self.kh))
        np.copyto(xt, x.transpose(0, 2, 1))
        return xt

    def shifted_grads(self, n0: int, n1: int) -> np.ndarray:
        """G above for samples n0..n1, as (m, F*kw, V)."""
        width = self._gpad.shape[2]
        g = self._windows(
            "gcols", self._gpad, n0, n1, (self.F, self.kw, self.V), (self.F * width, width, 1, 1)
        )
        return g.reshape(n1 - n0, self.F * self.kw, self.V)

    def fold_weight(self, w: np.ndarray) -> np.ndarray:
        """W' (kh*C, F*kw) above."""
        flipped = w[:, :, :, ::-1].transpose(2, 1, 0, 3)
        return np.ascontiguousarray(flipped).reshape(self.kh * self.C, self.F * self.kw)

    def unfold_weight_grad(self, dwt: np.ndarray) -> np.ndarray:
        """dW from sum_n G @ X^T (F*kw, C*kh), back in the weight layout (F, C, kh, kw)."""
        d = dwt.reshape(self.F, self.kw, self.C, self.kh)[:, ::-1]
        return np.ascontiguousarray(d.transpose(0, 2, 3, 1))

    def add_row_shifted(self, y: np.ndarray, n0: int, n1: int, dxpad: np.ndarray) -> None:
        """dxpad[n, c, i*Wp + v] += y[n, (i, c), v]: the kh row shifts of W' @ G."""
        for i in range(self.kh):
            target = dxpad[n0:n1, :, i * self.Wp : i * self.Wp + self.V]
            target += y[:, i * self.C : (i + 1) * self.C]


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
    ``plan`` (from a layer) reuses scratch buffers; results are the same without it.
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


def conv_transpose_forward(
    plan: Conv2dPlan, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> np.ndarray:
    """Run a transposed convolution with its plan: col2im(weight^T @ x)."""
    plan.load_output_grad(x)
    wt = w.reshape(plan.F, plan.K).T
    out = plan.new_input_grad()
    for n0, n1 in plan.chunks:
        plan.add_columns(plan.product(wt, plan.output_grad(n0, n1)), n0, n1, out)
    view = plan.input_view(out)
    return view + b.reshape(1, -1, 1, 1) if b is not None else view.copy()


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
    h: int, w: int, kernel: Any, stride: Any, padding: Any
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """(kernel, stride, padding, OH, OW) as pairs; stride None means the kernel size."""
    kh, kw = pair(kernel)
    sh, sw = pair(kernel if stride is None else stride)
    ph, pw = pair(padding)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ShapeError(
            f"pooling window {kh}x{kw} is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw}: use padding or a smaller kernel"
        )
    return (kh, kw), (sh, sw), (ph, pw), (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def padded(x: np.ndarray, ph: int, pw: int, fill: float) -> np.ndarray:
    """x with ph rows and pw columns of ``fill`` on each side (x itself when there are none)."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
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
) -> Any:
    """Max over each window; padding counts as -inf (PyTorch's max_pool2d).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW)
    Windows are reduced in two passes, along their columns (every row) and then along their
    rows (far fewer operations than one pass per window element). ``return_choices`` also
    gives where each maximum was: ``cols`` (N, C, Hp, OW), the column in its window of the
    max of each row piece, and ``rows`` (N, C, OH, OW), the row of the window max. On ties
    both take the first, so the choice is the first maximum in row-major order, as PyTorch
    routes gradients (ties are common after ReLU: the gradient goes to one input only).
    """
    _check_4d(x, "max_pool2d")
    (kh, kw), (sh, sw), (ph, pw), oh, ow = pool_geometry(
        x.shape[2], x.shape[3], kernel_size, stride, padding
    )
    xp = padded(x, ph, pw, -np.inf)
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
