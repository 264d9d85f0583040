"""The runs a TrainingController keeps, and what its panels read from them.

``RunSink`` receives one worker's signals in the GUI thread and only appends to its RunData.
``RunList`` keeps the runs of every graph (the project-wide history, gui/training/history.py)
and those saved next to the graph file, keeps the GUI-side copy of a run's
network (for activations after a run and for Try it) and answers what the panels ask.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Slot

from engine.training_process import attention_of
from gui.training.history import RunHistory
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
        self._attention: tuple[Any, dict] | None = None
        self.history = RunHistory()
        self.token = 0  # grows when another graph replaces the window's (see RunData)

    def new_run(self, spec: dict) -> RunData:
        """A RunData with the next id; the GUI-side model of the last run is dropped."""
        run = RunData(self.next_id, f"run {self.next_id}", spec)
        run.graph_token = self.token
        path = self.ctrl.graph_path()
        run.graph_name = self.ctrl.graph.name or (path.stem if path else "untitled")
        run.graph_path = str(path) if path else None
        self.next_id += 1
        self._model = None
        return run

    # --- what the panels read --------------------------------------------------------------------
    def compared_runs(self) -> list[RunData]:
        panels = self.ctrl.panels
        ids = panels["runs"].checked if "runs" in panels else set()
        return [r for r in self.ctrl.runs if r.run_id in ids and self.ensure_loaded(r)]

    def overlay_runs(self) -> list[RunData]:
        """The ticked runs the other panels overlay: those of the window's graph, and runs of
        other graphs only when the user chose them (a tick or Compare), not the ones ticked
        on their own when they started."""
        panel = self.ctrl.panels.get("runs")
        chosen = panel.chosen if panel is not None else set()
        return [
            r for r in self.compared_runs() if r.graph_token == self.token or r.run_id in chosen
        ]

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
        """predict(x) of the shown run's network with its latest weights, or None."""
        run = self.ctrl.current
        model = self.model_for(run) if run is not None else None
        if model is None:
            return None
        return model.predict

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

    def current_attention(self, run: RunData | None, sample: int) -> dict | None:
        """The alignments of validation sample ``sample`` (engine.training_process.attention_of):
        the worker's snapshot while training, computed here on a copy of the model afterwards."""
        if run is None:
            return None
        if run is self.ctrl.active or "val_X" not in run.info:
            return run.attention or None
        key = (run.run_id, self.ctrl.weights_version, sample)
        if self._attention is not None and self._attention[0] == key:
            return self._attention[1]
        model = self.model_for(run)
        X = run.info["val_X"]
        if model is None or not len(X):
            return None
        data = attention_of(model, (X, run.info["val_y"]), sample)
        self._attention = (key, data)
        return data

    def show_run(self, run: RunData) -> None:
        """Show ``run`` in the panels (the live run is shown while one goes)."""
        if self.ctrl.active is None and self.ensure_loaded(run):
            self.ctrl.current = run
            self.ctrl.request_redraw()

    # --- runs ----------------------------------------------------------------------------------
    def ensure_loaded(self, run: RunData) -> bool:
        """Read a history run's curves (the table lists it from the index alone); False, with
        a message, when its file is gone or refused."""
        if run.loaded:
            return True
        try:
            whole, _link = self.history.load(run.history_key, run.run_id)
        except ValueError as e:
            self.ctrl.status(f"Cannot show {run.name}: {e}")
            return False
        _fill(run, whole)
        return True

    def runs_edited(self, run: RunData | None = None) -> None:
        """A run was renamed in the table: its runs file and the history follow."""
        self.ctrl.runs_version += 1
        if run is not None and run.history_key is not None:
            self._history_call(self.history.rename, run.history_key, run.name)
        self.save()

    def _history_call(self, fn, *args) -> Any:
        try:
            return fn(*args)
        except OSError as e:
            self.ctrl.status(f"Cannot write the run history in {self.history.folder}: {e}")
            return None

    def delete_run(self, run_id) -> None:
        ctrl = self.ctrl
        run = self.run_by_id(run_id)
        if run is None or run is ctrl.active:
            return
        ctrl.runs.remove(run)
        if ctrl.current is run:
            ctrl.current = next((r for r in reversed(ctrl.runs) if r.loaded), None)
        if run.history_key is not None:
            self._history_call(self.history.delete, run.history_key)
        ctrl.runs_version += 1
        self.save()
        ctrl.request_redraw()

    def record(self, run: RunData) -> None:
        """Keep a finished (or stopped) run in the project-wide history, once."""
        if run.history_key is not None or run.status in ("preparing", "failed"):
            return
        if len(run.steps) == 0:
            return
        graph = run.info.get("graph")
        path = self.ctrl.graph_path() if run.graph_token == self.token else run.graph_path
        entry = self._history_call(
            self.history.add,
            run,
            graph if isinstance(graph, dict) else None,
            str(path) if path else None,
        )
        if entry is not None:
            run.history_key = entry["key"]
            run.graph_name = entry["graph_name"]
            run.graph_path = entry["graph_path"]

    def save(self) -> Path | None:
        """Keep the finished runs in the history, and write this graph's runs next to its
        file; the file, or None (no file, or a message if it could not be written)."""
        for r in self.ctrl.runs:
            if r is not self.ctrl.active:
                self.record(r)
        path = self.ctrl.graph_path()
        if path is None:
            return None
        target = runs_path(path)
        mine = [r for r in self.ctrl.runs if r.graph_token == self.token and r.loaded]
        try:
            save_runs(target, [r for r in mine if r.status != "preparing"])
        except OSError as e:
            self.ctrl.status(f"Cannot save the runs to {target}: {e.strerror or e}")
            return None
        self.file = target
        return target

    def load_history(self) -> None:
        """The history's runs, listed from its index (curves read when shown)."""
        ctrl = self.ctrl
        known = {r.history_key for r in ctrl.runs}
        for e in self.history.entries():
            if e["key"] in known:
                continue
            run = RunData(self.next_id, e["name"] or f"run {self.next_id}", e["settings"])
            self.next_id += 1
            run.status, run.started = e["status"] or "finished", e["started"]
            run.graph_name, run.graph_path = e["graph_name"], e["graph_path"]
            run.history_key, run.loaded, run.stored_final = e["key"], False, e["final"]
            ctrl.runs.append(run)
        for p in self.history.problems:
            ctrl.status(p)
        self.history.problems.clear()
        ctrl.runs_version += 1

    def graph_replaced(self) -> None:
        """Another graph is in the window: the runs stay (a run of the old graph is no longer
        written into a runs file), the panels show none until one is chosen or trained."""
        self.token += 1
        if self.ctrl.active is None:
            self.ctrl.current = None
        if "runs" in self.ctrl.panels:
            self.ctrl.panels["runs"].graph_replaced()
        self.load(force=True)

    def load(self, force: bool = False) -> None:
        """Add the runs saved next to the graph's file (older files: ``<graph>.runs.json``)
        to the runs shown; only when the file changed, unless ``force``. A run already in the
        history is not listed twice; one that is not is added to it."""
        ctrl = self.ctrl
        path = ctrl.graph_path()
        target = runs_path(path) if path is not None else None
        if target == self.file and not force:
            return
        self.file = target
        loaded, problems = ([], []) if target is None else load_runs(target, self.next_id)
        self.next_id += len(loaded)
        by_start = {r.started: r for r in ctrl.runs}
        for run in loaded:
            same = by_start.get(run.started)
            if same is not None:
                same.graph_token = self.token
                if not same.loaded:  # its curves are here already
                    _fill(same, run)
                continue
            run.graph_token = self.token
            run.graph_name = path.stem if path is not None else ""
            run.graph_path = str(path) if path is not None else None
            ctrl.runs.append(run)
            self.record(run)
            if ctrl.active is None:
                ctrl.current = run
        ctrl.runs_version += 1
        for p in problems:
            ctrl.status(p)
        ctrl.request_redraw()

    def file_changed(self, *args: Any) -> None:
        """The graph was saved under a new name: its runs go with it."""
        path = self.ctrl.graph_path()
        target = runs_path(path) if path is not None else None
        if target is None or target == self.file:
            return
        mine = any(r.graph_token == self.token for r in self.ctrl.runs)
        if self.file is None and mine and not target.exists():
            for r in self.ctrl.runs:
                if r.graph_token == self.token:
                    r.graph_path, r.graph_name = str(path), path.stem
            self.save()  # first save of a new graph: its runs go with it
        else:
            self.load()


def _fill(stub: RunData, whole: RunData) -> None:
    """A run listed from the history's index gets its curves; its id, name and graph stay."""
    keep = {
        k: getattr(stub, k)
        for k in ("run_id", "name", "graph_name", "graph_path", "history_key", "graph_token")
    }
    stub.__dict__.update(whole.__dict__)
    stub.__dict__.update(keep)
    stub.loaded = True
    stub.version += 1
