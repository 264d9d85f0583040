"""The runs a TrainingController keeps, and what its panels read from them.

``RunSink`` receives one worker's signals in the GUI thread and only appends to its RunData.
``RunList`` saves and loads the runs next to the graph file, keeps the GUI-side copy of a run's
network (for activations after a run and for Try it) and answers what the panels ask.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Slot

from gui.training.run_data import RunData
from gui.training.runs_file import load_runs, runs_path, save_runs

if TYPE_CHECKING:
    from gui.training.training_controller import TrainingController


class RunSink(QObject):
    """Receives one worker's signals in the GUI thread and appends them to its RunData."""

    def __init__(self, ctrl: TrainingController, run: RunData) -> None:
        super().__init__(ctrl)
        self.ctrl, self.run = ctrl, run

    @Slot(object)
    def on_prepared(self, info: dict) -> None:
        run = self.run
        run.info = info
        run.set_blocks(info["blocks"], info["block_types"])
        run.status = "running"
        self.ctrl.run_prepared(run)

    @Slot(object)
    def on_steps(self, events: list) -> None:
        self.run.add_steps(events)
        self.ctrl.steps_arrived(events)

    @Slot(object)
    def on_time_grads(self, tg: dict) -> None:
        self.run.set_time_grads(tg)

    @Slot(object)
    def on_epoch(self, ev: dict) -> None:
        run = self.run
        if "confusion" in ev:
            run.confusion = ev.pop("confusion")
            run.samples = ev.pop("samples", {})
        run.add_epoch(ev)

    @Slot(object)
    def on_snapshot(self, snap: dict) -> None:
        self.ctrl.snapshot_arrived(self.run, snap)

    @Slot(object)
    def on_finished(self, end: dict) -> None:
        run = self.run
        run.weights = end.pop("weights", {}) or run.weights
        if "confusion" in end:
            run.confusion = end.pop("confusion")
            run.samples = end.pop("samples", {})
        run.end = end
        run.status = str(end.get("reason", "finished"))
        run.version += 1
        run.epoch_version += 1
        self.ctrl.run_ended(run)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        run = self.run
        run.status = "failed"
        run.end = {"reason": "failed", "message": message}
        run.version += 1
        self.ctrl.run_ended(run, error=message)


