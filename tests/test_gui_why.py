"""The Why? panel after a real run: its map is engine.explain's for the run's trained network,
for validation samples, the drawn digit, each method and class; the top-3 maps beside it."""

from __future__ import annotations

import numpy as np
from training_support import lenet5, replay, run_to_end, show_all_panels

from engine.explain import explain, top_classes

# fixtures: gui_env (settings files in tmp_path); train_window
pytest_plugins = ["gui_support", "training_support"]


def test_why_panel_draws_the_engines_map_of_a_real_run(qtbot, train_window, tmp_path):
    from test_gui_panels import SEVEN

    w = train_window(lenet5(epochs=2))
    ctrl = w.training
    show_all_panels(ctrl)
    ctrl.panel_docks["why"].raise_()
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    run = ctrl.current
    model = replay(run).model  # the run trained again here: the same weights
    panel = ctrl.panels["why"]
    ctrl.redraw(force=True)
    assert panel.result is not None and not panel.message.isVisible()
    methods = [panel.method.itemData(i) for i in range(panel.method.count())]
    assert methods == ["gradcam", "saliency", "smoothgrad", "occlusion"]  # no GAP: no CAM
    x = run.info["val_X"][0]
    want = explain(model, x, "gradcam")
    np.testing.assert_allclose(panel.heat.image, want.map, rtol=1e-4, atol=1e-6)
    assert panel.result.cls == want.cls == int(np.argmax(want.scores))
    assert panel.block.currentData() == "c3"
    # the top three classes' maps, best first
    assert [t.cls for t in panel.top] == top_classes(want.scores, 3)
    second = explain(model, x, "gradcam", top_classes(want.scores, 3)[1])
    np.testing.assert_allclose(panel.small[1][3].image, second.map, rtol=1e-4, atol=1e-6)
    # another sample, class, method and block
    panel.sample.setValue(5)
    panel.cls.setCurrentIndex(panel.cls.findData(7))
    panel.method.setCurrentIndex(panel.method.findData("saliency"))
    ctrl.redraw(force=True)
    want = explain(model, run.info["val_X"][5], "saliency", 7)
    np.testing.assert_allclose(panel.heat.image, want.map, rtol=1e-4, atol=1e-6)
    assert panel.result.cls == 7 and "class 7" in panel.heading.text
    panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    panel.block.setCurrentIndex(panel.block.findData("c1"))
    ctrl.redraw(force=True)
    want = explain(model, run.info["val_X"][5], "gradcam", 7, "c1")
    np.testing.assert_allclose(panel.heat.image, want.map, rtol=1e-4, atol=1e-6)
    # the legend spans the map's values; the opacity slider sets the map's opacity
    lo, hi = panel.legend.levels()
    assert lo <= float(want.map.min()) + 1e-6 and hi == np.float32(want.map.max())
    panel.opacity.setValue(20)
    assert abs(panel.heat.opacity() - 0.2) < 1e-6
    # the digit drawn in Try it
    ctrl.panels["try_it"].pad.set_strokes(SEVEN)
    ctrl.redraw(force=True)
    panel.source.setCurrentIndex(1)
    ctrl.redraw(force=True)
    drawn = ctrl.panels["try_it"].input
    want = explain(model, drawn, "gradcam", 7, "c1")
    np.testing.assert_allclose(panel.heat.image, want.map, rtol=1e-4, atol=1e-6)
    header, rows = panel.table()
    assert len(rows) == 32 * 32 and rows[33][2] == np.float32(want.map[1, 1])
    assert panel.export_png(str(tmp_path / "why.png"))
    assert (tmp_path / "why.png").read_bytes()[:4] == b"\x89PNG"
    # a network too slow for the GUI thread: the panel says so instead of freezing the window
    gui_model = ctrl.runlist.model_for(run)
    assert 0 < panel.pass_s[id(gui_model)] < 0.05  # measured on LeNet-5
    panel.pass_s[id(gui_model)] = 0.4  # as if one forward pass took 0.4 s (ResNet-18)
    panel.method.setCurrentIndex(panel.method.findData("smoothgrad"))
    ctrl.redraw(force=True)
    assert panel.result is None and panel.message.isVisible()
    assert "SmoothGrad would take about 10 s on this network" in panel.message.text()
    panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    panel.pass_s[id(gui_model)] = 0.1  # the main map fits (0.3 s), two more would not
    ctrl.redraw(force=True)
    assert panel.result is not None and not panel.message.isVisible()


def test_why_panel_says_what_it_needs(qtbot, train_window):
    w = train_window(lenet5(epochs=1))
    ctrl = w.training
    show_all_panels(ctrl)
    ctrl.panel_docks["why"].raise_()
    ctrl.redraw(force=True)
    panel = ctrl.panels["why"]
    assert panel.message.isVisible() and "Train a classifier" in panel.message.text()
