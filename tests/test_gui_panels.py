"""The training panels' parts without a training thread: ring buffers, picture helpers, the
runs file, drawing preprocessing, character sampling, exports, the settings dock."""

from __future__ import annotations

import json

import numpy as np
import pytest

import engine
from engine.data import load_dataset
from engine.data.builtin import resize_bilinear
from gui.training import prep
from gui.training.images import filter_grid, kernel_stack, map_grid, normalise_symmetric
from gui.training.run_data import Ema, RingBuffer, RunData
from gui.training.runs_file import MAX_POINTS, load_runs, runs_path, save_runs
from gui.training.worker import confusion_matrix

# --- buffers ------------------------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_rows_in_order():
    b = RingBuffer(5, 2)
    b.extend(np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(b.data(), [[0, 1], [2, 3], [4, 5]])
    for i in range(3, 8):
        b.append([2 * i, 2 * i + 1])
    assert len(b) == 5 and b.total == 8
    np.testing.assert_array_equal(b.data()[:, 0], [6, 8, 10, 12, 14])
    b.extend(np.arange(40).reshape(20, 2))  # more than the capacity at once
    np.testing.assert_array_equal(b.data()[:, 0], [30, 32, 34, 36, 38])
    np.testing.assert_array_equal(b.last(), [38, 39])
    b.extend(np.array([[100, 101], [102, 103], [104, 105]]))  # wraps around the end
    np.testing.assert_array_equal(b.data()[:, 0], [36, 38, 100, 102, 104])


def test_ema_is_bias_corrected_and_skips_nan():
    e = Ema(alpha=0.1)
    assert e.update(2.0) == pytest.approx(2.0)  # no pull towards 0 at the start
    assert e.update(float("nan")) == pytest.approx(2.0)
    v = e.update(4.0)
    assert 2.0 < v < 4.0


def test_run_data_collects_steps_grads_and_epochs():
    run = RunData(1, "run 1", {})
    run.set_blocks(["c1", "d1"], {"c1": "Conv2D", "d1": "Dense"})
    run.add_steps(
        [
            {"step": 1, "epoch": 1, "loss": 2.0, "lr": 0.1, "grad_rms": {"c1": 0.5, "d1": 0.25}},
            {"step": 2, "epoch": 1, "loss": 1.0, "lr": 0.1, "grad_rms": {"d1": 0.125}},
        ]
    )
    assert run.last_grad_rms() == {"d1": 0.125}  # c1 had no value at step 2
    np.testing.assert_array_equal(run.steps.data()[:, 2], [2.0, 1.0])
    run.add_epoch({"event": "epoch", "epoch": 1, "val_loss": 0.9})
    assert run.epochs[0]["step"] == 2
    assert run.final_metrics()["val_loss"] == 0.9


# --- pictures -----------------------------------------------------------------------------------


def test_filter_grid_normalises_each_kernel_with_gaps():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 2, 3, 3)).astype(np.float32)
    grid, corners = filter_grid(w, channel=1)
    assert len(corners) == 5
    for k, (r, c) in enumerate(corners):
        tile = grid[r : r + 3, c : c + 3]
        np.testing.assert_allclose(tile, w[k, 1] / np.abs(w[k, 1]).max(), rtol=1e-6)
        assert np.abs(tile).max() == pytest.approx(1.0)
    assert np.isnan(grid).sum() == grid.size - 5 * 9  # everything else is a gap
    rgb, corners = filter_grid(rng.normal(size=(4, 3, 5, 5)), rgb=True)
    assert rgb.shape[-1] == 3
    tiles = np.stack([rgb[r : r + 5, c : c + 5] for r, c in corners])
    assert tiles.min(axis=(1, 2, 3)) == pytest.approx(0) and tiles.max() == pytest.approx(1)
    assert kernel_stack(np.zeros((4, 2, 7))).shape == (4, 2, 1, 7)  # Conv1D: one row each
    assert normalise_symmetric(np.zeros((2, 2))).tolist() == [[0, 0], [0, 0]]


