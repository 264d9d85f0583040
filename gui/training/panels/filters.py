"""Filters panel: the kernels of a conv block as they form.

Every kernel is normalised on its own (w / max|w|) and drawn with a diverging colour map, so
white is 0, blue negative, red positive: the shape of each filter shows whatever its scale.
A first layer on colour images (3 input channels) can be drawn in colour instead (each kernel
min-max scaled). The picture follows the selected canvas block when it is a conv block.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSpinBox

from gui.training.images import filter_grid, kernel_stack
from gui.training.panels.base import Panel, image_view, set_label
from gui.training.run_data import RunData

DIVERGING = pg.colormap.get("CET-D1")  # blue - white - red, perceptually uniform
DIVERGING_LUT = DIVERGING.getLookupTable(nPts=256)


class FiltersPanel(Panel):
    title = "Filters"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.block = QComboBox()
        self.block.setMinimumContentsLength(10)
        self.block.currentIndexChanged.connect(self._changed)
        self.channel = QSpinBox()
        self.channel.setPrefix("input channel ")
        self.channel.valueChanged.connect(self._changed)
        self.rgb = QCheckBox("colour (RGB)")
        self.rgb.toggled.connect(self._changed)
        self.controls.addWidget(QLabel("block"))
        self.controls.addWidget(self.block)
        self.controls.addWidget(self.channel)
        self.controls.addWidget(self.rgb)
        self.finish_controls()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.body.addWidget(self.view)
        self.export_widget = self.view
        self.title_label = self.view.addLabel("", row=0, col=0, color="#222", size="10pt")
        self.vb, self.image = image_view(self.view.ci, row=1, col=0)
        self.vb.setBackgroundColor((90, 90, 90))
        self.image.setLookupTable(DIVERGING_LUT)
        self._rgb_shown = False
        self.bar = pg.ColorBarItem(
            values=(-1, 1),
            colorMap=DIVERGING,
            interactive=False,
            label="w / max|w| per kernel",
            width=12,
        )
        self.bar.setImageItem(self.image)
        self.view.addItem(self.bar, row=1, col=1)
        self.grid: np.ndarray | None = None  # the picture shown (normalised kernels, NaN gaps)
        self.corners: list[tuple[int, int]] = []
        self.weight: np.ndarray | None = None  # the weights it was made from
        self.shown_block: str | None = None
        self._controls_for: tuple | None = None

    def _changed(self) -> None:
        self.ctrl.request_redraw()

    def redraw_key(self, run):
        return (
            id(run),
            getattr(run, "snapshots", None),
            self.block.currentText(),
            self.channel.value(),
            self.rgb.isChecked(),
        )

    def follow(self, block: str) -> None:
        """Show ``block`` if it is a conv block (the canvas selection changed)."""
        i = self.block.findText(block)
        if i >= 0:
            self.block.setCurrentIndex(i)

    def _sync_blocks(self, names: list[str]) -> None:
        have = [self.block.itemText(i) for i in range(self.block.count())]
        if have != names:
            cur = self.block.currentText()
            self.block.blockSignals(True)
            self.block.clear()
            self.block.addItems(names)
            if cur in names:
                self.block.setCurrentIndex(names.index(cur))
            self.block.blockSignals(False)

    def draw(self, run: RunData | None) -> None:
        filters = self.ctrl.runlist.current_filters(run)
        self._sync_blocks(list(filters))
        b = self.block.currentText()
        if not filters or b not in filters:
            self.show_message(
                "No convolution block in this model yet: the filters appear "
                "here once a run of a graph with Conv2D blocks starts."
            )
            self.image.clear()
            self.grid, self.weight, self.shown_block = None, None, None
            return
        self.show_message("")
        w = kernel_stack(filters[b])
        in_c = w.shape[1]
        rgb = self.rgb.isChecked() and in_c == 3
        if (in_c, rgb) != self._controls_for:  # touch the widgets only when this changes
            self._controls_for = (in_c, rgb)
            self.channel.blockSignals(True)
            self.channel.setRange(0, max(0, in_c - 1))
            self.channel.blockSignals(False)
            self.rgb.setEnabled(in_c == 3)
            self.channel.setEnabled(not rgb)
        grid, corners = filter_grid(w, self.channel.value(), rgb=rgb)
        self.grid, self.corners, self.weight, self.shown_block = grid, corners, filters[b], b
        if rgb != self._rgb_shown:
            self._rgb_shown = rgb
            self.image.setLookupTable(None if rgb else DIVERGING_LUT)
            self.bar.setVisible(not rgb)
        if rgb:
            self.image.setImage(np.nan_to_num(grid, nan=0.35), autoLevels=False, levels=(0, 1))
        else:
            self.image.setImage(grid, autoLevels=False, levels=(-1, 1))
        if getattr(self, "_grid_shape", None) != grid.shape:
            self._grid_shape = grid.shape
            self.vb.autoRange(padding=0.02)
        step = run.filters_step if run is not None and run.filters_step >= 0 else None
        kind = run.block_types.get(b, "") if run is not None else ""
        what = "RGB" if rgb else f"input channel {self.channel.value()}"
        when = f", step {step}" if step is not None else ""
        set_label(
            self.title_label,
            f"{b} ({kind}): {w.shape[0]} kernels {w.shape[2]}x{w.shape[3]}, {what}{when}",
        )

    def table(self):
        """Every weight of the shown block: out, in, row, col, value."""
        header = ["block", "out", "in", "row", "col", "weight"]
        if self.weight is None:
            return header, []
        w = kernel_stack(self.weight)
        rows = [
            [self.shown_block, o, i, r, c, float(w[o, i, r, c])]
            for o, i, r, c in np.ndindex(*w.shape)
        ]
        return header, rows
