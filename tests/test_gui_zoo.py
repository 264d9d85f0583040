"""The zoo in the app: the preset dialog lists presets/zoo after the other presets, and a
zoo preset opens from it with every block on the canvas and no problem."""

from __future__ import annotations

from gui.preset_dialog import PRESETS_DIR, PresetDialog, list_presets

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def test_preset_dialog_lists_the_zoo_and_opens_googlenet(window):
    w = window
    infos = list_presets(PRESETS_DIR)
    zoo = [i for i in infos if i.path.parent.name == "zoo"]
    assert {i.path.stem for i in zoo} >= {"alexnet", "vgg16", "googlenet", "densenet121"}
    assert infos[-len(zoo) :] == zoo  # after the trainable presets
    assert not any(i.error for i in zoo)
    dlg = PresetDialog(PRESETS_DIR)
    row = next(k for k, i in enumerate(dlg.presets) if i.path.stem == "googlenet")
    dlg.list.setCurrentRow(row)
    assert "6,624,904" in dlg.detail.text()
    path = dlg.selected_path()
    dlg.close()
    w.choose_preset = lambda: path
    assert w.open_preset()
    assert len(w.scene.blocks) == len(w.graph) == 197
    assert w.live.flush().ok
    assert w.windowTitle().startswith("GoogLeNet (torchvision) (preset)")


def test_a_zoo_preset_is_not_checked_against_the_docks_default_data(window, qtbot):
    """The zoo names no data set (ImageNet-sized: for your own pictures); the dock shows its
    default, the digits, which the Problems list does not hold the graph to until chosen."""
    w = window
    assert w.files.load(str(PRESETS_DIR / "zoo" / "alexnet.json"))
    qtbot.waitUntil(lambda: w.live.training is None)
    qtbot.wait(300)  # the data probe would have answered by now
    assert w.live.flush().ok, w.live.analysis.problems
    w.training.dock.edited.emit()  # the user chose the digits after all: now checked
    assert w.live.training is not None
    assert w.files.load(str(PRESETS_DIR / "lenet5.json"))  # names its data set: checked
    qtbot.waitUntil(lambda: w.live.training is not None)