def test_map_grid_scales_each_map():
    maps = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0)])
    grid, corners = map_grid(maps)
    (r0, c0), (r1, c1) = corners
    np.testing.assert_allclose(grid[r0 : r0 + 2, c0 : c0 + 2], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(grid[r1 : r1 + 2, c1 : c1 + 2], 0.5)  # a constant map


def test_confusion_matrix_counts():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    seq = confusion_matrix(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]), 2)
    assert seq.sum() == 4 and seq[1, 0] == 1


def test_block_outputs_match_the_model():
    g = engine.Graph()
    g.add_node("Input", {"shape": [3]}, node_id="in")
    g.add_node("Dense", {"units": 4}, node_id="a")
    g.add_node("Dense", {"units": 4}, node_id="b")
    g.add_node("Add", {}, node_id="sum")
    g.add_edge("in", "a")
    g.add_edge("in", "b")
    g.add_edge("a", "sum")
    g.add_edge("b", "sum")
    from engine.model import build_model

    model = build_model(g, seed=1)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    outs = model.block_outputs(x)
    np.testing.assert_allclose(outs["sum"], model.forward(x), rtol=1e-6)
    np.testing.assert_allclose(outs["sum"], outs["a"] + outs["b"], rtol=1e-6)


# --- runs file ----------------------------------------------------------------------------------


