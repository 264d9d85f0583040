"""Writing what a panel shows: a PNG of the widget and a CSV of its numbers."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Write ``header`` then ``rows`` (numbers as plain decimals, NaN as an empty cell).

    Written to a temporary name and renamed, so a failed export leaves no half file.
    Returns the number of data rows.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow(
                [
                    ""
                    if isinstance(v, float) and not math.isfinite(v)
                    else (f"{v:.9g}" if isinstance(v, float) else v)
                    for v in row
                ]
            )
            n += 1
    os.replace(tmp, path)
    return n


def save_png(widget: QWidget, path: str | os.PathLike) -> bool:
    """Render ``widget`` (as on screen, at its current size) to a PNG file."""
    return widget.grab().save(str(path), "PNG")


def ask_path(parent: QWidget, title: str, suggested: str, filt: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, filt)
    return path or None
