"""A strip under the augmentation settings: the first samples of the data set before (top row)
and after (bottom row) the augmentation, as the Trainer draws it (``default_rng([seed, 2])``).

The data set is loaded in a worker thread (the window never waits); a data set that still
needs its download, or settings that do not fit it, show as one line instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import BlockPropError
from gui.training.images import tile

N_SHOWN = 8
ZOOM = 3


def preview_batch(spec: dict, n: int = N_SHOWN) -> tuple[np.ndarray, np.ndarray]:
    """(before, after): the first ``n`` samples of the training spec's data set and the same
    samples augmented with the spec's settings and the Trainer's augmentation stream."""
    from engine.augment import augment_batch, check_augment, check_fits
    from engine.data import load_dataset, needs_download

    ds_spec = spec.get("dataset") or {}
    if needs_download(ds_spec):
        raise BlockPropError("start a run once to download the data set, then preview")
    cfg = check_augment(spec.get("augment"))
    seed = int(spec.get("seed", 0))
    ds = load_dataset(dict(ds_spec), seed=seed)
    check_fits(cfg, tuple(ds.input_shape), ds.X.dtype.kind in "iu", np.ndim(ds.y) > 1)
    if ds.X.dtype.kind in "iu":
        raise BlockPropError("token ids: no picture to preview (the settings fit)")
    before = np.asarray(ds.X[: min(n, len(ds))], dtype=np.float32)
    if before.ndim != 4:
        raise BlockPropError(f"the samples are {tuple(ds.input_shape)}, not images (C, H, W)")
    after = augment_batch(before, np.random.default_rng([seed, 2]), **cfg)
    return before, after


def strip_image(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Two rows of tiles (before over after) as an (H, W, 3) uint8 picture, grey gaps."""

    def rgb(x: np.ndarray) -> np.ndarray:  # (n, C, H, W) -> (n, H, W, 3) in [0, 1]
        x = np.clip(x, 0.0, 1.0)
        return (
            np.repeat(x[:, :1], 3, axis=1).transpose(0, 2, 3, 1)
            if x.shape[1] != 3
            else (x.transpose(0, 2, 3, 1))
        )

    both = np.concatenate([rgb(before), rgb(after)])
    grid, _ = tile(both, cols=len(before), fill=np.nan)
    grid = np.where(np.isnan(grid), 0.5, grid)
    grid = np.repeat(np.repeat(grid, ZOOM, axis=0), ZOOM, axis=1)
    return np.ascontiguousarray((grid * 255).round().astype(np.uint8))


class AugmentPreview(QWidget):
    """The Preview button and its strip; ``get_spec()`` gives the dock's training settings."""

    arrived = Signal(object, object, str)  # before, after, problem ("" when it worked)

    def __init__(self, get_spec: Callable[[], dict]) -> None:
        super().__init__()
        self.get_spec = get_spec
        self.last: tuple[np.ndarray, np.ndarray] | None = None
        self.busy = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.button = QPushButton("Preview a batch")
        self.button.setToolTip("the first samples before (top) and after (bottom) augmentation")
        self.button.clicked.connect(self.refresh)
        row.addWidget(self.button)
        row.addStretch(1)
        lay.addLayout(row)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.picture.setWordWrap(True)
        lay.addWidget(self.picture)
        self.arrived.connect(self._show)

    @Slot()
    def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.button.setEnabled(False)
        self.picture.setText("loading...")
        spec = self.get_spec()
        threading.Thread(target=self._work, args=(spec,), daemon=True).start()

    def _work(self, spec: dict) -> None:  # worker thread
        try:
            before, after = preview_batch(spec)
        except BlockPropError as e:
            self.arrived.emit(None, None, str(e))
        except Exception as e:  # still one line, never a traceback in the dock
            self.arrived.emit(None, None, f"cannot preview: {type(e).__name__}: {e}")
        else:
            self.arrived.emit(before, after, "")

    @Slot(object, object, str)
    def _show(self, before, after, problem: str) -> None:
        self.busy = False
        self.button.setEnabled(True)
        if problem:
            self.last = None
            self.picture.setPixmap(QPixmap())
            self.picture.setText(problem)
            return
        self.last = (before, after)
        img = strip_image(before, after)
        h, w = img.shape[:2]
        q = QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.picture.setPixmap(QPixmap.fromImage(q))
