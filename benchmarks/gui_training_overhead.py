"""What the live panels cost training, and how long the GUI event loop stalls meanwhile.

    .venv/bin/python benchmarks/gui_training_overhead.py [--epochs 20] [--repeats 3]
                                                         [--panels typical|all|none]
    (BENCH_VERBOSE=1 prints every event-loop gap over 50 ms with its time into the run)

LeNet-5 (C1 6@5x5, S2 avg-pool, C3 16@5x5, S4, C5 120, F6 84, 10 outputs, tanh) on digits
resized to 32x32, batch 64, Adam. Each repeat trains it twice, in turn:

- headless: ``engine.Trainer`` iterated in a plain loop, as ``app.py train`` does;
- in the app: the real ``MainWindow`` (offscreen) running its own event loop, training
  through the QThread worker with panels on screen: "typical" shows Loss, Gradients and
  Filters side by side, "all" every training panel, "none" only the Training dock.

Steps per second are timed from the second step to the last (the first includes warm-up);
the medians over the repeats are compared. A 10 ms QTimer in the GUI thread records the
largest gap between its ticks while the app trains: the longest the event loop stalled. The
GUI thread's CPU time is reported too (drawing is metered by gui.training.drawing's
DRAW_BUDGET). Runs alternate, so a machine busy with other work slows both alike; for steady
numbers run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine  # noqa: E402
from engine.heap import keep_freed_memory  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

PANEL_SETS = {
    "typical": ("loss", "gradients", "filters"),
    "none": (),
    "all": ("loss", "gradients", "filters", "activations", "confusion", "runs", "try_it"),
}


def lenet5(epochs: int, batch_size: int = 64) -> engine.Graph:
    """presets/lenet5.json, trained for ``epochs`` at ``batch_size``."""
    g = engine.load_graph(Path(__file__).resolve().parent.parent / "presets" / "lenet5.json")
    g.training.update(batch_size=batch_size, epochs=epochs)
    return g


def headless(graph: engine.Graph) -> float:
    trainer = Trainer.from_graph(graph)
    times = [time.perf_counter() for ev in trainer.run() if ev["event"] == "step"]
    return (len(times) - 1) / (times[-1] - times[0])


def in_app(app, graph: engine.Graph, panels: tuple[str, ...]) -> tuple[float, float, dict]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QDockWidget

    from gui.main_window import MainWindow

    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    w.resize(1600, 1000)
    w.show()
    w.graph.replace_with(graph)
    ctrl = w.training
    shown: list[QDockWidget] = [ctrl.panel_docks[k] for k in panels]
    for dock in ctrl.panel_docks.values():
        if dock not in shown:
            dock.hide()
    for i, dock in enumerate(shown):  # side by side under the canvas, not tabbed
        w.removeDockWidget(dock)
        if i == 0:
            w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        else:
            w.splitDockWidget(shown[i - 1], dock, Qt.Orientation.Horizontal)
        dock.show()
    app.processEvents()
    gaps: list[int] = []
    clock, last = QElapsedTimer(), [0]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        if now - last[0] > 50 and os.environ.get("BENCH_VERBOSE"):
            print(f"  gap {now - last[0]} ms ending {now} ms after the first step")
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    from collections import deque

    ctrl.drawing.rate = deque(maxlen=10**6)  # keep every step's time, not only the recent ones
    assert ctrl.start(), ctrl.dock.error.text()
    if not panels:
        for dock in ctrl.panel_docks.values():
            dock.hide()
    loop = QEventLoop()  # the app's own event loop, as app.exec() runs it
    check = QTimer()
    check.setInterval(20)

    cpu = [0.0, 0.0]  # GUI thread CPU time at the first step, and at the end

    def poll() -> None:
        if len(ctrl.current.steps) and not timer.isActive() and ctrl.active is not None:
            clock.start()
            timer.start()
            cpu[0] = time.thread_time()
        if ctrl.active is None:
            loop.quit()

    check.timeout.connect(poll)
    check.start()
    loop.exec()
    cpu[1] = time.thread_time()
    check.stop()
    timer.stop()
    shown_ok = all(d.isVisible() for d in shown)
    times = [t for t, _ in ctrl.drawing.rate]
    rate = (len(times) - 1) / (times[-1] - times[0])
    draw_ms = dict(ctrl.drawing.draw_ms)
    draw_ms["GUI thread CPU %"] = 100 * (cpu[1] - cpu[0]) / (times[-1] - times[0])
    w.close()
    w.deleteLater()
    app.processEvents()
    assert shown_ok, "a panel was not on screen"
    missing = [k for k in panels if k not in draw_ms]
    assert not missing or os.environ.get("BENCH_NODRAW"), f"panels that never drew: {missing}"
    return rate, float(max(gaps)), draw_ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--panels", choices=sorted(PANEL_SETS), default="typical")
    args = p.parse_args(argv)
    keep_freed_memory()  # the headless run as app.py train; the process does it itself
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    graph = lenet5(args.epochs)
    plain, gui, stalls = [], [], []
    for r in range(args.repeats):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                plain.append(headless(graph))
                print(f"repeat {r + 1}: headless {plain[-1]:6.1f} steps/s", flush=True)
            else:
                rate, stall, draw_ms = in_app(app, graph, PANEL_SETS[args.panels])
                gui.append(rate)
                stalls.append(stall)
                slow = ", ".join(f"{k} {v:.0f}" for k, v in sorted(draw_ms.items()))
                print(
                    f"repeat {r + 1}: in the app {rate:6.1f} steps/s, event loop max gap "
                    f"{stall:.0f} ms (slowest panel draws, ms: {slow})",
                    flush=True,
                )
    a, b = statistics.median(plain), statistics.median(gui)
    print(f"\nLeNet-5, batch 64, {args.epochs} epochs, panels: {args.panels}")
    print(f"headless   {a:6.1f} steps/s (median of {args.repeats})")
    print(f"in the app {b:6.1f} steps/s")
    print(f"panel overhead {100 * (1 - b / a):.1f} % of training speed (budget 10 %)")
    print(
        f"event loop: largest gap {max(stalls):.0f} ms (median of runs "
        f"{statistics.median(stalls):.0f} ms; budget 50 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
