"""How much memory a graph needs to train, or to run (inference), at a given batch size.

``engine.analyze`` asks ``block_cost`` for every block and refuses a graph whose total is over
the limit (half the machine's RAM) before anything is allocated. Each block costs a fixed part
(its parameters and the scratch buffers its layer keeps) and a part per sample (its output and
what is kept of it), so the batch that fits is known, and the message can name it:

    total(batch) = sum of fixed + batch * sum of per-sample

Measured peaks against the estimate (engine as of 2026-12-06, one training step or one
forward pass): VGG-16 (138 million parameters) inference at batch 2 1.5 GB (estimate 2.3),
training at 64x64 input 1.25 GB at batch 8 (1.55) and 1.57 at 32 (2.47); the inception preset at
batch 512 0.73 GB (0.79); LeNet-5 at 512 66 MB (135); LSTM and GRU (T = 200, hidden 512) at 64
0.72 and 0.83 GB (0.99, 0.98). The estimate errs on the high side on purpose: refusing a run
that would have fitted is a message, running out of memory is a frozen machine.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

BYTES = 4  # float32
# Training keeps each parameter about six times: the value, its gradient, two Adam moments and
# the optimizer's temporaries. Inference keeps it once.
TRAIN_PARAM_COPIES = 6
# Per sample, training keeps a block's output, what backward needs of it and its gradient;
# inference the output and the layer's padded or cached copy of it.
TRAIN_ACTIVATION_COPIES = 3
INFER_ACTIVATION_COPIES = 2
# Weights are drawn in float64 and cast: the largest block briefly needs 8 more bytes a value.
INIT_BYTES = 8
DEFAULT_BATCH_SIZE = 32  # engine.Trainer's default batch size
STEP_VALUES = 12  # a recurrent block's values per time step and hidden unit (state_values)


class Cost(NamedTuple):
    """Bytes of one block (or a graph): ``fixed`` whatever the batch, ``per_sample`` times it."""

    fixed: int
    per_sample: int

    def at(self, batch_size: int) -> int:
        return self.fixed + self.per_sample * batch_size


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def default_memory_limit() -> int:
    """Half the machine's RAM (8 GiB assumed when unknown): more and the machine would swap."""
    ram = physical_memory()
    return (ram if ram else 8 * 1024**3) // 2


def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"


def run_batch_size(training: Any, batch_size: int | None = None) -> int:
    """The batch a run will use: ``batch_size`` if given, else the graph's ``training``
    settings' one, else the Trainer's default (a bad setting is check_training's to report)."""
    from engine.training_spec import TRAINING_OPTIONS

    opt = TRAINING_OPTIONS["batch_size"]
    if batch_size is None and isinstance(training, dict):
        batch_size = training.get("batch_size")
    if isinstance(batch_size, float) and batch_size.is_integer():
        batch_size = int(batch_size)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool):
        return opt.default
    return batch_size if opt.min <= batch_size <= opt.max else opt.default


def _ints(shape: Any) -> tuple[int, ...] | None:
    if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape):
        return shape
    return None


def window_values(config: dict, in_shape: Any, out_shape: tuple) -> int:
    """Values of one sample's unfolded input windows (im2col columns) in a block that slides a
    kernel: in channels x kernel area x output positions. Read from the settings alone, so it
    holds for every convolution and pooling block, whatever its type."""
    ins = _ints(in_shape)
    if "kernel_size" not in config or ins is None or len(ins) < 2 or len(out_shape) != len(ins):
        return 0
    k = config["kernel_size"]
    kernel = (k,) * (len(ins) - 1) if isinstance(k, int) else tuple(k)
    if len(kernel) != len(ins) - 1 or not all(isinstance(d, int) for d in kernel):
        return 0
    return ins[0] * math.prod(kernel) * math.prod(out_shape[1:])


def state_values(config: dict, in_shape: Any) -> int:
    """Values a recurrent block keeps per sample for backpropagation through time: its gates,
    states and their scratch at every step, whatever it outputs. Measured (T = 200, hidden 512,
    training, per step and hidden unit): LSTM 26 values, GRU 31, RNN fewer; counted here as
    STEP_VALUES x 3 copies = 36, both directions when bidirectional."""
    ins = _ints(in_shape)
    hidden = config.get("hidden_size")
    if not isinstance(hidden, int) or ins is None or len(ins) != 2:
        return 0
    return ins[0] * STEP_VALUES * hidden * (2 if config.get("bidirectional") else 1)


def block_cost(
    config: dict,
    in_shape: Any,
    out_shape: tuple,
    params: int,
    buffers: int,
    training: bool,
    kept_bytes: int = 0,
) -> Cost:
    """The bytes one block needs to train (``training``) or to run; see the module docstring.
    ``kept_bytes``: what the layer keeps whatever the batch (Layer.kept_scratch_bytes)."""
    out = math.prod(out_shape)  # Python ints: exact however absurd the shape
    win = window_values(config, in_shape, out_shape)
    # A sliding block keeps a padded copy of its whole input (and, training, of the input's
    # gradient): a 1x1 bottleneck convolution's input is far larger than its output.
    padded = math.prod(in_shape) if win else 0
    steps = state_values(config, in_shape)
    if training:  # the columns are rebuilt for the gradient: a second scratch buffer
        fixed = TRAIN_PARAM_COPIES * params + buffers + 2 * win
        per_sample = TRAIN_ACTIVATION_COPIES * (out + steps) + 2 * padded
    else:
        fixed = params + buffers + win
        per_sample = INFER_ACTIVATION_COPIES * out + steps + padded
    return Cost(BYTES * fixed + kept_bytes, BYTES * per_sample)


def alone(cost: Cost, params: int, batch_size: int) -> int:
    """Bytes one block needs with nothing else: its cost and the float64 draw of its weights."""
    return cost.at(batch_size) + INIT_BYTES * params


def total_cost(costs: dict[str, Cost], params: dict[str, int]) -> Cost:
    """The graph's cost: every block's, plus the float64 draw of the largest block's weights."""
    init = INIT_BYTES * max(params.values(), default=0)
    return Cost(
        sum(c.fixed for c in costs.values()) + init, sum(c.per_sample for c in costs.values())
    )


def max_batch(cost: Cost, limit: int) -> int:
    """The largest batch that fits ``limit`` (0: not even one sample)."""
    if cost.fixed + cost.per_sample > limit:
        return 0
    return (limit - cost.fixed) // cost.per_sample if cost.per_sample else 10**9
