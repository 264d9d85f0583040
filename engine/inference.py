"""Model.predict's plan: the evaluation-mode forward pass when no backward pass follows, with
the blocks that only transform a convolution's (or an Add's) fresh output done inside it.

A block whose class names an ``epilogue`` makes a new output array and can finish it in place,
chunk by chunk while it is in cache (engine.conv_plan.epilogue), instead of the next blocks
each reading it and writing a new array:

- "affine": a BatchNorm on images, at inference out = x * scale + shift per channel from its
  running statistics (BatchNorm.inference_affine; Conv2D folds it into its weights or its
  output, whichever is fewer values);
- "relu": an Activation relu, max(x, 0) in the same array.

So a ResNet's Conv2D -> BatchNorm -> ReLU is one pass, and Add -> ReLU another. Nothing is kept
for backward (the layers' caches are not written), so Model.backward refuses to follow.

A block joins the one before it only where nobody else sees the value in between: the earlier
block's output has that block as its only reader, is not kept (``keep``, the explanations'
blocks) and is not an output. The plain forward pass (Model.forward) stays the reference:
tests/test_inference.py checks both give the same values, including after the weights and the
running statistics change (nothing here is cached but the plan's block ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.model import Model

# plan values: (affine block id or None, relu) for a block that runs the others; None for a
# block done inside the one before it (its output is that block's)
Step = tuple[str | None, bool] | None


def plan(model: Model, keep: tuple[str, ...] = ()) -> dict[str, Step]:
    """Which blocks run inside which (module docstring), for a predict that keeps ``keep``."""
    readers: dict[str, list[str]] = {n: [] for n in model.layers}
    for n, preds in model.inputs.items():
        for p in preds:
            readers[p].append(n)
    seen = {*keep, model.output_id, *model.heads}

    def only_reader(q: str) -> str | None:
        """The block that alone reads q's output, if nobody else sees that output."""
        if q in seen or len(readers[q]) != 1:
            return None
        r = readers[q][0]
        return r if model.inputs[r] == [q] else None

    steps: dict[str, Step] = {}
    for n, layer in model.layers.items():
        kinds = getattr(type(layer), "epilogue", ())
        if not kinds:
            continue
        affine, relu, inside = None, False, []
        r = only_reader(n)
        if r is not None and "affine" in kinds and _affine_of(model.layers[r]) is not None:
            affine, inside = r, [r]
            r = only_reader(r)
        if r is not None and "relu" in kinds and getattr(model.layers[r], "is_relu", False):
            relu, inside = True, [*inside, r]
        if inside:
            steps[n] = (affine, relu)
            steps.update(dict.fromkeys(inside))
    return steps


def _affine_of(layer: Any) -> tuple[np.ndarray, np.ndarray] | None:
    get = getattr(layer, "inference_affine", None)
    return None if get is None else get()


def run(model: Model, layer: Any, inputs: Any, step: tuple[str | None, bool]) -> np.ndarray:
    """``layer``'s output with the blocks of its ``step`` done inside it."""
    name, relu = step
    affine = None if name is None else _affine_of(model.layers[name])
    return layer.fused_forward(inputs, affine, relu)