class RunList:
    """The runs of a TrainingController as the panels and the runs file see them.

    It reads the controller's ``runs``, ``current``, ``active``, ``panels`` and
    ``weights_version`` and calls its ``request_redraw``, ``status`` and ``graph_path``.
    """

    def __init__(self, ctrl: TrainingController) -> None:
        self.ctrl = ctrl
        self.next_id = 1
        self.file: Path | None = None  # the runs file the shown runs came from or went to
        self._model: tuple[Any, Any] | None = None  # (run id + weights version, Model)
        self._activations: tuple[Any, dict] | None = None

    def new_run(self, spec: dict) -> RunData:
        """A RunData with the next id; the GUI-side model of the last run is dropped."""
        run = RunData(self.next_id, f"run {self.next_id}", spec)
        self.next_id += 1
        self._model = None
        return run

    # --- what the panels read --------------------------------------------------------------------
    def compared_runs(self) -> list[RunData]:
        panels = self.ctrl.panels
        ids = panels["runs"].checked if "runs" in panels else set()
        return [r for r in self.ctrl.runs if r.run_id in ids]

    def run_by_id(self, run_id) -> RunData | None:
        return next((r for r in self.ctrl.runs if r.run_id == run_id), None)

    def current_filters(self, run: RunData | None) -> dict[str, np.ndarray]:
        return dict(run.filters) if run is not None else {}

    def model_for(self, run: RunData):
        """A GUI-side Model of ``run``'s graph with its latest weights (None if unknown)."""
        if not run.weights or not run.info.get("graph"):
            return None
        key = (run.run_id, self.ctrl.weights_version)
        if self._model is not None and self._model[0] == key:
            return self._model[1]
        from engine.graph import Graph
        from engine.model import build_model

        if self._model is not None and self._model[0][0] == run.run_id:
            model = self._model[1]
        else:
            model = build_model(
                Graph.from_dict(run.info["graph"]), seed=int(run.settings.get("seed", 0))
            )
        model.set_state(run.weights)
        self._model = (key, model)
        return model

    def inference_forward(self):
        """forward(x) of the shown run's network with its latest weights, or None."""
        run = self.ctrl.current
        model = self.model_for(run) if run is not None else None
        if model is None:
            return None
        return lambda x: model.forward(x, training=False)

    def current_activations(self, run: RunData | None, sample: int) -> dict | None:
        """{"activations", "gates", "sample"} for validation sample ``sample``: the worker's
        snapshot while training, computed here on a copy of the model afterwards."""
        if run is None:
            return None
        if run is self.ctrl.active or "val_X" not in run.info:
            if not run.activations:
                return None
            return {
                "activations": run.activations,
                "gates": run.gates,
                "sample": run.sample,
                "step": run.sample.get("step"),
            }
        key = (run.run_id, self.ctrl.weights_version, sample)
        if self._activations is not None and self._activations[0] == key:
            return self._activations[1]
        model = self.model_for(run)
        X = run.info["val_X"]
        if model is None or not len(X):
            return None
        i = int(min(max(0, sample), len(X) - 1))
        outs = model.block_outputs(X[i : i + 1])
        data = {
            "activations": {b: o[0] for b, o in outs.items()},
            "gates": {
                b: {g: a[0] for g, a in layer.gates.items()}
                for b, layer in model.layers.items()
                if isinstance(getattr(layer, "gates", None), dict)
            },
            "sample": {"index": i, "x": X[i], "y": run.info["val_y"][i]},
        }
        self._activations = (key, data)
        return data

    def show_run(self, run: RunData) -> None:
        """Show ``run`` in the panels (the live run is shown while one goes)."""
        if self.ctrl.active is None:
            self.ctrl.current = run
            self.ctrl.request_redraw()

    # --- runs ----------------------------------------------------------------------------------
    def runs_edited(self) -> None:
        self.ctrl.runs_version += 1
        self.save()

    def delete_run(self, run_id) -> None:
        ctrl = self.ctrl
        run = self.run_by_id(run_id)
        if run is None or run is ctrl.active:
            return
        ctrl.runs.remove(run)
        if ctrl.current is run:
            ctrl.current = ctrl.runs[-1] if ctrl.runs else None
        ctrl.runs_version += 1
        self.save()
        ctrl.request_redraw()

    def save(self) -> Path | None:
        """Write the runs next to the graph's file; the file, or None (no file, or a message
        in the status bar if it could not be written)."""
        path = self.ctrl.graph_path()
        if path is None:
            return None
        target = runs_path(path)
        try:
            save_runs(target, [r for r in self.ctrl.runs if r.status != "preparing"])
        except OSError as e:
            self.ctrl.status(f"Cannot save the runs to {target}: {e.strerror or e}")
            return None
        self.file = target
        return target

    def load(self, force: bool = False) -> None:
        """Show the runs saved next to the graph's file (none for an unsaved graph); only when
        the file changed, unless ``force`` (another graph was loaded into the window)."""
        ctrl = self.ctrl
        path = ctrl.graph_path()
        target = runs_path(path) if path is not None else None
        if target == self.file and not force:
            return
        self.file = target
        if ctrl.active is not None:
            return
        loaded, problems = ([], []) if target is None else load_runs(target, self.next_id)
        ctrl.runs = loaded
        self.next_id += len(loaded)
        ctrl.current = loaded[-1] if loaded else None
        ctrl.runs_version += 1
        for p in problems:
            ctrl.status(p)
        ctrl.request_redraw()

    def file_changed(self, *args: Any) -> None:
        """The graph was saved under a new name or another file was opened: the runs follow."""
        path = self.ctrl.graph_path()
        target = runs_path(path) if path is not None else None
        if target is None or target == self.file:
            return
        if self.file is None and self.ctrl.runs and not target.exists():
            self.save()  # first save of a new graph: its runs go with it
        else:
            self.load()
