"""gui.layout on arbitrary graphs (pure Python, no Qt): every block placed, none overlapping,
the same answer every time; parallel branches in lanes."""

from __future__ import annotations

import random

import pytest

from engine.graph import Graph
from gui.layout import block_heights, layered_positions


def random_dag(seed: int, n: int) -> Graph:
    """Inputs, Dense blocks (one input) and Concats (two to four), wired forwards at random;
    some blocks feed nothing (side heads), some Inputs start late (several sources)."""
    rng = random.Random(seed)
    g = Graph(name=f"random {seed}")
    ids: list[str] = []
    for i in range(n):
        node = f"b{i}"
        fan = 0 if i == 0 or rng.random() < 0.08 else rng.choice([1, 1, 1, 2, 3])
        fan = min(fan, len(ids))
        if fan == 0:
            g.add_node("Input", {"shape": [4]}, node_id=node)
        elif fan == 1:
            g.add_node("Dense", {"units": 4}, node_id=node)
        else:
            g.add_node("Concat", {"axis": 0}, node_id=node)
        for port, src in enumerate(rng.sample(ids[-6:], min(fan, len(ids[-6:])))):
            g.add_edge(src, node, port)
        ids.append(node)
    return g


@pytest.mark.parametrize("seed", range(12))
def test_every_block_is_placed_once_without_overlaps_and_deterministically(seed):
    g = random_dag(seed, 30 + 7 * seed)
    h = block_heights(g)
    pos = layered_positions(g, 250, 110, 1.75)
    assert set(pos) == set(g.nodes())
    assert pos == layered_positions(g, 250, 110, 1.75)
    boxes = sorted((x, y, y + h[n]) for n, (x, y) in pos.items())
    for i, (x, top, bottom) in enumerate(boxes):
        for x2, top2, bottom2 in boxes[i + 1 :]:
            if x2 >= x + 176:
                break
            assert bottom2 <= top or top2 >= bottom, f"overlap at {x}, {top}"


def test_parallel_branches_share_columns_and_a_shortcut_gets_its_own_lane():
    g = Graph(name="residual")
    g.add_node("Input", {"shape": [4]}, node_id="in")
    for n in ("a1", "a2", "b1"):
        g.add_node("Dense", {"units": 4}, node_id=n)
    g.add_node("Add", {}, node_id="add")
    g.add_edge("in", "a1")
    g.add_edge("a1", "a2")
    g.add_edge("in", "b1")
    g.add_edge("a2", "add", 0)
    g.add_edge("b1", "add", 1)
    pos = layered_positions(g, 250, 110)
    assert pos["a1"][0] == pos["b1"][0] and pos["a1"][1] < pos["b1"][1]  # port order
    assert pos["in"][0] < pos["a1"][0] < pos["a2"][0] < pos["add"][0]
    assert pos["in"][1] == pos["a1"][1] == pos["a2"][1]  # the longer branch stays straight
