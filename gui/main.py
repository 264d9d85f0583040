"""Start the GUI: parse the GUI's arguments, make the QApplication and the main window."""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="app.py", description="BlockProp: build, train and look "
                                "inside CNNs and RNNs.")
    p.add_argument("graph", nargs="?", help="a graph file (.json) to open")
    p.add_argument("--screenshot", metavar="PNG",
                   help="render the window offscreen with the graph, save it as PNG and exit")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.screenshot:
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("BlockProp")
    app.setOrganizationName("BlockProp")
    window = MainWindow()
    window.resize(1400, 860)
    window.show()
    if args.screenshot:
        app.processEvents()
        ok = window.grab().save(args.screenshot)
        window.close()
        if not ok:
            print(f"app.py: cannot write screenshot {args.screenshot}", file=sys.stderr)
            return 2
        return 0
    return app.exec()
