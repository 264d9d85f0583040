"""The "?" help pages (issue 19 item 8): every block type in the palette and every panel has a
page that renders (the lecture's formula drawn, the shapes, a link to the reference
implementation that opens its source); the "?" buttons, the palette's context menu and F1
open them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt, QUrl
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QDockWidget, QScrollBar, QToolButton

from engine.layers import LAYER_TYPES
from engine.layers.docs import block_help

pytest_plugins = ["gui_support"]

ENGINE_TYPES = sorted(n for n, c in LAYER_TYPES.items() if c.__module__.startswith("engine."))


def images_of(doc: QTextDocument, html: str) -> list:
    import re

    urls = re.findall(r'<img src="([^"]+)"', html)
    return [doc.resource(QTextDocument.ResourceType.ImageResource, QUrl(u)) for u in urls]


@pytest.mark.parametrize("type_name", ENGINE_TYPES)
def test_every_block_type_has_a_page_with_its_formula_shapes_and_reference(qtbot, type_name):
    from gui.help import HelpWindow

    h = block_help(LAYER_TYPES[type_name])
    assert h.formulas, f"{type_name} declares no formulas"
    assert h.shapes, f"{type_name}'s docstring has no Shapes: line"
    win = HelpWindow()
    qtbot.addWidget(win)
    win.show_block(type_name)
    doc, html = win.browser.document(), win.html
    imgs = images_of(doc, html)
    assert len(imgs) == len(h.formulas)
    assert all(not i.isNull() and i.width() > 20 and i.height() > 8 for i in imgs)
    assert type_name in html and "Shapes" in html
    if h.reference is not None:  # every block but Input has a textbook version
        module, forward, backward = h.reference
        assert f'href="ref:{module}/{forward}"' in html and f"engine/reference/{module}.py" in html
        win.browser.anchorClicked.emit(QUrl(f"ref:{module}/{forward}"))
        assert win.page == ("ref", module, forward)
        assert f"def {forward}(" in win.browser.toPlainText()
        win.back()
        assert win.page == ("block", type_name)
    else:
        assert type_name == "Input"


def test_a_formula_mathtext_cannot_read_shows_as_text(qtbot):
    from gui.help import HelpWindow, PanelHelp

    win = HelpWindow()
    qtbot.addWidget(win)
    win.show_panel(PanelHelp("Made up", "A page.", (r"$\frac{1}{$", r"$x^2$")))
    assert "not drawn" in win.browser.toPlainText() and "\\frac{1}{" in win.browser.toPlainText()
    assert len(images_of(win.browser.document(), win.html)) == 1


def test_every_dock_has_a_help_button_that_opens_its_page(qtbot, window):
    from gui.help import HelpWindow
    from gui.help_pages import help_for

    docks = window.findChildren(QDockWidget)
    assert len(docks) >= 13  # blocks, inspector, problems, summary, training, eight panels
    for dock in docks:
        page = help_for(dock) or help_for(dock.widget())
        assert page is not None, dock.windowTitle()
        buttons = dock.widget().findChildren(QToolButton, "help_button")
        assert len(buttons) == 1, dock.windowTitle()
        if not dock.isVisible():
            dock.show()
        b = buttons[0]
        for bar in dock.widget().findChildren(QScrollBar):  # never under a scroll bar
            if bar.isVisible() and bar.orientation() == Qt.Orientation.Vertical:
                top_left = bar.mapTo(dock.widget(), bar.rect().topLeft())
                assert not b.geometry().intersects(QRect(top_left, bar.size())), dock.windowTitle()
        buttons[0].click()
        win = window.findChild(HelpWindow, "help_window")
        assert win is not None and win.isVisible()
        if buttons[0] is window.palette_panel.help_button:
            assert win.page == ("panel", help_for(window.palette_panel))
        else:
            assert win.page == ("panel", page), dock.windowTitle()
        assert page.title in win.browser.toPlainText()
        imgs = images_of(win.browser.document(), win.html)
        assert len(imgs) == len(win.page[1].formulas) and all(not i.isNull() for i in imgs)


def test_palette_help_button_context_menu_and_f1_open_the_block_page(qtbot, window):
    from gui.help import HelpWindow

    palette = window.palette_panel
    item = palette.items["LSTM"]
    palette.tree.setCurrentItem(item)
    item.setSelected(True)
    palette.help_button.click()
    win = window.findChild(HelpWindow, "help_window")
    assert win.page == ("block", "LSTM") and "Long short-term memory" in win.browser.toPlainText()
    assert "engine/reference/recurrent.py" in win.browser.toPlainText()
    palette.items["Dense"].setSelected(True)
    palette.tree.setCurrentItem(palette.items["Dense"])
    palette.tree.setFocus()
    qtbot.keyClick(palette.tree, Qt.Key.Key_F1)
    assert win.page == ("block", "Dense")


def test_f1_on_the_canvas_opens_the_selected_blocks_page(qtbot, window):
    from gui.help import HelpWindow, help_for_focus

    bid = window.graph.add_node("Conv2D", {"filters": 4, "kernel_size": 3})
    window.scene.blocks[bid].setSelected(True)
    assert window.selected_blocks() == [bid]
    window.canvas.setFocus()
    help_for_focus(window)
    win = window.findChild(HelpWindow, "help_window")
    assert win.page == ("block", "Conv2D")


def test_the_canvas_context_menu_offers_the_selected_blocks_page(qtbot, window):
    from PySide6.QtCore import QPoint, QPointF

    from gui.help import HelpWindow

    bid = window.graph.add_node("GRU", {"hidden_size": 4})
    window.scene.blocks[bid].setSelected(True)
    menu = window.actions.context_menu(QPoint(10, 10), QPointF(0, 0))
    help_actions = [a for a in menu.actions() if a.text().startswith("Help on GRU")]
    assert len(help_actions) == 1
    help_actions[0].trigger()
    menu.close()
    assert window.findChild(HelpWindow, "help_window").page == ("block", "GRU")
