"""How blocks look: family colours, geometry, the one-line summary of a block's key settings,
and the colour scale of the gradient badges. Pure functions and constants, no items."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QColor, QFont

# The palette's groups, in the order users expect (Neural Network Console / Deep Network
# Designer group the same way). Families a layer declares that are not listed go last.
FAMILIES = (
    "Input",
    "Convolution",
    "Pooling",
    "Dense",
    "Recurrent",
    "Normalisation and regularisation",
    "Merge",
    "Activation",
    "Reshape",
)

# Layer classes may spell a family differently; these aliases put them in the right group.
FAMILY_ALIASES = {
    "Conv": "Convolution",
    "Convolutional": "Convolution",
    "Pool": "Pooling",
    "Normalization": "Normalisation and regularisation",
    "Normalisation": "Normalisation and regularisation",
    "Regularisation": "Normalisation and regularisation",
    "Regularization": "Normalisation and regularisation",
    "Normalization and regularization": "Normalisation and regularisation",
    "Shape": "Reshape",
    "Embedding": "Recurrent",
}

FAMILY_COLOURS = {
    "Input": "#2e7d32",
    "Convolution": "#1565c0",
    "Pooling": "#00838f",
    "Dense": "#6a1b9a",
    "Recurrent": "#d84315",
    "Normalisation and regularisation": "#5d4037",
    "Merge": "#ad1457",
    "Activation": "#9e7c00",
    "Reshape": "#455a64",
}
OTHER_COLOUR = "#616161"

# Geometry of a block in scene units (the graph file's "pos" is the block's top-left corner).
BLOCK_W = 176.0
BLOCK_H = 68.0
HEADER_H = 22.0
PORT_R = 6.0  # drawn radius
PORT_HIT_R = 14.0  # clickable radius: ports must be easy to hit
LAYOUT_DX = 250.0  # auto-layout column pitch (leaves room for the wire's shape label)
LAYOUT_DY = 110.0
GRID = 10.0

SELECT_COLOUR = QColor("#1e88e5")
PROBLEM_COLOUR = QColor("#d32f2f")
WIRE_COLOUR = QColor("#607d8b")
TEXT_COLOUR = QColor("#212121")
SUBTLE_TEXT = QColor("#616161")
CANVAS_BG = QColor("#f4f6f8")
GRID_DOT = QColor("#e1e6ea")  # grid lines


def family_of(cls: Any) -> str:
    fam = getattr(cls, "family", "") or "Other"
    return FAMILY_ALIASES.get(fam, fam)


def family_colour(family: str) -> QColor:
    return QColor(FAMILY_COLOURS.get(family, OTHER_COLOUR))


def font(size: float, bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


def shape_text(shape: Any) -> str:
    """(6, 28, 28) -> '6×28×28'; None -> '?'."""
    if shape is None:
        return "?"
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return " | ".join(shape_text(s) for s in shape)
    return "×".join(str(int(d)) for d in shape) if len(shape) else "scalar"


def count_text(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n:,} param" + ("" if n == 1 else "s")


def _kernel(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(str(p) for p in v)
    return f"{v}x{v}"


def _pad(v: Any) -> str:
    if v in ("same", "valid"):
        return f"p {v}"
    if isinstance(v, (list, tuple)):
        return "p" + ",".join(str(p) for p in v)
    return f"p{v}"


def _stride(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "s" + ",".join(str(p) for p in v)
    return f"s{v}"


def key_settings(type_name: str, cfg: dict) -> str:
    """The settings that identify a block at a glance: Conv2D '6@5x5 s1 p2', Dense '120',
    LSTM '128 seq bi'. ``cfg`` is the full config (defaults filled in)."""
    g = cfg.get
    if type_name in ("Conv2D", "Conv1D", "ConvTranspose2D"):
        k = g("kernel_size")
        ks = f"{k}" if type_name == "Conv1D" and not isinstance(k, (list, tuple)) else _kernel(k)
        text = f"{g('filters')}@{ks} {_stride(g('stride', 1))} {_pad(g('padding', 0))}"
        if g("connections"):
            text += " table"
        return text
    if type_name in ("MaxPool2D", "AvgPool2D", "MaxPool1D", "AvgPool1D"):
        k = g("kernel_size")
        s = g("stride")
        text = _kernel(k) + (f" {_stride(s)}" if s is not None else "")
        pad = g("padding", 0)
        return text + (f" {_pad(pad)}" if pad not in (0, None) else "")
    if type_name == "Subsample2D":
        return _kernel(g("kernel_size", 2))
    if type_name == "Dense":
        return f"{g('units')}" + ("" if g("bias", True) else " no bias")
    if type_name in ("RNN", "LSTM", "GRU"):
        text = f"{g('hidden_size')} {'seq' if g('return_sequences') else 'last'}"
        if g("bidirectional"):
            text += " bi"
        if type_name == "RNN" and g("nonlinearity", "tanh") != "tanh":
            text += f" {g('nonlinearity')}"
        return text
    if type_name == "Activation":
        fn = g("fn", "")
        return f"{fn} {g('negative_slope'):g}" if fn == "leaky_relu" else str(fn)
    if type_name == "Dropout":
        return f"rate {g('rate'):g}" if g("rate") is not None else ""
    if type_name == "Input":
        return shape_text(g("shape"))
    if type_name == "Reshape":
        return "to " + shape_text(g("shape"))
    if type_name == "Embedding":
        return f"{g('num_embeddings')} → {g('embedding_dim')}"
    if type_name == "Upsample2D":
        return f"×{g('scale', 2)}"
    if type_name == "Concat":
        return f"axis {g('axis', 0)}"
    if type_name == "BatchNorm":
        return f"momentum {g('momentum', 0.1):g}"
    parts = []
    for k, v in cfg.items():
        if k.startswith("init") or v is None or isinstance(v, (list, dict)):
            continue
        parts.append(f"{k} {v}")
        if len(parts) == 2:
            break
    return ", ".join(parts)


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
