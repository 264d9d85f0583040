"""Start the GUI: parse the GUI's arguments, make the QApplication and the main window."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="app.py", description="BlockProp: build, train and look inside CNNs and RNNs."
    )
    p.add_argument("graph", nargs="?", help="a graph file (.json) to open")
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="render the window offscreen with the graph, save it as PNG and exit",
    )
    return p.parse_args(argv)


def screenshot(app, graph: str | None, out: str) -> int:
    """Render the window with ``graph`` fitted to the canvas into ``out`` (PNG)."""
    from engine.errors import BlockPropError
    from engine.graph import load_graph
    from gui.main_window import MainWindow

    window = MainWindow(restore_layout=False)
    window.resize(1600, 1000)
    window.show()
    if graph:
        try:
            g = load_graph(graph)
        except BlockPropError as e:
            print(f"app.py: {e}", file=sys.stderr)
            window.close()
            return 2
        for _ in range(3):
            app.processEvents()  # the final canvas size, for the layout's aspect
        window.tidy_layout(g)  # a picture only: the file is not changed
        window.files._take(g, str(Path(graph).resolve()), None)
    for _ in range(3):
        app.processEvents()
    window.live.flush()
    window.canvas.fit_all()
    app.processEvents()
    ok = window.grab().save(out)
    window.close()
    if not ok:
        print(f"app.py: cannot write screenshot {out}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.graph and not Path(args.graph).exists():
        # Before any window: a typo'd command or path is a one-line error, as on the CLI.
        hint = (
            ""
            if args.graph.endswith(".json")
            else " (commands: check, train, export, presets; or a graph .json to open)"
        )
        print(f"app.py: {args.graph}: no such file{hint}", file=sys.stderr)
        return 2
    if args.screenshot:
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("BlockProp")
    app.setOrganizationName("BlockProp")
    # PySide6 6.11 crashes at exit while the clipboard holds a QMimeData made in Python.
    app.aboutToQuit.connect(lambda: app.clipboard().clear())
    if args.screenshot:
        return screenshot(app, args.graph, args.screenshot)
    from pyqtgraph.util.garbage_collector import GarbageCollector

    from gui.main_window import MainWindow

    # Python's cyclic garbage collector runs in whichever thread allocates when a threshold is
    # reached: in a data download or evaluation thread it can free a closed dialog's widgets
    # there, and Qt deadlocks (that thread waits for the GIL inside a widget's destructor while
    # the GUI thread, holding it, waits for that destructor's lock; seen in the tests). Collect
    # on a timer in the GUI thread instead, as pyqtgraph does for this reason.
    collector = GarbageCollector(interval=1.0)  # noqa: F841 (its timer lives as long as the app)

    window = MainWindow()
    window.show()
    if args.graph:
        window.files.load(args.graph)
    else:
        window.files.offer_recovery()
    # Start the training process now, while the user looks at the graph: the first Start
    # then trains at once instead of waiting 1-2 s for Python, NumPy and the data libraries.
    QTimer.singleShot(500, window.training.prewarm)
    return app.exec()
