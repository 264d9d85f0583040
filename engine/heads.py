"""Several outputs: extra heads, each with its loss and weight (GoogLeNet's auxiliary classifiers).

A graph's training settings may list extra output blocks besides the main one:

    "heads": [{"block": "aux1_fc", "weight": 0.3}, {"block": "aux2_fc", "weight": 0.3}]

Each head is an end of the graph (a block with no successor) whose output is compared with the
same targets by the same loss as the main output. The training loss is

    L = L_main + sum over heads h of weight_h * L_h

so backward starts from every head: dL/d(head output) = weight_h * dL_h/d(head output), and
where the heads' paths meet the trunk the gradients add up (the multivariate chain rule, as at
any block read by several successors). The main output is the one end not listed; prediction,
accuracy, explanations and exports of the main output read it alone. A graph without "heads"
trains exactly as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ConfigError
from engine.losses import get_loss
from engine.settings import Opt, check_value

if TYPE_CHECKING:
    from engine.analysis import Problem
    from engine.graph import Graph

MAX_HEADS = 64
_WEIGHT = Opt("float", min=0.0, max=1e6)
_BLOCK = Opt("block")
_FORM = 'a list of {"block": id, "weight": w}'


def check_heads(value: Any) -> list[dict]:
    """A normalised copy of the training setting "heads", or ConfigError in one line naming
    the block (untrusted input: a graph file or the command line)."""
    if not isinstance(value, list) or len(value) > MAX_HEADS:
        shown = f"a list of {len(value):,}" if isinstance(value, list) else type(value).__name__
        raise ConfigError(f"training: 'heads' must be {_FORM} (at most {MAX_HEADS}); got {shown}")
    out: list[dict] = []
    seen: set[str] = set()
    for i, h in enumerate(value):
        if not isinstance(h, dict) or "block" not in h:
            raise ConfigError(
                f"training: 'heads' item {i} must be an object {{\"block\": id, ...}}"
            )
        try:
            block = check_value(None, "block", h["block"], _BLOCK)
        except ConfigError as e:
            raise ConfigError(f"training: 'heads' item {i}: {e.message}") from None
        unknown = [k for k in h if k not in ("block", "weight")]
        if unknown:
            raise ConfigError(
                f"training: head {unknown[0]!r} is no setting of a head (its settings: "
                "block, weight)",
                block=block,
            )
        try:
            weight = check_value(None, "weight", h.get("weight", 1.0), _WEIGHT)
        except ConfigError as e:
            raise ConfigError(f"training: head: {e.message}", block=block) from None
        if block in seen:
            raise ConfigError("training: listed twice under 'heads'", block=block)
        seen.add(block)
        out.append({"block": block, "weight": weight})
    return out


def split_heads(
    graph: Graph, sinks: list[str]
) -> tuple[dict[str, float], list[Problem], list[str]]:
    """(the heads {block: weight}, the problems with them, the ends left for the main output)
    for ``engine.analysis``: every head must be an end of the graph reached from the Input."""
    from engine.analysis import Problem

    training = graph.training if isinstance(graph.training, dict) else {}
    raw = training.get("heads")
    if raw is None:
        return {}, [], sinks
    try:
        heads = check_heads(raw)
    except ConfigError as e:
        return {}, [Problem(e.block, e.message)], sinks
    problems: list[Problem] = []
    ends = set(sinks)
    found: dict[str, float] = {}
    for h in heads:
        b = h["block"]
        if b not in graph:
            problems.append(
                Problem(
                    None,
                    f"the training setting 'heads' names block '{b}', which is not in the "
                    "graph: remove it from 'heads' or name an end of the graph",
                )
            )
        elif b not in ends:
            problems.append(
                Problem(
                    b,
                    "listed as an output head in the training settings but it is no end of "
                    "the graph (it feeds other blocks, or is not reached from the Input): a "
                    "head must be a block with no successor",
                )
            )
        else:
            found[b] = h["weight"]
    rest = [s for s in sinks if s not in found]
    if found and not rest:
        problems.append(
            Problem(
                None,
                "every end of the graph is listed under the training setting 'heads'; one end "
                "must stay the main output: remove it from 'heads'",
            )
        )
    return found, problems, rest


def same_heads(heads: list[dict], model_heads: dict[str, float]) -> bool:
    """Do the checked "heads" entries name a model's extra outputs with their weights? (A head
    naming a module instance is its output block "instance/inner" in the model.)"""

    def weight_of(block: str) -> float | None:
        hits = (w for k, w in model_heads.items() if k == block or k.startswith(block + "/"))
        return next(hits, None)

    return len(heads) == len(model_heads) and all(
        weight_of(h["block"]) == h["weight"] for h in heads
    )


def head_fix(graph: Graph, heads: dict[str, float], n_ends: int) -> Any:
    """For a graph with several ends: block -> the fix that lists it under "heads" with
    GoogLeNet's weight 0.3 (a training fix, one undoable step in the app), or None when the
    graph's "heads" are broken or full, or there are too many ends to offer it."""
    training = graph.training if isinstance(graph.training, dict) else {}
    raw = training.get("heads", [])
    if n_ends > MAX_HEADS or len(heads) != len(raw if isinstance(raw, list) else [None]):
        return None
    listed = [{"block": b, "weight": w} for b, w in heads.items()]
    if len(listed) >= MAX_HEADS or any("/" in b for b in heads):  # "/": inside a module
        return None

    def fix(block: str) -> dict:
        return {
            "kind": "training",
            "set": {"heads": [*listed, {"block": block, "weight": 0.3}]},
            "words": f"Make '{block}' an extra output (loss weight 0.3)",
        }

    return fix


class HeadLosses:
    """The losses of a model with extra heads: one Loss object per output (each keeps what its
    own backward needs), the weights, and the per-head losses of the last batch."""

    def __init__(self, model: Any, loss: str, **options: Any) -> None:
        self.model = model
        self.weights: dict[str, float] = dict(model.heads)
        self.losses = {n: get_loss(loss, **options) for n in [model.output_id, *self.weights]}

    def total(self, per_head: dict[str, float]) -> float:
        """L_main + sum weight_h * L_h."""
        main = self.model.output_id
        return per_head[main] + sum(w * per_head[n] for n, w in self.weights.items())

    def batch_losses(self, out: np.ndarray, yb: np.ndarray) -> dict[str, float]:
        """Each output's loss on the batch just run forward ({block: loss}, main first)."""
        outs = {self.model.output_id: out, **self.model.head_outputs}
        return {n: float(fn.forward(outs[n], yb)) for n, fn in self.losses.items()}

    def forward_backward(
        self, X: Any, y: np.ndarray, classifier: bool, idx: np.ndarray
    ) -> tuple[float, int, dict[str, float]]:
        """Forward the batch ``X[idx]``, the weighted total loss, then backward from every
        head (unless the total is not finite). Returns (total, correct predictions of the main
        output, {block: loss})."""
        model, yb = self.model, y[idx]
        out = model.forward(X[idx], training=True)
        per_head = self.batch_losses(out, yb)
        main = self.losses[model.output_id]
        hits = main.hits(out, yb) if classifier else 0
        loss = self.total(per_head)
        if math.isfinite(loss):
            dheads = {n: self.losses[n].backward() * w for n, w in self.weights.items()}
            model.backward(main.backward(), input_grad=False, heads=dheads)
        return loss, hits, per_head
