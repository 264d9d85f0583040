"""The "?" help pages: one short page per block type and per panel.

A block's page is what its layer class says of itself (``engine.layers.docs.block_help``: the
lecture's formulas, rendered; the shapes; the settings; a link to its readable reference
implementation in engine/reference, whose source the page opens). A panel's page is its entry
in ``gui.help_pages.PANEL_HELP`` (keyed by the panel's class). Formulas are TeX, drawn by
matplotlib's mathtext (Agg, offline) into images the page holds as resources.

Opened by the "?" buttons (the palette, every panel), the palette's context menu, and F1 (the
block selected in the palette or on the canvas, else the panel that has the focus).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO

from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QAction, QImage, QKeySequence, QTextDocument
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QDialog,
    QDialogButtonBox,
    QStyle,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.layers import LAYER_TYPES
from engine.layers.docs import block_help, reference_source

FORMULA_DPI = 100
FORMULA_PT = 13


@dataclass(frozen=True)
class PanelHelp:
    """A panel's help page: a title, a few short paragraphs (blank-line separated), formulas."""

    title: str
    text: str
    formulas: tuple[str, ...] = ()


@lru_cache(maxsize=512)
def formula_png(tex: str, dpi: int = FORMULA_DPI) -> bytes:
    """``tex`` (mathtext: text with $...$ parts) drawn as a PNG, black on transparent."""
    from matplotlib import mathtext  # imported on first use: the app starts without it
    from matplotlib.font_manager import FontProperties

    buf = BytesIO()
    mathtext.math_to_image(tex, buf, prop=FontProperties(size=FORMULA_PT), dpi=dpi, format="png")
    return buf.getvalue()


def formula_image(tex: str) -> QImage:
    img = QImage.fromData(formula_png(tex), "PNG")
    if img.isNull():
        raise ValueError(f"formula could not be drawn: {tex}")
    return img


def _paras(text: str) -> str:
    return "".join(f"<p>{html.escape(' '.join(p.split()))}</p>" for p in text.split("\n\n"))


def _formulas_html(doc: QTextDocument, formulas: tuple[str, ...]) -> str:
    out = []
    for i, tex in enumerate(formulas):
        try:
            img = formula_image(tex)
        except ValueError:  # a block type made elsewhere may declare TeX mathtext cannot read
            out.append(f"<p><tt>{html.escape(tex)}</tt> (not drawn: mathtext cannot read it)</p>")
            continue
        url = QUrl(f"formula://{i}/{abs(hash(tex))}.png")
        doc.addResource(QTextDocument.ResourceType.ImageResource, url, img)
        out.append(f'<p style="margin-left:12px"><img src="{url.toString()}"></p>')
    return "".join(out)


def block_page(doc: QTextDocument, type_name: str) -> str:
    """The HTML of block type ``type_name``'s page (its formula images added to ``doc``)."""
    h = block_help(LAYER_TYPES[type_name])
    parts = [f"<h2>{html.escape(h.type_name)}</h2>"]
    if h.family:
        parts.append(f'<p style="color:#666">{html.escape(h.family)}</p>')
    parts.append(f"<p>{html.escape(h.summary)}</p>")
    if h.formulas:
        parts.append("<h3>Formula</h3>" + _formulas_html(doc, h.formulas))
    if h.shapes:
        parts.append(f"<h3>Shapes</h3><p><tt>{html.escape(h.shapes)}</tt></p>")
    if h.settings:
        rows = "".join(
            f"<tr><td><tt>{html.escape(k)}</tt>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>"
            for k, v in h.settings
        )
        parts.append(f"<h3>Settings</h3><table>{rows}</table>")
    parts.append("<h3>Reference implementation</h3>")
    if h.reference is None:
        parts.append("<p>None: this block passes its data through.</p>")
    else:
        mod, fwd, bwd = h.reference
        links = " / ".join(f'<a href="ref:{mod}/{fn}">{fn}</a>' for fn in (fwd, bwd))
        parts.append(
            f"<p><tt>{h.reference_path}</tt>: {links}<br>the textbook version (loops and the "
            "lecture's formulas) that tests/test_reference.py holds equal to the fast one.</p>"
        )
    return "".join(parts)


def panel_page(doc: QTextDocument, page: PanelHelp) -> str:
    parts = [f"<h2>{html.escape(page.title)}</h2>", _paras(page.text)]
    if page.formulas:
        parts.append("<h3>Formula</h3>" + _formulas_html(doc, page.formulas))
    return "".join(parts)


def reference_page(module: str, function: str) -> str:
    src = reference_source(module, function)
    return (
        f'<p><a href="back:">&larr; back</a></p><h2>engine/reference/{html.escape(module)}.py'
        f"</h2><h3>{html.escape(function)}</h3><pre>{html.escape(src)}</pre>"
    )


