"""Conv2dPlan: the geometry, scratch arrays and matrix products of one 2-D cross-correlation
(engine.functional's conv2d / conv1d / conv_transpose2d and the convolution layers run on it).
The plain loops it must agree with: engine/reference/conv.py.

A convolution (the lectures' sliding dot product; strictly a cross-correlation, as in PyTorch:
out[f, y, x] = b[f] + sum_{c,i,j} w[f, c, i, j] * x[c, y*S + i, x*S + j]) is a matrix product
(CS231n's im2col), one per sample, batched in one ``np.matmul`` per chunk of the batch:

    cols (C*kh*kw, positions)  = every input patch laid out as a column
    out  (F, positions)        = weight.reshape(F, C*kh*kw) @ cols

Choices (measured on LeNet-5 with benchmarks/engine_vs_torch.py; numbers in benchmarks/NOTES.md):
- The padded input is copied once into a scratch array (N, C, R), R = one padded map flattened; the
  columns are then ONE copy from an ``as_strided`` view of it.
- Stride 1, "wide rows": each output row is computed for all Wp padded columns, not just the
  OW valid ones. The patch values for kernel offset (i, j) are then the contiguous run
  x_pad[n, c, i*Wp + j : i*Wp + j + OH*Wp], so columns are built (and their gradients added
  back) in long runs instead of rows of OW values. The extra columns are dropped from the
  output; their output gradient is zero, so they add nothing going back. For long rows
  (OW >= WIDE_FORWARD_BELOW) the unfolded forward pass and the weight gradient without an
  input gradient (the first layer) use the valid positions only: no copy to drop or pad
  columns, and runs of OW are long enough (LeNet-5's C1). The unfolded forward pass does so
  for many filters too (F >= WIDE_FORWARD_FILTERS: each extra column costs F products).
- Stride 1, "folded" (when it means fewer columns): shifts by kernel rows are made on the
  input and shifts by kernel columns on the other side of the product, so the columns are
  kh*kw / (kh + F*kw/C) times smaller and col2im needs kh additions instead of kh*kw.
- The batch is cut into chunks whose columns stay in cache while their product runs; the
  backward pass rebuilds them chunk by chunk.
- No threads of our own: sharing the chunks with a helper thread was slower (GIL hand-overs);
  the parallelism is two processes (engine/parallel.py). BLAS's threads inside a convolution
  (``plan_threads``) follow engine.blas_threads: one thread for products under 8 M
  multiply-adds, during a two-process split, and on a busy machine (there OpenBLAS's threads
  wait for each other: a ResNet-20 step took 15x longer, benchmarks/NOTES.md); one per free
  core for the large products of one-process runs (ResNet-18 inference at batch 1).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import blas_threads, elementwise
from engine.errors import ShapeError

Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right)


# Size of one chunk's columns: small enough to stay in a core's L2 cache while its product
# runs, and a bound on scratch memory.
CHUNK_BYTES = 1 << 20
# The forward pass of an unfolded stride-1 convolution uses wide rows only below this output
# width (see Conv2dPlan.forward).
WIDE_FORWARD_BELOW = 24
# ... and for fewer filters than this: the extra columns cost F products each, the copy of short
# runs does not grow with F (ResNet-18's 512 maps at 7x7, batch 1: 3.6 vs 2.6 ms; NOTES.md)
WIDE_FORWARD_FILTERS = 64


class _ScratchPool(threading.local):
    """One thread's scratch buffers by (kind, name, dtype), shared by every plan. A plan uses
    what it writes into one before its thread asks for that name again (the arrays plans hand
    out are fresh; what a plan keeps between calls is its own), so the layers of a net take
    turns with the same few buffers, which then stay in cache instead of each layer's own
    going cold (ResNet-18 at batch 1, two threads, idle machine: 23.8 -> 22.9 ms; NOTES.md).
    Per thread: the app may predict in one while a training run works in another."""

    def __init__(self) -> None:
        self.buffers: dict[tuple, np.ndarray] = {}


_pool = _ScratchPool()


def scratch(key: tuple, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A scratch array of ``shape`` from this thread's pool (``_ScratchPool``), valid until the
    thread's next request of ``key`` (a plan's (kind, name, dtype))."""
    size = math.prod(shape)  # not np.prod: its call overhead shows, ~40 calls a step
    buf = _pool.buffers.get(key)
    if buf is None or buf.size < size:
        buf = _pool.buffers[key] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def epilogue(
    out: np.ndarray, scale: np.ndarray | None, bias: np.ndarray | None, relu: bool
) -> None:
    """The end of a chunk's forward pass, in place on its output (m, F, OH, OW) while it is in
    cache: out * scale + bias per filter, then max(out, 0). Training adds only the bias; at
    inference a BatchNorm (scale, bias) and a ReLU after the convolution run here instead of
    as passes of their own (engine.inference)."""
    o3 = elementwise.maps(out)  # per-channel rows: engine.elementwise's faster loops
    if scale is not None:
        o3 *= elementwise.channel_rows(scale, out)
    if bias is not None:
        o3 += elementwise.channel_rows(bias, out)
    if relu:
        elementwise.relu(out, out=out)


