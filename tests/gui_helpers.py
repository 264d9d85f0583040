"""Helpers shared by the GUI tests (test_gui_*.py); the fixtures are in gui_support.py."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def settle(w) -> None:
    """Let the zero-delay analysis timer run."""
    QApplication.processEvents()
    w.live.flush()
    QApplication.processEvents()


def view_pos(w, scene_point: QPointF) -> QPoint:
    return w.canvas.mapFromScene(scene_point)


def port_view_pos(w, block: str, kind: str, index: int = 0) -> QPoint:
    item = w.scene.blocks[block]
    port = item.out_port if kind == "out" else item.in_ports[index]
    return view_pos(w, port.scenePos())


def drag(w, start: QPoint, end: QPoint, steps: int = 6) -> None:
    """Press at ``start``, move in steps, release at ``end`` (on the canvas viewport)."""
    vp = w.canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    QApplication.processEvents()


def build_chain(w, spec, x0: float = 0, y0: float = 0, dx: float = 250):
    """Add blocks ``[(id, type, config), ...]`` wired in a chain through the controller."""
    from gui import commands as cmd

    prev = None
    for i, (n, t, c) in enumerate(spec):
        w.undo_stack.push(cmd.AddBlock(w.graph, t, c, (x0 + i * dx, y0), n))
        if prev is not None:
            w.undo_stack.push(cmd.Connect(w.graph, prev, n, 0))
        prev = n
    settle(w)
