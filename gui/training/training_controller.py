"""TrainingController: the Training dock, the panels and the worker, attached to a window.

Life of a run: Start reads the dock's spec, checks it (``check_training`` and the graph's
analysis; a problem is shown in red and nothing starts), saves it into the graph's ``training``
part as one undoable change, locks editing and starts a ``TrainingWorker``: a QThread that
relays the messages of a training process (``engine.training_process``) on a copy of the
graph. The worker's signals land in ``RunSink`` slots (GUI thread) that only append to the
run's ring buffers; a 25 Hz QTimer redraws the visible panels and the canvas badges. At the
end the graph is unlocked and the runs are saved next to the graph file.

Closing the window while a run trains asks first (``ask_stop_training``: Stop and close, or
Cancel, which keeps window and run). Then it stops the worker (an event filter on the window):
the Close event marks the window as closing, and the non-spontaneous Hide that Qt sends once the
window accepted it (synchronously, before the application can quit) calls ``shutdown``: stop,
then the process is ended if it has not stopped within half a second, and the stopped run is
saved with the others. A close the window refuses ("Save changes?" > Cancel) leaves the run
going; minimising (a spontaneous Hide) does nothing. ``QApplication.aboutToQuit`` is the safety
net.

Runs stay when another graph replaces the window's (Open, New): every run is kept in the
project-wide run history (gui/training/history.py), linked to the graph it trained, so runs of
different graphs overlay in the Runs panel. A graph's own runs are also written next to its
file (``<graph>.runs.json``); the old graph's runs are never written into the new one's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QDockWidget, QMessageBox

from engine.analysis import analyze
from engine.errors import BlockPropError
from engine.graph_events import STRUCTURE_EVENTS, GraphEvent, MetaChanged, Reset
from engine.parallel import free_cores
from gui.training.controls import TrainingDock
from gui.training.drawing import Redrawer
from gui.training.panels import PANEL_TYPES
from gui.training.result import result_text
from gui.training.run_data import RunData
from gui.training.run_queue import RunQueue
from gui.training.runlist import RunList, RunSink
from gui.training.test_eval import TestEvaluation
from gui.training.worker import RunThread, TrainingProcess, TrainingWorker
from gui.window_api import TrainingWindow


class TrainingController(QObject):
    """See the module docstring. ``attach(window)`` makes one per window.

    What the panels read: ``current`` (the run shown), ``active`` (the run training, or None),
    ``runs``, ``runs_version``, ``weights_version``, ``runlist`` (RunList) and
    ``request_redraw``/``watch_changed``; ``drawing`` (Redrawer) draws them.
    """

    def __init__(self, window: TrainingWindow) -> None:
        super().__init__(window)
        self.window = window
        self.runs: list[RunData] = []
        self.runs_version = 0
        self.current: RunData | None = None
        self.active: RunData | None = None
        self.thread: RunThread | None = None
        self.weights_version = 0
        self.runlist = RunList(self)
        self.queue = RunQueue(self)  # runs one after another: a family, an experiment
        self.test_eval = TestEvaluation(self)  # Train > Evaluate on the test set
        self._watch_sent: dict | None = None
        self._saving_meta = False
        self._graph_replaced = False  # the runs shown belong to a graph no longer in the window
        self._analysis = None
        self.process = TrainingProcess()  # started at the first run, kept for the next ones

        self.dock = TrainingDock(window)
        self.dock.set_spec(self.graph.training)
        self._dock_edited = False  # by the user since the graph's settings were shown
        self.dock.edited.connect(self._on_dock_edited)
        self._follow_batch()
        self.dock.start.connect(self.start)
        self.dock.pause.connect(self.pause)
        self.dock.resume.connect(self.resume)
        self.dock.stop.connect(self.stop)
        self.dock.step.connect(self.step)
        self.dock.lr_changed.connect(self.set_lr)
        window.add_panel_dock(self.dock, Qt.DockWidgetArea.RightDockWidgetArea)

        self.panels = {}
        self.panel_docks: dict[str, QDockWidget] = {}
        for key, cls in PANEL_TYPES.items():
            panel = cls(self)
            dock = QDockWidget(panel.title, window)
            dock.setObjectName(f"training_{key}_dock")
            dock.setWidget(panel)
            window.add_panel_dock(dock, Qt.DockWidgetArea.BottomDockWidgetArea)
            # A panel brought on screen (tab chosen, dock shown) draws at once.
            dock.visibilityChanged.connect(self._panel_visibility)
            self.panels[key] = panel
            self.panel_docks[key] = dock

        self.drawing = Redrawer(self)

        self._menus()
        self.graph.subscribe(self._on_graph_event)
        window.selectionChanged.connect(self._on_selection)
        self._closing = False
        window.installEventFilter(self)
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        window.fileChanged.connect(self._on_file_changed)  # "Save as": runs follow the graph
        self.runlist.load_history()
        self.runlist.load()

    # --- the window's parts ----------------------------------------------------------------------
    @property
    def graph(self):
        return self.window.graph

    def _menus(self) -> None:
        menu = self.window.menu("Train")
        self.actions = {}
        for name, key, slot in (
            ("Start", "F5", self.start),
            ("Pause", "F6", self.pause),
            ("Resume", "F7", self.resume),
            ("Step one batch", "F10", self.step),
            ("Stop", "Shift+F5", self.stop),
        ):
            act = menu.addAction(name)
            act.setShortcut(key)
            act.triggered.connect(slot)
            self.actions[name] = act
        menu.addSeparator()
        self.queue.add_actions(menu)
        self.test_eval.add_action(menu)
        menu.addSeparator()
        menu.addAction(self.dock.toggleViewAction())
        for dock in self.panel_docks.values():
            menu.addAction(dock.toggleViewAction())
        tb = self.window.toolbar
        tb.addSeparator()
        tb.addAction(self.actions["Start"])
        tb.addAction(self.actions["Stop"])
        self._update_actions()

    def _update_actions(self) -> None:
        state, blocked = self.dock.state, self.dock.blocked
        self.actions["Start"].setEnabled(state == "idle" and not blocked)
        self.actions["Start"].setToolTip(blocked or "Train the graph with these settings (F5)")
        self.actions["Pause"].setEnabled(state == "running")
        self.actions["Resume"].setEnabled(state == "paused")
        self.actions["Step one batch"].setEnabled(
            state == "paused" or (state == "idle" and not blocked)
        )
        self.actions["Stop"].setEnabled(state != "idle")
        self.queue.update_actions(state == "idle")

    def queue_changed(self) -> None:
        """A queue of runs began or ended (run_queue.py)."""
        self._update_actions()

    def set_problems(self, problems: list) -> None:
        """The window's analysis changed: Start is off, with the reason, while problems stand."""
        reason = ""
        if problems:
            n = len(problems)
            reason = (
                f"Start is off until the graph's {n} problem{'s' * (n > 1)} "
                f"{'are' if n > 1 else 'is'} fixed (Problems list): {problems[0]}"
            )
        if reason != self.dock.blocked:
            self.dock.set_blocked(reason)
            self._update_actions()

    def status(self, text: str, ms: int = 8000) -> None:
        """A message in the window's status bar."""
        self.window.statusBar().showMessage(text, ms)

    def graph_path(self) -> Path | None:
        """The graph's file, if it has one."""
        p = self.window.path
        return Path(p) if p else None

    # --- starting ------------------------------------------------------------------------------
    def check_spec(self, spec: dict) -> str | None:
        """The reason a run cannot start with ``spec`` (None: it can)."""
        from engine.data import dataset_options
        from engine.data.base import check_options
        from engine.training_spec import check_training

        try:
            checked = check_training(spec)
            ds = checked["dataset"]
            check_options(ds["name"], ds, dataset_options(ds["name"]))
        except BlockPropError as e:
            return str(e)
        analysis = self.window.analysis
        if analysis.batch_size != checked["batch_size"]:  # memory at the batch this run uses
            analysis = analyze(self.graph, batch_size=checked["batch_size"])
        self._analysis = analysis
        if analysis.problems:
            first = analysis.problems[0]
            more = len(analysis.problems) - 1
            return (
                f"The graph has {len(analysis.problems)} problem{'s' * (more > 0)}; fix "
                f"{'them' if more else 'it'} first: {first}"
            )
        return None

    def _save_spec(self, spec: dict) -> None:
        """Write the settings into the graph file's ``training`` part (one undoable edit)."""
        if self.graph.training == spec or same_settings(self.graph.training, spec):
            return  # the same settings written otherwise (defaults spelled out or left out)
        self._saving_meta = True
        try:
            self.window.edit_meta("training", spec)
        finally:
            self._saving_meta = False

    @Slot()
    def start(self, paused: bool = False) -> bool:
        """Start a run with the dock's settings; False (and a message) if it cannot start."""
        if self.thread is not None and self.thread.running():
            return False
        spec = self.dock.spec()
        problem = self.check_spec(spec)
        if problem:
            self.dock.show_error(problem)
            self.status("Training not started: " + problem.splitlines()[0])
            return False
        self.dock.show_error("")
        if self._download_first(spec, paused):
            return False  # the run starts once the data set is downloaded
        self._save_spec(spec)
        self.launch(self.graph, spec, self._analysis, paused)
        return True

    def launch(self, graph, spec: dict, a, paused: bool, resolve: bool = True) -> RunData:
        """Start a worker training ``graph`` (checked: ``a`` is its analysis) with ``spec``;
        ``resolve``: its relative data paths are the window graph's (run_queue.py resolves its
        own graphs')."""
        for r in self.runs:
            r.drop_heavy()
        run = self.runlist.new_run(spec)
        # The blocks are known from the analysis: the panels build their curves and legends
        # now, while the worker loads the data, not when the first steps arrive.
        run.set_blocks(
            [b for b in a.order if a.params.get(b)], {b: a.types.get(b, "") for b in a.order}
        )
        data_spec = self.data_from_graph_folder(spec) if resolve else spec
        worker = TrainingWorker(graph, data_spec, start_paused=paused, host=self.process)
        sink = RunSink(self, run)
        worker.prepared.connect(sink.on_prepared)
        worker.steps.connect(sink.on_steps)
        worker.time_grads.connect(sink.on_time_grads)
        worker.epoch.connect(sink.on_epoch)
        worker.snapshot.connect(sink.on_snapshot)
        worker.finished.connect(sink.on_finished)
        worker.failed.connect(sink.on_failed)
        self.thread = RunThread(worker)
        self._sink = sink
        self.active = self.current = run
        self.runs.append(run)
        self.runs_version += 1
        self.panels["runs"].check(run.run_id)
        self._watch_sent = None
        self.window.set_locked(True)
        self.dock.set_state("paused" if paused else "preparing")
        self.dock.set_progress(0, 1, "preparing the data and the model...")
        self._update_actions()
        self.thread.start()
        self._bring_forward()
        self.watch_changed()
        self.drawing.run_started()
        return run

    def _download_first(self, spec: dict, paused: bool) -> bool:
        """A standard data set used for the first time is downloaded (a progress dialog with
        Cancel, in a worker thread) before the run starts; True while that goes on."""
        from engine.data import needs_download
        from gui.training.download import DataDownload

        ds = spec.get("dataset")
        busy = getattr(self, "download", None)
        if busy is not None and not busy.finished:
            return True
        if not isinstance(ds, dict) or not needs_download(ds):
            return False
        self.download = DataDownload(self.window, ds, on_ready=lambda: self.start(paused))
        self.status(f"Downloading the data set {ds.get('name')}...")
        return True

    def data_from_graph_folder(self, spec: dict) -> dict:
        """``spec`` with the data set's relative file paths taken from the graph file's folder,
        as the command line takes them (the graph keeps them relative)."""
        from engine.data import resolve_paths

        path, ds = self.graph_path(), spec.get("dataset")
        if path is None or not isinstance(ds, dict):
            return spec
        return {**spec, "dataset": resolve_paths(ds, path.parent)}

    def _bring_forward(self) -> None:
        """A run shows its progress: the Training dock, and the Loss panel unless a training
        panel is already on screen (tabs the user chose otherwise stay as they are)."""
        if self.dock.isHidden():
            self.dock.show()
        self.dock.raise_()
        if not any(p.shown() for p in self.panels.values()):
            dock = self.panel_docks["loss"]
            dock.show()
            dock.raise_()

    # --- what the panels call --------------------------------------------------------------------
    def request_redraw(self) -> None:
        """Something besides the run's data changed (a setting, a tab): draw soon."""
        self.drawing.request_redraw()

    def redraw(self, force: bool = False) -> None:
        self.drawing.redraw(force)

    def watch_changed(self) -> None:
        """Tell the worker what the visible panels need (sent only when it changes)."""
        w = self._worker()
        if w is None:
            return
        p = self.panels
        want = {
            "filters": p["filters"].shown(),
            "activations": p["activations"].shown(),
            "weights": p["try_it"].shown() or p["why"].shown(),
            "confusion": p["confusion"].shown(),
            "sample": p["activations"].sample.value(),
            "attention": p["attention"].shown(),
            "attention_sample": p["attention"].sample.value(),
        }
        if want != self._watch_sent:
            self._watch_sent = want
            w.set_watch(**want)

    def _panel_visibility(self, visible: bool) -> None:
        if visible:
            self.request_redraw()
        # After the event that changed it, when the panels' geometry is up to date.
        QTimer.singleShot(0, self.watch_changed)

    # --- controls ------------------------------------------------------------------------------
    def _worker(self) -> TrainingWorker | None:
        if self.thread is not None and self.thread.running():
            return self.thread.worker
        return None

    @Slot()
    def pause(self) -> None:
        w = self._worker()
        if w is not None:
            w.pause()
            self.dock.set_state("paused")
            self._update_actions()

    @Slot()
    def resume(self) -> None:
        w = self._worker()
        if w is not None:
            w.resume()
            self.dock.set_state("running")
            self._update_actions()

    @Slot()
    def step(self) -> None:
        """One batch: while paused, let one step run; when idle, start a paused run and step."""
        w = self._worker()
        if w is None:
            if self.start(paused=True):
                self.thread.worker.step_once()
            return
        if self.dock.state == "paused":
            w.step_once()

    @Slot()
    def stop(self) -> None:
        w = self._worker()
        if w is not None:
            w.stop()

    @Slot(float)
    def set_lr(self, lr: float) -> None:
        w = self._worker()
        if w is None:
            return
        try:
            w.set_lr(lr)
        except BlockPropError as e:
            self.dock.show_error(str(e))
            return
        self.dock.show_error("")
        self.status(f"Learning rate set to {lr:g} from the next step on")

    # --- from the worker -----------------------------------------------------------------------
    def run_prepared(self, run: RunData) -> None:
        if self.dock.state == "preparing":
            self.dock.set_state("running")
            self._update_actions()
        self.runs_version += 1
        lr = (run.settings.get("optimizer") or {}).get("lr")
        if isinstance(lr, (int, float)):
            self.dock.lr_now.setValue(float(lr))
        split = run.info.get("processes") == 2
        self.drawing.set_split(split and free_cores() <= 2)
        if split:
            self.status(
                "Training on both cores: each step trains half the batch in a helper process"
            )
        self.request_redraw()

    def steps_arrived(self, events: list) -> None:
        self.drawing.steps_arrived(events)

    def snapshot_arrived(self, run: RunData, snap: dict) -> None:
        if "filters" in snap:
            run.filters = snap["filters"]
            run.filters_step = snap.get("step", -1)
        if "activations" in snap:
            run.activations = snap["activations"]
            run.gates = snap.get("gates", {})
            run.sample = dict(snap.get("sample", {}), step=snap.get("step"))
        if "attention" in snap:
            run.attention = snap["attention"]
        if "weights" in snap:
            run.weights = snap["weights"]
            self.weights_version += 1
        run.version += 1
        run.snapshots += 1

    def run_ended(self, run: RunData, error: str | None = None) -> None:
        self.weights_version += 1
        run.snapshots += 1
        run.epoch_version += 1
        thread = self.thread
        if thread is not None and thread.worker is not None and self.active is run:
            thread.thread.wait(500)  # it ends right after this signal (quit is direct)
        if error:
            self.dock.show_error(error)
            said, ms = "Training failed: " + error.splitlines()[0], 8000
            if len(run.steps) == 0:  # it never started: not a run to keep
                self.runs.remove(run)
                if self.current is run:
                    self.current = self.runs[-1] if self.runs else None
        else:
            msg = run.end.get("message") or f"Training {run.status}"
            if run.end.get("note"):  # the helper process was lost; the run went on
                msg += f" ({run.end['note']})"
            outcome = result_text(run)
            said, ms = f"{run.name}: {msg}" + (f" — {outcome}" if outcome else ""), 30000
            if run.status == "diverged":  # say it where the user looks: next to Start
                self.dock.show_error(msg)
        if self.active is run:
            self.active = None
        self.runs_version += 1
        self.window.set_locked(False)
        self.status(said, ms)  # after "Editing unlocked.": the outcome is what stays
        self.dock.set_state("idle")
        self._update_actions()
        self.drawing.progress(run)  # the final line now: the 4 Hz text may have been written
        self.request_redraw()  # the timer keeps going until every visible panel is drawn
        self.runlist.save()
        self.queue.run_ended(run)

    # --- the window's events -------------------------------------------------------------------
    def _on_graph_event(self, event: GraphEvent) -> None:
        if isinstance(event, STRUCTURE_EVENTS):
            if self.active is None:
                self.window.canvas.clear_block_badges()
                self.drawing.badges_cleared()
        if isinstance(event, Reset) or (
            isinstance(event, MetaChanged) and event.key == "training" and not self._saving_meta
        ):
            if self.active is None:
                self.dock.set_spec(self.graph.training)
                self._dock_edited = False
                self._follow_batch()
        if isinstance(event, Reset) or (isinstance(event, MetaChanged) and event.key == "name"):
            self._update_actions()  # the family action follows the graph
        if isinstance(event, Reset):
            if self.active is None:  # the last graph's run is not this graph's progress
                self.dock.clear_run()
            self._graph_replaced = True
            QTimer.singleShot(0, self._show_runs_of_new_graph)

    def _show_runs_of_new_graph(self) -> None:
        if not self._graph_replaced:
            return  # done already (by the file change or the deferred call)
        self._graph_replaced = False
        self.runlist.graph_replaced()

    def _on_dock_edited(self) -> None:
        self._dock_edited = True
        self._follow_batch()

    def _follow_batch(self) -> None:
        """The window's analysis (the Problems list) checks memory at the dock's batch size
        and the graph against the dock's data set, unless the graph's settings name no data
        set on purpose (the zoo's ImageNet-sized presets) and the dock shows its default."""
        spec = self.dock.spec()
        self.window.set_batch_size(spec.get("batch_size"))
        training = self.graph.training
        if training and "dataset" not in training and not self._dock_edited:
            self.window.set_training(None)  # nothing to fit until a data set is chosen
            return
        ds = self.data_from_graph_folder(spec).get("dataset")
        self.window.set_training(spec, ds)

    def _on_selection(self, ids: list) -> None:
        if len(ids) == 1:
            self.panels["filters"].follow(ids[0])
            self.panels["activations"].follow(ids[0])

    def ask_stop_training(self) -> bool:
        """Closing during a run: True to stop it and close (replaced in tests)."""
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Training is running")
        box.setText("Stop the training and close the window?")
        path = self.graph_path()
        box.setInformativeText(
            f"The run so far is kept with the runs saved next to {path.name}."
            if path is not None
            else "The graph has no file yet: the run is kept only if the graph is saved "
            "(Cancel, then File > Save As)."
        )
        stop = box.addButton("Stop and close", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is stop

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if obj is self.window:
            kind = event.type()
            if kind == QEvent.Type.Close:
                if self.active is not None and not self.ask_stop_training():
                    event.ignore()
                    return True  # the window stays, and so does the run
                self._closing = True
            elif kind == QEvent.Type.Hide and self._closing and not event.spontaneous():
                self._closing = False
                self.shutdown()
            elif kind == QEvent.Type.Show:
                self._closing = False
        return False

    def _on_file_changed(self, *args) -> None:
        """The graph was saved under a new name or another file was opened."""
        if self._graph_replaced:  # another graph was opened: show its runs, not these
            self._show_runs_of_new_graph()
        else:
            self.runlist.file_changed()

    def prewarm(self) -> None:
        """Start the training process and its imports before the first run needs them."""
        try:
            self.process.ensure()
        except OSError as e:
            self.status(f"Cannot start the training process: {e}")
            return
        self.process.send(("warm", (), {}))

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """Stop a run and wait for its thread (bounded). True when no thread is left running."""
        self.queue.cancel()  # no queued run starts after this one
        self.drawing.timer.stop()
        th = self.thread
        ok = True
        if th is not None and th.running():
            ok = th.shutdown(timeout_ms)
        run = self.active
        if run is not None and ok:  # the run's last messages: it ends and is saved as usual
            QCoreApplication.sendPostedEvents(self._sink)
        if self.active is run and run is not None:  # its end never came: keep what arrived
            run.status = "stopped"
            run.end = {"reason": "stopped", "message": "stopped: the window was closed"}
            self.active = None
            self.runlist.save()
        self.drawing.timer.stop()
        self.process.close()  # a window's process ends with it
        return ok


def same_settings(a: dict | None, b: dict | None) -> bool:
    """Do two ``training`` parts train the same way? Both complete (``check_training``, the
    data set's own defaults filled in) and compared; False if either is not valid."""
    from engine.data import dataset_options
    from engine.data.base import check_options
    from engine.training_spec import check_training

    def complete(spec):
        out = check_training(spec)
        ds = dict(out["dataset"])
        name = ds["name"]
        ds = {"name": name, **check_options(name, ds, dataset_options(name))}
        return {**out, "dataset": ds}

    try:
        return complete(a) == complete(b)
    except BlockPropError:
        return False
