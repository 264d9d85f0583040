"""The Training dock's standard data sets and augmentation settings; a first use downloads
behind a progress dialog before the run starts (the loopback server of
test_datasets_download serves generated files)."""

from __future__ import annotations

from test_datasets_download import folder, mnist_like, serve, server  # noqa: F401 (fixture)
from training_support import lenet5

from engine.data import DOWNLOADED_DATASETS, needs_download

pytest_plugins = ["gui_support", "training_support"]


def test_dock_lists_the_downloaded_sets_and_round_trips_augment(qtbot, train_window):
    w = train_window(lenet5())
    dock = w.training.dock
    names = [dock.dataset.itemData(i) for i in range(dock.dataset.count())]
    assert all(n in names for n in DOWNLOADED_DATASETS)
    assert "augment" not in dock.spec()  # all off: the graph file stays as it was
    dock.set_spec({**w.graph.training, "augment": {"hflip": True, "rotate": 10.0}})
    assert dock.spec()["augment"] == {"hflip": True, "rotate": 10.0}
    dock.augment_form.editors["hflip"].setChecked(False)
    dock.augment_form.editors["cutout"].setValue(8)
    assert dock.spec()["augment"] == {"rotate": 10.0, "cutout": 8}
    dock.set_spec({**w.graph.training, "dataset": {"name": "mnist", "pad": [32, 32]}})
    assert dock.spec()["dataset"] == {"name": "mnist", "pad": [32, 32]}


def test_start_downloads_first_with_a_dialog(qtbot, train_window, server, monkeypatch):  # noqa: F811
    files, _ = mnist_like(n_train=64, n_test=8)
    serve(server, monkeypatch, "mnist", files)
    w = train_window(lenet5())
    ctrl = w.training
    ctrl.dock.set_spec({**w.graph.training, "dataset": {"name": "mnist", "pad": [32, 32]}})
    calls = []
    first = ctrl.start

    def start(paused=False):
        calls.append(paused)
        return first(paused) if len(calls) == 1 else True  # the run itself: other tests

    ctrl.start = start
    assert not ctrl.start()  # not yet: the download goes first
    assert ctrl.download.dialog.isVisible() and ctrl.thread is None
    qtbot.waitUntil(lambda: ctrl.download.finished, timeout=10_000)
    assert calls == [False, False]  # started again once the files were there
    assert not needs_download("mnist") and ctrl.download.error == ""
    assert sorted(p.name for p in folder("mnist").iterdir()) == sorted(files)


def test_augment_preview_strip_shows_before_and_after(qtbot, train_window):
    import numpy as np

    w = train_window(lenet5())
    dock = w.training.dock
    dock.set_spec(
        {
            **w.graph.training,
            "dataset": {"name": "digits", "resize": [32, 32]},
            "augment": {"hflip": True},
        }
    )
    preview = dock.augment_preview
    preview.button.click()
    qtbot.waitUntil(lambda: not preview.busy, timeout=10_000)
    before, after = preview.last
    assert before.shape == after.shape == (8, 1, 32, 32)
    for b, a in zip(before, after, strict=True):  # each one as it was, or mirrored
        assert np.array_equal(a, b) or np.array_equal(a, b[..., ::-1])
    assert not np.array_equal(before, after)
    pix = preview.picture.pixmap()
    assert not pix.isNull() and pix.width() > 8 * 32 and pix.height() > 2 * 32
    # settings that do not fit the data set: one line instead of the strip
    dock.set_spec({**w.graph.training, "dataset": {"name": "moons"}, "augment": {"hflip": True}})
    preview.button.click()
    qtbot.waitUntil(lambda: not preview.busy, timeout=10_000)
    assert preview.last is None and "(C, H, W)" in preview.picture.text()