def _run(n_steps: int) -> RunData:
    run = RunData(
        3, "fast lr", {"dataset": {"name": "xor"}, "optimizer": {"name": "sgd", "lr": 0.1}}
    )
    run.set_blocks(["d1"], {"d1": "Dense"})
    run.add_steps(
        [
            {"step": i + 1, "epoch": 1, "loss": 1.0 / (i + 1), "lr": 0.1, "grad_rms": {"d1": 0.1}}
            for i in range(n_steps)
        ]
    )
    run.add_steps([{"step": n_steps + 1, "epoch": 1, "loss": float("nan"), "lr": 0.1}])
    run.add_epoch({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_acc": None})
    run.set_time_grads({"rnn": np.array([1e-6, 1e-3, 1.0])})
    run.confusion = np.array([[3, 1], [0, 4]])
    run.status = "finished"
    return run


def test_runs_file_round_trip(tmp_path):
    path = runs_path(tmp_path / "lenet.json")
    assert path.name == "lenet.runs.json"
    run = _run(10)
    save_runs(path, [run])
    text = path.read_text()
    assert "NaN" not in text  # strict JSON: NaN is written as null
    json.loads(text)
    (back,), problems = load_runs(path, first_id=7)
    assert problems == [] and back.run_id == 7 and back.name == "fast lr"
    np.testing.assert_allclose(back.steps.data()[:, :3], run.steps.data()[:, :3], equal_nan=True)
    assert back.epochs[0]["val_loss"] == 0.6
    np.testing.assert_allclose(back.time_grads_avg["rnn"], [1e-6, 1e-3, 1.0])
    np.testing.assert_array_equal(back.confusion, run.confusion)
    assert back.settings == run.settings and back.blocks == ["d1"]


def test_long_curves_are_thinned_and_bad_runs_skipped(tmp_path):
    path = tmp_path / "g.runs.json"
    save_runs(path, [_run(3 * MAX_POINTS)])
    d = json.loads(path.read_text())
    steps = d["runs"][0]["curve"]["step"]
    assert len(steps) == MAX_POINTS and steps[0] == 1 and steps[-1] == 3 * MAX_POINTS + 1
    d["runs"].append({"name": 5})
    d["runs"].append({"name": "ok", "settings": {}, "curve": {"step": [1, 2], "loss": [1]}})
    path.write_text(json.dumps(d))
    runs, problems = load_runs(path)
    assert len(runs) == 1 and len(problems) == 2
    path.write_text("{not json")
    runs, problems = load_runs(path)
    assert runs == [] and "cannot read" in problems[0]
    assert load_runs(tmp_path / "missing.runs.json") == ([], [])


# --- Try it: drawings prepared like the data set ------------------------------------------------

SEVEN = [np.array([[40.0, 30.0], [170.0, 30.0], [90.0, 200.0]])]
ONE = [np.array([[120.0, 20.0], [121.0, 200.0]])]


def test_digits_drawing_goes_through_the_loaders_own_steps():
    x8, small = prep.digits_sample(SEVEN, {})
    assert x8.shape == (1, 8, 8) and x8.dtype == np.float32
    np.testing.assert_array_equal(x8[0], small)
    # 17 grey levels in [0, 1] like pixel / 16; the height fills all 8 rows, as in the data
    assert np.all(np.isin(np.round(small * 16), np.arange(17)))
    assert small.max() <= 1 and (small.sum(axis=1) > 0).all()
    ink = small.mean()
    assert 0.15 < ink < 0.45  # the data set's digits hold about 30 % ink
    # sideways, the centre of mass sits in the middle like the data set's (3.5 +- 0.3)
    cx = (small.sum(axis=0) * np.arange(8)).sum() / small.sum()
    assert abs(cx - 3.5) <= 0.6
    # resize/pad/flatten are the loader's: the same function on the same 8x8 gives the same
    x32, _ = prep.digits_sample(SEVEN, {"resize": [32, 32]})
    np.testing.assert_array_equal(x32, resize_bilinear(small[None, None], (32, 32))[0])
    ds = load_dataset({"name": "digits", "resize": [32, 32]})
    from sklearn.datasets import load_digits

    first = (load_digits().images[0] / 16.0).astype(np.float32)
    np.testing.assert_allclose(ds.X[0], resize_bilinear(first[None, None], (32, 32))[0], rtol=1e-6)
    xp, _ = prep.digits_sample(SEVEN, {"resize": [28, 28], "pad": [32, 32], "flatten": True})
    assert xp.shape == (1024,)
    x, pic = prep.drawing_input(ONE, {"name": "digits", "flatten": True}, (64,))
    assert x.shape == (64,) and pic.shape == (8, 8)
    with pytest.raises(ValueError, match="takes"):
        prep.drawing_input(ONE, {"name": "digits"}, (1, 32, 32))
    with pytest.raises(ValueError, match="moons"):
        prep.drawing_input(ONE, {"name": "moons"}, (2,))


def test_mnist_drawing_is_centred_by_mass_in_a_20_pixel_box():
    img = prep.mnist_sample(SEVEN, (28, 28))
    assert img.shape == (28, 28) and 0 <= img.min() and img.max() <= 1
    ys, xs = np.mgrid[0:28, 0:28]
    m = img.sum()
    assert abs((img * ys).sum() / m - 13.5) <= 0.5 and abs((img * xs).sum() / m - 13.5) <= 0.5
    rows = np.flatnonzero(img.sum(axis=1) > 0)
    assert rows[-1] - rows[0] + 1 <= 22  # about 20 pixels tall plus the pen
    assert prep.mnist_sample(SEVEN, (28, 28), normalize=False).max() > 1


def test_next_character_uses_the_window_the_model_was_trained_on():
    vocab = ["a", "b", "c"]
    seen = []

    def forward(x):
        seen.append(x.copy())
        out = np.zeros((1, 4, 3), np.float32)
        out[0, :, 2] = 5.0
        out[0, 1, 1] = 9.0  # the text's last position in a short window
        return out

    p = prep.next_char_probs(forward, vocab, "ab", T=4, one_hot=False, temperature=1.0)
    assert seen[0].tolist() == [[0, 1, 0, 0]]
    assert int(np.argmax(p)) == 1 and p.sum() == pytest.approx(1)
    p = prep.next_char_probs(forward, vocab, "abcab", T=4, one_hot=True, temperature=1.0)
    assert seen[1].shape == (1, 4, 3) and seen[1][0].argmax(axis=1).tolist() == [1, 2, 0, 1]
    assert int(np.argmax(p)) == 2  # position 3 now holds the last character
    rng = np.random.default_rng(0)
    assert prep.sample_char(np.array([0.2, 0.7, 0.1]), rng, 0.0) == 1
    cold = prep.softmax(np.array([1.0, 2.0]), temperature=0.1)
    assert cold[1] > 0.99


# --- panels with a stand-in controller ---------------------------------------------------------


class Ctrl:
    """What the panels read from the controller."""

    def __init__(self, run: RunData | None = None) -> None:
        self.current = run
        self.active = None
        self.runs = [run] if run else []
        self.runs_version = 1
        self.weights_version = 0
        self.forward = None
        self.runlist = self  # the run accessors (RunList's) live here too

    def request_redraw(self):
        pass

    def watch_changed(self):
        pass

    def compared_runs(self):
        return []

    def overlay_runs(self):
        return []

    def run_by_id(self, rid):
        return next((r for r in self.runs if r.run_id == rid), None)

    def current_filters(self, run):
        return dict(run.filters) if run else {}

    def current_activations(self, run, sample):
        return None

    def inference_forward(self):
        return self.forward


def test_loss_and_gradient_panels_draw_and_export(qtbot, tmp_path):
    from gui.training.panels.gradients import GradientsPanel
    from gui.training.panels.loss import LossPanel

    run = _run(30)
    run.set_blocks(["c1", "d1"], {"c1": "Conv2D", "d1": "Dense"})
    run.add_steps(
        [{"step": 32, "epoch": 1, "loss": 0.1, "lr": 0.1, "grad_rms": {"c1": 1e-4, "d1": 2e-2}}]
    )
    ctrl = Ctrl(run)
    loss, grads = LossPanel(ctrl), GradientsPanel(ctrl)
    for p in (loss, grads):
        qtbot.addWidget(p)
        p.resize(800, 500)
        p.show()
        assert p.refresh(run)
        assert not p.refresh(run)  # nothing changed: no redraw
    x, y = loss.raw.getData()
    assert len(x) == 32 and y[-1] == pytest.approx(0.1) and np.isnan(y[-2])
    assert grads.values == {"c1": 1e-4, "d1": 2e-2}
    heights = 10 ** (grads.bars.opts["y0"] + grads.bars.opts["height"])
    np.testing.assert_allclose(heights, [1e-4, 2e-2])
    loss.log_box.setChecked(True)
    assert loss.p_step.getAxis("left").logMode
    assert loss.export_csv(str(tmp_path / "loss.csv")) and loss.export_png(str(tmp_path / "l.png"))
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss") and len(rows) == 33
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    grads.export_csv(str(tmp_path / "g.csv"))
    text = (tmp_path / "g.csv").read_text()
    assert "grad_rms,32,c1,0.0001" in text and "bptt_mean,1,rnn" in text


def test_log_axis_labels_decades_as_numbers():
    from gui.training.panels.base import LogAxis, number_text

    ax = LogAxis("left")
    ax.setRange(-4, 1)
    assert ax.logTickStrings([-3.0, -2.0, np.log10(2e-3)], 1.0, 1.0) == ["0.001", "0.01", ""]
    ax.setRange(-1, 0.5)
    assert ax.logTickStrings([np.log10(0.2), np.log10(0.3)], 1.0, 1.0) == ["0.2", ""]
    assert number_text(1e-6) == "1e-6" and number_text(100.0) == "100"


def test_try_it_classifies_a_drawing_as_the_model_sees_it(qtbot):
    from engine.model import build_model
    from gui.training.panels.try_it import TryItPanel

    g = engine.Graph()
    g.add_node("Input", {"shape": [64]}, node_id="in")
    g.add_node("Dense", {"units": 10}, node_id="out")
    g.add_edge("in", "out")
    model = build_model(g, seed=3)
    run = RunData(1, "run 1", {"dataset": {"name": "digits", "flatten": True}})
    run.info = {
        "task": "classification",
        "input_shape": (64,),
        "class_names": [str(i) for i in range(10)],
    }
    ctrl = Ctrl(run)
    ctrl.forward = lambda x: model.forward(x)
    panel = TryItPanel(ctrl)
    qtbot.addWidget(panel)
    panel.resize(700, 400)
    panel.show()
    panel.pad.set_strokes(SEVEN)
    panel.refresh(run)
    x, _ = prep.digits_sample(SEVEN, {"flatten": True})
    np.testing.assert_array_equal(panel.input, x)
    expected = prep.softmax(model.forward(x[None])[0])
    np.testing.assert_allclose(panel.probs, expected, rtol=1e-6)
    np.testing.assert_allclose(panel.bars.opts["height"], expected, rtol=1e-6)
    assert panel.probs.sum() == pytest.approx(1)
    panel.pad.clear()
    panel.refresh(run)
    assert panel.probs is None


def test_filters_panel_draws_the_kernels_it_is_given(qtbot):
    from gui.training.panels.filters import FiltersPanel

    run = RunData(1, "r", {})
    w = np.random.default_rng(1).normal(size=(6, 3, 5, 5)).astype(np.float32)
    run.filters = {"c1": w}
    run.block_types = {"c1": "Conv2D"}
    panel = FiltersPanel(Ctrl(run))
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(run)
    assert panel.block.currentText() == "c1" and panel.rgb.isEnabled()
    panel.channel.setValue(2)
    panel.refresh(run)
    r, c = panel.corners[4]
    np.testing.assert_allclose(
        panel.image.image[r : r + 5, c : c + 5], w[4, 2] / abs(w[4, 2]).max(), rtol=1e-6
    )
    panel.rgb.setChecked(True)
    panel.refresh(run)
    assert panel.image.image.shape[-1] == 3
    header, rows = panel.table()
    assert len(rows) == w.size and rows[0][-1] == pytest.approx(float(w[0, 0, 0, 0]))


def test_settings_dock_round_trip_and_import(qtbot, tmp_path):
    from gui.training.controls import TrainingDock

    dock = TrainingDock()
    qtbot.addWidget(dock)
    spec = {
        "dataset": {"name": "digits", "resize": [32, 32]},
        "loss": "cross_entropy",
        "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.8},
        "schedule": {"name": "step", "step_size": 3, "gamma": 0.5},
        "batch_size": 64,
        "epochs": 7,
        "seed": 2,
        "val_split": 0.25,
        "test_split": 0.0,
        "l1": 0.0,
        "l2": 1e-4,
        "clip_norm": 5.0,
    }
    dock.set_spec(spec)
    assert dock.spec() == spec
    chars = {**spec, "dataset": {"name": "chars", "T": 40}}  # "n" stays unset (nullable)
    dock.set_spec(chars)
    assert dock.spec()["dataset"] == {"name": "chars", "T": 40}
    dock.set_spec(spec)
    from engine.training_spec import check_training

    check_training(dock.spec())  # the engine accepts what the dock writes
    dock.train_form.editors["clip_norm"].setValue(0.0)  # "off"
    assert "clip_norm" not in dock.spec()
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,2,0\n")
    dock.use_file("csv", str(csv))
    assert dock.spec()["dataset"]["name"] == "csv"
    assert dock.spec()["dataset"]["path"] == str(csv)
    dock.set_state("running")
    assert not dock.start_button.isEnabled() and dock.pause_button.isEnabled()
    assert not dock.dataset.isEnabled()


def test_ring_buffer_grows_before_it_wraps():
    b = RingBuffer(5000, 1)
    assert b._a.shape[0] == RingBuffer.START_ROWS  # small until needed
    b.extend(np.arange(3000.0))
    assert b._a.shape[0] >= 3000 and len(b) == 3000
    np.testing.assert_array_equal(b.data()[:, 0], np.arange(3000.0))
    for i in range(3000, 6000):
        b.append(float(i))
    assert b._a.shape[0] == 5000 and len(b) == 5000 and b.total == 6000
    np.testing.assert_array_equal(b.data()[:, 0], np.arange(1000.0, 6000.0))


def test_the_wheel_scrolls_the_training_form_and_changes_no_setting(qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from gui.training.controls import TrainingDock

    dock = TrainingDock()
    qtbot.addWidget(dock)
    dock.resize(320, 300)  # shorter than the form: it scrolls
    dock.show()
    qtbot.waitExposed(dock)
    ed = dock.train_form.editors["batch_size"]
    before = ed.value()
    bar = dock.widget().verticalScrollBar()
    start = bar.value()

    def wheel(widget, steps: int) -> None:
        centre = QPointF(widget.rect().center())
        ev = QWheelEvent(
            centre,
            QPointF(widget.mapToGlobal(centre.toPoint())),
            QPoint(0, 0),
            QPoint(0, -120 * steps),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(widget, ev)

    wheel(ed, 3)
    assert ed.value() == before  # not focused: the setting stays
    assert bar.value() > start  # ... and the form scrolled
    ed.setFocus()
    qtbot.waitUntil(ed.hasFocus)
    wheel(ed, 1)
    assert ed.value() == before - 1  # clicked into: the wheel edits it, as usual
