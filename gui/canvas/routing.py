"""Where a wire runs: a smooth curve where nothing is in its way, otherwise around the blocks.

A forward wire is straight runs joined by S-bends: along its source's height and bending just
before its target, or bending just after its source and running at its target's height, or
running along the nearest free lane between the two (a residual shortcut under its blocks). A
wire going backwards (into the next row of a wrapped layout) goes out to the right, along the
free lane nearest the gap between the rows, and in from the left. The layout (gui.layout)
leaves such lanes and block-free gaps between its columns; on a hand-made layout a wire takes
the first of these that is clear, else the plain curve.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

CLEAR = 8.0  # room kept between a wire and a block it passes
BENDS = (64.0, 34.0)  # lengths of an S-bend: gentle where the gap between blocks allows
LOOP = 28.0  # radius of a backwards wire's turns
SEARCH = 3000.0  # how far up or down a free lane is looked for


def wire_path(p0: QPointF, p1: QPointF) -> QPainterPath:
    """A horizontal-tangent cubic from ``p0`` to ``p1`` (loops round when going backwards)."""
    dx = max(40.0, abs(p1.x() - p0.x()) * 0.5)
    path = QPainterPath(p0)
    path.cubicTo(QPointF(p0.x() + dx, p0.y()), QPointF(p1.x() - dx, p1.y()), p1)
    return path


def back_path(p0: QPointF, p1: QPointF, mid_y: float) -> QPainterPath:
    """A wire going backwards: out to the right, along ``mid_y``, in from the left."""
    r = LOOP
    path = QPainterPath(p0)
    path.cubicTo(
        QPointF(p0.x() + 2 * r, p0.y()), QPointF(p0.x() + 2 * r, mid_y), QPointF(p0.x(), mid_y)
    )
    path.lineTo(QPointF(p1.x(), mid_y))
    path.cubicTo(QPointF(p1.x() - 2 * r, mid_y), QPointF(p1.x() - 2 * r, p1.y()), p1)
    return path


def _bend(path: QPainterPath, a: QPointF, b: QPointF) -> None:
    """An S-bend from ``a`` to ``b`` (horizontal at both ends), appended to ``path``."""
    mx = (a.x() + b.x()) / 2
    path.cubicTo(QPointF(mx, a.y()), QPointF(mx, b.y()), b)


def _runs(p0: QPointF, p1: QPointF, y: float, bend_at_start: bool, bend_at_end: bool, bend):
    """Runs at ``y`` between bends ``bend`` long after ``p0`` and before ``p1``."""
    path = QPainterPath(p0)
    a = QPointF(p0.x() + bend, y) if bend_at_start else QPointF(p0.x(), y)
    b = QPointF(p1.x() - bend, y) if bend_at_end else QPointF(p1.x(), y)
    if bend_at_start:
        _bend(path, p0, a)
    path.lineTo(b)
    if bend_at_end:
        _bend(path, b, p1)
    return path


class BlockIndex:
    """The blocks' bodies sorted by their left edge, for the wires' queries (much cheaper than
    asking the scene, whose answer includes every port and wire)."""

    def __init__(self, blocks) -> None:
        items = sorted(((b.body_rect(), b) for b in blocks), key=lambda rb: rb[0].left())
        self.lefts = [r.left() for r, _ in items]
        self.items = items
        self.widest = max((r.width() for r, _ in items), default=0.0)

    def bodies(self, rect: QRectF, skip=()) -> list[QRectF]:
        lo = bisect_left(self.lefts, rect.left() - self.widest)
        hi = bisect_right(self.lefts, rect.right())
        return [r for r, b in self.items[lo:hi] if b not in skip and r.intersects(rect)]


class Obstacles:
    """The blocks a wire must not cross: all but the two it joins."""

    def __init__(self, index: BlockIndex, skip=()) -> None:
        self.index = index
        self.skip = skip

    def bodies(self, rect: QRectF) -> list[QRectF]:
        return self.index.bodies(rect, self.skip)

    def clear(self, x0: float, x1: float, y0: float, y1: float) -> bool:
        """Nothing within CLEAR of the box [x0, x1] x [y0, y1]."""
        if x1 <= x0:
            return True
        lo, hi = min(y0, y1), max(y0, y1)
        return not self.bodies(QRectF(x0, lo - CLEAR, x1 - x0, hi - lo + 2 * CLEAR))

    def _blocked(self, x0: float, x1: float, y0: float, y1: float) -> list[list[float]]:
        """The heights (merged spans, with CLEAR) that blocks take between ``x0`` and ``x1``."""
        spans = sorted(
            (b.top() - CLEAR, b.bottom() + CLEAR)
            for b in self.bodies(QRectF(x0, y0, x1 - x0, y1 - y0))
        )
        merged: list[list[float]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return merged

    def free_y(self, x0: float, x1: float, want: float) -> float:
        """The height nearest ``want`` (below on a tie) where a straight run from ``x0`` to
        ``x1`` passes no block."""
        if x1 <= x0:
            return want
        for lo, hi in self._blocked(x0, x1, want - SEARCH, want + SEARCH):
            if lo < want < hi:
                up, down = lo - 0.5, hi + 0.5
                return up if want - up < down - want else down
        return want

    def widest_gap(self, x0: float, x1: float, y0: float, y1: float) -> float | None:
        """The middle of the widest free gap between heights ``y0`` and ``y1`` for a run from
        ``x0`` to ``x1`` (the gap between two rows of a wrapped layout); None if none."""
        edge, best, at = y0, 0.0, None
        for lo, hi in [*self._blocked(x0, x1, y0, y1), [y1, y1]]:
            if lo - edge > best:
                best, at = lo - edge, (edge + lo) / 2
            edge = max(edge, hi)
        return at


def route(p0: QPointF, p1: QPointF, obstacles: Obstacles | None, back_y: float) -> QPainterPath:
    """The path of a wire from output ``p0`` to input ``p1``; ``back_y`` is where a backwards
    wire would like to run (between its two blocks)."""
    if p1.x() < p0.x() - 30:
        if obstacles is None:
            return back_path(p0, p1, back_y)
        x0, x1 = p1.x() - 2 * LOOP, p0.x() + 2 * LOOP
        y = obstacles.widest_gap(x0, x1, *sorted((p0.y(), p1.y())))
        return back_path(p0, p1, obstacles.free_y(x0, x1, back_y) if y is None else y)
    plain = wire_path(p0, p1)
    ob = obstacles
    x0, x1, y0, y1 = p0.x(), p1.x(), p0.y(), p1.y()
    if ob is None or ob.clear(x0, x1, y0, y1):
        return plain
    for bend in BENDS:
        if x1 - x0 < 2 * bend + 1:
            continue
        if ob.clear(x0, x1 - bend, y0, y0) and ob.clear(x1 - bend, x1, y0, y1):
            return _runs(p0, p1, y0, False, True, bend)
        if ob.clear(x0, x0 + bend, y0, y1) and ob.clear(x0 + bend, x1, y1, y1):
            return _runs(p0, p1, y1, True, False, bend)
        y = ob.free_y(x0 + bend, x1 - bend, y0)
        if ob.clear(x0, x0 + bend, y0, y) and ob.clear(x1 - bend, x1, y, y1):
            return _runs(p0, p1, y, True, True, bend)
    return plain
