"""Canvas scale benchmark: open a big graph and time panning and zooming.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/canvas_scale.py [--blocks 300]
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/canvas_scale.py --graph zoo/googlenet

Prints the time to open the file (read + scene + analysis + first paint), the auto-layout's
time (gui.layout alone, and the whole Auto-layout command with the wires routed again), and
the time per frame of a full repaint, of panning and of zooming (median and worst of many
frames; 60 frames per second is 16.7 ms), at Fit to Window and at 100%. The default graph is
a stack of residual blocks (conv, batch norm, activation, conv, add with the shortcut), so
wires branch and merge like a real network; ``--graph zoo/NAME`` opens a zoo preset instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def residual_graph(n_blocks: int):
    """Input, stem conv, then residual units of 5 blocks, then pool + flatten + dense."""
    from engine.graph import Graph
    from gui.layout import layered_positions

    g = Graph(name=f"residual stack, {n_blocks} blocks")
    g.add_node("Input", {"shape": [3, 16, 16]}, node_id="in")
    g.add_node("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, node_id="stem")
    g.add_edge("in", "stem")
    prev, i = "stem", 0
    while len(g) + 5 + 3 <= n_blocks:
        ids = [f"u{i}_{k}" for k in ("c1", "bn", "act", "c2", "add")]
        g.add_node("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, node_id=ids[0])
        g.add_node("BatchNorm", {}, node_id=ids[1])
        g.add_node("Activation", {"fn": "relu"}, node_id=ids[2])
        g.add_node("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}, node_id=ids[3])
        g.add_node("Add", {}, node_id=ids[4])
        for a, b in zip([prev, *ids[:3]], ids[:4], strict=True):
            g.add_edge(a, b)
        g.add_edge(ids[3], ids[4], 0)
        g.add_edge(prev, ids[4], 1)
        prev, i = ids[4], i + 1
    while len(g) < n_blocks - 2:
        nid = f"act_{len(g)}"
        g.add_node("Activation", {"fn": "relu"}, node_id=nid)
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("Flatten", {}, node_id="flat")
    g.add_node("Dense", {"units": 10}, node_id="out")
    g.add_edge(prev, "flat")
    g.add_edge("flat", "out")
    for n, p in layered_positions(g, 250, 110, aspect=1.6).items():
        g.move_node(n, p)
    return g


def frames(view, app, step, n: int, full: bool = False) -> list[float]:
    """Time ``n`` frames: apply ``step(i)``, then let Qt paint what changed (as it does for a
    real pan or zoom: a pan scrolls the pixels and paints the uncovered strip) or, with
    ``full``, repaint the whole canvas (what a window expose costs)."""
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        step(i)
        if full:
            view.viewport().repaint()
        app.processEvents()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=300)
    ap.add_argument("--graph", default="residual", help="residual, or a preset: zoo/googlenet")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    tmp = tempfile.TemporaryDirectory()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    app = QApplication.instance() or QApplication([])
    import engine
    from engine.analysis import analyze
    from gui.canvas.style import LAYOUT_DX, LAYOUT_DY
    from gui.layout import layered_positions
    from gui.main_window import MainWindow

    root = Path(__file__).resolve().parent.parent
    if args.graph == "residual":
        g = residual_graph(args.blocks)
    else:
        g = engine.load_graph(root / "presets" / f"{args.graph}.json")
    t0 = time.perf_counter()
    for _ in range(5):
        layered_positions(g, LAYOUT_DX, LAYOUT_DY, 1042 / 532)
    t_layout = (time.perf_counter() - t0) / 5 * 1000
    path = Path(tmp.name) / "big.json"
    g.save(path)
    t0 = time.perf_counter()
    analyze(g)
    t_analyze = (time.perf_counter() - t0) * 1000

    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    w.resize(1600, 1000)
    w.show()
    app.processEvents()
    view = w.canvas
    t0 = time.perf_counter()
    w.files.load(str(path))
    app.processEvents()  # the live analysis runs here
    view.viewport().repaint()
    t_open = (time.perf_counter() - t0) * 1000
    assert len(w.scene.blocks) == len(g) and w.analysis.ok, w.analysis.problems[:3]
    vp = view.viewport()
    t0 = time.perf_counter()
    w.controller.auto_layout(vp.width() / vp.height())
    app.processEvents()  # the wires are routed again here, once
    t_auto = (time.perf_counter() - t0) * 1000

    def zoom_to(z):
        view.zoom_by(z / view.zoom())

    results = {}
    view.fit_all()
    fitted_zoom = view.zoom()
    results["full repaint, fitted (whole graph)"] = frames(
        view, app, lambda i: None, args.frames, full=True
    )
    hbar = view.horizontalScrollBar()
    results["pan, fitted"] = frames(
        view,
        app,
        lambda i: hbar.setValue(hbar.value() + (40 if (i // 10) % 2 == 0 else -40)),
        args.frames,
    )
    zoom_to(1.0)
    view.centerOn(w.scene.blocks_rect().center())
    results["full repaint, 100%"] = frames(view, app, lambda i: None, args.frames, full=True)
    results["pan, 100%"] = frames(
        view,
        app,
        lambda i: hbar.setValue(hbar.value() + (40 if (i // 10) % 2 == 0 else -40)),
        args.frames,
    )
    results["zoom steps (wheel), around 100%"] = frames(
        view, app, lambda i: view.zoom_by(1.1 if i % 2 == 0 else 1 / 1.1), args.frames
    )
    view.fit_all()
    results["zoom steps (wheel), fitted"] = frames(
        view, app, lambda i: view.zoom_by(1.1 if i % 2 == 0 else 1 / 1.1), args.frames
    )

    print(
        f"graph: {len(g)} blocks, {len(g.edges())} wires; window 1600x1000, canvas "
        f"{view.viewport().width()}x{view.viewport().height()} px "
        f"({os.environ.get('QT_QPA_PLATFORM')} platform)"
    )
    print(f"engine.analyze alone:                         {t_analyze:7.1f} ms")
    print(f"open file (read, scene, analysis, 1st paint): {t_open:7.1f} ms")
    print(f"gui.layout.layered_positions:                 {t_layout:7.1f} ms")
    print(f"Auto-layout command (moves, wires routed):    {t_auto:7.1f} ms")
    print(f"zoom at Fit to Window:                        {fitted_zoom * 100:7.1f} %")
    print(f"analysis runs while opening:                  {w.live.runs - 1}")
    print("time per frame (median / worst; 60 frames per second is 16.7 ms):")
    for k, v in results.items():
        print(f"  {k:38s} {statistics.median(v):6.1f} / {max(v):6.1f} ms")
    w.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
