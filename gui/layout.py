"""Auto-layout: blocks left to right in columns by topological depth (the longest path from a
source), each block at the mean height of the blocks feeding it, so a plain chain stays on one
line and branches spread out around it."""

from __future__ import annotations

from engine.graph import Graph


def layered_positions(
    graph: Graph,
    dx: float,
    dy: float,
    aspect: float | None = None,
    block_h: float = 68.0,
    row_gap: float = 90.0,
) -> dict[str, tuple[float, float]]:
    """New top-left positions for every block (anchored at the graph's current top-left).

    With ``aspect`` (the window's width / height), a network much longer than it is tall
    wraps into rows, like text, when that lets it be shown larger (LeNet-5's fifteen blocks
    in a row would be unreadable when fitted to the window)."""
    g = graph.without_loops()
    if not len(g):
        return {}
    rank = {n: i for i, n in enumerate(graph.nodes())}
    depth: dict[str, int] = {}
    for n in g.topological_order()[0]:
        preds = [s for s, _, _ in g.in_edges(n)]
        depth[n] = 1 + max(depth[p] for p in preds) if preds else 0
    columns: dict[int, list[str]] = {}
    for n, d in depth.items():
        columns.setdefault(d, []).append(n)
    y: dict[str, float] = {}
    for d in sorted(columns):
        col = columns[d]
        want = {}
        for i, n in enumerate(sorted(col, key=lambda n: (graph.pos_of(n)[1], rank[n]))):
            preds = [s for s, _, _ in g.in_edges(n) if s in y]
            want[n] = sum(y[p] for p in preds) / len(preds) if preds else i * dy
        order = sorted(col, key=lambda n: (want[n], rank[n]))
        placed: list[float] = []
        for n in order:
            v = want[n] if not placed else max(want[n], placed[-1] + dy)
            placed.append(v)
        # shift the column back up by the mean push-down, keeping the spacing
        shift = sum(want[n] - v for n, v in zip(order, placed, strict=True)) / len(order)
        if placed and shift < 0:
            placed = [v + shift for v in placed]
        y.update(zip(order, placed, strict=True))
    x0 = min(graph.pos_of(n)[0] for n in g.nodes())
    y0 = min(graph.pos_of(n)[1] for n in g.nodes())
    ymin = min(y.values())
    band = max(y.values()) - ymin + block_h + row_gap
    per = _columns_per_row(len(columns), dx, band, aspect)
    return {
        n: (round(x0 + (depth[n] % per) * dx), round(y0 + y[n] - ymin + (depth[n] // per) * band))
        for n in g.nodes()
    }


def _columns_per_row(ncols: int, dx: float, band: float, aspect: float | None) -> int:
    """How many depth columns per row make the layout largest when fitted to the window."""
    if not aspect or aspect <= 0 or ncols <= 4:
        return max(ncols, 1)

    def scale(per: int) -> float:
        rows = -(-ncols // per)
        return min(aspect / (per * dx), 1.0 / (rows * band))

    best = max(range(3, ncols + 1), key=lambda per: (scale(per), per))
    return best if scale(best) > 1.25 * scale(ncols) else ncols


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
    graph: Graph, dx: float, dy: float, block_w: float, block_h: float, aspect: float | None = None
) -> bool:
    """Lay ``graph`` out again (in place, not undoable: call it before the graph is shown) when
    its blocks are too close for the canvas. Returns True if it moved them."""
    if not is_cramped(graph, block_w, block_h):
        return False
    for n, p in layered_positions(graph, dx, dy, aspect, block_h).items():
        graph.move_node(n, p)
    return True
