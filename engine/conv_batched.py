"""BatchFoldedPlan: a stride-1 convolution computed "folded" (engine.conv_plan) with the batch
laid out along the columns, so each chunk of samples is ONE long matrix product.

engine.conv_plan.Conv2dPlan keeps arrays sample-major (N, C, positions) and runs one small
product per sample: (3F, 3C) @ (3C, ~P) for a 3x3 kernel. For the few channels of a CIFAR net
these products are thin (16 channels: K = 48), and OpenBLAS runs them at a third of the speed
it reaches on one long product of the same shape (benchmarks/NOTES.md). Here the arrays are
channel-major, the batch inside: the padded input is (C, N, R), R = Hp * Wp one padded map, and
the same sums as the "folded" layout (see Conv2dPlan) become, for a chunk of m samples,

    X[(c, i), (n, v)]  = xpad[c, n, v + i*Wp]              (C*kh, m*V),  V = OH*Wp + kw - 1
    Y = W'' @ X                                             (kw*F, m*V)
    out[n, f, oh, ow]  = sum_j Y[(j, f), (n, oh*Wp + ow + j)]
    G[(f, j'), (n, v)] = dout_pad[f, n, v + j']             (F*kw, m*V)
    dW += G @ X^T,   Z = W' @ G,   dxpad[c, n, i*Wp + v] += Z[(i, c), (n, v)]

(W'', W' and the shifts as in Conv2dPlan's "stride 1, folded"). The readable sums it must
agree with: engine/reference/conv.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.conv_plan import Conv2dPlan, one_blas_thread

# Columns of one chunk: long products need a few thousand columns to run at full speed, and a
# chunk's columns should stay in a core's cache (benchmarks/NOTES.md).
BATCH_CHUNK_BYTES = 2 << 20


class BatchFoldedPlan(Conv2dPlan):
    """Conv2dPlan's geometry, computed with the batch along the columns (module docstring).
    For stride 1 only; ``forward`` and ``backward`` replace the sample-major ones."""

    batch_folded = True

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if not self.wide:
            raise ValueError("BatchFoldedPlan is for stride 1")
        self.Rb = self.Hp * self.Wp  # one padded map
        self.Wg = self.P + 2 * self._pg  # one sample's padded output gradient
        per_sample = max(self.C * self.kh, self.F * self.kw) * self.V * self.dtype.itemsize
        size = max(1, min(self.N, BATCH_CHUNK_BYTES // max(per_sample, 1)))
        self.bchunks = [(n0, min(self.N, n0 + size)) for n0 in range(0, self.N, size)]
        self._xb: np.ndarray | None = None
        self._gb: np.ndarray | None = None

    # --- layout ------------------------------------------------------------------------------
    def _load_input_batch(self, x: np.ndarray) -> None:
        """x (N, C, H, W) into the zero-padded (C, N*Rb + tail) array (the border stays 0)."""
        if self._xb is None:  # tail: the last sample's windows read kw - 1 values past its map
            self._xb = np.zeros((self.C, self.N * self.Rb + self.kw - 1), self.dtype)
        grid = self._xb[:, : self.N * self.Rb].reshape(self.C, self.N, self.Hp, self.Wp)
        np.copyto(
            grid[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W],
            x.transpose(1, 0, 2, 3),
        )

    def _rows(self, n0: int, n1: int) -> np.ndarray:
        """X above for samples n0..n1: (C*kh, m*V), in a chunk-sized scratch array."""
        m = n1 - n0
        e = self.dtype.itemsize
        src = self._xb[:, n0 * self.Rb :]
        view = as_strided(
            src,
            (self.C, self.kh, m, self.V),
            (src.strides[0], self.Wp * e, self.Rb * e, e),
            writeable=False,
        )
        out = self._scratch_array("brows", (self.C, self.kh, m, self.V))
        np.copyto(out, view)
        return out.reshape(self.C * self.kh, m * self.V)

    def _grad_rows(self, n0: int, n1: int) -> np.ndarray:
        """G above for samples n0..n1: (F*kw, m*V)."""
        m = n1 - n0
        e = self.dtype.itemsize
        src = self._gb[:, n0:n1]
        view = as_strided(
            src,
            (self.F, self.kw, m, self.V),
            (src.strides[0], e, self.Wg * e, e),
            writeable=False,
        )
        out = self._scratch_array("bgrads", (self.F, self.kw, m, self.V))
        np.copyto(out, view)
        return out.reshape(self.F * self.kw, m * self.V)

    def _valid(self, a: np.ndarray, m: int, shift: int) -> np.ndarray:
        """The (F', m, OH, OW) valid outputs of a (F', m*V) array of columns, shifted by
        ``shift`` columns."""
        b = a.reshape(a.shape[0], m, self.V)[:, :, shift : shift + self.P]
        return b.reshape(a.shape[0], m, self.OH, self.Wp)[..., : self.OW]

    # --- forward -----------------------------------------------------------------------------
    @one_blas_thread
    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        self._load_input_batch(x)
        out = np.empty(self.out_shape, self.dtype)
        wf = self.fold_forward_weight(w)  # (kw*F, C*kh)
        for n0, n1 in self.bchunks:
            m = n1 - n0
            y = self._scratch_array("by", (wf.shape[0], m * self.V))
            yj = np.matmul(wf, self._rows(n0, n1), out=y).reshape(self.kw, self.F, m * self.V)
            target = out[n0:n1].transpose(1, 0, 2, 3)  # (F, m, OH, OW), written in place
            np.copyto(target, self._valid(yj[0], m, 0))
            for j in range(1, self.kw):
                target += self._valid(yj[j], m, j)
            if b is not None:
                target += b.reshape(-1, 1, 1, 1)
        return out

    # --- backward ----------------------------------------------------------------------------
    @one_blas_thread
    def backward(
        self, dout: np.ndarray, w: np.ndarray, input_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(dW (F, C, kh, kw), dx (N, C, H, W) or None) for the input of the last forward."""
        if self._gb is None:
            self._gb = np.zeros((self.F, self.N, self.Wg), self.dtype)
        inner = self._gb[:, :, self._pg : self._pg + self.P]
        np.copyto(
            inner.reshape(self.F, self.N, self.OH, self.Wp)[..., : self.OW],
            dout.transpose(1, 0, 2, 3),
        )
        dwt = np.zeros((self.F * self.kw, self.C * self.kh), self.dtype)
        wb = self.fold_weight(w) if input_grad else None  # (kh*C, F*kw)
        dxb = None
        if input_grad:  # (C, N, Rb + kw - 1): a sample's last windows reach kw - 1 past its map
            dxb = self._scratch_array("bdx", (self.C, self.N, self.Rb + self.kw - 1))
            dxb.fill(0)
        for n0, n1 in self.bchunks:
            m = n1 - n0
            g = self._grad_rows(n0, n1)
            dwt += np.matmul(g, self._rows(n0, n1).T)
            if dxb is not None:
                z = np.matmul(wb, g, out=self._scratch_array("bz", (wb.shape[0], m * self.V)))
                z = z.reshape(self.kh, self.C, m, self.V)
                for i in range(self.kh):
                    dxb[:, n0:n1, i * self.Wp : i * self.Wp + self.V] += z[i]
        dw = self.unfold_weight_grad(dwt)
        if dxb is None:
            return dw, None
        grid = dxb[:, :, : self.Rb].reshape(self.C, self.N, self.Hp, self.Wp)
        dx = np.empty((self.N, self.C, self.H, self.W), self.dtype)
        np.copyto(
            dx.transpose(1, 0, 2, 3),
            grid[:, :, self.pt : self.pt + self.H, self.pl : self.pl + self.W],
        )
        return dw, dx
