"""How the TrainingController draws: the 25 Hz tick, the metering that keeps drawing from
starving training, the canvas badges and the progress line (``Redrawer``)."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Slot

from gui.training.panels.module_bars import module_values
from gui.training.result import result_text
from gui.training.run_data import RunData

if TYPE_CHECKING:
    from gui.training.training_controller import TrainingController

REDRAW_HZ = 25.0
# While training, the share of time the GUI thread may spend drawing (see redraw). Training
# runs in a process of its own (engine.training_process), so drawing no longer holds its GIL;
# it only takes CPU, and on two cores training uses one. Measured with
# benchmarks/gui_training_overhead.py (LeNet-5, Loss + Gradients + Filters on screen): the GUI
# thread used 4 % of a core at a budget of 0.03 and 15 % with no limit; 0.25 leaves drawing
# unmetered on such a machine and keeps a slow machine's training from starving.
DRAW_BUDGET = 0.25
# When training takes every core (engine.parallel: two processes on a 2-core machine), each
# step waits for the slower of the two, so any CPU the GUI takes from either stalls the whole
# step: measured, LeNet-5 trained 15 % slower in the app than headless at 0.25 (3 % with one
# training process). Drawing then gets SPLIT_DRAW_BUDGET.
SPLIT_DRAW_BUDGET = 0.05
MAX_DRAW_WAIT_S = 1.0  # ... but a visible panel updates at least once a second


class Redrawer:
    """Draws a TrainingController's panels, canvas badges and progress line on a 25 Hz timer.

    It reads the controller's ``current`` and ``active`` runs, ``panels``, ``dock`` and
    ``window``; the controller tells it when a run starts (``run_started``), steps arrive
    (``steps_arrived``) and whether training takes every core (``set_split``).
    """

    def __init__(self, ctrl: TrainingController) -> None:
        self.ctrl = ctrl
        self.timer = QTimer(ctrl)
        self.timer.setInterval(int(1000 / REDRAW_HZ))
        self.timer.timeout.connect(self.redraw)
        self.rate: deque = deque(maxlen=400)  # (time, step) of recent steps
        self.max_stall_ms = 0.0  # the longest redraw so far (ms), and per panel:
        self.draw_ms: dict[str, float] = {}
        self.draw_budget = DRAW_BUDGET  # share of a core drawing may use while training
        self._budget_mark = (0.0, 0.0)  # (GUI thread CPU time, wall time) at the last draw
        self._seen = None  # (run, version) at the last tick that looked at the panels
        self._ui_dirty = True
        self._badges_drawn = None
        self._progress_at = 0.0
        self._badges_at = 0.0

    def run_started(self) -> None:
        self.rate.clear()
        self.timer.start()

    def steps_arrived(self, events: list) -> None:
        for e in events:
            self.rate.append((e.get("t", time.perf_counter()), e.get("step", 0)))

    def set_split(self, split: bool) -> None:
        """Training takes every core (engine.parallel on a 2-core machine): draw less."""
        self.draw_budget = SPLIT_DRAW_BUDGET if split else DRAW_BUDGET

    def badges_cleared(self) -> None:
        """The canvas's badges were cleared (the graph changed): draw them again."""
        self._badges_drawn = None

    def request_redraw(self) -> None:
        """Something besides the run's data changed (a setting, a tab): draw soon."""
        self._ui_dirty = True
        if not self.timer.isActive():
            self.timer.start()

    @Slot()
    def redraw(self, force: bool = False) -> None:
        """One tick of the 25 Hz timer (it runs while training and until every visible panel
        has caught up; ``request_redraw`` starts it again).

        A tick draws ONE visible panel whose data or settings changed, the one waiting longest,
        so a tick costs at most one panel's redraw and the event loop never waits for all of
        them at once. While training, drawing is also metered (on a machine with fewer free
        cores than the training process and the app need, it takes training's): the next draw
        waits until the GUI thread's CPU time since the last one began is at most
        ``DRAW_BUDGET`` of the time passed (or ``MAX_DRAW_WAIT_S`` passed). Cheap panels then
        update several times a second, heavy ones less often. ``force`` draws every panel now.
        """
        t0 = time.perf_counter()
        ctrl = self.ctrl
        run = ctrl.current
        metered = ctrl.active is not None and not force
        seen = (id(run), getattr(run, "version", None))
        if metered and (
            not self._within_budget(t0) or (seen == self._seen and not self._ui_dirty)
        ):  # nothing new
            self._tick_extras(run, force)
            return
        due = sorted(
            (p.drawn_at, key)
            for key, p in ctrl.panels.items()
            if force or (p.shown() and p.redraw_key(run) != p._drawn)
        )
        self._ui_dirty = False
        if not force:  # one panel per tick; the others on the next ticks
            if len(due) > 1:
                self._ui_dirty = True
            due = due[:1]
        self._seen = seen
        if not force and not due and ctrl.active is None:
            self.timer.stop()  # everything drawn after the run: rest
        for _, key in due:
            t1 = time.perf_counter()
            panel = ctrl.panels[key]
            if metered:
                self._budget_mark = (time.thread_time(), t1)
            if panel.refresh(run, force=force):
                ms = (time.perf_counter() - t1) * 1000
                self.draw_ms[key] = max(self.draw_ms.get(key, 0.0), ms)
        self._tick_extras(run, force)
        self.max_stall_ms = max(self.max_stall_ms, (time.perf_counter() - t0) * 1000)

    def _within_budget(self, now: float) -> bool:
        """Has the GUI thread used at most DRAW_BUDGET of the time since the last metered
        draw began (or has MAX_DRAW_WAIT_S passed)? Its CPU time counts the redraw, the
        paints Qt does after it and whatever else the GUI thread did meanwhile."""
        cpu0, t0 = self._budget_mark
        elapsed = now - t0
        budget = self.draw_budget
        return elapsed >= MAX_DRAW_WAIT_S or time.thread_time() - cpu0 <= budget * elapsed

    def _tick_extras(self, run: RunData | None, force: bool) -> None:
        self._badges(run)
        now = time.perf_counter()
        if force or now - self._progress_at >= 0.25:  # text at 4 Hz is plenty
            self._progress_at = now
            self.progress(run)

    def _badges(self, run: RunData | None) -> None:
        if run is None or run.grads is None:
            return
        if run.graph_token != self.ctrl.runlist.token:  # another graph's run (a family's)
            return
        canvas = self.ctrl.window.canvas
        active = self.ctrl.active
        key = (run.run_id, run.steps.total)
        if key == self._badges_drawn or run is not active and self._badges_drawn:
            return
        now = time.perf_counter()
        if run is active and now - self._badges_at < 0.5:  # the canvas at <= 2 Hz
            return
        self._badges_at = now
        values = run.last_grad_rms()
        if values:  # a module instance's block shows its blocks' combined value
            counts = run.info.get("block_params", {})
            values = {**values, **module_values(list(run.blocks), values, counts)}
            canvas.set_block_badges(values)
            self._badges_drawn = key

    def progress(self, run: RunData | None) -> None:
        """The progress line under the Training dock's buttons, for ``run``."""
        if run is None:
            return
        dock = self.ctrl.dock
        total = int(run.info.get("total_steps", 0) or 0)
        last = run.steps.last()
        done = int(last[0]) if last is not None else 0
        if run is not self.ctrl.active:
            if run.status != "preparing":
                result = result_text(run)  # the result line says the run's end; no repeat
                line = "" if result else f"{run.name} {run.status}: {done} steps"
                dock.set_progress(done, total or done, line)
                dock.show_result(run.name, run.status, result)
            return
        dock.show_result("", "", "")
        if run.status == "preparing":
            return
        rate = self.steps_per_second()
        if dock.state == "paused":
            text = f"paused at step {done}"
        elif rate > 0:
            left = max(0, total - done) / rate
            text = f"{rate:.1f} steps/s, {_duration(left)} left"
        else:
            text = "starting..."
        ep = int(last[1]) if last is not None else 0
        dock.set_progress(done, total, f"epoch {ep}/{run.info.get('epochs', '?')}: {text}")

    def steps_per_second(self, window_s: float = 3.0) -> float:
        if len(self.rate) < 2:
            return 0.0
        t_end, s_end = self.rate[-1]
        t0, s0 = next(((t, s) for t, s in self.rate if t_end - t <= window_s), self.rate[0])
        return (s_end - s0) / (t_end - t0) if t_end > t0 else 0.0


def _duration(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
