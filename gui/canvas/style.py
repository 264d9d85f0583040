"""How blocks look: family colours, geometry, the one-line summary of a block's key settings,
and the colour scale of the gradient badges. Pure functions and constants, no items."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QColor, QFont

from engine.layers import LAYER_TYPES, Layer
from engine.layers.base import FAMILIES as FAMILY_COLOURS
from engine.layers.base import shape_text as shape_text  # re-exported for the canvas

# The palette's groups in order, and their colours: engine.layers.base.FAMILIES (a layer class
# names its family). Families not listed there go last, in this grey.
FAMILIES = tuple(FAMILY_COLOURS)
OTHER_COLOUR = "#616161"

# Geometry of a block in scene units (the graph file's "pos" is the block's top-left corner).
BLOCK_W = 176.0
BLOCK_H = 68.0
HEADER_H = 22.0
SLOT_PITCH = 24.0  # vertical distance between a block's input ports
PORT_R = 6.0  # drawn radius
PORT_HIT_R = 14.0  # clickable radius: ports must be easy to hit
LAYOUT_DX = 250.0  # auto-layout column pitch (leaves room for the wire's shape label)
LAYOUT_DY = 110.0
GRID = 10.0
# Text is readable from about this many pixels of line height; smaller, the canvas shows less
# of it in bigger letters (gui.canvas.block_item.detail_mode) and hides the wires' labels.
READABLE_PX = 8.5

SELECT_COLOUR = QColor("#1e88e5")
PROBLEM_COLOUR = QColor("#d32f2f")
WIRE_COLOUR = QColor("#607d8b")
TEXT_COLOUR = QColor("#212121")
SUBTLE_TEXT = QColor("#616161")
CANVAS_BG = QColor("#f4f6f8")
GRID_DOT = QColor("#e1e6ea")  # grid lines


def block_height(slots: int) -> float:
    """A block's height with ``slots`` input ports (gui.layout.block_heights: the same)."""
    return max(BLOCK_H, slots * SLOT_PITCH + 20.0)


def family_of(cls: Any) -> str:
    return getattr(cls, "family", "") or "Other"


def family_colour(family: str) -> QColor:
    return QColor(FAMILY_COLOURS.get(family, OTHER_COLOUR))


def font(size: float, bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


def count_text(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n:,} param" + ("" if n == 1 else "s")


def key_settings(type_name: str, cfg: dict) -> str:
    """The settings that identify a block at a glance, as its layer class summarises them
    (``Layer.summary``; an unknown type gets the default summary)."""
    return LAYER_TYPES.get(type_name, Layer).summary(cfg)


# --- gradient badges -------------------------------------------------------------------------
# log10(grad RMS) from LOG_LO (vanishing) to LOG_HI (strong), on the viridis colour scale.
LOG_LO, LOG_HI = -7.0, -1.0
_VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")


def badge_colour(grad_rms: float) -> QColor:
    """Colour of a block whose gradient RMS is ``grad_rms`` (log scale, clamped)."""
    if not grad_rms or grad_rms <= 0 or not math.isfinite(grad_rms):
        return QColor(_VIRIDIS[0])
    t = (math.log10(grad_rms) - LOG_LO) / (LOG_HI - LOG_LO)
    return scale_colour(min(max(t, 0.0), 1.0))


def scale_colour(t: float) -> QColor:
    """Viridis at ``t`` in [0, 1] (linear between five stops)."""
    x = t * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    f = x - i
    a, b = QColor(_VIRIDIS[i]), QColor(_VIRIDIS[i + 1])
    return QColor(
        round(a.red() + (b.red() - a.red()) * f),
        round(a.green() + (b.green() - a.green()) * f),
        round(a.blue() + (b.blue() - a.blue()) * f),
    )


def badge_text(grad_rms: float) -> str:
    return f"∇ {grad_rms:.1e}" if grad_rms else "∇ 0"


# MIME type of a block type dragged from the palette (the data is the type name, UTF-8).
BLOCK_MIME = "application/x-blockprop-block-type"
