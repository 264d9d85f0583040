"""Shared by the GUI training tests (test_gui_training*.py): small graphs, a minimal
window implementing ``gui.window_api.TrainingWindow``, the real MainWindow, and ``replay`` (the same
run trained again in the test process: training is deterministic for a seed).

Every window lives in a fixture that stops training and deletes the window at teardown
(pytest-qt's addWidget keeps only a weak reference, and a surviving window can make PySide6
abort at interpreter exit). Test modules load the fixtures (``train_window``: a FakeWindow;
``main_window``: the real one) with ``pytest_plugins = ["gui_support", "training_support"]``.
"""

from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

import engine
import gui.training as training
from engine.training_process import LiveRun

ROOT = Path(__file__).resolve().parent.parent

# --- graphs -------------------------------------------------------------------------------------


def chain(name: str, nodes: list, spec: dict) -> engine.Graph:
    g = engine.Graph(name)
    prev = None
    for i, (t, cfg, nid) in enumerate(nodes):
        g.add_node(t, cfg, pos=(i * 160, 0), node_id=nid)
        if prev:
            g.add_edge(prev, nid)
        prev = nid
    g.set_meta("training", spec)
    return g


def mlp_xor(epochs: int = 3) -> engine.Graph:
    return chain(
        "mlp",
        [
            ("Input", {"shape": [2]}, "in"),
            ("Dense", {"units": 8}, "d1"),
            ("Activation", {"fn": "tanh"}, "a1"),
            ("Dense", {"units": 2}, "d2"),
        ],
        {
            "dataset": {"name": "xor", "repeat": 40, "noise": 0.1},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 16,
            "epochs": epochs,
            "seed": 0,
        },
    )


def tiny_cnn(epochs: int = 2) -> engine.Graph:
    return chain(
        "tiny cnn",
        [
            ("Input", {"shape": [1, 8, 8]}, "in"),
            ("Conv2D", {"filters": 4, "kernel_size": 3}, "c1"),
            ("Activation", {"fn": "relu"}, "a1"),
            ("Flatten", {}, "flat"),
            ("Dense", {"units": 10}, "out"),
        ],
        {
            "dataset": {"name": "digits"},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 128,
            "epochs": epochs,
            "seed": 0,
        },
    )


def tiny_rnn(kind: str = "LSTM", epochs: int = 1, n: int = 300, T: int = 10) -> engine.Graph:
    return chain(
        f"{kind} adding",
        [
            ("Input", {"shape": [T, 2]}, "in"),
            (kind, {"hidden_size": 6}, "rnn"),
            ("Dense", {"units": 1}, "out"),
        ],
        {
            "dataset": {"name": "adding", "T": T, "n": n},
            "loss": "mse",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 30,
            "epochs": epochs,
            "seed": 0,
        },
    )


def lenet5(batch_size: int = 32, epochs: int = 5) -> engine.Graph:
    """presets/lenet5.json, trained for ``epochs`` at ``batch_size``."""
    g = engine.load_graph(ROOT / "presets" / "lenet5.json")
    g.training.update(batch_size=batch_size, epochs=epochs)
    return g


# --- a minimal gui.window_api.TrainingWindow (the real MainWindow is tested too) ---------------


class FakeCanvas(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.badges: dict = {}
        self.cleared = 0

    def set_block_badges(self, badges: dict) -> None:
        self.badges = dict(badges)

    def clear_block_badges(self) -> None:
        self.badges = {}
        self.cleared += 1


class FakeWindow(QMainWindow):
    selectionChanged = Signal(list)
    fileChanged = Signal()

    def __init__(self, graph: engine.Graph, path: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("fake[*]")
        self.graph = graph
        self.path = path
        self.training = None
        self.batch_size: int | None = None  # set_batch_size (the dock's)
        self.canvas = FakeCanvas()
        self.setCentralWidget(self.canvas)
        self.locks: list[bool] = []
        self._menus: dict = {}
        self.toolbar = self.addToolBar("main")

    @property
    def analysis(self) -> engine.Analysis:
        return engine.analyze(self.graph, batch_size=self.batch_size)

    def set_batch_size(self, batch_size: int | None) -> None:
        self.batch_size = batch_size

    def set_training(self, spec: dict | None, dataset: dict | None = None) -> None:
        pass  # no data check here: the trainer's own checks answer at Start

    def edit_meta(self, key: str, value) -> None:  # not undoable here: no undo stack
        self.graph.set_meta(key, value)
        self.setWindowModified(True)

    def edit_settings(self, configs: dict, training: dict | None, text: str) -> str:
        for node_id, cfg in configs.items():
            self.graph.set_config(node_id, {**self.graph.config_of(node_id), **cfg})
        if training is not None:
            self.graph.set_meta("training", training)
        self.setWindowModified(True)
        return ""

    def set_locked(self, locked: bool) -> None:
        self.locks.append(bool(locked))

    def selected_blocks(self) -> list[str]:
        return []

    def add_panel_dock(self, dock, area) -> None:
        self.addDockWidget(area, dock)

    def menu(self, name: str):
        if name not in self._menus:
            self._menus[name] = self.menuBar().addMenu(name)
        return self._menus[name]


def answer_stop_prompts(w: QMainWindow, answer: bool = True) -> None:
    """Closing during a run asks "Stop and close?": answer ``answer`` and count the questions
    in ``w.stop_prompts`` (a real dialog would wait for a click forever)."""
    w.stop_prompts = []
    w.training.ask_stop_training = lambda: w.stop_prompts.append(answer) or answer


def dispose(w: QMainWindow) -> None:
    if w.training is not None:
        assert w.training.shutdown(2000)
    w.close()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


@pytest.fixture
def train_window(qtbot):
    """train_window(graph, path=None) -> a shown FakeWindow with training attached."""
    made: list[QMainWindow] = []

    def make(graph: engine.Graph, path: str | None = None, size=(1500, 950)) -> FakeWindow:
        w = FakeWindow(graph, path)
        training.attach(w)
        answer_stop_prompts(w)
        w.resize(*size)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        dispose(w)


def show_all_panels(ctrl) -> None:
    for dock in ctrl.panel_docks.values():
        dock.show()
        dock.raise_()


def run_to_end(qtbot, ctrl, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: ctrl.active is None, timeout=timeout)
    ctrl.redraw(force=True)


def replay(run, steps: int | None = None) -> LiveRun:
    """``run`` trained again here, from its graph and settings, to the end or for ``steps``
    steps: its ``trainer`` and ``model`` hold what the training process had then."""
    live = LiveRun(run.info["graph"], run.settings, lambda kind, payload: None)
    if steps is None:
        live.run()
        return live
    live._prepare()
    for ev in live.trainer.run():
        if ev["event"] == "step" and ev["step"] == steps:
            break
    return live


@pytest.fixture
def main_window(qtbot, gui_env):
    """The real MainWindow (settings in tmp_path), closed the way gui_support closes it."""
    from gui.main_window import MainWindow

    w = MainWindow(restore_layout=False)
    w.files.ask_save_changes = lambda: "discard"
    answer_stop_prompts(w)
    yield w
    assert w.training.shutdown(2000)
    w.close()
    # Empty the undo stack while the window is whole: QUndoStack's destructor clears it and
    # the signals that emits would reach the window's half-deleted parts.
    w.undo_stack.clear()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