class HelpWindow(QDialog):
    """One window per main window; each page replaces the last (``back:`` returns)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("help_window")
        self.setWindowTitle("Help")
        self.resize(700, 680)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._link)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)
        self.page: tuple = ()
        self.html = ""
        self._history: list[tuple] = []

    def open(self, page: tuple) -> None:
        """Show ``page``: ("block", type name), ("panel", PanelHelp) or ("ref", module, fn)."""
        if self.page and self.page != page:
            self._history.append(self.page)
        self.page = page
        self._render(page)

    def _render(self, page: tuple) -> None:
        doc = self.browser.document()
        kind = page[0]
        if kind == "block":
            text, title = block_page(doc, page[1]), page[1]
        elif kind == "panel":
            text, title = panel_page(doc, page[1]), page[1].title
        else:
            text, title = reference_page(page[1], page[2]), page[2]
        self.setWindowTitle(f"Help: {title}")
        self.html = text  # as built (the browser's toHtml() is Qt's rewrite of it)
        self.browser.setHtml(text)
        self.show()
        self.raise_()

    def show_block(self, type_name: str) -> None:
        self.open(("block", type_name))

    def show_panel(self, page: PanelHelp) -> None:
        self.open(("panel", page))

    def show_reference(self, module: str, function: str) -> None:
        self.open(("ref", module, function))

    def back(self) -> None:
        if self._history:
            self.page = self._history.pop()
            self._render(self.page)

    def _link(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("ref:"):
            module, _, function = text[4:].partition("/")
            self.show_reference(module, function)
        elif text.startswith("block:"):
            self.show_block(text[6:])
        elif text.startswith("back:"):
            self.back()


def help_window(owner: QWidget) -> HelpWindow:
    """The help window of ``owner``'s top-level window (made on first use)."""
    top = owner.window()
    win = top.findChild(HelpWindow, "help_window")
    return win if win is not None else HelpWindow(top)


def help_button(tooltip: str, on_click) -> QToolButton:
    b = QToolButton()
    b.setText("?")
    b.setObjectName("help_button")
    b.setToolTip(f"{tooltip} (F1)")
    b.setAutoRaise(True)
    b.setStyleSheet("QToolButton { font-weight: bold; min-width: 18px; }")
    b.clicked.connect(on_click)
    return b


class _Corner(QObject):
    """Keeps a "?" button in the top-right corner of the widget it watches."""

    def __init__(self, widget: QWidget, button: QToolButton) -> None:
        super().__init__(widget)
        self.widget, self.button = widget, button
        widget.installEventFilter(self)
        self.place()

    def place(self) -> None:
        b, w = self.button, self.widget
        b.adjustSize()
        right = w.width() - 2
        extent = w.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        areas = w.findChildren(QAbstractScrollArea)
        if isinstance(w, QAbstractScrollArea):  # a dock whose content scrolls as a whole
            areas.insert(0, w)
        for area in areas:  # clear of its (future) scroll bar
            edge = w.width() if area is w else area.mapTo(w, area.rect().topRight()).x()
            if area.isVisible() and edge >= w.width() - 6:
                right = min(right, edge - extent - 1)
        b.move(max(0, right - b.width()), 2)
        b.raise_()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.place()
        return False


def corner_help(widget: QWidget, page: PanelHelp) -> QToolButton:
    """A "?" in ``widget``'s top-right corner that opens ``page``."""
    b = help_button(f"Help on {page.title}", lambda: help_window(widget).show_panel(page))
    b.setParent(widget)
    b.show()
    _Corner(widget, b)
    return b


def install_help(window) -> None:
    """Help > Help on the Selection (F1) and the "?" buttons of the window's docks (those
    the palette and the panels do not hold already)."""
    from PySide6.QtWidgets import QDockWidget

    from gui.help_pages import help_for

    for dock in window.findChildren(QDockWidget):
        content = dock.widget()
        page = help_for(dock) or help_for(content)
        if page is None or content is None or content.findChild(QToolButton, "help_button"):
            continue
        corner_help(content, page)
    action = QAction("&Help on the Selection", window)
    action.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))  # F1
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda: help_for_focus(window))
    menu = window.menu("Help")
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, action)
    window.help_action = action


def help_for_focus(window) -> None:
    """F1: the block selected in the palette (when it has the focus) or on the canvas, else
    the page of the panel holding the focus, else the palette's."""
    from PySide6.QtWidgets import QApplication

    from gui.help_pages import help_for

    focus = QApplication.focusWidget()
    palette = window.palette_panel
    chosen = palette.selected_type()
    in_palette = focus is not None and palette.isAncestorOf(focus)
    if in_palette and chosen in LAYER_TYPES:  # (a module has no block page)
        help_window(window).show_block(chosen)
        return
    graph = window.scene.graph  # the open module definition's, when one is open
    types = [graph.type_of(b) for b in window.selected_blocks() if b in graph]
    types = [t for t in types if t in LAYER_TYPES]
    canvas = window.canvas
    on_canvas = focus is None or focus is canvas or canvas.isAncestorOf(focus)
    if on_canvas and types:
        help_window(window).show_block(types[0])
        return
    w = focus
    while w is not None:
        page = help_for(w)
        if page is not None:
            help_window(window).show_panel(page)
            return
        w = w.parentWidget()
    help_window(window).show_panel(help_for(palette))
