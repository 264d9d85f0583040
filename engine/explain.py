"""Why did the model say that? Maps of the evidence for one class on one input (lecture 001).

    cam         the class activation map (Zhou et al. 2016, lecture 001): for a graph ending
                GlobalAvgPool -> Dense, M_c(x, y) = sum_k w_k^c f_k(x, y), the dense weights of
                class c times the maps f_k that the global average pool reads; since the pool
                averages, the class score is mean(M_c) + b_c. Upsampled to the input.
    gradcam     Grad-CAM (Selvaraju et al. 2017) for any block with spatial output (default: the
                last convolution): the maps A_k weighted by the mean gradient of the score,
                alpha_k = mean(d S_c / d A_k), map = ReLU(sum_k alpha_k A_k). Upsampled.
    saliency    vanilla gradient (Simonyan et al. 2014): max over channels of |d S_c / d x|.
    smoothgrad  SmoothGrad (Smilkov et al. 2017): the saliency map averaged over n copies of the
                input with Gaussian noise (sigma: a fraction of the input's range).
    occlusion   occlusion sensitivity (Zeiler and Fergus 2014): a patch of ``fill`` slides over
                the input; each pixel gets the mean drop in S_c over the patches covering it.

S_c is the output block's value for class c (the logit when, as in the presets, the softmax is
in the loss). Every map is float32 at the input's size: (H, W) for images (C, H, W), (L,) for
sequences (C, L) or token ids (T,), (D,) for vectors. Upsampling is bilinear with PyTorch's
``align_corners=False`` convention (linear for 1-D maps).

Errors the user can cause (no convolutional block, CAM on a graph without GlobalAvgPool ->
Dense, an input of the wrong size, integer ids where a gradient is needed) raise ConfigError or
ShapeError with one line naming the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import ConfigError, ShapeError
from engine.model import Model

METHODS = ("cam", "gradcam", "saliency", "smoothgrad", "occlusion")
GRADIENT_METHODS = ("saliency", "smoothgrad")


@dataclass
class Explanation:
    """One map: ``map`` float32 at the input's size; ``coarse`` the map at the explained
    block's own resolution (CAM and Grad-CAM; else the same as ``map``)."""

    method: str
    cls: int
    map: np.ndarray
    scores: np.ndarray  # the output for the input, (classes,)
    block: str | None = None  # the block whose maps were used (CAM, Grad-CAM)
    coarse: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def shape_text(shape: Any) -> str:
    """A shape as messages write it: 1x28x28 (scalar for ())."""
    return "x".join(str(int(d)) for d in shape) if len(shape) else "scalar"


def map_shape(input_shape: tuple) -> tuple[int, ...]:
    """The size of a map for an input of ``input_shape`` (channels dropped)."""
    return tuple(int(d) for d in (input_shape[1:] if len(input_shape) >= 2 else input_shape))


def _check(model: Model, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if tuple(x.shape) != tuple(model.input_shape):
        raise ShapeError(
            f"the input is {shape_text(x.shape)} but the graph's Input takes "
            f"{shape_text(model.input_shape)}",
            block=model.input_id,
        )
    if len(model.output_shape) != 1:
        raise ConfigError(
            "explanations need a classifier, one score per class; this graph's output is "
            f"{shape_text(model.output_shape)}",
            block=model.output_id,
        )
    if reads_ids(model):
        if not np.all(np.isfinite(x)) or not np.array_equal(x, np.round(x)):
            raise ConfigError("the input must be integer token ids", block=model.input_id)
        return x.astype(np.int64)
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ConfigError("the input must be finite numbers", block=model.input_id)
    dtype = next(iter(model.params.values())).dtype if model.params else np.float32
    return x.astype(dtype, copy=False)


def reads_ids(model: Model) -> bool:
    """The Input feeds an Embedding: the data are integer ids (no input gradient)."""
    return any(
        preds == [model.input_id] and type(model.layers[n]).reads_ids
        for n, preds in model.inputs.items()
    )


def _class(model: Model, scores: np.ndarray, cls: int | None) -> int:
    n = int(model.output_shape[0])
    if cls is None:
        return int(np.argmax(scores))
    if not isinstance(cls, (int, np.integer)) or isinstance(cls, bool) or not 0 <= cls < n:
        raise ConfigError(f"class {cls!r} is not one of the output's classes 0..{n - 1}")
    return int(cls)


def _one_hot(scores: np.ndarray, cls: int) -> np.ndarray:
    d = np.zeros_like(scores)
    d[:, cls] = 1
    return d


# --- resizing ----------------------------------------------------------------------------------
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation weights, PyTorch's align_corners=False."""
    w = np.zeros((n_out, n_in), np.float64)
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, None)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    rows = np.arange(n_out)
    np.add.at(w, (rows, i0), 1 - lam)
    np.add.at(w, (rows, i1), lam)
    return w


