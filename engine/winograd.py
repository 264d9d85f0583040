"""WinogradPlan: 3x3 stride-1 convolutions with Winograd's minimal filtering F(2x2, 3x3)
(Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks"). It computes what
engine.conv_plan.Conv2dPlan computes (and engine/reference/conv.py spells out) with 16
multiplies per 2x2 block of outputs per (filter, input map) instead of im2col's 36.

In one dimension, two outputs of a 3-tap correlation y[k] = sum_i g[i] d[k + i] from four inputs
d[0..3] take four multiplies, y = A^T [(G g) * (B^T d)], with

    B^T = [[1,  0, -1,  0],     G = [[  1,    0,    0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2,  1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2,  1/2],
           [0,  1,  0, -1]]          [  0,    0,    1]]

Nested in two dimensions, a 2x2 block of outputs Y from a 4x4 tile d of one input map is
Y = A^T [U * V] A, U = G g G^T (4x4, from the 3x3 kernel), V = B^T d B (4x4). Summed over input
maps the elementwise products become, for each of the 16 positions (a, b) of a tile, one matrix
product over channels:

    M[a, b] (F, T) = U[a, b] (F, C) @ V[a, b]^T (C, T)     T = tiles (samples x tile rows x cols)

so a convolution is: the input transform (additions only), 16 products, the output transform
(additions only). Tiles start every 2 pixels and overlap by 2; an odd output height or width
gets one more tile row / column, read from extra zero padding, and its extra outputs are dropped.

The input gradient of a stride-1 3x3 convolution is itself one (dx = dout, padded by 2 - p,
correlated with the weight flipped in both axes and with filters and maps swapped), so the same
plan type serves forward and backward.

Weight gradient: dW[f, c] = sum over tiles of the 3x3 correlation of the 4x4 input tile d with
the tile's 2x2 output gradient Y, which is F(3x3, 2x2). Swapping the roles of output and
kernel in y = A^T [(G g) * (B^T d)] (the transposition principle: sum_k y'_k y_k is symmetric
in y' and g) gives z = G^T [(A y') * (B^T d)], so with the same V = B^T d B as forward:

    S[a, b] (F, C) = (A Y A^T)[a, b] (F, T) @ V[a, b] (T, C)      dW = G^T S G

16 products summed over tiles (long, BLAS-friendly sums) instead of im2col's 9 over positions,
on (16 / 4) / 9 of the multiply-adds per output position.

Choices (the transforms are passes over memory, which cost more than the products here;
numbers in benchmarks/NOTES.md, "Winograd"):
- The padded input is stored split by row and column parity ("polyphase") with the channels
  last, so B's shifts by one tile column are shifts of one flat array by C elements, and B^T's
  rows are whole rows. The column pass runs over every phase column, one more per row than
  there are tiles; that junk column is dropped as the rows are copied out, in runs of TW * C
  values (with the samples' maps as the innermost axis the runs would be TW values, which
  NumPy copies slowly, so the junk would be carried through the products: 25 % more of them
  at 8x8 outputs; benchmarks/NOTES.md).
- V is laid out (tile, channel), BLAS reading it transposed in the forward products; the
  outputs and the output gradient's transform are (filter, tile), maps first, as the layers'
  arrays (no layout change on the way out).
- The output transform is one (4, 16) @ (16, tiles * F) product, then four interleaving copies.
- Used only where it measured faster than im2col (``pays``: layers of 32 maps or more with
  enough tiles; not ResNet-20's 16-map layers, nor one image of ResNet-18's late stages).
- Chunks of samples whose transformed tiles fit in a core's L2 cache; BLAS on one thread.
- A training forward pass keeps V, chunk by chunk, for the weight gradient (up to KEEP_BYTES).
Rounding: the transforms round in float32 too; results agree with im2col's to ~1e-6 of the
output's scale (tests/test_winograd.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import blas_threads
from engine.conv_plan import Pad4, epilogue, plan_threads, scratch

# G above: the kernel transform U = G g G^T.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
# A^T above, and A^T (x) A^T (Kronecker): the output transform of a whole tile, (4, 16).
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
AA = np.kron(AT, AT)
# The weight gradient's transforms (F(3x3, 2x2), "Weight gradient" in the module docstring):
# the 2x2 output-gradient tile's, A (x) A = AA^T (16, 4), and G^T (x) G^T (9, 16) back to 3x3.
GG = np.kron(G.T, G.T)
# G (x) G (16, 9): the kernel transform U = G g G^T of a whole 3x3 kernel at once.
GG_KERNEL = np.kron(G, G)
# Size of one chunk's transformed tiles (16 per tile per map): about a core's L2 cache
# (0.5-2 MiB ran alike; NOTES.md, "Winograd").
CHUNK_BYTES = 1 << 20
# A training forward pass keeps its input transform V (4-5x its input) for the weight
# gradient, which otherwise loads and transforms the input again, up to this size a layer:
# ResNet-20's 64-map layers at batch 32 (2.6 MB) forward +0.1 ms, weight gradient -0.6 ms;
# 64 maps at 32x32, batch 32 (36 MB, not kept) +1.5 ms (V written out to memory) and -2.4 ms,
# not worth 36 MB more a layer (benchmarks/NOTES.md).
KEEP_BYTES = 16 << 20


def applies(w_shape: tuple[int, ...], stride: tuple[int, int], pad: Pad4) -> bool:
    """Whether a (non-grouped) convolution is one this plan computes: a 3x3 kernel at stride 1
    with at most 2 zeros of padding on each side (so its input gradient is one too)."""
    return tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and max(pad) <= 2


# With BLAS on two threads or more (one image on an idle machine, engine.blas_threads) the
# products, which Winograd shrinks, run on every core but its transforms on one: it then pays
# only from this many maps (below).
WIDE_MAPS_THREADED = 128


def pays(c: int, f: int, tiles: int, threads: int = 1) -> bool:
    """Whether Winograd ran faster than im2col (CPU time, forward and backward of a Conv2D;
    benchmarks/NOTES.md "Winograd", "Issue 20, evening" and "late evening") for C input maps,
    F filters and ``tiles`` 2x2 output tiles in the batch: not for 16 maps (the transforms'
    passes over memory cost more than the multiplies they save: 32x32 maps, batch 32, 7.7 vs
    6.5 ms), for 32 maps with many tiles (16x16 maps, batch 8 / 32 / 64: 1.36 / 4.9-5.3 /
    10.7 vs 1.40 / 5.3-5.9 / 11.3 ms, since the contiguous input transform and the kept V),
    and enough tiles for the transformed kernel (16 C F values, read by every chunk's
    products): a few dozen up to 256 maps (one image of ResNet-18's 128 maps at 28x28: 2.14
    -> 1.36 ms, 256 at 14x14: 2.10 -> 1.50), hundreds beyond (512 maps at 7x7 lost 2x with
    one image, 1.3x with four). ``threads``: BLAS's for the products; from two, only
    WIDE_MAPS_THREADED maps and up (ResNet-18's 64 maps at 56x56, one image, wall ms:
    im2col 1.39 vs Winograd 1.75 on two threads, 2.27 vs 1.68 on one; NOTES.md)."""
    if threads > 1 and min(c, f) < WIDE_MAPS_THREADED:
        return False
    if min(c, f) < 64:
        return min(c, f) >= 32 and tiles >= 512
    return tiles >= 512 or (tiles >= 48 and max(c, f) <= 256)


def tile_count(h: int, w: int, pad: Pad4) -> int:
    """2x2 output tiles of one h x w image padded by ``pad`` (the 3x3 output is h + pt + pb - 2
    rows by w + pl + pr - 2 columns)."""
    return -(-(h + pad[0] + pad[1] - 2) // 2) * -(-(w + pad[2] + pad[3] - 2) // 2)


def kept_bytes_bound(c: int, f: int, h: int, w: int, pad: Pad4, itemsize: int = 4) -> int:
    """The most a training forward pass of an ``applies`` convolution (C maps in, F out, an
    h x w input) keeps of its input transform V for the weight gradient, for the memory
    estimate (engine.memory): KEEP_BYTES where Winograd may run and one image's V fits under
    it (the batch's V is kept only up to KEEP_BYTES), else 0. From ``pays``' fewest maps, not
    its tile counts, which depend on the batch: an upper bound."""
    if min(c, f) < 32:
        return 0
    return KEEP_BYTES if 16 * c * tile_count(h, w, pad) * itemsize <= KEEP_BYTES else 0


def choose(cache: dict, x, w, stride: tuple[int, int], pad: Pad4) -> WinogradConv | None:
    """A layer's Winograd convolution for input x and weight w where it applies and pays, one
    per input shape kept in the layer's ``cache``; else None (the layer's im2col plan)."""
    if not applies(w.shape, stride, pad):
        return None
    n, c, h, wd = x.shape
    tiles = n * tile_count(h, wd, pad)
    if not pays(c, w.shape[0], tiles):
        return None
    key = (x.shape, x.dtype)
    if key not in cache:
        if len(cache) >= 4:  # a few batch sizes, as the layer's plans
            cache.clear()
        cache[key] = WinogradConv(x.shape, w.shape[0], pad, x.dtype)
    conv = cache[key]
    threads = blas_threads.threads_for(conv.product_macs)  # the machine's now: may change
    return conv if threads == 1 or pays(c, w.shape[0], tiles, threads) else None


# A channels-last copy reads every map of a sample at once: where the maps lie a multiple of
# 4 KiB apart (32x32 float32 maps) those reads all fall in one cache set, and the copy ran 3x
# slower (64 maps: 0.092 ms a sample). The input is then first copied maps first into rows one
# value longer (0.029 ms with that copy; NOTES.md)
ALIGNED_MAPS = 4096


def kernel_transform(w: np.ndarray, flip: bool = False) -> np.ndarray:
    """U = G g G^T for every (filter, map): w (F, C, 3, 3) -> (16, F, C), row a*4 + b.
    ``flip``: U of ``flipped(w)`` instead, (16, C, F) (the input gradient's kernel)."""
    f, c = w.shape[:2]
    # U[a*4 + b] = sum_(i, j) G[a, i] G[b, j] g[i, j]: one (16, 9) @ (9, F*C) product (the
    # weights read transposed by BLAS, no copy). g turned 180 degrees is g's 9 values in
    # reverse order, so the flipped kernel's U takes the product's columns reversed.
    gg = GG_KERNEL[:, ::-1] if flip else GG_KERNEL
    u = np.matmul(gg, np.ascontiguousarray(w).reshape(f * c, 9).T).reshape(16, f, c)
    return np.ascontiguousarray(u.transpose(0, 2, 1)) if flip else u


class WinogradPlan:
    """Geometry and reusable scratch arrays of one 3x3 stride-1 cross-correlation, F(2x2, 3x3).

    Shapes: x (N, C, H, W) * weight (F, C, 3, 3) -> out (N, F, H + pt + pb - 2, W + pl + pr - 2).
    """

    def __init__(self, x_shape: tuple[int, ...], f: int, pad: Pad4, dtype: Any = np.float32):
        self.N, self.C, self.H, self.W = (int(d) for d in x_shape)
        self.F = int(f)
        self.pt, self.pb, self.pl, self.pr = pad
        self.OH = self.H + self.pt + self.pb - 2
        self.OW = self.W + self.pl + self.pr - 2
        self.TH, self.TW = -(-self.OH // 2), -(-self.OW // 2)  # tile rows and columns
        # the padded input the tiles are read from: 2 * tiles + 2 rows and columns
        self.Hq, self.Wq = 2 * self.TH + 2, 2 * self.TW + 2
        # phase columns per row: one more than the tiles (module docstring)
        self.TX = self.TW + 1
        self.dtype = np.dtype(dtype)
        per_sample = 16 * max(self.C, self.F) * self.TH * self.TX * self.dtype.itemsize
        size = max(1, min(self.N, CHUNK_BYTES // per_sample))
        self.chunks = [(n0, min(self.N, n0 + size)) for n0 in range(0, self.N, size)]
        self._xpad: np.ndarray | None = None
        self._scratch: dict[str, np.ndarray] = {}

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return self.N, self.F, self.OH, self.OW

    def _scratch_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Shared with the thread's other plans (engine.conv_plan.scratch); the kept V
        (``kept_transforms``) is the plan's own."""
        return scratch(("winograd", name, self.dtype), shape, self.dtype)

    def load_input(self, x: np.ndarray) -> None:
        """x into the zero-padded scratch array, split by row and column parity ("polyphase"),
        channels last: xd[p, n, q, t, k, c] = xpad[n, c, 2t + q, 2k + p], (2, N, 2, TH + 1,
        TW + 1, C). A tile's columns are then shifts of one contiguous array by C elements, its
        rows by whole rows, not every other value (NOTES.md, "Winograd")."""
        m = x.shape[0]  # a chunk of samples, copied just before its transform (in cache)
        if self._xpad is None:
            size = self.chunks[0][1]
            self._xpad = np.zeros((2, size, 2, self.TH + 1, self.TX, self.C), self.dtype)
        if abs(x.strides[1]) % ALIGNED_MAPS == 0:  # (ALIGNED_MAPS above)
            rows = self._scratch_array("unaligned", (m, self.C, self.H, self.W + 1))[..., : self.W]
            np.copyto(rows, x)
            x = rows
        xt = x.transpose(0, 2, 3, 1)
        for q in range(2):
            h0 = (q - self.pt) % 2  # first input row landing in row phase q
            t0 = (self.pt + h0) // 2
            nh = len(range(h0, self.H, 2))
            for p in range(2):
                w0 = (p - self.pl) % 2
                k0 = (self.pl + w0) // 2
                nw = len(range(w0, self.W, 2))
                np.copyto(self._xpad[p, :m, q, t0 : t0 + nh, k0 : k0 + nw], xt[:, h0::2, w0::2])

    def input_transform(self, m: int, out: np.ndarray | None = None) -> np.ndarray:
        """V = B^T d B of every tile of the m loaded samples: (16, m * TH * TW, C), into
        ``out`` if given, else a scratch array."""
        th, tw, tx, c = self.TH, self.TW, self.TX, self.C
        # B on the columns: tile column j of tile u is padded column 2u + j, phase j % 2 at
        # u + j // 2: the phase's array shifted by (j // 2) * C (the last phase column of each
        # row, and the array's last C values, are junk: dropped by the row pass)
        size = m * 2 * (th + 1) * tx * c
        x = self._xpad[:, :m].reshape(2, size)
        cols = self._scratch_array("cols", (4, size))
        col = [x[j % 2, (j // 2) * c : size - c + (j // 2) * c] for j in range(4)]
        np.subtract(col[0], col[2], out=cols[0, :-c])
        np.add(col[1], col[2], out=cols[1, :-c])
        np.subtract(col[2], col[1], out=cols[2, :-c])
        np.subtract(col[1], col[3], out=cols[3, :-c])
        # B^T on the rows (row i: phase i % 2, shifted by i // 2 rows). The rows are first
        # copied out without the junk column, already in the (b, m, TH, TW, C) layout of the
        # products, so the additions run over whole contiguous arrays: NumPy's arithmetic on
        # strided views ran 3-4x slower than on contiguous ones, its copies did not (NOTES.md,
        # "late evening")
        c6 = cols.reshape(4, m, 2, th + 1, tx, c)
        r = self._scratch_array("rows", (4, 4, m, th, tw, c))
        for i in range(4):
            np.copyto(r[i], c6[:, :, i % 2, i // 2 : i // 2 + th, :tw])
        v = self._scratch_array("v", r.shape) if out is None else out.reshape(r.shape)
        rf, vf = r.reshape(4, -1), v.reshape(4, -1)
        np.subtract(rf[0], rf[2], out=vf[0])
        np.add(rf[1], rf[2], out=vf[1])
        np.subtract(rf[2], rf[1], out=vf[2])
        np.subtract(rf[1], rf[3], out=vf[3])
        return v.reshape(16, m * th * tw, c)

    def output_transform(self, mm: np.ndarray, out: np.ndarray) -> None:
        """out (m, F, 2 TH, 2 TW) = A^T M A of every tile; mm (16, F, m * TH * TW)."""
        m = out.shape[0]
        # all 4 outputs of a tile at once: y[(i, j)] = sum_(a, b) A^T[i, a] A^T[j, b] M[(a, b)],
        # one (4, 16) @ (16, F m TH TW) product (fewer passes over M than additions)
        y = self._scratch_array("y", (4, self.F * m * self.TH * self.TW))
        np.matmul(AA, mm.reshape(16, -1), out=y)
        # interleaved: out[n, f, 2t + i, 2u + j] = y[(i, j), f, n, t, u]; four copies, one per
        # (i, j), ran 3x faster than one 6-axis copy
        y6 = y.reshape(2, 2, self.F, m, self.TH, self.TW)
        o6 = out.reshape(m, self.F, self.TH, 2, self.TW, 2)
        for i in range(2):
            for j in range(2):
                np.copyto(o6[:, :, :, i, :, j].transpose(1, 0, 2, 3), y6[i, j])

    def output_grad_transform(self, dout: np.ndarray) -> np.ndarray:
        """A Y A^T of every 2x2 tile Y of dout (m, F, OH, OW): (16, F, m * TH * TW), tiles in
        input_transform's order; zero for the rows / columns past an odd output size, so those
        tiles add nothing to the sums."""
        m = dout.shape[0]
        th, tw = self.TH, self.TW
        gq = self._scratch_array("gq", (2, 2, self.F, m, th, tw))
        for i in range(2):
            nt = len(range(i, self.OH, 2))
            for j in range(2):
                nu = len(range(j, self.OW, 2))
                g = gq[i, j]
                np.copyto(g[:, :, :nt, :nu].transpose(1, 0, 2, 3), dout[:, :, i::2, j::2])
                g[:, :, nt:] = 0
                g[:, :, :nt, nu:] = 0
        ug = self._scratch_array("ug", (16, self.F * m * th * tw))
        np.matmul(AA.T, gq.reshape(4, -1), out=ug)
        return ug.reshape(16, self.F, m * th * tw)

    @plan_threads
    def weight_grad(
        self, x: np.ndarray, dout: np.ndarray, kept: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """dW (F, C, 3, 3) of the convolution of x (N, C, H, W) giving dout (N, F, OH, OW);
        ``kept``: x's input transform per chunk, as ``forward(keep=...)`` left it."""
        s = np.zeros((16, self.F, self.C), self.dtype)
        for k, (n0, n1) in enumerate(self.chunks):
            if kept is not None:
                v = kept[k]
            else:
                self.load_input(x[n0:n1])
                v = self.input_transform(n1 - n0)
            ug = self.output_grad_transform(dout[n0:n1])
            s += np.matmul(ug, v, out=self._scratch_array("s", s.shape))
        dw = np.matmul(GG, s.reshape(16, -1)).reshape(3, 3, self.F, self.C)
        return np.ascontiguousarray(dw.transpose(2, 3, 0, 1))

    @property
    def product_macs(self) -> int:
        """Multiply-adds of one of the 16 products of a chunk (BLAS's threads follow it); of
        all 16 when the batch is one chunk (one image at inference): one np.matmul call runs
        them back to back, so BLAS's threads are woken once, not for each (ResNet-18 inference
        on an idle machine: 27.8 -> 25.6 ms, NOTES.md "Issue 20, evening")."""
        n0, n1 = self.chunks[0]
        one = self.F * self.C * (n1 - n0) * self.TH * self.TW
        return 16 * one if len(self.chunks) == 1 else one

    @property
    def transform_bytes(self) -> int:
        """Bytes of the whole batch's input transform V."""
        return 16 * self.C * self.N * self.TH * self.TW * self.dtype.itemsize

    def kept_transforms(self) -> list[np.ndarray]:
        """Arrays (one per chunk, made once) a forward pass can leave V in (``keep``)."""
        kept = self._scratch.get("kept")
        if kept is None:
            kept = self._scratch["kept"] = [
                np.empty((16, (n1 - n0) * self.TH * self.TW, self.C), self.dtype)
                for n0, n1 in self.chunks
            ]
        return kept

    @plan_threads
    def forward(
        self,
        x: np.ndarray,
        u: np.ndarray,
        b: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        relu: bool = False,
        keep: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The convolution of x with the transformed kernel u (``kernel_transform``), plus b;
        ``scale`` and ``relu``: engine.conv_plan.epilogue; ``keep`` (``kept_transforms``):
        each chunk's V is left there for ``weight_grad``."""
        out = np.empty(self.out_shape, self.dtype)
        even = self.OH == 2 * self.TH and self.OW == 2 * self.TW
        for k, (n0, n1) in enumerate(self.chunks):
            m = n1 - n0
            self.load_input(x[n0:n1])
            v = self.input_transform(m, None if keep is None else keep[k])
            mm = self._scratch_array("m", (16, self.F, v.shape[1]))
            # the 16 products over channels (V read transposed by BLAS, no copy)
            np.matmul(u, v.transpose(0, 2, 1), out=mm)
            if even:
                self.output_transform(mm, out[n0:n1])
            else:  # the extra tile row / column's outputs are dropped
                full = self._scratch_array("full", (m, self.F, 2 * self.TH, 2 * self.TW))
                self.output_transform(mm, full)
                np.copyto(out[n0:n1], full[:, :, : self.OH, : self.OW])
            epilogue(out[n0:n1], scale, b, relu)
        return out


class WinogradConv:
    """A layer's Winograd convolution: the forward plan (which also gives the weight gradient),
    and the input gradient's plan made on first use (the same convolution run on dout with
    ``flipped`` weights).

    Shapes: as WinogradPlan; input_grad: dout (N, F, OH, OW) -> dx (N, C, H, W); weight_grad:
    x, dout -> dW (F, C, 3, 3).
    """

    def __init__(self, x_shape: tuple[int, ...], f: int, pad: Pad4, dtype: Any = np.float32):
        self.plan = WinogradPlan(x_shape, f, pad, dtype)
        self._grad_plan: WinogradPlan | None = None
        self._kept: list[np.ndarray] | None = None  # V of the last training forward pass

    @property
    def product_macs(self) -> int:
        return self.plan.product_macs

    # The kernel transforms run inside the plan's BLAS thread setting (plan_threads): their
    # (16, 9) @ (9, F*C) product is large enough for OpenBLAS to wake its threads, which on a
    # busy machine wait for each other (ResNet-20's stage 3: 22.7 -> 43.3 ms a step without).
    @plan_threads
    def forward(
        self,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None,
        scale: np.ndarray | None = None,
        relu: bool = False,
        training: bool = False,
    ) -> np.ndarray:
        """``training``: V is kept for ``weight_grad`` (up to KEEP_BYTES)."""
        keep = training and self.plan.transform_bytes <= KEEP_BYTES
        self._kept = self.plan.kept_transforms() if keep else None
        # the kernel transform is cheap (16 F C values): made each call, so an in-place
        # weight update is always seen
        return self.plan.forward(x, kernel_transform(w), b, scale, relu, self._kept)

    @plan_threads
    def input_grad(self, dout: np.ndarray, w: np.ndarray) -> np.ndarray:
        p = self.plan
        if self._grad_plan is None:
            pt, pb, pl, pr = p.pt, p.pb, p.pl, p.pr
            self._grad_plan = WinogradPlan(
                (p.N, p.F, p.OH, p.OW), p.C, (2 - pt, 2 - pb, 2 - pl, 2 - pr), p.dtype
            )
        return self._grad_plan.forward(dout, kernel_transform(w, flip=True))

    def weight_grad(self, x: np.ndarray, dout: np.ndarray) -> np.ndarray:
        """dW (F, C, 3, 3) from the layer's input x (the last forward pass's) and dout
        (WinogradPlan.weight_grad), on the V that pass kept if it was a training one."""
        return self.plan.weight_grad(x, dout, self._kept)


def flipped(w: np.ndarray) -> np.ndarray:
    """w (F, C, 3, 3) turned 180 degrees with filters and maps swapped: (C, F, 3, 3)."""
    return w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
