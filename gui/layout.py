"""Auto-layout: blocks left to right in columns, parallel branches side by side.

The graph is cut at the blocks every path passes through (a chain's blocks, the Concat after
an inception module, the Add after a residual block); between two cuts, each weakly connected
group of blocks is one branch, laid out the same way (recursively) in a lane of its own,
stacked top to bottom in the order of the input ports they feed. A wire that skips a stretch
(a residual shortcut) gets an empty lane of its own, so no wire has to cross a block. Blocks
that do not lead to the network's last block (a side head) hang below the branch they leave
from. A network much longer than it is tall wraps into rows, like text, only at the cuts, so
a module is never split, preferring the cuts that the fewest wires cross.

Pure Python (no Qt): the caller gives each block's height (multi-input blocks are taller)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.graph import Graph
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE

SKIP_LANE = 16.0  # height of the empty lane a skipping wire runs along
# From this many blocks a graph is mostly seen zoomed out (compact blocks, no wire labels),
# where every gap costs readability: columns and lanes are packed closer.
DENSE_FROM = 60
DENSE_GAPS = (40.0, 24.0, 50.0)  # between columns, between lanes, between rows
SLOT_PITCH = 24.0  # gui/canvas/style.py's: a block's height grows by this per input port


def input_slots(arity: tuple[int, int | None], used: list[int]) -> int:
    """How many input ports a block shows: its layer's minimum, and multi-input blocks one
    free slot more than they use (at most as many as they take: Attention's 3)."""
    lo, hi = arity
    if hi is not None and hi <= 1:
        return 0 if hi == 0 else max(1, lo)
    n = max(lo, (max(used) + 2) if used else 0)
    return n if hi is None else min(n, max(hi, (max(used) + 1) if used else 0))


def block_heights(graph: Graph, block_h: float = 68.0) -> dict[str, float]:
    """Each block's height on the canvas (multi-input blocks grow with their wires; the
    canvas's BlockItem.set_slots), for laying out a graph that is not shown."""
    used: dict[str, list[int]] = {n: [] for n in graph.nodes()}
    for _s, t, p in graph.edges():
        used[t].append(p)
    out = {}
    for n in graph.nodes():
        cls = LAYER_TYPES.get(graph.type_of(n))
        arity = cls.arity if cls is not None else (1, 1)
        if graph.type_of(n) == MODULE_TYPE:  # as many ports as its definition has inputs
            k = len(graph.modules.get(graph.config_of(n).get(MODULE_KEY), {}).get("inputs", []))
            arity = (k, k)
        slots = input_slots(arity, used[n])
        out[n] = max(block_h, slots * SLOT_PITCH + 20.0)
    return out


@dataclass
class Box:
    """A laid-out part: ``cols`` columns wide, from ``top`` to ``bottom`` around its spine
    (y = 0: where its first and last blocks' centres sit); ``at`` maps each block to its
    (column, centre y) inside the box."""

    cols: int
    top: float
    bottom: float
    at: dict[str, tuple[int, float]]
    glued: bool = False  # a merge block stays in the row of the branches it merges


def _series(boxes: list[Box]) -> Box:
    at: dict[str, tuple[int, float]] = {}
    col, top, bottom = 0, 0.0, 0.0
    for b in boxes:
        at.update({n: (c + col, y) for n, (c, y) in b.at.items()})
        col += b.cols
        top, bottom = min(top, b.top), max(bottom, b.bottom)
    return Box(col, top, bottom, at)


class _Layout:
    def __init__(self, g: Graph, heights: dict[str, float], gap: float) -> None:
        self.rank = {n: i for i, n in enumerate(g.nodes())}
        self.topo = {n: i for i, n in enumerate(g.topological_order()[0])}
        self.pred: dict[str, list[tuple[str, int]]] = {n: [] for n in self.rank}
        self.succ: dict[str, list[tuple[str, int]]] = {n: [] for n in self.rank}
        for s, t, p in g.edges():
            self.pred[t].append((s, p))
            self.succ[s].append((t, p))
        self.h = heights
        self.gap = gap

    def components(self, nodes: set[str]) -> list[set[str]]:
        """Weakly connected parts of ``nodes``, in the order of their first block."""
        seen: set[str] = set()
        out = []
        for n in sorted(nodes, key=self.topo.__getitem__):
            if n in seen:
                continue
            comp, todo = {n}, [n]
            while todo:
                m = todo.pop()
                for o, _ in (*self.pred[m], *self.succ[m]):
                    if o in nodes and o not in comp:
                        comp.add(o)
                        todo.append(o)
            seen |= comp
            out.append(comp)
        return out

    def units(self, nodes: set[str]) -> tuple[list[Box], list[set[str]]]:
        """``nodes`` as a series of boxes (cut blocks and the groups between them), and the
        parts not connected to its last block at all (only possible at the top)."""
        order = sorted(nodes, key=self.topo.__getitem__)
        depth: dict[str, int] = {}
        for n in order:
            ps = [depth[p] for p, _ in self.pred[n] if p in nodes]
            depth[n] = 1 + max(ps) if ps else 0
        sinks = [n for n in order if not any(t in nodes for t, _ in self.succ[n])]
        main = max(sinks, key=lambda n: (depth[n], -self.rank[n]))
        core, todo = {main}, [main]
        while todo:
            for p, _ in self.pred[todo.pop()]:
                if p in nodes and p not in core:
                    core.add(p)
                    todo.append(p)
        d: dict[str, int] = {}
        for n in order:
            if n in core:
                ps = [d[p] for p, _ in self.pred[n] if p in core]
                d[n] = 1 + max(ps) if ps else 0
        for n in order:  # an extra input goes just before the block it feeds
            if n in core and not any(p in core for p, _ in self.pred[n]):
                after = [d[t] for t, _ in self.succ[n] if t in core]
                d[n] = min(after) - 1 if after else d[n]
        layers: dict[int, list[str]] = {}
        for n in order:
            if n in core:
                layers.setdefault(d[n], []).append(n)
        spanned = [0] * (max(d.values()) + 2)
        for n in core:
            for t, _ in self.succ[n]:
                if t in core and d[t] - d[n] > 1:
                    spanned[d[n] + 1] += 1
                    spanned[d[t]] -= 1
        specs: list[str | set[str]] = []
        running = 0
        for k in sorted(layers):
            running += spanned[k]
            if len(layers[k]) == 1 and running == 0:
                specs.append(layers[k][0])
            elif specs and isinstance(specs[-1], set):
                specs[-1].update(layers[k])
            else:
                specs.append(set(layers[k]))
        # parts that do not lead to the last block: below the group they leave from
        where = {n: i for i, s in enumerate(specs) for n in ([s] if isinstance(s, str) else s)}
        sides: dict[int, list[set[str]]] = {}
        hang: dict[int, list[set[str]]] = {}
        detached = []
        for comp in self.components(nodes - core):
            fed = [where[p] for n in comp for p, _ in self.pred[n] if p in core]
            if not fed:
                detached.append(comp)
            elif isinstance(specs[min(fed)], str) and min(fed) + 1 < len(specs):
                hang.setdefault(min(fed), []).append(comp)
            else:
                sides.setdefault(min(fed), []).append(comp)
        boxes = []
        for i, s in enumerate(specs):
            if isinstance(s, str):
                h = self.h[s]
                glued = i > 0 and isinstance(specs[i - 1], set)
                boxes.append(Box(1, -h / 2, h / 2, {s: (0, 0.0)}, glued))
                continue
            entry = specs[i - 1] if i > 0 else None
            exit_ = specs[i + 1] if i + 1 < len(specs) else None
            boxes.append(self.group(s, entry, exit_, sides.get(i, [])))
        for i in sorted(hang, reverse=True):  # later ones first: merging shifts what follows
            for comp in hang[i]:
                boxes[i + 1 :] = self.hang_below(boxes[i + 1 :], self.box(comp))
        return boxes, detached

    def hang_below(self, boxes: list[Box], side: Box) -> list[Box]:
        """``side`` (a part leaving the cut block before ``boxes``) below the first of
        ``boxes``, which become one box as wide as it needs (so no row breaks under it)."""
        k, cols = 0, 0
        while k < len(boxes) and (k == 0 or cols < side.cols):
            cols += boxes[k].cols
            k += 1
        joined = _series(boxes[:k])
        spine = joined.bottom + self.gap - side.top
        joined.at.update({n: (c, y + spine) for n, (c, y) in side.at.items()})
        joined.cols = max(joined.cols, side.cols)
        joined.bottom = spine + side.bottom
        joined.glued = boxes[0].glued
        return [joined, *boxes[k:]]

    def box(self, nodes: set[str]) -> Box:
        boxes, detached = self.units(nodes)
        for comp in detached:  # not reached below the top level: kept for safety
            boxes.append(self.box(comp))
        return _series(boxes)

    def group(self, members: set[str], entry, exit_, sides: list[set[str]]) -> Box:
        """The branches between cut blocks ``entry`` and ``exit_``, one lane each."""
        lanes: list[tuple[tuple, Box]] = []
        for comp in self.components(members):
            ports = [p for n in comp for t, p in self.succ[n] if t == exit_]
            key = (min(ports) if ports else 1 << 30, min(self.rank[n] for n in comp))
            lanes.append((key, self.box(comp)))
        if isinstance(entry, str) and isinstance(exit_, str):
            for t, p in self.succ[entry]:
                if t == exit_:  # a wire skipping the group: an empty lane to run along
                    lanes.append(((p, -1), Box(0, -SKIP_LANE / 2, SKIP_LANE / 2, {})))
        lanes.sort(key=lambda kb: kb[0])
        main = [b for _, b in lanes]
        stack = main + [self.box(s) for s in sides]
        spines, y = [], 0.0
        for b in stack:
            spines.append(y - b.top)
            y = spines[-1] + b.bottom + self.gap
        widest = max(b.cols for b in main) if main else 0
        lead = [i for i, b in enumerate(main) if b.cols == widest]
        if len(lead) == 1:
            spine = spines[lead[0]]
        elif main:
            spine = (spines[0] + main[0].top + spines[len(main) - 1] + main[-1].bottom) / 2
        else:
            spine = stack[0].top - self.gap - SKIP_LANE / 2  # cannot happen: entry -> exit
        at = {}
        for b, s in zip(stack, spines, strict=True):
            at.update({n: (c, y + s - spine) for n, (c, y) in b.at.items()})
        top = min(s + b.top for b, s in zip(stack, spines, strict=True)) - spine
        bottom = max(s + b.bottom for b, s in zip(stack, spines, strict=True)) - spine
        return Box(max(b.cols for b in stack), top, bottom, at)


def _glue(boxes: list[Box]) -> list[Box]:
    """Each glued box joined to the one before it (rows never break between them)."""
    out: list[Box] = []
    for b in boxes:
        out[-1:] = [_series([out[-1], b])] if b.glued and out else [*out[-1:], b]
    return out


def _crossings(boxes: list[Box], lay: _Layout) -> list[int]:
    """How many wires cross the boundary before each box (index 0: none)."""
    unit = {n: i for i, b in enumerate(boxes) for n in b.at}
    diff = [0] * (len(boxes) + 1)
    for n, i in unit.items():
        for t, _ in lay.succ[n]:
            j = unit.get(t)
            if j is not None and j > i:
                diff[i + 1] += 1
                diff[j + 1] -= 1
    out, run = [], 0
    for k in range(len(boxes)):
        run += diff[k]
        out.append(run)
    return out


def _wrap(boxes: list[Box], cross: list[int], per: int) -> list[list[Box]]:
    """Rows of at most ``per`` columns (a wider box gets a row of its own), each break at the
    boundary fewest wires cross in the row's last 40%."""
    rows, start = [], 0
    while start < len(boxes):
        end, cols = start, 0
        while end < len(boxes) and (end == start or cols + boxes[end].cols <= per):
            cols += boxes[end].cols
            end += 1
        if end < len(boxes):
            best, used = end, 0
            for b in range(start + 1, end + 1):
                used += boxes[b - 1].cols
                if used >= 0.6 * per and cross[b] <= cross[best]:
                    best = b
            end = best
        rows.append(boxes[start:end])
        start = end
    return rows


def _extent(rows: list[list[Box]], dx: float, row_gap: float) -> tuple[float, float]:
    width = max(sum(b.cols for b in r) for r in rows) * dx
    height = sum(max(b.bottom for b in r) - min(b.top for b in r) + row_gap for r in rows) - row_gap
    return width, height


def layered_positions(
    graph: Graph,
    dx: float,
    dy: float,
    aspect: float | None = None,
    block_h: float = 68.0,
    row_gap: float = 90.0,
    heights: dict[str, float] | None = None,
    block_w: float = 176.0,
) -> dict[str, tuple[float, float]]:
    """New top-left positions for every block (anchored at the graph's current top-left).

    ``dx`` is the column pitch, ``dy`` the row pitch of ordinary blocks (``block_h`` high;
    ``heights`` gives each block's, by default ``block_heights``). With ``aspect`` (the
    window's width / height), a network much longer than it is tall wraps into rows when
    that lets it be shown larger (LeNet-5's fifteen blocks in a row would be unreadable when
    fitted to the window). From DENSE_FROM blocks, the gaps shrink to DENSE_GAPS."""
    g = graph.without_loops()
    if not len(g):
        return {}
    h = heights if heights is not None else block_heights(graph, block_h)
    h = {n: h.get(n, block_h) for n in g.nodes()}
    lane_gap = dy - block_h
    if len(g) >= DENSE_FROM:
        gx, gy, gr = DENSE_GAPS
        dx, lane_gap, row_gap = min(dx, block_w + gx), min(lane_gap, gy), min(row_gap, gr)
    lay = _Layout(g, h, max(lane_gap, 16.0))
    main, detached = lay.units(set(g.nodes()))
    flows = [_glue(f) for f in [main] + [lay.units(c)[0] for c in detached]]
    crosses = [_crossings(f, lay) for f in flows]

    def rows_for(per: int) -> list[list[Box]]:
        return [r for f, c in zip(flows, crosses, strict=True) for r in _wrap(f, c, per)]

    total = max(sum(b.cols for b in f) for f in flows)
    rows = rows_for(total)
    if aspect and aspect > 0 and total > 4:

        def scale(rs) -> float:
            w, hh = _extent(rs, dx, row_gap)
            return min(aspect / w, 1.0 / hh)

        unwrapped = scale(rows)
        best = max(
            (rows_for(per) for per in range(3, total + 1)), key=lambda rs: (scale(rs), -len(rs))
        )
        if scale(best) > 1.25 * unwrapped:
            rows = best
    x0 = min(graph.pos_of(n)[0] for n in g.nodes())
    y0 = min(graph.pos_of(n)[1] for n in g.nodes())
    out: dict[str, tuple[float, float]] = {}
    y = y0
    for r in rows:
        top = min(b.top for b in r)
        spine = y - top
        col = 0
        for b in r:
            for n, (c, cy) in b.at.items():
                out[n] = (round(x0 + (col + c) * dx), round(spine + cy - h[n] / 2))
            col += b.cols
        y = spine + max(b.bottom for b in r) + row_gap
    return out


def is_cramped(graph: Graph, block_w: float, block_h: float, gap: float = 40.0) -> bool:
    """True when some blocks would overlap (or leave no room for a wire between them) at the
    canvas's block size: graphs written by hand or for another tool's block size."""
    boxes = sorted((graph.pos_of(n) for n in graph.nodes()), key=lambda p: p[0])
    for i, (x, y) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 :]:
            if x2 - x >= block_w + gap:
                break
            if abs(y2 - y) < block_h + 10:
                return True
    return False


def tidy_if_cramped(
    graph: Graph,
    dx: float,
    dy: float,
    block_w: float,
    block_h: float,
    aspect: float | None = None,
) -> bool:
    """Lay ``graph`` out again (in place, not undoable: call it before the graph is shown) when
    its blocks are too close for the canvas. Returns True if it moved them."""
    if not is_cramped(graph, block_w, block_h):
        return False
    for n, p in layered_positions(graph, dx, dy, aspect, block_h).items():
        graph.move_node(n, p)
    return True
