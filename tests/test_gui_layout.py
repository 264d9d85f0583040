"""The window's remembered layout: restored when it fits the screen, replaced by the default
when it does not (a layout saved on a larger screen must not push docks off this one), and
windows made with ``restore_layout=False`` (benchmarks, scripts) never overwrite it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from gui.settings import app_settings

pytest_plugins = ["gui_support"]


def spread_panels_side_by_side(w) -> None:
    docks = list(w.training.panel_docks.values())
    for i, dock in enumerate(docks):
        w.removeDockWidget(dock)
        if i == 0:
            w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        else:
            w.splitDockWidget(docks[i - 1], dock, Qt.Orientation.Horizontal)
        dock.show()


def test_a_layout_too_wide_for_the_screen_falls_back_to_the_default(qtbot, make_window):
    w = make_window()
    default_width = w.minimumSizeHint().width()
    spread_panels_side_by_side(w)
    qtbot.wait(10)
    room = w.screen().availableGeometry().width()
    assert w.minimumSizeHint().width() > room  # the saved layout would not fit
    w.save_settings()
    w2 = make_window()
    assert w2.minimumSizeHint().width() <= max(room, default_width)
    assert not any(
        d.isVisible() and not d.visibleRegion().isEmpty() and d.isFloating()
        for d in w2.training.panel_docks.values()
    )


def test_a_layout_that_fits_is_restored(qtbot, make_window):
    w = make_window()
    w.training.panel_docks["gradients"].setFloating(False)
    w.training.panel_docks["gradients"].hide()
    w.save_settings()
    w2 = make_window()
    assert not w2.training.panel_docks["gradients"].isVisible()


def test_a_window_that_does_not_restore_a_layout_does_not_save_one(qtbot, gui_env):
    from gui.main_window import MainWindow

    app_settings().remove("window/state")
    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    w.show()
    spread_panels_side_by_side(w)
    assert w.close()
    w.deleteLater()
    assert app_settings().value("window/state") is None


def test_new_window_joins_its_window_list_and_quit_closes_them_all(qtbot, make_window, monkeypatch):
    from PySide6.QtWidgets import QApplication

    w = make_window()
    other = make_window()
    assert w.windows == [w] and other.windows == [other]  # no list shared through a module
    new = w.spawn()
    new.files.ask_save_changes = lambda: "discard"
    assert w.windows == [w, new] and new.windows is w.windows
    quits = []
    monkeypatch.setattr(QApplication, "quit", lambda: quits.append(1))
    w.quit_all()
    assert quits == [1] and w.windows == [] and other.windows == [other]
    assert not new.isVisible()
    new.deleteLater()


def test_panels_draw_images_row_major_without_changing_pyqtgraph_defaults(qtbot):
    import pyqtgraph as pg

    import gui.training.panels
    from gui.training.panels.base import image_view

    layout = pg.GraphicsLayoutWidget()
    qtbot.addWidget(layout)
    _, img = image_view(layout, 0, 0)
    assert img.axisOrder == "row-major"
    assert gui.training.panels.PANEL_TYPES
    assert pg.getConfigOption("imageAxisOrder") == "col-major"
