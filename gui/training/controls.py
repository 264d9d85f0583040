"""The Training dock: data set, loss, optimizer, schedule, training settings; run buttons,
progress, and the learning rate to use from now on.

It edits a training spec, the graph file's ``training`` part (``spec()`` / ``set_spec()``);
checking stays in the engine (``engine.training_spec.check_training``), whose ConfigError text is
shown here in red when a run cannot start.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.augment import AUGMENT_OPTIONS
from engine.data import (
    BUILTIN_DATASETS,
    DATASETS,
    DOWNLOADED_DATASETS,
    USER_FILE_DATASETS,
    dataset_options,
)
from engine.losses import LOSSES
from engine.optim import OPTIMIZER_OPTIONS
from engine.schedules import SCHEDULE_OPTIONS
from engine.training_spec import TRAINING_OPTIONS
from gui.editors import guard_wheel
from gui.training.augment_preview import AugmentPreview
from gui.training.forms import OptForm, SciSpinBox

SPLIT_KEYS = ("val_split", "test_split")  # the Data box's; engine/splits.py

IMPORT_KINDS = {  # menu text -> (data set name, file dialog filter or None for a folder)
    "CSV file...": ("csv", "CSV files (*.csv *.tsv *.txt);;All files (*)"),
    "NumPy .npz archive...": ("npz", "NumPy archives (*.npz);;All files (*)"),
    "Image folder (one sub-folder per class)...": ("image_folder", None),
    "MNIST IDX images...": (
        "idx",
        "IDX files (*-ubyte *-ubyte.gz *.idx *.idx3 *.gz);;All files (*)",
    ),
    "Text file (character model)...": ("text", "Text files (*.txt *.md);;All files (*)"),
}


def _path_option(name: str) -> str | None:
    """The option of data set ``name`` that holds its file or folder path."""
    for key, opt in dataset_options(name).items():
        if opt.kind == "path":
            return key
    return None


class TrainingDock(QDockWidget):
    """Signals: start(), pause(), resume(), stop(), step(), lr_changed(float), edited()."""

    start = Signal()
    pause = Signal()
    resume = Signal()
    stop = Signal()
    step = Signal()
    lr_changed = Signal(float)
    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.setObjectName("training_dock")
        self._heads: list | None = None  # the graph's extra outputs (engine.heads), kept
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(6, 6, 6, 6)

        # --- data ----------------------------------------------------------------------------
        data = QGroupBox("Data")
        form = QVBoxLayout(data)
        row = QHBoxLayout()
        self.dataset = QComboBox()
        for name in BUILTIN_DATASETS:
            self.dataset.addItem(name, name)
            self.dataset.setItemData(
                self.dataset.count() - 1, DATASETS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.dataset.insertSeparator(self.dataset.count())
        for name in DOWNLOADED_DATASETS:  # fetched on first use (a progress dialog)
            self.dataset.addItem(f"{name} (download)", name)
            self.dataset.setItemData(
                self.dataset.count() - 1, DATASETS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.dataset.insertSeparator(self.dataset.count())
        for name in USER_FILE_DATASETS:
            self.dataset.addItem(f"{name} (your file)", name)
            self.dataset.setItemData(
                self.dataset.count() - 1, DATASETS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        self.import_button = QPushButton("Import...")
        menu = QMenu(self.import_button)
        for text in IMPORT_KINDS:
            menu.addAction(text, lambda t=text: self.import_file(t))
        self.import_button.setMenu(menu)
        row.addWidget(self.dataset, 1)
        row.addWidget(self.import_button)
        form.addLayout(row)
        self.dataset_info = QLabel()
        self.dataset_info.setWordWrap(True)
        self.dataset_info.setStyleSheet("color: #555;")
        form.addWidget(self.dataset_info)
        self.dataset_form = OptForm()
        self.dataset_form.changed.connect(self.edited)
        form.addWidget(self.dataset_form)
        self.split_form = OptForm({k: TRAINING_OPTIONS[k] for k in SPLIT_KEYS})
        self.split_form.changed.connect(self.edited)
        form.addWidget(self.split_form)
        col.addWidget(data)

        # --- loss and optimizer ------------------------------------------------------------
        opt_box = QGroupBox("Loss and optimizer")
        of = QFormLayout(opt_box)
        self.loss = QComboBox()
        self.loss.addItems(LOSSES)
        self.loss.currentIndexChanged.connect(self.edited)
        of.addRow("loss", self.loss)
        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZER_OPTIONS))
        self.optimizer.currentIndexChanged.connect(self._optimizer_changed)
        of.addRow("optimizer", self.optimizer)
        self.optimizer_form = OptForm()
        self.optimizer_form.changed.connect(self.edited)
        of.addRow(self.optimizer_form)
        self.schedule = QComboBox()
        self.schedule.addItems(list(SCHEDULE_OPTIONS))
        self.schedule.currentIndexChanged.connect(self._schedule_changed)
        of.addRow("lr schedule", self.schedule)
        self.schedule_form = OptForm()
        self.schedule_form.changed.connect(self.edited)
        of.addRow(self.schedule_form)
        col.addWidget(opt_box)

        # --- the rest of the training settings ----------------------------------------------
        train_box = QGroupBox("Training")
        tl = QVBoxLayout(train_box)
        self.train_form = OptForm(
            {k: o for k, o in TRAINING_OPTIONS.items() if k not in SPLIT_KEYS}
        )
        self.train_form.changed.connect(self.edited)
        tl.addWidget(self.train_form)
        col.addWidget(train_box)

        # --- augmentation (engine.augment: training batches only) ----------------------------
        self.augment_box = QGroupBox("Augmentation (training batches only)")
        al = QVBoxLayout(self.augment_box)
        self.augment_form = OptForm(AUGMENT_OPTIONS)
        self.augment_form.changed.connect(self.edited)
        al.addWidget(self.augment_form)
        self.augment_preview = AugmentPreview(self.spec)
        al.addWidget(self.augment_preview)
        col.addWidget(self.augment_box)

        # --- run -----------------------------------------------------------------------------
        run_box = QGroupBox("Run")
        rl = QVBoxLayout(run_box)
        buttons = QGridLayout()  # two rows: the dock stays narrow enough to sit by the canvas
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.step_button = QPushButton("Step")
        self.start_button.setToolTip("Train the graph with these settings (F5)")
        self.step_button.setToolTip("Run one batch (starts a paused run if none is going)")
        for i, (b, sig) in enumerate(
            (
                (self.start_button, self.start),
                (self.pause_button, self.pause),
                (self.resume_button, self.resume),
                (self.step_button, self.step),
                (self.stop_button, self.stop),
            )
        ):
            b.clicked.connect(sig)
            buttons.addWidget(b, i // 3, i % 3)
        rl.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m steps")
        rl.addWidget(self.progress)
        self.rate = QLabel("idle")
        # Its text changes 4 times a second: with a size hint that follows the text, each
        # change would re-lay out the main window and repaint every panel.
        self.rate.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        rl.addWidget(self.rate)
        lr_row = QHBoxLayout()
        lr_row.addWidget(QLabel("learning rate now"))
        self.lr_now = SciSpinBox(0.0, 1e3)
        self.lr_now.setValue(1e-3)
        self.lr_button = QPushButton("Set")
        self.lr_button.setToolTip("Use this learning rate from the next step on")
        self.lr_button.clicked.connect(lambda: self.lr_changed.emit(self.lr_now.value()))
        lr_row.addWidget(self.lr_now, 1)
        lr_row.addWidget(self.lr_button)
        rl.addLayout(lr_row)
        self.result = QLabel()  # the shown run's outcome: final metrics, best epoch
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.hide()
        rl.addWidget(self.result)
        self.blocked = ""  # why Start is off ("": it is not)
        self.blocked_label = QLabel()
        self.blocked_label.setWordWrap(True)
        self.blocked_label.setStyleSheet("color: #8d4b00;")
        self.blocked_label.hide()
        rl.addWidget(self.blocked_label)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet("color: #b00020;")
        self.error.hide()
        rl.addWidget(self.error)
        col.insertWidget(0, run_box)  # the controls first: no scrolling to reach them
        col.addStretch(1)

        guard_wheel(self.dataset, self.loss, self.optimizer, self.schedule, self.lr_now)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        # Never narrower than its contents (the horizontal scroll bar is off: they would be
        # cut at the right edge).
        scroll.setMinimumWidth(
            inner.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        )
        self.setWidget(scroll)
        self._dataset_changed()
        self._optimizer_changed()
        self._schedule_changed()
        self.set_state("idle")

    # --- editors follow the chosen names ---------------------------------------------------------
    def dataset_name(self) -> str:
        return self.dataset.currentData() or BUILTIN_DATASETS[0]

    def _dataset_changed(self) -> None:
        name = self.dataset_name()
        self.dataset_form.set_options(dataset_options(name))
        self.dataset_info.setText(DATASETS.get(name, ""))
        self.edited.emit()

    def _optimizer_changed(self) -> None:
        self.optimizer_form.set_options(OPTIMIZER_OPTIONS[self.optimizer.currentText()])
        self.edited.emit()

    def _schedule_changed(self) -> None:
        self.schedule_form.set_options(SCHEDULE_OPTIONS[self.schedule.currentText()])
        self.edited.emit()

    def import_file(self, kind_text: str) -> str | None:
        """Ask for a file (or folder) and select the matching data set with that path."""
        name, filt = IMPORT_KINDS[kind_text]
        if filt is None:
            path = QFileDialog.getExistingDirectory(self, "Choose the image folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, f"Import {name} data", "", filt)
        if not path:
            return None
        self.use_file(name, path)
        return path

    def use_file(self, name: str, path: str | os.PathLike) -> None:
        """Select user-file data set ``name`` reading ``path``."""
        i = self.dataset.findData(name)
        self.dataset.setCurrentIndex(i)
        key = _path_option(name)
        values = self.dataset_form.values()
        if key:
            values[key] = str(Path(path))
        self.dataset_form.set_values(values)
        self.edited.emit()

    # --- the spec ------------------------------------------------------------------------------
    def spec(self) -> dict:
        """The settings as the graph file's ``training`` part (JSON-ready)."""
        out: dict = {
            "dataset": {"name": self.dataset_name(), **self.dataset_form.values()},
            "loss": self.loss.currentText(),
            "optimizer": {
                "name": self.optimizer.currentText(),
                **self.optimizer_form.values(all_values=True),
            },
        }
        if self.schedule.currentText() != "constant":
            out["schedule"] = {
                "name": self.schedule.currentText(),
                **self.schedule_form.values(all_values=True),
            }
        out.update(self.split_form.values(all_values=True))
        out.update(self.train_form.values(all_values=True))
        if out.get("clip_norm") is None:
            out.pop("clip_norm", None)
        if not out.get("scheduled_sampling"):  # 0: teacher forcing, the default
            out.pop("scheduled_sampling", None)
        if not out.get("mask_padding"):
            out.pop("mask_padding", None)
        augment = self.augment_form.values()  # only the settings changed from "off"
        if augment:
            out["augment"] = augment
        if self._heads is not None:  # engine.heads: kept as the graph gives them (no editor)
            out["heads"] = self._heads
        return out

    def set_spec(self, spec: dict | None) -> None:
        """Show ``spec`` (a graph's ``training``; missing parts keep their defaults)."""
        spec = dict(spec or {})
        blockers = [
            QSignalBlocker(w)
            for w in (self, self.dataset, self.loss, self.optimizer, self.schedule)
        ]
        ds = spec.get("dataset") or {"name": "digits"}
        if isinstance(ds, str):
            ds = {"name": ds}
        i = self.dataset.findData(ds.get("name"))
        if i >= 0:
            self.dataset.setCurrentIndex(i)
        self.dataset_form.set_options(dataset_options(self.dataset_name()))
        self.dataset_info.setText(DATASETS.get(self.dataset_name(), ""))
        self.dataset_form.set_values({k: v for k, v in ds.items() if k != "name"})
        self.loss.setCurrentIndex(max(0, self.loss.findText(spec.get("loss", "cross_entropy"))))
        opt = spec.get("optimizer") or {"name": "adam"}
        if isinstance(opt, str):
            opt = {"name": opt}
        self.optimizer.setCurrentIndex(max(0, self.optimizer.findText(opt.get("name", "adam"))))
        self.optimizer_form.set_options(OPTIMIZER_OPTIONS[self.optimizer.currentText()])
        self.optimizer_form.set_values({k: v for k, v in opt.items() if k != "name"})
        sch = spec.get("schedule") or {"name": "constant"}
        if isinstance(sch, str):
            sch = {"name": sch}
        self.schedule.setCurrentIndex(max(0, self.schedule.findText(sch.get("name", "constant"))))
        self.schedule_form.set_options(SCHEDULE_OPTIONS[self.schedule.currentText()])
        self.schedule_form.set_values({k: v for k, v in sch.items() if k != "name"})
        self.split_form.set_values(spec)
        self.train_form.set_values(spec)
        aug = spec.get("augment")
        self.augment_form.set_values(aug if isinstance(aug, dict) else {})
        self._heads = copy.deepcopy(spec["heads"]) if spec.get("heads") else None
        self.lr_now.setValue(float(self.optimizer_form.values(all_values=True).get("lr", 1e-3)))
        del blockers

    # --- state ---------------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        """idle | preparing | running | paused: which buttons and editors are usable."""
        self.state = state
        active = state != "idle"
        self.start_button.setEnabled(not active and not self.blocked)
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state == "paused")
        self.stop_button.setEnabled(active)
        self.step_button.setEnabled(state == "paused" or (state == "idle" and not self.blocked))
        self.lr_button.setEnabled(state in ("running", "paused"))
        for w in (
            self.dataset,
            self.import_button,
            self.dataset_form,
            self.split_form,
            self.loss,
            self.optimizer,
            self.optimizer_form,
            self.schedule,
            self.schedule_form,
            self.train_form,
            self.augment_form,
        ):
            w.setEnabled(not active)

    def set_blocked(self, reason: str) -> None:
        """Start (and Step) stay off while ``reason`` stands; it is shown under the buttons."""
        self.blocked = reason
        self.blocked_label.setText(reason)
        self.blocked_label.setVisible(bool(reason))
        self.start_button.setToolTip(reason or "Train the graph with these settings (F5)")
        self.set_state(self.state)

    def show_result(self, name: str, status: str, text: str) -> None:
        """The outcome of run ``name`` under the progress bar ("": none shown)."""
        html = f"<b>{name} {status}</b>: {text}" if text else ""
        if self.result.text() != html:
            self.result.setText(html)
            self.result.setVisible(bool(html))

    def clear_run(self) -> None:
        """No run shown (another graph was opened): progress, outcome and error are reset."""
        self.set_progress(0, 1, "idle")
        self.show_result("", "", "")
        self.show_error("")

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def set_progress(self, done: int, total: int, text: str) -> None:
        total = max(1, total)
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        if self.progress.value() != min(done, total):
            self.progress.setValue(min(done, total))
        if self.rate.text() != text:
            self.rate.setText(text)
            self.rate.setVisible(bool(text))
