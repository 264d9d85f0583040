"""The first use of a standard data set in the app: its download, with a progress dialog.

``DataDownload(parent, spec, on_ready)`` downloads what data set ``spec`` needs
(``engine.data.prepare``) in a worker thread, so the window never blocks, and shows a progress
dialog whose Cancel stops it (the ``.part`` file is kept: the next download goes on from there).
Done, it calls ``on_ready()``; a failure (offline, blocked, a wrong checksum) is shown in a dialog
whose one line names the URL tried and the folder and file name to place a manual download in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from engine.data import prepare
from engine.data.download import DownloadCancelled
from engine.errors import BlockPropError


class DataDownload(QObject):
    """One data set's download (see the module docstring). ``error`` holds the failure's
    message afterwards ("" when it worked or was cancelled), ``cancelled`` whether it was."""

    progressed = Signal(int, int, str)  # bytes done, bytes in all (0: unknown), file name
    ended = Signal(str, bool)  # error message ("" when it worked), cancelled

    def __init__(
        self, parent: QWidget, spec: dict, on_ready: Callable[[], None] | None = None
    ) -> None:
        super().__init__(parent)
        self.spec, self.on_ready = dict(spec), on_ready
        self.error, self.cancelled, self.finished = "", False, False
        self.message_box: QMessageBox | None = None
        self._stop = threading.Event()
        self._shown = (-1, "")
        name = self.spec.get("name", "data")
        self.dialog = QProgressDialog(
            f"Downloading the data set {name}...", "Cancel", 0, 100, parent
        )
        self.dialog.setWindowTitle("Downloading data")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)
        self.progressed.connect(self._on_progress)
        self.ended.connect(self._on_ended)
        self.dialog.show()
        self._thread = threading.Thread(target=self._run, name="data download", daemon=True)
        self._thread.start()

    @Slot()
    def cancel(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread (tests); True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _progress(self, done: int, total: int | None, name: str) -> None:  # worker thread
        pct = done * 100 // total if total else -1
        if (pct, name) != self._shown:  # a signal per percent, not per block
            self._shown = (pct, name)
            self.progressed.emit(int(done), int(total or 0), name)

    def _run(self) -> None:  # worker thread
        try:
            prepare(self.spec, progress=self._progress, cancel=self._stop.is_set)
        except DownloadCancelled:
            self.ended.emit("", True)
        except BlockPropError as e:
            self.ended.emit(str(e), False)
        except Exception as e:  # a bug, not the network: still one line, never a hang
            self.ended.emit(f"the download failed: {type(e).__name__}: {e}", False)
        else:
            self.ended.emit("", False)

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, name: str) -> None:
        if total:
            self.dialog.setMaximum(100)
            self.dialog.setValue(min(100, done * 100 // total))
            self.dialog.setLabelText(f"{name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            self.dialog.setMaximum(0)  # a busy bar: the size is not known
            self.dialog.setLabelText(f"{name}: {done / 1e6:.1f} MB")

    @Slot(str, bool)
    def _on_ended(self, error: str, cancelled: bool) -> None:
        self.error, self.cancelled, self.finished = error, cancelled, True
        self.dialog.canceled.disconnect(self.cancel)
        self.dialog.close()
        if error:
            box = QMessageBox(self.parent())
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("Cannot download the data set")
            box.setText(error)
            box.open()  # not exec(): nothing waits on it
            self.message_box = box
        elif not cancelled and self.on_ready is not None:
            self.on_ready()
