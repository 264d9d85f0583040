"""Make the README's panel screenshots from real runs in the app (offscreen, no screen needed).

    .venv/bin/python docs/screenshots.py [--out docs]

Each shot opens a preset in a real MainWindow (1600x1000), trains it with the preset's own
settings through the app's Training controller (for the epochs given below), brings one panel
forward and saves the whole window, or only the panel, as PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (preset, epochs, panel, file, whole window?, block the panel follows)
SHOTS = [
    ("lenet5", 15, "gradients", "panel_gradients.png", True, None),
    ("lenet5", 15, "filters", "panel_filters.png", False, "c1"),
    ("lenet5", 15, "loss", "panel_loss.png", False, None),
    ("lenet5", 15, "confusion", "panel_confusion.png", False, None),
    ("adding_rnn", 8, "gradients", "panel_bptt_rnn.png", False, None),
    ("adding_lstm", 8, "gradients", "panel_bptt_lstm.png", False, None),
    ("adding_lstm", 8, "activations", "panel_gates.png", False, "rnn"),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    import engine
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    w = MainWindow(restore_layout=False)
    w.resize(1600, 1000)
    w.show()
    trained: str | None = None
    for preset, epochs, panel, name, whole, block in SHOTS:
        ctrl = w.training
        if trained != preset:
            graph = engine.load_graph(ROOT / "presets" / f"{preset}.json")
            graph.set_meta("training", {**graph.training, "epochs": epochs})
            w.graph.replace_with(graph)
            w.undo_stack.clear()
            app.processEvents()
            w.canvas.fit_all()
            app.processEvents()
            ctrl.dock.set_spec(graph.training)
            ctrl.panel_docks[panel].show()
            ctrl.panel_docks[panel].raise_()
            if not ctrl.start():
                print(f"{preset}: cannot start: {ctrl.dock.error.text()}")
                return 1
            while ctrl.active is not None:
                app.processEvents()
                time.sleep(0.01)
            trained = preset
        dock = ctrl.panel_docks[panel]
        dock.show()
        dock.raise_()
        if block and hasattr(ctrl.panels[panel], "follow"):
            ctrl.panels[panel].follow(block)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        ctrl.redraw(force=True)
        app.processEvents()
        target = Path(args.out) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (w if whole else dock).grab().save(str(target)):
            print(f"cannot write {target}")
            return 1
        print(f"{target}: {preset}, {epochs} epochs, {ctrl.current.status}")
    w.files.ask_save_changes = lambda: "discard"
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
