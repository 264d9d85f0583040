"""Fixtures shared by the GUI tests (test_gui_*.py), loaded with ``pytest_plugins``.

Every window is made through ``make_window`` and closed at teardown (no window outlives its
test); QSettings and the recovery folder point into the test's tmp_path.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QApplication


@pytest.fixture
def gui_env(tmp_path):
    """Settings and recovery files in tmp_path, never in the user's real locations."""
    folder = str(tmp_path / "settings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    QStandardPaths.setTestModeEnabled(True)
    from gui.settings import app_settings

    app_settings().setValue("files/recovery_dir", str(tmp_path / "recovery"))
    yield tmp_path


@pytest.fixture
def make_window(qtbot, gui_env):
    from gui.main_window import MainWindow

    windows = []

    def make(show: bool = True, data_check: bool = False):
        """``data_check``: the Problems list also checks the graph against the Training dock's
        data set (off by default: most tests build graphs that fit no data set, and the data
        set loads in a thread, so its problems would come and go with timing)."""
        w = MainWindow()
        w.live.check_data = data_check
        w.errors = []
        w.files.show_error = lambda title, text: w.errors.append((title, text))

        def unexpected_prompt():
            raise AssertionError("an unsaved-changes prompt nobody expected")

        w.files.ask_save_changes = unexpected_prompt
        w.files.ask_restore = lambda data: False
        w.training.ask_stop_training = lambda: True  # "Stop and close" (a dialog would wait)
        windows.append(w)
        if show:
            w.show()
            qtbot.waitExposed(w)
        return w

    yield make
    for w in windows:
        w.files.ask_save_changes = lambda: "discard"
        w.close()
        w.deleteLater()
    QApplication.processEvents()


@pytest.fixture
def window(make_window):
    return make_window()