def resize(m: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Bilinear (2-D) or linear (1-D) resize of map ``m`` to ``size``, as PyTorch's
    F.interpolate(mode='bilinear' / 'linear', align_corners=False)."""
    m = np.asarray(m, np.float64)
    if m.ndim == 1:
        return _interp_matrix(m.shape[0], size[-1]) @ m
    wh = _interp_matrix(m.shape[0], size[0])
    ww = _interp_matrix(m.shape[1], size[1])
    return wh @ m @ ww.T


def _to_input(model: Model, coarse: np.ndarray) -> np.ndarray:
    """A block-resolution map stretched over the input (images: H x W, sequences: L)."""
    target = map_shape(model.input_shape)
    if coarse.ndim != len(target):
        target = target[-coarse.ndim :]  # a 1-D map over a sequence input (T,) or (C, L)
    return resize(coarse, target).astype(np.float32)


# --- block choices -----------------------------------------------------------------------------
def spatial_blocks(model: Model) -> list[str]:
    """Blocks whose output is maps over positions ((C, H, W) or (C, L)) computed from the
    input, in order: what Grad-CAM may explain."""
    return [
        n
        for n, layer in model.layers.items()
        if n != model.input_id and layer.out_shape is not None and len(layer.out_shape) in (2, 3)
    ]


def conv_blocks(model: Model) -> list[str]:
    return [
        n
        for n in spatial_blocks(model)
        if getattr(type(model.layers[n]), "family", "") == "Convolution"
    ]


def default_block(model: Model) -> str:
    convs = conv_blocks(model)
    if not convs:
        raise ConfigError(
            "Grad-CAM needs a convolutional block; this graph has none (try saliency or "
            "occlusion, which work on any graph)"
        )
    return convs[-1]


def _check_block(model: Model, block: str | None) -> str:
    if block is None:
        return default_block(model)
    if block not in model.layers:
        raise ConfigError(f"there is no block '{block}' in the graph")
    if block not in spatial_blocks(model):
        shape = model.layers[block].out_shape or ()
        raise ConfigError(
            f"its output {shape_text(shape)} is not maps over positions (C x H x W or "
            "C x L): choose a convolutional block",
            block=block,
        )
    return block


def cam_blocks(model: Model) -> tuple[str, str, str]:
    """(maps block, global average pool, dense) of a graph ending GlobalAvgPool -> Dense."""
    out = model.output_id
    layer = model.layers[out]
    why = (
        "CAM needs the graph to end GlobalAvgPool2D -> Dense (the lecture's construction); "
        "use gradcam for other graphs"
    )
    if not type(layer).class_weights:
        raise ConfigError(f"{why}; the output is a {type(layer).type_name}", block=out)
    pool = model.inputs[out][0]
    if not getattr(type(model.layers[pool]), "global_average", False):
        raise ConfigError(
            f"{why}; the Dense reads block '{pool}' ({type(model.layers[pool]).type_name})",
            block=out,
        )
    return model.inputs[pool][0], pool, out


# --- the methods -------------------------------------------------------------------------------
def cam(model: Model, x: np.ndarray, cls: int | None = None) -> Explanation:
    maps_id, _, dense_id = cam_blocks(model)
    x = _check(model, x)
    scores = model.predict(x[None], keep=(maps_id,))
    f = model.kept[maps_id][0]  # (K, h, w) or (K, l)
    c = _class(model, scores[0], cls)
    w = model.layers[dense_id].params["weight"][c]  # (K,)
    coarse = np.tensordot(w, f, axes=(0, 0))
    return Explanation("cam", c, _to_input(model, coarse), scores[0], maps_id, coarse)


def gradcam(
    model: Model, x: np.ndarray, cls: int | None = None, block: str | None = None
) -> Explanation:
    block = _check_block(model, block)
    x = _check(model, x)
    scores = model.forward(x[None], keep=(block,))
    a = model.kept[block][0]
    c = _class(model, scores[0], cls)
    model.backward(_one_hot(scores, c), input_grad=False, keep=(block,), weights=False)
    g = model.kept_grads.get(block)
    if g is None:  # no path from this block to the output's gradient
        g = np.zeros((1, *a.shape), a.dtype)
    axes = tuple(range(1, a.ndim))
    alpha = g[0].mean(axis=axes)
    coarse = np.maximum(np.tensordot(alpha, a, axes=(0, 0)), 0)
    return Explanation("gradcam", c, _to_input(model, coarse), scores[0], block, coarse)


def input_gradient(model: Model, xs: np.ndarray, cls: int) -> np.ndarray:
    """d S_cls / d x for a batch ``xs`` (each sample's own score)."""
    if not np.issubdtype(xs.dtype, np.floating):
        raise ConfigError(
            "a gradient with respect to the input needs real-valued input, but this graph "
            "reads integer ids (an Embedding): use cam, gradcam or occlusion",
            block=model.input_id,
        )
    scores = model.forward(xs)
    dx = model.backward(_one_hot(scores, cls), input_grad=True, weights=False)
    if dx is None:
        raise ConfigError("no gradient reaches the input", block=model.input_id)
    return dx


def _channel_max(model: Model, g: np.ndarray) -> np.ndarray:
    """|g| (N, *input) -> (N, *map): the max over channels for images and sequences."""
    a = np.abs(g)
    return a.max(axis=1) if len(model.input_shape) >= 2 else a


def saliency(model: Model, x: np.ndarray, cls: int | None = None) -> Explanation:
    x = _check(model, x)
    scores = model.predict(x[None])
    c = _class(model, scores[0], cls)
    g = input_gradient(model, x[None], c)
    m = _channel_max(model, g)[0].astype(np.float32)
    return Explanation("saliency", c, m, scores[0], None, m)


def smoothgrad(
    model: Model,
    x: np.ndarray,
    cls: int | None = None,
    n: int = 25,
    noise: float = 0.15,
    seed: int = 0,
) -> Explanation:
    x = _check(model, x)
    scores = model.predict(x[None])
    c = _class(model, scores[0], cls)
    if not np.issubdtype(x.dtype, np.floating):
        input_gradient(model, x[None], c)  # raises the one-line error
    sigma = noise * float(x.max() - x.min() or 1.0)
    rng = np.random.default_rng(seed)
    total = np.zeros(map_shape(model.input_shape), np.float64)
    chunk = batch_for(model, 32)
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        xs = x[None] + rng.normal(0.0, sigma, (k, *x.shape)).astype(x.dtype)
        total += _channel_max(model, input_gradient(model, xs, c)).sum(axis=0)
    m = (total / n).astype(np.float32)
    settings = {"n": n, "noise": noise, "sigma": sigma}
    return Explanation("smoothgrad", c, m, scores[0], None, m, settings)


BATCH_BYTES = 256 * 1024**2  # what one batch of noisy or occluded copies may hold


def batch_for(model: Model, most: int) -> int:
    """How many copies of the input to run at once: at most ``most``, and few enough that
    their activations (about three float values per output value: outputs and caches) stay
    under BATCH_BYTES (a 224x224 ResNet-18 holds about 2.5 M values a sample: 8 at a time)."""
    per_sample = sum(int(np.prod(layer.out_shape or ())) for layer in model.layers.values())
    return int(max(1, min(most, BATCH_BYTES // max(1, 3 * 4 * per_sample))))


def _windows(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    if starts[-1] + patch < size:  # the last patch reaches the edge
        starts.append(size - patch)
    return starts


def occlusion(
    model: Model,
    x: np.ndarray,
    cls: int | None = None,
    patch: int | None = None,
    stride: int | None = None,
    fill: float = 0.0,
    batch: int | None = None,
) -> Explanation:
    x = _check(model, x)
    scores = model.predict(x[None])
    c = _class(model, scores[0], cls)
    base = float(scores[0, c])
    mshape = map_shape(model.input_shape)
    if patch is None:
        patch = max(1, round(min(mshape) / 8))
    if stride is None:
        stride = max(1, patch // 2)
    patch = min(int(patch), *mshape)
    if patch < 1 or stride < 1:
        raise ConfigError(f"the occlusion patch ({patch}) and stride ({stride}) must be >= 1")
    grids = [_windows(s, patch, stride) for s in mshape]
    positions = (
        [(i,) for i in grids[0]]
        if len(mshape) == 1
        else [(i, j) for i in grids[0] for j in grids[1]]
    )
    batch = batch or batch_for(model, 64)
    drop = np.zeros(mshape, np.float64)
    count = np.zeros(mshape, np.float64)
    # where a patch goes: the last len(mshape) axes (all channels at once)
    lead = (slice(None),) * (x.ndim - len(mshape))
    for start in range(0, len(positions), batch):
        chunk = positions[start : start + batch]
        xs = np.repeat(x[None], len(chunk), axis=0)
        for b, pos in enumerate(chunk):
            where = tuple(slice(p, p + patch) for p in pos)
            xs[(b, *lead, *where)] = fill
        out = model.predict(xs)[:, c]
        for b, pos in enumerate(chunk):
            where = tuple(slice(p, p + patch) for p in pos)
            drop[where] += base - float(out[b])
            count[where] += 1
    m = (drop / np.maximum(count, 1)).astype(np.float32)
    settings = {"patch": patch, "stride": stride, "fill": fill, "positions": len(positions)}
    return Explanation("occlusion", c, m, scores[0], None, m, settings)


def explain(
    model: Model,
    x: np.ndarray,
    method: str = "gradcam",
    cls: int | None = None,
    block: str | None = None,
    **settings: Any,
) -> Explanation:
    """The ``method`` map (one of METHODS) of class ``cls`` (default: the predicted one) for one
    sample ``x`` (no batch axis). ``block``: Grad-CAM's block (default the last convolution)."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if block is not None and method != "gradcam":
        raise ConfigError(f"a block is chosen for gradcam only, not for {method}")
    if method == "cam":
        return cam(model, x, cls)
    if method == "gradcam":
        return gradcam(model, x, cls, block)
    return {"saliency": saliency, "smoothgrad": smoothgrad, "occlusion": occlusion}[method](
        model, x, cls, **settings
    )


def top_classes(scores: np.ndarray, k: int = 3) -> list[int]:
    """The ``k`` highest-scoring classes, best first."""
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:k]]


def methods_for(model: Model) -> list[str]:
    """The methods that apply to ``model`` (for a menu)."""
    out = []
    try:
        cam_blocks(model)
        out.append("cam")
    except ConfigError:
        pass
    if conv_blocks(model):
        out.append("gradcam")
    if not reads_ids(model):
        out += ["saliency", "smoothgrad"]
    out.append("occlusion")
    return out
