"""How the TrainingController draws: the 25 Hz tick, the metering that keeps drawing from
starving training, the canvas badges and the progress line. Part of TrainingController."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Slot

from gui.training.buffers import RunData

REDRAW_HZ = 25.0
# While training, the share of time the GUI thread may spend drawing (see redraw). Training
# runs in a process of its own (engine.live), so drawing no longer holds its GIL; it only
# takes CPU, and on two cores training uses one. Measured with
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


class RedrawMixin:
    """Part of TrainingController (see there for the attributes it sets up)."""

    def request_redraw(self) -> None:
        """Something besides the run's data changed (a setting, a tab): draw soon."""
        self._ui_dirty = True
        if not self.timer.isActive():
            self.timer.start()

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
        }
        if want != self._watch_sent:
            self._watch_sent = want
            w.set_watch(**want)

    def _panel_visibility(self, visible: bool) -> None:
        if visible:
            self.request_redraw()
        # After the event that changed it, when the panels' geometry is up to date.
        QTimer.singleShot(0, self.watch_changed)

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
        run = self.current
        metered = self.active is not None and not force
        seen = (id(run), getattr(run, "version", None))
        if metered and (
            not self._within_budget(t0) or (seen == self._seen and not self._ui_dirty)
        ):  # nothing new
            self._tick_extras(run, force)
            return
        due = sorted(
            (p.drawn_at, key)
            for key, p in self.panels.items()
            if force or (p.shown() and p.redraw_key(run) != p._drawn)
        )
        self._ui_dirty = False
        if not force:  # one panel per tick; the others on the next ticks
            if len(due) > 1:
                self._ui_dirty = True
            due = due[:1]
        self._seen = seen
        if not force and not due and self.active is None:
            self.timer.stop()  # everything drawn after the run: rest
        for _, key in due:
            t1 = time.perf_counter()
            panel = self.panels[key]
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
            self._progress(run)

    def _badges(self, run: RunData | None) -> None:
        if run is None or run.grads is None:
            return
        canvas = self.window.canvas
        key = (run.run_id, run.steps.total)
        if key == self._badges_drawn or run is not self.active and self._badges_drawn:
            return
        now = time.perf_counter()
        if run is self.active and now - self._badges_at < 0.5:  # the canvas at <= 2 Hz
            return
        self._badges_at = now
        values = run.last_grad_rms()
        if values:
            canvas.set_block_badges(values)
            self._badges_drawn = key

    def _progress(self, run: RunData | None) -> None:
        if run is None:
            return
        total = int(run.info.get("total_steps", 0) or 0)
        last = run.steps.last()
        done = int(last[0]) if last is not None else 0
        if run is not self.active:
            if run.status != "preparing":
                self.dock.set_progress(
                    done, total or done, f"{run.name} {run.status}: {done} steps"
                )
            return
        if run.status == "preparing":
            return
        rate = self.steps_per_second()
        if self.dock.state == "paused":
            text = f"paused at step {done}"
        elif rate > 0:
            left = max(0, total - done) / rate
            text = f"{rate:.1f} steps/s, {_duration(left)} left"
        else:
            text = "starting..."
        ep = int(last[1]) if last is not None else 0
        self.dock.set_progress(done, total, f"epoch {ep}/{run.info.get('epochs', '?')}: {text}")

    def steps_per_second(self, window_s: float = 3.0) -> float:
        if len(self._rate) < 2:
            return 0.0
        t_end, s_end = self._rate[-1]
        t0, s0 = next(((t, s) for t, s in self._rate if t_end - t <= window_s), self._rate[0])
        return (s_end - s0) / (t_end - t0) if t_end > t0 else 0.0


def _duration(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
