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
