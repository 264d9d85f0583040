"""A module instance on the canvas: one block with its module's input ports, output shape and
parameter count, drawn as a small stack of cards so it reads as "several blocks in one".

Its title is the definition's name; its settings line the instance's parameter values. The
scene makes one for every block of ``engine.modules.definition.MODULE_TYPE``.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPen

from engine.graph import Graph
from engine.modules.definition import MODULE_KEY
from gui.canvas.block_item import BlockItem
from gui.canvas.style import BLOCK_W

MODULE_FAMILY = "Modules"
MODULE_COLOUR = QColor("#5d4037")
STACK = 4.0  # offset of each card drawn behind the block


def instance_arity(graph: Graph, n: str) -> tuple[int, int]:
    k = len(graph.modules[graph.config_of(n)[MODULE_KEY]]["inputs"])
    return (k, k)


def instance_settings(graph: Graph, n: str) -> str:
    """The instance's parameter values (its definition's defaults filled in), or its size."""
    cfg = graph.full_config(n)
    values = [f"{k}={v}" for k, v in cfg.items() if k != MODULE_KEY]
    if values:
        return " ".join(values)
    d = graph.modules[cfg[MODULE_KEY]]
    return f"{len(d['nodes'])} blocks"


class ModuleItem(BlockItem):
    """An instance of module ``name`` (see the module docstring)."""

    def __init__(self, block_id: str, name: str, arity: tuple[int, int]) -> None:
        super().__init__(block_id, name, MODULE_FAMILY, arity)
        self.colour = MODULE_COLOUR
        self.module_name = name

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(0, -2 * STACK, 2 * STACK, 0)

    def paint(self, painter, option, widget=None) -> None:
        painter.setPen(QPen(QColor("#8d6e63"), 1.0))
        painter.setBrush(QBrush(QColor("#efebe9")))
        for k in (2, 1):
            painter.drawRoundedRect(QRectF(k * STACK, -k * STACK, BLOCK_W, self.h), 6, 6)
        super().paint(painter, option, widget)
