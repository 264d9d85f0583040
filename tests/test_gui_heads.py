"""The Loss panel of a graph with extra outputs (engine.heads): a real short run through the
training process draws one curve per output with the trainer's own losses, and the runs file
keeps them."""

from __future__ import annotations

import numpy as np
import pytest
from test_heads import two_heads
from training_support import replay, run_to_end

import engine

pytest_plugins = ["gui_support", "training_support"]


def test_loss_panel_draws_a_curve_per_head_and_the_runs_file_keeps_them(
    qtbot, train_window, tmp_path
):
    path = tmp_path / "heads.json"
    g = two_heads(epochs=2)
    g.save(path)
    w = train_window(g, str(path))
    ctrl = w.training
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    run = ctrl.current
    assert run.status == "finished" and run.heads == ["out", "aux"]
    ctrl.redraw(force=True)
    panel = ctrl.panels["loss"]
    assert set(panel.head_curves) == {"out", "aux"}
    x, _ = panel.raw.getData()
    for h in ("out", "aux"):
        hx, hy = panel.head_curves[h].getData()
        assert list(hx) == list(x) and np.isfinite(hy).all()
        assert hy[-1] < 0.5 * hy[0]  # each head's loss falls
        ex, ey = panel.head_val_curves[h].getData()
        assert list(ex) == [1, 2]
    # the trainer's numbers: the same run replayed in this process
    trainer = replay(run).trainer
    last = trainer.history[-1]["val_heads"]
    _, ey = panel.head_val_curves["aux"].getData()
    assert ey[-1] == pytest.approx(last["aux"], rel=1e-6)
    assert "(total: out + 0.3 x aux)" in panel.p_step.titleLabel.text
    names = [item.text for _, item in panel.p_step.legend.items]
    assert "aux (EMA)" in names and "out (EMA)" in names
    # the short epoch plot's title is its key, each name after a dot in its curve's colour
    title = panel.p_epoch.titleLabel.text
    for h in ("out", "aux"):
        colour = panel.head_val_curves[h].opts["pen"].color().name()
        assert f"color:{colour}'>&#9679;</span>&nbsp;val {h}" in title
    assert panel.p_epoch.legend is None
    # saved next to the graph and reopened with the curves
    w2 = train_window(engine.load_graph(path), str(path))
    back = w2.training.runs[0]
    assert back.heads == ["out", "aux"]
    assert back.epochs[-1]["val_heads"]["aux"] == pytest.approx(last["aux"])
    np.testing.assert_allclose(back.head_loss.data(), run.head_loss.data())
    reopened = w2.training.panels["loss"]
    reopened.draw(back)
    hx, hy = reopened.head_curves["aux"].getData()
    assert len(hx) == len(back.head_loss) and np.isfinite(hy).all()


def test_the_problems_fix_makes_an_end_an_extra_output_in_one_undo_step(qtbot, window):
    g = two_heads()
    g.set_meta("training", {k: v for k, v in g.training.items() if k != "heads"})
    window.graph.replace_with(g)
    qtbot.waitUntil(
        lambda: any(p.fix for p in window.analysis.problems if p.block == "aux"), timeout=5000
    )
    fix = next(p.fix for p in window.analysis.problems if p.block == "aux")
    assert window.controller.apply_fix(fix) is None
    assert window.graph.training["heads"] == [{"block": "aux", "weight": 0.3}]
    qtbot.waitUntil(lambda: window.analysis.ok, timeout=5000)
    assert window.analysis.heads == {"aux": 0.3}
    window.controller.stack.undo()
    assert "heads" not in window.graph.training
