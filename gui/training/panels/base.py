"""What every training panel shares: export buttons, redraw bookkeeping, plot styling."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui.training.panel_files import ask_path, save_png, write_csv

if TYPE_CHECKING:
    from gui.training.run_data import RunData
    from gui.training.training_controller import TrainingController

BACKGROUND = "w"
# Every image item takes arrays as NumPy holds them, (row, column): set on each item, not as
# a pyqtgraph default for the whole process.
AXIS_ORDER = "row-major"
FOREGROUND = QColor(40, 40, 40)
# Ten colours that stay apart on white (Tableau 10), then pyqtgraph's hue wheel.
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def colour(i: int, n: int = 10) -> QColor:
    if i < len(PALETTE):
        return QColor(PALETTE[i])
    return pg.intColor(i, hues=max(n, 11))


MIN_LABEL_PX = 18  # the least distance between two labels of a vertical axis


class LogAxis(pg.AxisItem):
    """An axis whose log mode labels read as numbers: decades as 0.001 ... 100 (1e-05 beyond),
    plus 2 and 5 when less than two decades show; no SI-prefix rescaling (no "x0.001")."""

    def __init__(self, orientation: str = "left", **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph override)
        """pyqtgraph's tick levels, less those whose labels would be closer than
        ``MIN_LABEL_PX`` on a vertical axis (a short plot wrote 1.0 0.8 ... 0 on top of each
        other); at least one level, made coarse enough."""
        levels = super().tickSpacing(minVal, maxVal, size)
        span = maxVal - minVal
        if self.orientation not in ("left", "right") or span <= 0 or size <= 0 or not levels:
            return levels
        px = size / span  # pixels per unit (a decade in log mode)
        kept = [(s, o) for s, o in levels if s * px >= MIN_LABEL_PX]
        if kept:
            return kept
        need = MIN_LABEL_PX / px
        if self.logMode:
            return [(float(max(1, math.ceil(need))), 0)]
        step = 10 ** math.floor(math.log10(need))
        nice = next(m * step for m in (1, 2, 5, 10) if m * step >= need)
        return [(nice, 0)]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        lo, hi = sorted(self.range)
        few = hi - lo < 2.0
        out = []
        for v in values:
            mant = 10 ** (v - np.floor(v + 1e-9))
            decade = abs(v - round(v)) < 1e-6
            if decade or (few and min(abs(mant - 2), abs(mant - 5)) < 1e-3):
                out.append(number_text(10.0**v))
            else:
                out.append("")
        return out


def number_text(x: float) -> str:
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.6g}"
    mant, exp = f"{x:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def add_plot(layout: pg.GraphicsLayout, **kw: Any) -> pg.PlotItem:
    """A plot whose left axis labels log scales readably (see LogAxis)."""
    return layout.addPlot(axisItems={"left": LogAxis("left")}, **kw)


def style_plot(plot: pg.PlotItem, title: str = "", x: str = "", y: str = "") -> pg.PlotItem:
    """Readable on a projector: dark axes on white, labelled axes. No grid: pyqtgraph draws
    grid lines semi-transparent across the whole plot, which made each repaint about five
    times slower (65 ms instead of 13 for the Loss panel) and paints hold the GIL."""
    font = QFont()
    font.setPointSize(9)
    for name in ("left", "bottom", "right", "top"):
        ax = plot.getAxis(name)
        ax.setPen(pg.mkPen(FOREGROUND))
        ax.setTextPen(pg.mkPen(FOREGROUND))
        ax.setStyle(tickFont=font)
        ax.enableAutoSIPrefix(False)
    if title:
        set_title(plot, title)
    if x:
        plot.setLabel("bottom", x, color="#222")
    if y:
        plot.setLabel("left", y, color="#222")
    return plot


def line_plot(plot: pg.PlotItem) -> pg.PlotItem:
    """The habits for curves that grow to many points: peak downsampling, clip to view."""
    plot.setDownsampling(auto=True, mode="peak")
    plot.setClipToView(True)
    return plot


def integer_ticks(axis: pg.AxisItem, last: float) -> None:
    """Whole-number ticks (epochs): 1, 2, 3 ... or every k-th for long runs."""
    k = max(1, int(np.ceil(max(last, 1) / 10)))
    if getattr(axis, "_bp_spacing", None) != k:
        axis._bp_spacing = k
        axis.setTickSpacing(major=k, minor=k)


def make_legend(plot: pg.PlotItem, bottom: bool = False, left: bool = False) -> pg.LegendItem:
    """A legend in the top-right corner (bottom-right for rising curves such as accuracy;
    top-left for curves that rise steeply to the right, as a BPTT profile on a log axis)."""
    legend = plot.addLegend(
        offset=(8 if left else -8, -8 if bottom else 8), labelTextColor="#222", labelTextSize="8pt"
    )
    legend.setBrush(pg.mkBrush(255, 255, 255, 200))
    legend.setPen(pg.mkPen(180, 180, 180))
    return legend


def image_view(
    layout: pg.GraphicsLayout,
    row: int | None = None,
    col: int | None = None,
    title: str = "",
    **kw: Any,
) -> tuple[pg.ViewBox, pg.ImageItem]:
    """A square-pixel ViewBox with one ImageItem, y downwards (row 0 on top, as in the data)."""
    if title:
        layout.addLabel(title, row=row, col=col, color="#222", size="9pt")
        row = None if row is None else row + 1
    # No context menu: the mouse is off anyway, and each ViewBox's menu took ~3.5 ms to
    # build (seven views for an LSTM's Activations: a quarter of the panel's first draw).
    kw.setdefault("enableMenu", False)
    vb = layout.addViewBox(row=row, col=col, lockAspect=True, invertY=True, enableMouse=False, **kw)
    img = pg.ImageItem(axisOrder=AXIS_ORDER)
    vb.addItem(img)
    return vb, img


def sticky_range(
    plot: pg.PlotItem,
    x: np.ndarray | None,
    y: np.ndarray | None,
    log_y: bool = False,
    x_unit: float = 0.0,
    x_max: float = 0.0,
) -> None:
    """Frame growing curves without re-ranging on every update.

    Auto-range would move the axes at each new point, and every axis change re-lays out its
    ticks and repaints it (most of a frame's cost). Here the x range grows in 30 % jumps,
    rounded up to whole ``x_unit`` (an epoch's steps) and at most ``x_max`` (the run's
    steps), and the y range changes only when the data leave it or fill less than half of
    it, so most updates repaint the curves alone. ``log_y``: y is compared in decades.
    """
    vb = plot.getViewBox()
    if x is not None and len(x):
        hi = float(np.nanmax(x))
        cur = getattr(plot, "_bp_x", None)
        if cur is None or hi > cur[1] or hi < 0.3 * cur[1] or (0 < x_max < cur[1]):
            lo = float(np.nanmin(x))
            top = lo + max(hi - lo, 1.0) * 1.3
            if x_unit > 0:
                top = np.ceil(top / x_unit) * x_unit
            if x_max >= hi:
                top = min(top, x_max)
            new = (lo, max(top, hi))
            plot._bp_x = new
            vb.setXRange(*new, padding=0.02)
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        y = y[np.isfinite(y) & (y > 0)] if log_y else y[np.isfinite(y)]
        if not len(y):
            return
        if log_y:
            y = np.log10(y)
        lo, hi = float(y.min()), float(y.max())
        cur = getattr(plot, "_bp_y", None)
        if (
            cur is not None
            and cur[0] <= lo
            and hi <= cur[1]
            and (hi - lo) >= 0.5 * (cur[1] - cur[0])
        ):
            return
        # A single point (the first steps) still gets a readable frame: at least 10% of its
        # size (ticks 2.2 2.3 2.4, not 2.32547008995 and its neighbours).
        least = 0.3 if log_y else max(0.1 * max(abs(lo), abs(hi)), 1e-6)
        if hi - lo < least:
            mid = (hi + lo) / 2
            lo, hi = mid - least / 2, mid + least / 2
        pad = (hi - lo) * 0.08
        plot._bp_y = (lo - pad, hi + pad)
        vb.setYRange(*plot._bp_y, padding=0)


def step_axis_end(run: RunData, ctrl) -> float:
    """Where the step axis ends: the run's planned steps while it trains, its last step
    once it is over (the curve then fills the plot)."""
    if run is ctrl.active:
        return float(run.info.get("total_steps", 0) or 0)
    last = run.steps.last()
    return float(last[0]) if last is not None else 0.0


def reset_sticky(plot: pg.PlotItem) -> None:
    plot._bp_x = plot._bp_y = None


def set_title(plot: pg.PlotItem, text: str, color: str = "#222") -> None:
    """Set a plot's title only when it changes (each change re-lays out the plot)."""
    if getattr(plot, "_bp_title", None) != (text, color):
        plot._bp_title = (text, color)
        plot.setTitle(text, color=color, size="10pt")


def keyed_title(plot: pg.PlotItem, title: str, keys: list[tuple[str, QColor]]) -> None:
    """A title that is also the legend: "Loss per epoch  ● train  ● validation", each dot
    in its curve's colour. For short plots, where a legend box would cover the last points."""
    dots = "".join(
        f"&nbsp;&nbsp;<span style='color:{c.name()}'>&#9679;</span>&nbsp;{name}" for name, c in keys
    )
    set_title(plot, f"{title}{dots}")


def set_label(label: pg.LabelItem, text: str, **kw: Any) -> None:
    """LabelItem.setText only when the text changes (it re-renders HTML and re-lays out)."""
    key = (text, tuple(sorted(kw.items())))
    if getattr(label, "_bp_text", None) != key:
        label._bp_text = key
        label.setText(text, **kw)


def fit_view(vb: pg.ViewBox, shape: tuple) -> None:
    """Frame an image's ViewBox when the image's shape changes (not on every update)."""
    if getattr(vb, "_bp_shape", None) != tuple(shape):
        vb._bp_shape = tuple(shape)
        vb.autoRange(padding=0.02)


def cache_static(widget: QWidget) -> None:
    """Let Qt keep a pixmap of each axis, legend and label of the widget's plots, so a data
    update repaints the curves and blits the rest: the paint no longer calls their Python
    ``paint`` each time (half the cost of a Loss update). New items are found on each call;
    items already cached are skipped."""
    for view in widget.findChildren(pg.GraphicsView):
        scene = view.scene()
        if scene is None or getattr(scene, "_bp_cached", -1) == len(scene.items()):
            continue
        for item in scene.items():
            if isinstance(item, (pg.AxisItem, pg.LegendItem, pg.LabelItem)):
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        scene._bp_cached = len(scene.items())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "panel"


class ControlsRow(QScrollArea):
    """A panel's row of controls that never makes its dock wider: narrower than the row, it
    scrolls sideways (a thin scroll bar appears under it), so a window of 1280 px still fits
    the panels tabbed beside the Problems list."""

    def __init__(self, bar: QWidget) -> None:
        super().__init__()
        self.setWidget(bar)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.horizontalScrollBar().rangeChanged.connect(lambda *_: self.fit_height())
        self.fit_height()

    def fit_height(self) -> None:
        sb = self.horizontalScrollBar()
        extra = sb.sizeHint().height() if sb.maximum() > 0 else 0
        h = self.widget().sizeHint().height() + extra
        if self.height() != h or self.minimumHeight() != h:
            self.setFixedHeight(h)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(60, self.height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(self.widget().sizeHint().width(), self.height())


class Panel(QWidget):
    """A dockable panel. Subclasses fill ``self.controls`` (a row above) and ``self.body``,
    and implement ``draw(run)`` and ``table()``.

    The controller's redraw timer calls ``refresh(run)`` for visible panels only; ``draw`` runs
    only when the run's ``version`` (or the panel's own ``_state()``) changed since last time.
    """

    title = "Panel"

    def __init__(self, ctrl: TrainingController) -> None:
        super().__init__()
        self.ctrl = ctrl
        self.setObjectName(f"training_panel_{slug(self.title)}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(4)
        bar = QWidget()
        self.controls = QHBoxLayout(bar)
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.controls.setSpacing(6)
        self.controls_area = ControlsRow(bar)
        outer.addWidget(self.controls_area)
        self.body = QVBoxLayout()
        outer.addLayout(self.body, 1)
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #555; font-size: 11pt; padding: 12px;")
        self.message.hide()
        outer.addWidget(self.message)
        self.png_button = QPushButton("Export PNG")
        self.csv_button = QPushButton("Export CSV")
        self.png_button.clicked.connect(lambda: self._export(self.export_png))
        self.csv_button.clicked.connect(lambda: self._export(self.export_csv))
        self.export_widget: QWidget = self  # what "Export PNG" renders
        self._drawn: Any = None
        self.drawn_at = 0.0

    def finish_controls(self) -> None:
        """Put the export buttons and the "?" (this panel's help page) at the right end of the
        controls row."""
        from gui.help import help_button, help_window
        from gui.help_pages import help_for

        self.controls.addStretch(1)
        self.controls.addWidget(self.png_button)
        self.controls.addWidget(self.csv_button)
        page = help_for(self)
        if page is not None:
            self.help_button = help_button(
                f"Help on the {self.title} panel", lambda: help_window(self).show_panel(page)
            )
            self.controls.addWidget(self.help_button)
        self.controls_area.fit_height()

    # --- redraw bookkeeping --------------------------------------------------------------------
    def shown(self) -> bool:
        """On screen (not a hidden tab, not a closed dock, not minimised away)."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def _state(self) -> Any:
        """Panel-local settings that need a redraw when they change (combo boxes etc.)."""
        return None

    def redraw_key(self, run: RunData | None) -> Any:
        """What the picture depends on; the default: anything in the run, and ``_state``."""
        return (id(run), getattr(run, "version", None), self._state())

    def refresh(self, run: RunData | None, force: bool = False) -> bool:
        key = self.redraw_key(run)
        if not force and key == self._drawn:
            return False
        self._drawn = key
        self.drawn_at = time.perf_counter()
        self.draw(run)
        cache_static(self)
        return True

    def invalidate(self) -> None:
        self._drawn = None

    def draw(self, run: RunData | None) -> None:
        raise TypeError(f"{type(self).__name__} does not define draw")

    def show_message(self, text: str) -> None:
        """Replace the plots by a one-line explanation (e.g. "no conv block")."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # --- export --------------------------------------------------------------------------------
    def table(self) -> tuple[Sequence[str], list[Sequence]]:
        """The numbers the panel shows: (header, rows)."""
        return ["value"], []

    def export_csv(self, path: str | None = None) -> str | None:
        if path is None:
            path = ask_path(
                self, f"Export {self.title} data", f"{slug(self.title)}.csv", "CSV files (*.csv)"
            )
            if not path:
                return None
        header, rows = self.table()
        write_csv(path, header, rows)
        return path

    def export_png(self, path: str | None = None) -> str | None:
        if path is None:
            path = ask_path(
                self, f"Export {self.title} image", f"{slug(self.title)}.png", "PNG images (*.png)"
            )
            if not path:
                return None
        if not save_png(self.export_widget, path):
            raise OSError(f"cannot write {path}")
        return path

    def _export(self, fn) -> None:
        try:
            fn()
        except OSError as e:
            QMessageBox.warning(self, "Export failed", f"Cannot write the file: {e}")
