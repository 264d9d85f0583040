"""The per-block checks of ``engine.analysis``: what a ``Problem`` is, and the mistakes found
before a block is asked for its shape (loops, unknown types, bad settings, wrong number of
inputs, a kernel larger than its input, a link to a block that does not run before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import networkx as nx

from engine.errors import BlockPropError
from engine.layers import LAYER_TYPES
from engine.layers.base import Layer

if TYPE_CHECKING:
    from engine.graph import Graph

# Messages name at most this many blocks and count the rest (a graph of 100,000 loose ends
# gives 100,000 short problems, not 100,000 lists of 100,000 names).
MAX_NAMED = 5


class Problem(NamedTuple):
    """One thing wrong with the graph: the block at fault (None: the graph as a whole), what
    is wrong and what to do, and an optional automatic fix."""

    block: str | None
    message: str
    fix: dict | None = None

    def __str__(self) -> str:
        return f"block '{self.block}': {self.message}" if self.block is not None else self.message


def named(ids: list[str], limit: int = MAX_NAMED) -> str:
    """Quoted block ids for a message, at most ``limit`` of them and a count of the rest, so a
    message stays short however many blocks it concerns: 'a', 'b', 'c' and 997 more."""
    shown = ", ".join(f"'{n}'" for n in ids[:limit])
    more = len(ids) - limit
    return shown + (f" and {more:,} more" if more > 0 else "")


def shape_text(shape: Any) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def cycle_problems(g: nx.DiGraph) -> list[Problem]:
    rank = {n: i for i, n in enumerate(g.nodes)}
    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        edges = nx.find_cycle(g.subgraph(comp))
        path = [s for s, _ in edges]
        first = min(comp, key=rank.__getitem__)
        k = path.index(first) if first in path else 0
        path = path[k:] + path[:k]
        loop = " -> ".join(path + [path[0]])
        if len(path) > 2 * MAX_NAMED:  # name both ends of a long loop, count the middle
            loop = (
                " -> ".join(path[:MAX_NAMED])
                + f" -> ... {len(path) - 2 * MAX_NAMED + 1:,} more ... -> "
                + " -> ".join(path[-MAX_NAMED + 1 :] + [path[0]])
            )
        out.append(
            Problem(
                first,
                f"blocks form a loop ({loop}); a network must flow one way: "
                f"remove the wire that goes back ({path[-1]} -> {path[0]})",
            )
        )
    return out


def make_layer(graph: Graph, n: str) -> tuple[Layer | None, Problem | None]:
    """The block's layer object (its settings re-checked), or the problem with them."""
    type_name = graph.type_of(n)
    cls = LAYER_TYPES.get(type_name)
    if cls is None:
        known = ", ".join(sorted(LAYER_TYPES))
        return None, Problem(
            n, f"unknown block type {type_name!r}; replace it with one of: {known}"
        )
    config = graph.config_of(n)
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        return None, Problem(
            n, "its settings must be an object of named values; reset the block's settings"
        )
    try:
        return cls(name=n, **config), None
    except BlockPropError as e:
        return None, Problem(n, f"{e.message}; correct it in the block's settings")


def _pair(v: Any, n: int) -> tuple[int, ...] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    if isinstance(v, (list, tuple)) and len(v) == n:
        return tuple(int(p) for p in v)
    return None


def kernel_problem(layer: Layer, in_shape: tuple, source: str) -> Problem | None:
    """A conv/pool kernel larger than its (padded) input: the layer's output would be empty."""
    cfg = layer.config
    if "kernel_size" not in cfg or layer.grows_input or len(in_shape) < 2:
        return None
    spatial = tuple(in_shape[1:])
    pad = cfg.get("padding", 0)
    if pad == "same":
        return None
    k = _pair(cfg["kernel_size"], len(spatial))
    p = _pair(0 if pad in ("valid", None) else pad, len(spatial))
    if k is None or p is None:
        return None  # the layer's own shape check reports mismatched ranks
    if all(s + 2 * q >= kk for s, q, kk in zip(spatial, p, k, strict=True)):
        return None
    padded = "x".join(str(s + 2 * q) for s, q in zip(spatial, p, strict=True))
    kernel = "x".join(map(str, k))
    fix = None
    popt = type(layer).all_options().get("padding")
    if popt is not None and popt.kind == "padding" and _pair(cfg.get("stride", 1), 1) == (1,):
        fix = {"kind": "set", "block": layer.name, "key": "padding", "value": "same"}
    how = 'use padding "same" or a smaller kernel' if fix else "use padding or a smaller kernel"
    return Problem(
        layer.name,
        f"its {kernel} kernel is larger than its input ({padded} after "
        f"padding, from '{source}'): {how}",
        fix,
    )


def pre_check(layer: Layer, in_shape: Any, preds: list[str]) -> Problem | None:
    """Mistakes worth a specific message (and a fix) before asking the layer for its shape."""
    if len(preds) != 1:
        return None
    said = layer.input_problem(in_shape, preds[0])
    return Problem(layer.name, *said) if said else kernel_problem(layer, in_shape, preds[0])


def link_problem(
    layer: Layer, n: str, layers: dict[str, Layer | None], shapes: dict, g: nx.DiGraph
) -> tuple[Problem | None, bool]:
    """(the problem with the blocks ``layer``'s settings link to (MaxUnpool2D's pool), whether
    to leave its shape unknown silently (the linked block is broken: its own problem says so))."""
    for key in type(layer).links:
        other = layer.config.get(key)
        if other is None:
            continue  # output_shape says what to set
        if other not in layers:
            return Problem(
                n, f"'{key}' names block '{other}', which is not in the graph: set it to an id"
            ), False
        if other not in nx.ancestors(g, n):
            return Problem(
                n,
                f"'{key}' names block '{other}', which does not run before it: it must be "
                "upstream of this block (wired into the path leading here)",
            ), False
        partner = layers[other]
        if partner is None or shapes.get(other) is None:
            return None, True
        try:
            layer.bind(key, partner)
        except BlockPropError as e:
            return Problem(n, e.message), False
    return None, False


def arity_problem(cls: type[Layer], n: str, preds: list[str]) -> Problem | None:
    lo, hi = cls.arity
    k = len(preds)
    if lo <= k and (hi is None or k <= hi):
        return None
    t = cls.type_name
    if hi == 0:
        wires = "the wire" if k == 1 else "the wires"
        return Problem(n, f"{t} takes no inputs: remove {wires} from {named(preds)}")
    if hi == 1 and k == 0:
        return Problem(n, f"{t} has no input: wire a block into it")
    if hi == 1:
        return Problem(
            n,
            f"{t} takes exactly one input but gets {k:,} (from {named(preds)}): "
            "remove wires, or join them first with Add or Concat",
        )
    need = f"{lo} or more" if hi is None else f"{lo} to {hi}"
    what = " of equal shape" if t == "Add" else ""
    return Problem(n, f"{t} needs {need} inputs{what} but gets {k}: wire another block into it")
