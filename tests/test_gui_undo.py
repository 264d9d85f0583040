"""Undo/redo: every change is one command; a random sequence of gestures undone completely
gives back the initial graph exactly (Graph.to_dict(), order included), and redone gives the
final one; the scene follows the Graph all the way."""

from __future__ import annotations

import random

import pytest
from gui_helpers import build_chain, settle
from PySide6.QtWidgets import QApplication

from engine.layers import LAYER_TYPES

SIMPLE_TYPES = [
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "Conv2D",
    "MaxPool2D",
    "Add",
    "Concat",
    "BatchNorm",
    "LSTM",
    "Reshape",
]

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def random_value(rng: random.Random, opt):
    if opt.kind == "int":
        lo = int(opt.min) + (1 if opt.min_exclusive else 0) if opt.min is not None else 0
        return rng.randint(lo, lo + 20)
    if opt.kind == "float":
        lo = opt.min or 0.0
        hi = opt.max if opt.max is not None else lo + 1.0
        return round(rng.uniform(lo, hi), 3)
    if opt.kind == "bool":
        return rng.random() < 0.5
    if opt.kind == "choice":
        return rng.choice(list(opt.choices))
    if opt.kind == "padding":
        return rng.choice([0, 1, 2, "same", "valid"])
    if opt.kind == "size":
        return rng.choice([1, 2, 3, [2, 3]])
    if opt.kind == "shape":
        return [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
    return None


def random_gesture(w, rng: random.Random) -> str:
    g, c = w.graph, w.controller
    nodes = g.nodes()
    op = rng.choice(
        [
            "add",
            "add",
            "connect",
            "connect",
            "delete",
            "move",
            "disconnect",
            "edit",
            "edit",
            "paste",
            "layout",
            "rename",
            "fix",
            "wire_delete",
        ]
    )
    if op == "add" or not nodes:
        after = rng.choice(nodes) if nodes and rng.random() < 0.5 else None
        c.add_block(
            rng.choice(SIMPLE_TYPES), (rng.randint(-500, 900), rng.randint(-400, 600)), after=after
        )
    elif op == "connect":
        c.connect(rng.choice(nodes), rng.choice(nodes))
    elif op == "delete":
        c.delete(rng.sample(nodes, min(len(nodes), rng.randint(1, 2))))
    elif op == "move":
        moved = rng.sample(nodes, min(len(nodes), rng.randint(1, 3)))
        c.move(
            {
                n: (g.pos_of(n)[0] + rng.randint(-90, 90), g.pos_of(n)[1] + rng.randint(-90, 90))
                for n in moved
            }
        )
    elif op in ("disconnect", "wire_delete") and g.edges():
        s, t, _ = rng.choice(g.edges())
        c.disconnect(s, t) if op == "disconnect" else c.delete([], [(s, t)])
    elif op == "edit":
        n = rng.choice(nodes)
        opts = LAYER_TYPES[g.type_of(n)].all_options()
        if opts:
            key = rng.choice(list(opts))
            value = random_value(rng, opts[key])
            if value is not None:
                c.set_option(n, key, value)
    elif op == "paste":
        frag = c.fragment(rng.sample(nodes, min(len(nodes), rng.randint(1, 3))))
        c.paste(frag, offset=(rng.randint(-60, 60), rng.randint(40, 120)))
    elif op == "layout":
        c.auto_layout(aspect=rng.choice([None, 1.6]))
    elif op == "rename":
        c.rename(rng.choice(nodes), f"r{rng.randint(0, 10**6)}")
    elif op == "fix":
        fixes = [p.fix for p in w.analysis.problems if p.fix]
        if fixes:
            c.apply_fix(fixes[0])
    if rng.random() < 0.3:
        QApplication.processEvents()  # let the live analysis run now and then
    return op


def assert_scene_matches_graph(w) -> None:
    g, s = w.graph, w.scene
    assert sorted(s.blocks) == sorted(g.nodes())
    assert sorted(s.wires) == sorted((a, b) for a, b, _ in g.edges())
    for n, item in s.blocks.items():
        assert (item.pos().x(), item.pos().y()) == tuple(g.pos_of(n))
    for (a, b), wire in s.wires.items():
        assert wire.port == g.nx.edges[a, b]["target_port"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_gestures_undo_all_and_redo_all(window, seed):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 12, 12]}),
            ("c1", "Conv2D", {"filters": 4, "kernel_size": 3}),
            ("p1", "MaxPool2D", {"kernel_size": 2}),
            ("d", "Dense", {"units": 8}),
        ],
    )
    w.undo_stack.clear()
    initial = w.graph.to_dict()
    rng = random.Random(seed)
    ops = [random_gesture(w, rng) for _ in range(90)]
    assert w.undo_stack.count() >= 30, ops
    final = w.graph.to_dict()
    assert final != initial
    while w.undo_stack.canUndo():
        w.undo_stack.undo()
    assert w.graph.to_dict() == initial
    settle(w)
    assert_scene_matches_graph(w)
    while w.undo_stack.canRedo():
        w.undo_stack.redo()
    assert w.graph.to_dict() == final
    settle(w)
    assert_scene_matches_graph(w)
    assert w.analysis.order == [n for n in w.analysis.order if n in w.graph]


def test_edit_menu_names_the_action(window):
    w = window
    w.controller.add_block("Conv2D", (0, 0))
    assert w.actions.undo.text().replace("&", "") == "Undo Add Conv2D"
    assert w.actions.undo.isEnabled() and not w.actions.redo.isEnabled()
    w.actions.undo.trigger()
    assert len(w.graph) == 0
    assert w.actions.redo.text().replace("&", "") == "Redo Add Conv2D"
    w.actions.redo.trigger()
    assert w.graph.nodes() == ["conv2d_1"]


def test_delete_then_undo_restores_file_order_exactly(window):
    w = window
    build_chain(
        w,
        [
            ("a", "Input", {"shape": [4]}),
            ("b", "Dense", {"units": 3}),
            ("c", "Dense", {"units": 2}),
        ],
    )
    w.controller.add_block("Dense", (0, 200), {"units": 5})
    w.controller.connect("a", "dense_1")
    before = w.graph.to_dict()
    w.controller.delete(["b"])
    w.controller.disconnect("a", "dense_1")
    w.controller.rename("c", "out")
    w.undo_stack.undo()
    w.undo_stack.undo()
    w.undo_stack.undo()
    assert w.graph.to_dict() == before
    assert [e["target"] for e in before["edges"]] == ["b", "dense_1", "c"]
