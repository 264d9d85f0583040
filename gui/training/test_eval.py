"""Train > Evaluate on the test set: the final evaluation of a finished run on the test set
its settings held out (``test_split``, engine/splits.py), once.

The run's network (its graph and final weights, as the run left them) is evaluated in a
thread of its own (the data set is loaded and split there as the run split it), so the window
never waits. The result is kept with the run (``run.end["test"]``: saved in the history and
the runs file, shown in the Runs table); asked again, the same result is shown, never a new
evaluation: the test set is looked at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from engine.errors import BlockPropError

if TYPE_CHECKING:
    from gui.training.run_data import RunData
    from gui.training.training_controller import TrainingController


def result_text(run: RunData) -> str:
    r = run.end.get("test") or {}
    acc = r.get("test_acc")
    loss = r.get("test_loss")
    if not isinstance(loss, (int, float)):
        return ""
    text = f"{run.name}: test set ({r.get('n_test')} samples): loss {loss:.4f}"
    return text + (f", accuracy {acc:.1%}" if isinstance(acc, (int, float)) else "")


def evaluate(graph: dict, settings: dict, weights: dict) -> dict:
    """The run's network on its test set (a worker thread calls this)."""
    from engine.graph import Graph
    from engine.trainer import Trainer

    spec = {k: v for k, v in settings.items() if k not in ("dataset", "processes")}
    trainer = Trainer.from_graph(Graph.from_dict(graph), dataset=settings["dataset"], **spec)
    if not trainer.test_size:
        raise BlockPropError("the run held out no test set (its test_split is 0)")
    trainer.model.set_state(weights)
    return trainer.evaluate_test()


class TestEvaluation(QObject):
    done = Signal(object, object)  # (run, result dict or error text)

    def __init__(self, ctrl: TrainingController) -> None:
        super().__init__(ctrl)
        self.ctrl = ctrl
        self.busy: RunData | None = None
        self.done.connect(self._done)

    def add_action(self, menu) -> None:
        self.action = menu.addAction("Evaluate on the test set")
        self.action.setToolTip(
            "The shown run's final network on the test set its settings held out (test_split); "
            "once: asked again, the same result"
        )
        self.action.triggered.connect(lambda: self.start())

    def start(self, run: RunData | None = None) -> str:
        """Evaluate ``run`` (default: the run shown); the reason it cannot ("" when it began
        or the result was there already)."""
        run = run if run is not None else self.ctrl.current
        reason = self._refuse(run)
        if reason:
            self.ctrl.status(reason)
            return reason
        if "test" in run.end:
            self.ctrl.status(result_text(run) + " (evaluated once, as shown before)", 0)
            return ""
        self.busy = run
        self.ctrl.status(f"Evaluating {run.name} on the test set...", 0)
        graph, settings = run.info["graph"], self.ctrl.data_from_graph_folder(run.settings)
        weights = dict(run.weights)

        def work() -> None:
            try:
                out: object = evaluate(graph, settings, weights)
            except (BlockPropError, OSError, MemoryError) as e:
                out = str(e) or type(e).__name__
            self.done.emit(run, out)

        threading.Thread(target=work, daemon=True, name="test-evaluation").start()
        return ""

    def _refuse(self, run: RunData | None) -> str:
        if run is None or run is self.ctrl.active:
            return "Evaluate on the test set: choose a finished run first"
        if self.busy is not None:
            return "Evaluate on the test set: one evaluation at a time"
        if "test" in run.end:
            return ""
        ts = run.settings.get("test_split") or 0
        if not ts:
            return f"{run.name} held out no test set: set test_split (Data box) and train again"
        if not run.weights or not isinstance(run.info.get("graph"), dict):
            return f"{run.name}: its final weights are not kept (a run of an earlier session)"
        return ""

    def _done(self, run: RunData, out: object) -> None:
        self.busy = None
        if isinstance(out, str):
            self.ctrl.status(f"Cannot evaluate {run.name} on the test set: {out}", 0)
            return
        run.end["test"] = {k: out[k] for k in ("test_loss", "test_acc", "n_test")}
        self.ctrl.status(result_text(run), 0)
        self.ctrl.runs_version += 1
        if run.history_key is not None:
            self.ctrl.runlist.history.set_test(run.history_key, run.end["test"])
        self.ctrl.runlist.save()
        self.ctrl.request_redraw()
