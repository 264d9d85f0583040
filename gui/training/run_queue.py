"""Runs started one after another in the window's training process, then overlaid.

Two things queue runs: "Train the family and compare" (engine/families.py: every preset of
the window graph's family, each with its own settings) and an experiment (engine/experiment.py:
the window's graph with settings varied). Each run starts when the one before has ended (one
training process, one run at a time: the two cores already share each step where it pays);
Stop ends the queue too. When the last run ends the Runs panel overlays exactly the queue's
runs. After an experiment, "Apply best settings" writes the best run's varied settings into
the graph as one undo step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

from engine import experiment as ex
from engine import families
from engine.analysis import analyze
from engine.errors import BlockPropError

if TYPE_CHECKING:
    from gui.training.run_data import RunData
    from gui.training.training_controller import TrainingController


@dataclass
class Item:
    """One queued run: the graph (an engine Graph) and settings it trains, its name."""

    graph: Any
    spec: dict
    name: str
    base_dir: Path | None = None
    own: bool = False  # the window's graph (varied, or a fold): its runs file keeps it
    trial: ex.Trial | None = None
    run: RunData | None = None
    problem: str = ""


@dataclass
class Queue:
    title: str
    items: list[Item]
    done: list[Item] = field(default_factory=list)
    cancelled: bool = False


class RunQueue(QObject):
    """The controller's queue of runs (``ctrl.queue``)."""

    def __init__(self, ctrl: TrainingController) -> None:
        super().__init__(ctrl)
        self.ctrl = ctrl
        self.queue: Queue | None = None
        self.last: Queue | None = None  # the finished one ("Apply best settings" reads it)
        self.last_cv: dict | None = None  # its mean and spread, when it cross-validated

    @property
    def busy(self) -> bool:
        return self.queue is not None

    # --- the Train menu's actions ------------------------------------------------------------
    def add_actions(self, menu) -> None:
        acts = self.actions = {}
        for key, text, slot in (
            ("family", "Train the family and compare", self._family_clicked),
            ("experiment", "Experiment (vary settings)...", self._experiment_clicked),
            ("apply_best", "Apply best settings", self._apply_clicked),
            ("kfold", "Cross-validate (k-fold)...", self._kfold_clicked),
        ):
            act = menu.addAction(text)
            act.triggered.connect(slot)
            acts[key] = act
        acts["family"].setToolTip(
            "Train every preset of this graph's family, one after another, and overlay them"
        )

    def update_actions(self, idle: bool) -> None:
        fam = self.family()
        act = self.actions["family"]
        act.setEnabled(idle and not self.busy and fam is not None)
        act.setText(
            f"Train the family '{fam}' and compare" if fam else "Train the family and compare"
        )
        self.actions["experiment"].setEnabled(idle and not self.busy)
        self.actions["kfold"].setEnabled(idle and not self.busy)
        self.actions["apply_best"].setEnabled(idle and not self.busy and self.best() is not None)

    def _say(self, reason: str) -> None:
        if reason:
            self.ctrl.dock.show_error(reason)
            self.ctrl.status(reason.splitlines()[0])

    def _family_clicked(self) -> None:
        self._say(self.train_family())

    def _apply_clicked(self) -> None:
        self._say(self.apply_best())

    def _kfold_clicked(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        k, ok = QInputDialog.getInt(
            self.ctrl.window, "Cross-validate", "Folds (K runs, each validating on one):", 5, 2, 20
        )
        if ok:
            self._say(self.cross_validate(k))

    def _experiment_clicked(self) -> None:
        from gui.training.experiment_dialog import ExperimentDialog

        d = self.ctrl.graph.to_dict()
        d["training"] = self.ctrl.dock.spec()
        dlg = ExperimentDialog(self.ctrl.window, d, int(d["training"].get("epochs") or 1))
        if dlg.exec() and dlg.result_args:
            a = dlg.result_args
            self._say(self.run_experiment(a["varies"], a["random"], a["seed"], epochs=a["epochs"]))

    def start(self, title: str, items: list[Item]) -> str:
        """Train ``items`` one after another; the reason it cannot start ("" when it does)."""
        if self.busy or self.ctrl.active is not None:
            return "a run is training; wait for it or stop it first"
        if not items:
            return "nothing to train"
        self.queue = Queue(title, list(items))
        self._next()
        return ""

    def start_graph(
        self, graph, spec: dict, name: str = "", base_dir: Path | None = None, own: bool = False
    ) -> str:
        """Train ``graph`` (not the window's: a sibling preset, an experiment's variant) with
        ``spec``; the reason it cannot start ("" when it started). ``base_dir``: where its
        relative data paths are read from (default: the window graph's folder)."""
        from engine.data import resolve_paths
        from engine.training_spec import check_training

        if self.ctrl.thread is not None and self.ctrl.thread.running():
            return "a run is training"
        try:
            checked = check_training(spec)
        except BlockPropError as e:
            return str(e)
        analysis = analyze(graph, batch_size=checked["batch_size"])
        if analysis.problems:
            return f"{graph.name}: {analysis.problems[0]}"
        if base_dir is not None and isinstance(spec.get("dataset"), dict):
            spec = {**spec, "dataset": resolve_paths(spec["dataset"], base_dir)}
        run = self.ctrl.launch(graph, spec, analysis, False, resolve=base_dir is None)
        if name:
            run.name = name[:200]
        if graph is not self.ctrl.graph and not own:  # in the history, not this graph's file
            run.graph_name, run.graph_path = graph.name or run.graph_name, None
            run.graph_token = None
        return ""

    def _next(self) -> None:
        q = self.queue
        if q is None:
            return
        if q.cancelled or not q.items:
            self._finish()
            return
        item = q.items.pop(0)
        q.done.append(item)
        reason = self.start_graph(item.graph, item.spec, item.name, item.base_dir, item.own)
        n = len(q.done) + len(q.items)
        if reason:
            item.problem = reason
            self.ctrl.status(f"{q.title}: {item.name} did not start: {reason}")
            QTimer.singleShot(0, self._next)
            return
        item.run = self.ctrl.active
        self.ctrl.status(f"{q.title}: run {len(q.done)} of {n}, {item.name}", 0)

    def cancel(self) -> None:
        """Forget the runs not started yet (the window closes)."""
        self.queue = None

    def run_ended(self, run: RunData) -> None:
        """The controller's run ended: the next one starts (a stopped run ends the queue)."""
        q = self.queue
        if q is None or not q.done or q.done[-1].run is not run:
            return
        if run.status == "stopped":
            q.cancelled = True
        QTimer.singleShot(0, self._next)

    def _finish(self) -> None:
        q, self.queue = self.queue, None
        if q is None:
            return
        self.last = q
        runs = [i.run for i in q.done if i.run is not None and i.run in self.ctrl.runs]
        for i in q.done:
            if i.trial is not None and i.run is not None:
                i.trial.result = {**i.run.final_metrics(), "status": i.run.status}
        panel = self.ctrl.panels["runs"]
        if runs:
            classify = any("val_acc" in r.final_metrics() for r in runs)
            panel.metric_box.setCurrentText(
                "validation accuracy per epoch" if classify else "validation loss per epoch"
            )
            panel.compare_selected([r.run_id for r in runs])
            dock = self.ctrl.panel_docks["runs"]
            dock.show()
            dock.raise_()
        failed = [i for i in q.done if i.problem]
        end = "stopped" if q.cancelled else "done"
        text = f"{q.title}: {end}, {len(runs)} runs overlaid in the Runs panel"
        if failed:
            text += f"; {len(failed)} did not start ({failed[0].name}: {failed[0].problem})"
        top = self.best()
        if top is not None:
            text += f"; best: {top.label} (Train > Apply best settings)"
        self.last_cv = self.cv_summary(q)
        if self.last_cv is not None:
            for m in ("val_acc", "val_loss"):
                if m in self.last_cv["mean"]:
                    mean, std = self.last_cv["mean"][m], self.last_cv["std"][m]
                    text += f"; {m} mean {mean:.4f}, std {std:.4f}"
        self.ctrl.status(text, 0)
        self.ctrl.queue_changed()

    # --- the family --------------------------------------------------------------------------
    def family(self) -> str | None:
        return families.family_of(self.ctrl.graph.name)

    def train_family(self, epochs: int | None = None) -> str:
        """Train every preset of the window graph's family (``epochs``: each one's budget,
        default its own); the reason it cannot ("" when it started)."""
        from engine.graph import load_graph

        fam = self.family()
        if fam is None:
            return "the graph is not one of a family of presets (optimizers, init, depth, RNNs)"
        items = []
        for path in families.members(fam):
            try:
                g = load_graph(path)
            except BlockPropError as e:
                return str(e)
            spec = dict(g.training or {})
            if epochs is not None:
                spec["epochs"] = int(epochs)
            items.append(Item(g, spec, g.name, base_dir=path.parent))
        return self.start(f"Family '{fam}'", items)

    # --- experiments -------------------------------------------------------------------------
    def run_experiment(
        self, varies: list[ex.Vary], random: int | None = None, seed: int = 0, **fixed: Any
    ) -> str:
        """The window's graph, with the dock's settings, trained with ``varies``; the reason
        it cannot start ("" when it did)."""
        from engine.graph import Graph

        d = self.ctrl.graph.to_dict()
        d["training"] = self.ctrl.dock.spec()
        try:
            trials = ex.plan(d, varies, random=random, seed=seed, **fixed)
        except BlockPropError as e:
            return str(e)
        path = self.ctrl.graph_path()
        base = path.parent if path is not None else None
        items = [
            Item(Graph.from_dict(t.graph), t.spec, t.label, base_dir=base, own=True, trial=t)
            for t in trials
        ]
        return self.start(f"Experiment ({len(items)} runs)", items)

    # --- k-fold cross-validation -------------------------------------------------------------
    def cross_validate(self, k: int, epochs: int | None = None) -> str:
        """K runs of the window's graph with the dock's settings, fold i validating each
        (engine/splits.py); the mean and spread are said when the last ends."""
        from engine.graph import Graph
        from engine.splits import check_cross_validation

        try:
            check_cross_validation({"k": k, "fold": 0})
        except BlockPropError as e:
            return str(e)
        spec = self.ctrl.dock.spec()
        if epochs is not None:
            spec["epochs"] = int(epochs)
        path = self.ctrl.graph_path()
        snapshot = self.ctrl.graph.to_dict()
        items = [
            Item(
                Graph.from_dict(snapshot),
                {**spec, "cross_validation": {"k": k, "fold": i}},
                f"{self.ctrl.graph.name or 'graph'}: fold {i + 1}/{k}",
                base_dir=path.parent if path is not None else None,
                own=True,
            )
            for i in range(k)
        ]
        return self.start(f"{k}-fold cross-validation", items)

    def cv_summary(self, q: Queue) -> dict | None:
        """Mean and spread of the folds' final metrics, for a cross-validation queue."""
        from engine.splits import summarise

        runs = [i.run for i in q.done if i.run is not None and "cross_validation" in i.spec]
        if not runs or len(runs) != len(q.done):
            return None
        folds = [{"fold": i, "status": r.status, **r.final_metrics()} for i, r in enumerate(runs)]
        return summarise(folds)

    def best(self) -> ex.Trial | None:
        q = self.last
        if q is None:
            return None
        trials = [i.trial for i in q.done if i.trial is not None]
        return ex.best(trials, "val_acc") or ex.best(trials, "val_loss")

    def apply_best(self) -> str:
        """Write the best run's varied settings into the window's graph (one undo step);
        the reason it could not ("" when done)."""
        top = self.best()
        if top is None:
            return "no experiment with a finished run to take settings from"
        if self.ctrl.active is not None:
            return "a run is training"
        g = self.ctrl.graph
        configs: dict[str, dict] = {}
        for n in top.graph.get("nodes", []):
            nid = n.get("id")
            if nid in g:
                changed = {
                    k: v for k, v in (n.get("config") or {}).items() if g.config_of(nid).get(k) != v
                }
                if changed:
                    configs[nid] = changed
        training = copy.deepcopy(top.graph.get("training"))
        reason = self.ctrl.window.edit_settings(
            configs, training, f"Apply best settings ({top.label})"
        )
        if reason:
            return reason
        self.ctrl.dock.set_spec(self.ctrl.graph.training)
        self.ctrl.status(f"Applied the best run's settings: {top.label}")
        return ""
