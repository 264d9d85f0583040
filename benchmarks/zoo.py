"""The zoo presets (presets/zoo/*.json): how long check and open take, and one inference.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/zoo.py [--no-forward]

Per preset: ``check`` in the process (read + analysis, what `app.py check` does after its
imports), ``app.py check`` as a command (with Python's start and the imports), opening it in
the app (read, scene, analysis, first paint; a 1600x1000 window, already shown), and the
engine's forward pass of one image (building the model, its weights drawn, is timed apart).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best_of(fn, n: int = 3) -> float:
    """The fastest of ``n`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-forward", action="store_true", help="skip building and running")
    args = ap.parse_args()

    import numpy as np
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import engine
    from engine.graph import ZOO_FOLDER, graph_files

    tmp = tempfile.TemporaryDirectory()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    app = QApplication.instance() or QApplication([])
    from gui.main_window import MainWindow

    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    w.resize(1600, 1000)
    w.show()
    app.processEvents()

    print(f"{'preset':14s} {'blocks':>6s} {'check':>8s} {'app.py check':>13s} {'open':>8s}", end="")
    print("" if args.no_forward else f" {'build':>8s} {'forward x1':>11s}")
    for path in graph_files(ROOT / "presets" / ZOO_FOLDER):

        def check(p=path):
            a = engine.analyze(engine.load_graph(p))
            assert a.ok, a.problems[:2]

        t_check = best_of(check)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "check", str(path)],
            check=True,
            capture_output=True,
        )
        t_cli = time.perf_counter() - t0

        def open_it(p=path):
            w.files.load(str(p))
            app.processEvents()
            w.live.flush()  # the live analysis (if its timer has not fired yet)
            w.canvas.viewport().repaint()

        t_open = best_of(open_it)
        assert len(w.scene.blocks) == len(engine.load_graph(path)), (len(w.scene.blocks), path)
        assert w.analysis.ok, w.analysis.problems[:2]
        line = f"{path.stem:14s} {len(w.scene.blocks):6d} {t_check * 1000:6.0f}ms "
        line += f"{t_cli * 1000:11.0f}ms {t_open * 1000:6.0f}ms"
        if not args.no_forward:
            g = engine.load_graph(path)
            t0 = time.perf_counter()
            model = engine.build_model(g, seed=0)
            t_build = time.perf_counter() - t0
            x = np.random.default_rng(0).standard_normal((1, *model.input_shape), np.float32)
            t_fwd = best_of(lambda m=model, x=x: m.forward(x, training=False), 2)
            line += f" {t_build:7.1f}s {t_fwd:10.2f}s"
            del model
        print(line, flush=True)
    w.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