def plan_threads(func):
    """Decorator: ``func(obj, ...)`` runs with NumPy's BLAS on the threads engine.blas_threads
    gives ``obj.product_macs`` (a plan's per-sample product, or a layer's of its last forward
    pass; module docstring)."""
    return blas_threads.by_size(lambda plan, *_: plan.product_macs)(func)


class Conv2dPlan:
    """Geometry and reusable scratch arrays of one 2-D cross-correlation.

    Shapes: x (N, C, H, W) * weight (F, C, kh, kw) -> out (N, F, OH, OW). A layer keeps one plan
    per input shape, so scratch arrays are allocated once; the arrays it hands out are always fresh.
    Everything is sample-major (N first), so each product is one batched ``np.matmul``: numpy
    runs the (F, C*kh*kw) @ (C*kh*kw, positions) product of every sample of a chunk in C.
    Per-sample products of a training batch are small enough that BLAS runs each on one thread:
    steady on a busy machine (one product per chunk can wait for a core) and a core left for
    the GUI; a large one (one image through a wide layer) may use the free cores
    (engine.blas_threads).
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
        # The folded weight is a transposed copy of the weight, made each call: for few
        # samples of a wide layer (ResNet-18's 512 channels at 7x7, batch 1: 2.4 M values
        # against 0.1 M saved) it costs more than the smaller columns save.
        saved = self.N * (self.K - self.C * self.kh - self.F * self.kw) * self.V
        self.folded = self.wide and saved > 0 and saved > self.F * self.K
        # Stride > 1 with overlapping windows: the input gradient by phases (see "stride > 1,
        # by phases" below); without overlap (1x1 stride 2) each position gets one value, and
        # one strided slice per kernel offset is cheaper than the phases' zeroing and copy.
        self.phased = not self.wide and (self.kh > self.sh or self.kw > self.sw)
        self.Hq, self.Wq = -(-self.Hp // self.sh), -(-self.Wp // self.sw)
        self.Pq = self.OH * self.Wq  # positions per sample, wide rows of Wq columns
        self.Rq = self.Hq * self.Wq + (self.kw - 1) // self.sw  # one phase flattened
        self._pg = self.kw - 1 if self.wide else 0  # zeros around each sample's out-gradient
        self._xpad: np.ndarray | None = None
        self._gpad: np.ndarray | None = None
        self._gq: np.ndarray | None = None
        self._scratch: dict[str, np.ndarray] = {}
        self._views: dict[tuple, np.ndarray] = {}  # window views of _xpad / _gpad (_windows)

    def _chunk(self, values_per_sample: int) -> list[tuple[int, int]]:
        """Sample ranges whose columns fit in CHUNK_BYTES (at least one sample each)."""
        size = max(1, min(self.N, CHUNK_BYTES // max(values_per_sample * self.dtype.itemsize, 1)))
        return [(n0, min(self.N, n0 + size)) for n0 in range(0, self.N, size)]

    def _scratch_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A scratch array of ``shape``, shared with the thread's other plans (``scratch``):
        valid until the next request of ``name``. What must last between calls (zeros written
        once) stays in the plan's own ``_scratch``."""
        return scratch(("conv", name, self.dtype), shape, self.dtype)

    def _windows(
        self,
        name: str,
        src: np.ndarray,
        n0: int,
        n1: int,
        shape: tuple[int, ...],
        strides: tuple[int, ...],
        samples_inside: bool = False,
    ) -> np.ndarray:
        """ONE copy of the overlapping windows ``as_strided(src[n0:n1], (m, *shape), strides)``
        (strides in elements) into the scratch array ``name`` (chunk-sized: it stays in cache).
        ``samples_inside``: laid out (*shape[:-1], m, shape[-1]) instead, so that the chunk's
        samples are one long run of columns (the folded backward's single products)."""
        m = n1 - n0
        # src is one of the plan's own scratch arrays, made once: so is the window view of a chunk
        # (as_strided is slow to call)
        key = (id(src), n0, n1, shape, strides, samples_inside)
        view = self._views.get(key)
        if view is None:
            e = src.itemsize
            view = as_strided(
                src[n0:n1], (m, *shape), tuple(st * e for st in strides), writeable=False
            )
            if samples_inside:
                view = np.moveaxis(view, 0, -2)
            self._views[key] = view
        out = self._scratch_array(name, view.shape)
        np.copyto(out, view)
        return out

    @property
    def product_macs(self) -> int:
        """Multiply-adds of one sample's product (F, C*kh*kw) @ (C*kh*kw, P)."""
        return self.F * self.K * self.P

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return self.N, self.F, self.OH, self.OW

    # --- input side ------------------------------------------------------------------------
    def load_input(self, x: np.ndarray) -> None:
        """Copy x into the zero-padded scratch array (N, C, R); the border stays zero."""
        if self._xpad is None:
            self._xpad = np.zeros((self.N, self.C, self.R), self.dtype)
        np.copyto(
            self._grid(self._xpad)[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W], x
        )

    def _grid(self, buf: np.ndarray) -> np.ndarray:
        """The (N, C, Hp, Wp) image view of a flat (N, C, R) scratch array."""
        return buf[:, :, : self.Hp * self.Wp].reshape(buf.shape[0], self.C, self.Hp, self.Wp)

    def columns(self, n0: int, n1: int, wide: bool | None = None) -> np.ndarray:
        """im2col of samples n0..n1: (m, C*kh*kw, P), row (c, i, j), column (oh, ow).
        ``wide=False`` leaves out the extra columns of wide rows: (m, C*kh*kw, OH*OW)."""
        ow = self.OWx if wide is None or wide else self.OW
        cols = self._windows(
            "cols",
            self._xpad,
            n0,
            n1,
            (self.C, self.kh, self.kw, self.OH, ow),
            (self.C * self.R, self.R, self.Wp, 1, self.sh * self.Wp, self.sw),
        )
        return cols.reshape(n1 - n0, self.K, self.OH * ow)

    def product(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a @ b (batched over samples) into a reusable scratch array, valid until the next call."""
        return np.matmul(
            a, b, out=self._scratch_array("product", (b.shape[0], a.shape[-2], b.shape[-1]))
        )

    @plan_threads
    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None,
        scale: np.ndarray | None = None,
        relu: bool = False,
    ) -> np.ndarray:
        """The convolution of x with w, plus b; ``scale`` and ``relu``: see ``epilogue``."""
        self.load_input(x)
        out = np.empty(self.out_shape, self.dtype)
        wm = w.reshape(self.F, self.K)
        wf = self.fold_forward_weight(w) if self.folded else None
        # Wide rows pay in the forward pass only for short rows: with the columns of the valid
        # positions, the product writes straight into out (no copy without the extra columns)
        # but the columns are copied in runs of OW, slow when OW is short.
        wide = self.wide and self.OW < WIDE_FORWARD_BELOW and self.F < WIDE_FORWARD_FILTERS
        for n0, n1 in self.fold_chunks if self.folded else self.chunks:
            m = n1 - n0
            if self.folded:  # computed with Wp - OW extra columns per row: dropped below
                res = self._forward_folded(wf, n0, n1)
            elif wide:
                res = self._scratch_array("result", (m, self.F, self.OH, self.OWx))
                np.matmul(wm, self.columns(n0, n1, True), out=res.reshape(m, self.F, -1))
            else:
                np.matmul(wm, self.columns(n0, n1, False), out=out[n0:n1].reshape(m, self.F, -1))
            # the copy without the extra columns, and the bias, while the chunk is in cache
            if self.folded or wide:
                np.copyto(out[n0:n1], res[..., : self.OW])
            epilogue(out[n0:n1], scale, b, relu)
        return out

    # --- gradient side ---------------------------------------------------------------------
    def load_output_grad(self, dout: np.ndarray) -> None:
        """dout (N, F, OH, OW) into (N, F, P + 2*pg) laid out like the positions: zero at the
        extra columns, and (stride 1) kw - 1 zeros before and after each sample's positions."""
        if self._gpad is None:
            self._gpad = np.zeros((self.N, self.F, self.P + 2 * self._pg), self.dtype)
        inner = self._gpad[:, :, self._pg : self._pg + self.P]
        np.copyto(inner.reshape(self.N, self.F, self.OH, self.OWx)[:, :, :, : self.OW], dout)
        if self.phased:  # and laid out over Wq columns for the input gradient by phases
            if self._gq is None:
                self._gq = np.zeros((self.N, self.F, self.OH, self.Wq), self.dtype)
            np.copyto(self._gq[..., : self.OW], dout)

    def output_grad(self, n0: int, n1: int) -> np.ndarray:
        """The loaded dout of samples n0..n1 as (m, F, P)."""
        return self._gpad[n0:n1, :, self._pg : self._pg + self.P]

    def input_grad_columns(self, wm: np.ndarray, n0: int, n1: int) -> np.ndarray:
        """W^T @ dout of samples n0..n1 (wm: the weight as (F, C*kh*kw)), the columns
        ``add_columns`` takes, in a scratch array: (m, C*kh*kw, P), rows (c, i, j); by phases
        (m, kh*kw*C, Rq), rows (i, j, c), each row's Pq positions then zeros (written once)."""
        if not self.phased:
            return self.product(wm.T, self.output_grad(n0, n1))
        m = n1 - n0
        y = self._scratch.get("phase_cols")
        if y is None or y.shape[0] < m:
            y = np.zeros((m, self.kh * self.kw * self.C, self.Rq), self.dtype)
            self._scratch["phase_cols"] = y
        y = y[:m]
        wt = wm.reshape(self.F, self.C, self.kh, self.kw).transpose(2, 3, 1, 0)
        wt = np.ascontiguousarray(wt).reshape(-1, self.F)
        g = self._gq[n0:n1].reshape(m, self.F, self.Pq)
        np.matmul(wt, g, out=y[:, :, : self.Pq])
        return y

    def output_grad_sum(self) -> np.ndarray:
        """dout summed over batch and positions (the bias gradient)."""
        # over samples first (whole rows added), then along each row: the faster order
        return self._gpad.sum(axis=0).sum(axis=1)

    def new_input_grad(self) -> np.ndarray:
        """A zeroed scratch gradient laid out like the padded input, (N, C, R), or by phases
        (N, sh*sw, C*Rq); reused between calls (``input_grad`` copies it out)."""
        if self.phased:
            shape = (self.N, self.sh * self.sw, self.C * self.Rq)
        else:
            shape = (self.N, self.C, self.R)
        dxpad = self._scratch_array("dxpad", shape)
        dxpad.fill(0)
        return dxpad

    def input_grad(self, dxpad: np.ndarray) -> np.ndarray:
        """dx (N, C, H, W), a new array, from ``new_input_grad``'s filled scratch gradient."""
        if not self.phased:
            return self.input_view(dxpad).copy()
        dx = np.empty((self.N, self.C, self.H, self.W), self.dtype)
        grids = dxpad.reshape(self.N, self.sh, self.sw, self.C, self.Rq)[..., : self.Hq * self.Wq]
        grids = grids.reshape(self.N, self.sh, self.sw, self.C, self.Hq, self.Wq)
        for p in range(self.sh):  # unpadded row h is padded row h + pt = sh * r + p
            h0 = (p - self.pt) % self.sh
            r0, nh = (h0 + self.pt) // self.sh, len(range(h0, self.H, self.sh))
            for q in range(self.sw):
                w0 = (q - self.pl) % self.sw
                k0, nw = (w0 + self.pl) // self.sw, len(range(w0, self.W, self.sw))
                np.copyto(
                    dx[:, :, h0 :: self.sh, w0 :: self.sw],
                    grids[:, p, q, :, r0 : r0 + nh, k0 : k0 + nw],
                )
        return dx

    def input_view(self, xpad: np.ndarray) -> np.ndarray:
        """The unpadded (N, C, H, W) view of a (N, C, R) scratch array."""
        return self._grid(xpad)[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W]

    def add_columns(self, dcols: np.ndarray, n0: int, n1: int, dxpad: np.ndarray) -> None:
        """col2im: add each column of ``input_grad_columns`` back where its patch came from
        (one slice per kernel offset; overlapping patches add up): at stride 1 a shift of the
        padded map (wide rows), one run per sample and channel; by phases a shift of one
        phase, one run per sample over all channels (below)."""
        m = n1 - n0
        if self.phased:
            y = dcols.reshape(m, self.kh * self.kw, -1)
            size = y.shape[2]
            for i in range(self.kh):
                for j in range(self.kw):
                    s = (i // self.sh) * self.Wq + j // self.sw
                    flat = dxpad[n0:n1, (i % self.sh) * self.sw + j % self.sw]
                    flat[:, s:] += y[:, i * self.kw + j, : size - s]
            return
        if not self.wide:
            # no overlap: each position of the zeroed gradient gets at most one value, so one
            # strided copy per offset (NumPy's copies into strided views are fast, its additions
            # are not)
            d = dcols.reshape(m, self.C, self.kh, self.kw, self.OH, self.OW)
            grid = self._grid(dxpad[n0:n1])
            hi, wi = self.sh * (self.OH - 1) + 1, self.sw * (self.OW - 1) + 1
            for i in range(self.kh):
                for j in range(self.kw):
                    np.copyto(grid[:, :, i : i + hi : self.sh, j : j + wi : self.sw], d[:, :, i, j])
            return
        d = dcols.reshape(m, self.C, self.kh, self.kw, self.P)
        for i in range(self.kh):
            for j in range(self.kw):
                s = i * self.Wp + j
                target = dxpad[n0:n1, :, s : s + self.P]
                target += d[:, :, i, j]

    # --- stride > 1, by phases -------------------------------------------------------------
    # Padded row sh*y + i (output row y, kernel row i) lies in row phase p = i % sh, at phase
    # row y + i // sh; columns alike. So the padded gradient is kept as sh*sw phase maps of
    # Hq x Wq (each flattened, Rq long, the channels one after another), and dout laid out over
    # Wq columns per row (zeros past OW: "wide rows" again): kernel offset (i, j)'s columns of
    # W^T @ dout are then added to phase (i % sh, j % sw) shifted by (i // sh) rows and
    # (j // sw) columns. With those columns laid out as the phase is (channel c's at c*Rq,
    # zeros past Pq), that is one contiguous run per sample over all channels instead of a
    # scatter to every sh-th row and sw-th column (measured in benchmarks/NOTES.md).

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

    def _forward_folded(self, wf: np.ndarray, n0: int, n1: int) -> np.ndarray:
        """sum_j (W'' @ X)[:, (j, f), q + j] for samples n0..n1, as a (m, F, OH, Wp) view of a
        scratch array. The sums run over each sample's (F, V) block flattened, shifted by j,
        so each is one contiguous run per sample (NumPy's arithmetic on strided views is 3-4x
        slower, NOTES.md "late evening"); what they add past a row's P positions is never read."""
        m = n1 - n0
        y = self.product(wf, self.shifted_inputs(n0, n1)).reshape(m, self.kw, self.F * self.V)
        acc = y[:, 0]  # sum into the j = 0 block, in place
        for j in range(1, self.kw):
            acc[:, : acc.shape[1] - j] += y[:, j, j:]
        return acc.reshape(m, self.F, self.V)[:, :, : self.P].reshape(m, self.F, self.OH, self.OWx)

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

    def shifted_inputs_cm(self, n0: int, n1: int) -> np.ndarray:
        """X above for samples n0..n1 as (C*kh, m*V): each row the chunk's samples one after
        another, so ``G @ X^T`` is one product over all of them (BLAS reads X^T as it is)."""
        x = self._windows(
            "rows_cm",
            self._xpad,
            n0,
            n1,
            (self.C, self.kh, self.V),
            (self.C * self.R, self.R, self.Wp, 1),
            samples_inside=True,
        )
        return x.reshape(self.C * self.kh, (n1 - n0) * self.V)

    def shifted_grads(self, n0: int, n1: int) -> np.ndarray:
        """G above for samples n0..n1, as (F*kw, m*V) (samples side by side, as
        ``shifted_inputs_cm``)."""
        width = self._gpad.shape[2]
        g = self._windows(
            "gcols",
            self._gpad,
            n0,
            n1,
            (self.F, self.kw, self.V),
            (self.F * width, width, 1, 1),
            samples_inside=True,
        )
        return g.reshape(self.F * self.kw, (n1 - n0) * self.V)

    def fold_weight(self, w: np.ndarray) -> np.ndarray:
        """W' (kh*C, F*kw) above."""
        flipped = w[:, :, :, ::-1].transpose(2, 1, 0, 3)
        return np.ascontiguousarray(flipped).reshape(self.kh * self.C, self.F * self.kw)

    def unfold_weight_grad(self, dwt: np.ndarray) -> np.ndarray:
        """dW from sum_n G @ X^T (F*kw, C*kh), back in the weight layout (F, C, kh, kw)."""
        d = dwt.reshape(self.F, self.kw, self.C, self.kh)[:, ::-1]
        return np.ascontiguousarray(d.transpose(0, 2, 3, 1))

    def input_grad_rows(self, wf: np.ndarray, g: np.ndarray) -> np.ndarray:
        """W' @ G for a chunk's G (``shifted_grads``, (F*kw, m*V)), one product per sample, into
        a scratch array laid out like the padded input, (m, kh*C, R): each (i, c) row's V
        values, then zeros to R (written once: the products never reach them)."""
        m = g.shape[1] // self.V
        y = self._scratch.get("rows_r")
        if y is None or y.shape[0] < m:
            y = self._scratch["rows_r"] = np.zeros((m, self.kh * self.C, self.R), self.dtype)
        y = y[:m]
        np.matmul(wf, g.reshape(-1, m, self.V).transpose(1, 0, 2), out=y[:, :, : self.V])
        return y

    def add_row_shifted(self, y: np.ndarray, n0: int, n1: int, dxpad: np.ndarray) -> None:
        """dxpad[n, c, i*Wp + v] += y[n, (i, c), v]: the kh row shifts of W' @ G. Row (i, c)
        lies in y at c*R + v of block i, in dxpad at c*R + i*Wp + v: so each shift is one
        contiguous run per sample over all channels (the zeros past V add nothing)."""
        m, size = n1 - n0, self.C * self.R
        y3 = y.reshape(m, self.kh, size)
        flat = dxpad[n0:n1].reshape(m, size)
        for i in range(self.kh):
            s = i * self.Wp
            flat[:, s:] += y3[:, i, : size - s]
