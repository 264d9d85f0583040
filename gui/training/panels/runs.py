"""Runs panel: every run of every graph (the project-wide history, gui/training/history.py:
settings and final metrics in a table sortable by any column) and the curves of the ticked
ones overlaid on shared axes: loss, accuracy, each block's gradient RMS, the BPTT profiles
(log axes, one for all runs). "Compare" ticks exactly the selected rows. Names can be edited
in place; a graph's runs are also saved next to its file (see ``gui.training.runs_file``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
)

from gui.training.panels.base import (
    Panel,
    add_plot,
    colour,
    integer_ticks,
    line_plot,
    make_legend,
    set_title,
    style_plot,
)
from gui.training.panels.loss import epoch_columns
from gui.training.run_data import RunData

GRADS, BPTT = "gradient RMS of each block per step", "BPTT profile (recent mean)"
METRICS = {  # text -> (x label, y label, per step?, column or epoch key)
    "loss per step (smoothed)": ("step", "loss (EMA)", True, 4),
    "loss per step (raw)": ("step", "loss", True, 2),
    "train loss per epoch": ("epoch", "train loss", False, "train_loss"),
    "validation loss per epoch": ("epoch", "validation loss", False, "val_loss"),
    "validation accuracy per epoch": ("epoch", "validation accuracy", False, "val_acc"),
    "train accuracy per epoch": ("epoch", "train accuracy", False, "train_acc"),
    GRADS: ("step", "grad RMS", True, "grads"),
    BPTT: ("time step t", "RMS dL/dh_t", False, "bptt"),
}
LOG_METRICS = (GRADS, BPTT)  # decades apart: always on a log axis
STYLES = [Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine]
COLUMNS = [
    "run",
    "graph",
    "status",
    "data",
    "optimizer",
    "batch",
    "epochs",
    "steps",
    "val acc",
    "val loss",
    "last loss",
    "test acc",
]


def _compact(v) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


NUMERIC = {"batch": "batch_size", "epochs": "epochs"}
FINAL = {
    "steps": "steps",
    "val acc": "val_acc",
    "val loss": "val_loss",
    "last loss": "last_loss",
    "test acc": "test_acc",
}


def sort_key(run: RunData, column: str):
    """What a column sorts by: numbers as numbers (missing last), the rest as text."""
    if column in FINAL or column in NUMERIC:
        v = run.final_metrics().get(FINAL[column]) if column in FINAL else None
        if column in NUMERIC:
            v = run.settings.get(NUMERIC[column])
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
        return (0, float(v), "") if ok else (1, 0.0, "")
    if column == "run":
        return (0, float(run.started), run.name)
    return (0, 0.0, describe(run)[COLUMNS.index(column)].lower())


class RunItem(QTreeWidgetItem):
    """A row that sorts by ``sort_key`` (numbers as numbers)."""

    def __lt__(self, other) -> bool:
        tree = self.treeWidget()
        col = COLUMNS[tree.sortColumn()] if tree is not None else "run"
        a, b = getattr(self, "run", None), getattr(other, "run", None)
        if a is None or b is None:
            return super().__lt__(other)
        return sort_key(a, col) < sort_key(b, col)


def describe(run: RunData) -> list[str]:
    s = run.settings
    ds = s.get("dataset") or {}
    ds_text = ds.get("name", "?") if isinstance(ds, dict) else str(ds)
    extra = (
        [f"{k}={_compact(v)}" for k, v in ds.items() if k not in ("name", "path")]
        if isinstance(ds, dict)
        else []
    )
    opt = s.get("optimizer") or {}
    opt_text = (
        f"{opt.get('name', '?')} lr={opt.get('lr', '?'):g}"
        if isinstance(opt, dict) and isinstance(opt.get("lr"), (int, float))
        else str(opt)
    )
    f = run.final_metrics()

    def fmt(v, pct=False):
        if not isinstance(v, (int, float)):
            return ""
        return f"{v:.1%}" if pct else f"{v:.4g}"

    return [
        run.name,
        run.graph_name,
        run.status,
        " ".join([ds_text, *extra]),
        opt_text,
        str(s.get("batch_size", "")),
        str(s.get("epochs", "")),
        str(f.get("steps", "")),
        fmt(f.get("val_acc"), pct=True),
        fmt(f.get("val_loss")),
        fmt(f.get("last_loss")),
        fmt(f.get("test_acc"), pct=True),
    ]


class RunsPanel(Panel):
    title = "Runs"

    def __init__(self, ctrl) -> None:
        super().__init__(ctrl)
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.metric_box.currentIndexChanged.connect(lambda: self.ctrl.request_redraw())
        self.log_scale = QPushButton("log y")
        self.log_scale.setCheckable(True)
        self.log_scale.toggled.connect(self._log)
        self.delete_button = QPushButton("Delete run")
        self.delete_button.clicked.connect(self._delete)
        self.show_button = QPushButton("Show in panels")
        self.show_button.setToolTip(
            "Show the selected run in the other panels (its curves, "
            "and for this session's runs its network)"
        )
        self.show_button.clicked.connect(self._show)
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip(
            "Overlay exactly the selected runs (Ctrl/Shift-click to select several)"
        )
        self.compare_button.clicked.connect(lambda: self.compare_selected())
        self.controls.addWidget(self.compare_button)
        self.controls.addWidget(self.metric_box)
        self.controls.addWidget(self.log_scale)
        self.controls.addWidget(self.show_button)
        self.controls.addWidget(self.delete_button)
        self.finish_controls()
        split = QSplitter(Qt.Orientation.Horizontal)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.tree.itemChanged.connect(self._item_changed)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.plot = line_plot(style_plot(add_plot(self.view.ci), "Compare runs"))
        self.legend = make_legend(self.plot)
        split.addWidget(self.tree)
        split.addWidget(self.view)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([460, 640])
        self.body.addWidget(split)
        self.checked: set[int] = set()
        self.chosen: set[int] = set()  # ticked by the user (or Compare), not on starting
        self.curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._items: dict[int, QTreeWidgetItem] = {}
        self._filling = False
        self._tree_key = None
        self._plot_key = None
        self._lines: dict[int, pg.PlotDataItem] = {}
        self._drawn_counts: dict[int, int] = {}

    def graph_replaced(self) -> None:
        """Another graph is open: the plot is framed afresh (autorange to what is shown), not
        left where the user zoomed or panned it for the old graph."""
        self._plot_key = None
        self.plot.enableAutoRange()
        self.ctrl.request_redraw()

    def _log(self, on: bool) -> None:
        self.ctrl.request_redraw()

    def compare_selected(self, run_ids=None) -> None:
        """Tick exactly the selected runs (or ``run_ids``): their curves overlay."""
        if run_ids is None:
            run_ids = [it.data(0, Qt.ItemDataRole.UserRole) for it in self.tree.selectedItems()]
        ids = set(run_ids)
        if not ids:
            self.ctrl.status("Select the runs to compare in the table first")
            return
        self.chosen = set(ids)
        for rid in set(self.checked) | ids:
            self.check(rid, rid in ids)

    def _state(self):
        return (
            self.ctrl.runs_version,
            self.metric_box.currentText(),
            tuple(sorted(self.checked)),
            self.log_scale.isChecked(),
        )

    def check(self, run_id: int, on: bool = True) -> None:
        (self.checked.add if on else self.checked.discard)(run_id)
        item = self._items.get(run_id)
        if item is not None:
            self._filling = True
            item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self._filling = False
        self.ctrl.request_redraw()

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling:
            return
        rid = item.data(0, Qt.ItemDataRole.UserRole)
        run = self.ctrl.runlist.run_by_id(rid)
        if run is None:
            return
        if column == 0:
            on = item.checkState(0) == Qt.CheckState.Checked
            (self.checked.add if on else self.checked.discard)(rid)
            (self.chosen.add if on else self.chosen.discard)(rid)
            name = item.text(0).strip()
            if name and name != run.name:
                run.name = name[:200]
                self.ctrl.runlist.runs_edited(run)
        self.ctrl.request_redraw()

    def _show(self) -> None:
        item = self.tree.currentItem()
        run = self.ctrl.runlist.run_by_id(item.data(0, Qt.ItemDataRole.UserRole)) if item else None
        if run is not None:
            self.ctrl.runlist.show_run(run)

    def _delete(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            self.ctrl.runlist.delete_run(item.data(0, Qt.ItemDataRole.UserRole))

    def _fill_tree(self, full: bool) -> None:
        """Rows for the runs; ``full`` (the list changed) also adds/removes rows and sizes the
        columns, otherwise only changed texts are written (the live run's row)."""
        self._filling = True
        self.tree.setSortingEnabled(False)  # rows move once, after they are all written
        runs = self.ctrl.runs
        ids = {r.run_id for r in runs}
        for rid in list(self._items):
            if rid not in ids:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self._items.pop(rid)))
        self.checked &= ids
        self.chosen &= ids
        for r in runs:
            item = self._items.get(r.run_id)
            if item is None:
                item = RunItem()
                item.run = r
                item.setFlags(
                    item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable
                )
                item.setData(0, Qt.ItemDataRole.UserRole, r.run_id)
                self.tree.addTopLevelItem(item)
                self._items[r.run_id] = item
            elif not full and r is not self.ctrl.active:
                continue
            for c, text in enumerate(describe(r)):
                if item.text(c) != text:
                    item.setText(c, text)
            state = Qt.CheckState.Checked if r.run_id in self.checked else Qt.CheckState.Unchecked
            if item.checkState(0) != state:
                item.setCheckState(0, state)
            tip = str(r.end.get("message", "")) or r.name
            if item.toolTip(0) != tip:
                item.setToolTip(0, tip)
        if full:
            for c in range(len(COLUMNS)):
                self.tree.resizeColumnToContents(c)
        self.tree.setSortingEnabled(True)
        self._filling = False

    def redraw_key(self, run):
        live = self.ctrl.active
        return (
            self.ctrl.runs_version,
            live.version if live is not None else None,
            self.metric_box.currentText(),
            tuple(sorted(self.checked)),
            self.log_scale.isChecked(),
        )

    def _series(self, metric: str, chosen: list[RunData]) -> list[tuple]:
        """(key, legend name, colour index, pen style, x, y) of every line to draw."""
        xl, yl, per_step, col = METRICS[metric]
        out = []
        for k, r in enumerate(chosen):
            if col == "grads":
                g = r.grads.data() if r.grads is not None else np.zeros((0, 1))
                for i, b in enumerate(r.blocks):
                    name = f"{r.name}: {b}"
                    out.append((name, name, k, STYLES[i % len(STYLES)], g[:, 0], g[:, i + 1]))
            elif col == "bptt":
                for i, (b, v) in enumerate(r.time_grads_avg.items()):
                    v = np.asarray(v, dtype=np.float64)
                    name = f"{r.name}: {b}"
                    t = np.arange(1, len(v) + 1, dtype=np.float64)
                    out.append((name, name, k, STYLES[i % len(STYLES)], t, v))
            elif per_step:
                d = r.steps.data()
                out.append((r.run_id, r.name, k, STYLES[0], d[:, 0], d[:, col]))
            else:
                ep = epoch_columns(r)
                out.append((r.run_id, r.name, k, STYLES[0], ep["epoch"], ep[col]))
        return out

    def draw(self, run: RunData | None) -> None:
        full = self._tree_key != self.ctrl.runs_version
        self._tree_key = self.ctrl.runs_version
        self._fill_tree(full)
        metric = self.metric_box.currentText()
        xl, yl, per_step, col = METRICS[metric]
        chosen = self.ctrl.runlist.compared_runs()
        log_y = self.log_scale.isChecked() or metric in LOG_METRICS
        series = self._series(metric, chosen)
        layout = (metric, log_y, tuple((key, name) for key, name, *_ in series))
        if layout != self._plot_key:
            self._plot_key = layout
            self.plot.clear()
            self.legend.clear()
            self.plot.setLogMode(y=log_y)
            self._lines = {}
            self._drawn_counts = {}
            self.plot.setLabel("bottom", xl, color="#222")
            self.plot.setLabel("left", yl, color="#222")
            graphs = sorted({r.graph_name for r in chosen if r.graph_name})
            across = f" ({', '.join(graphs)})" if len(graphs) > 1 else ""
            set_title(
                self.plot,
                f"Compare runs: {metric}{across}"
                if chosen
                else "Compare runs: tick runs in the list (or select them, Compare)"
                if self.ctrl.runs
                else "No runs yet: train a graph (F5); its runs are listed here, to overlay",
            )
            # Nothing to draw: no axes of 0.1 ... 0.9 and no empty legend box, the title says
            # what to do
            for name in ("left", "bottom"):
                self.plot.showAxis(name, bool(series))
            self.legend.setVisible(bool(series))
            for key, name, k, style, _x, _y in series:
                kw = (
                    {}
                    if per_step or col == "bptt"
                    else {
                        "symbol": "o",
                        "symbolSize": 5,
                        "symbolBrush": colour(k),
                        "symbolPen": None,
                    }
                )
                pen = pg.mkPen(colour(k), width=2, style=style)
                self._lines[key] = self.plot.plot(pen=pen, name=name, **kw)
            self.plot.enableAutoRange()  # one frame for all the lines
            # Rising curves (accuracy, BPTT profiles) leave the lower right free.
            rising = col in ("bptt", "val_acc", "train_acc")
            self.legend.anchor(
                (1, 1 if rising else 0), (1, 1 if rising else 0), offset=(-8, -8 if rising else 8)
            )
        axis = self.plot.getAxis("bottom")
        if (per_step or col == "bptt") and getattr(axis, "_bp_spacing", None) is not None:
            axis._bp_spacing = None
            axis.setTickSpacing()  # automatic again
        self.curves = {}
        live = self.ctrl.active
        for key, _name, _k, _s, x, y in series:
            ok = np.isfinite(y) & (y > 0) if log_y else np.isfinite(y)
            x, y = x[ok], y[ok]
            self.curves[key] = (x, y)
            if not per_step and col != "bptt" and len(x):
                integer_ticks(axis, max(float(x[-1]), getattr(axis, "_bp_last", 1.0)))
            if live is not None or self._drawn_counts.get(key) != len(x):
                self._drawn_counts[key] = len(x)
                self._lines[key].setData(x, y)

    def table(self):
        """The overlaid curves, long format: run, x, y."""
        header = ["run", "x", self.metric_box.currentText()]
        rows = []
        for rid, (x, y) in self.curves.items():
            run = self.ctrl.runlist.run_by_id(rid) if isinstance(rid, int) else None
            name = run.name if run else str(rid)
            rows.extend([name, float(a), float(b)] for a, b in zip(x, y, strict=True))
        return header, rows
