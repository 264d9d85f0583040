"""Make the README's panel screenshots from real runs in the app (offscreen, no screen needed).

    .venv/bin/python docs/screenshots.py [--out docs] [--only FILE]

Each shot opens a preset in a real MainWindow (1600x1000), trains it with the preset's own
settings through the app's Training controller (for the epochs given below), brings one panel
forward and saves the whole window, or only the panel, as PNG. With PyTorch and onnx installed,
one more shot (onnx_import.png) is of a small ResNet exported by torch.onnx.export, imported
with engine.export.onnx and trained on the digits. The canvas shots (CANVAS_SHOTS) open a big
preset and save the window at Fit to Window, untrained.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (preset, epochs, panel, file, whole window?, block the panel follows); a preset "onnx:NAME"
# is the graph ONNX_MODELS[NAME] builds
SHOTS = [
    ("lenet5", 15, "gradients", "panel_gradients.png", True, None),
    ("lenet5", 15, "filters", "panel_filters.png", False, "c1"),
    ("lenet5", 15, "loss", "panel_loss.png", False, None),
    ("lenet5", 15, "confusion", "panel_confusion.png", False, None),
    ("lenet5", 15, "why", "panel_why.png", False, None),
    ("adding_rnn", 8, "gradients", "panel_bptt_rnn.png", False, None),
    ("adding_lstm", 8, "gradients", "panel_bptt_lstm.png", False, None),
    ("adding_lstm", 8, "activations", "panel_gates.png", False, "rnn"),
    ("peephole_lstm", 150, "activations", "panel_peephole.png", False, "lstm"),
    ("peephole_lstm", 150, "try_it", "panel_try_sequence.png", False, None),
    ("attention_dates", 6, "attention", "panel_attention.png", False, "att"),
    ("onnx:resnet", 8, "gradients", "onnx_import.png", True, None),
]


# (preset, file): the whole window at Fit to Window (a big graph's compact blocks)
CANVAS_SHOTS = [("zoo/googlenet", "canvas_googlenet.png")]


def canvas_shot(w, app, preset: str, target: Path) -> bool:
    """Open ``preset`` as File > Open Preset does, fit it to the window, save the window."""
    if not w.files.load(str(ROOT / "presets" / f"{preset}.json"), as_preset=True):
        return False
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    w.canvas.fit_all()
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok = w.grab().save(str(target))
    print(f"{target}: {preset} at {w.canvas.zoom():.0%}")
    return ok


def imported_resnet():
    """A small ResNet (BatchNorm, two residual blocks) made in PyTorch, exported with
    torch.onnx.export and imported: the graph File > Import ONNX gives, set to train on the
    digits. None without torch or onnx."""
    try:
        import torch
        from torch import nn

        from engine.export.onnx.importer import import_model
    except ImportError:
        return None
    import io
    import warnings

    import onnx

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.block1, self.block2 = Residual(16), Residual(16)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.block2(self.block1(torch.relu(self.bn(self.stem(x)))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ResNet().eval(),
            (torch.randn(1, 1, 16, 16),),
            f,
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "N"}},
        )
    graph, _ = import_model(onnx.load_from_string(f.getvalue()), "resnet.onnx")
    graph.set_meta("name", "ResNet (imported from ONNX)")
    graph.set_meta(
        "training",
        {
            "dataset": {"name": "digits", "resize": [16, 16]},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.002},
            "batch_size": 32,
            "seed": 0,
            "val_split": 0.2,
        },
    )
    return graph


def private_history() -> tempfile.TemporaryDirectory | None:
    """The shots' runs go to a run history of their own (a temporary folder, removed when the
    returned object is), never into the user's (gui/training/history.py), unless
    BLOCKPROP_HISTORY_DIR is set already."""
    if os.environ.get("BLOCKPROP_HISTORY_DIR"):
        return None
    folder = tempfile.TemporaryDirectory(prefix="blockprop-shots-history-")
    os.environ["BLOCKPROP_HISTORY_DIR"] = folder.name
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--only", metavar="FILE", help="make only this shot (e.g. onnx_import.png)")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    history = private_history()  # noqa: F841 (kept until the shots are made)
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # before the GUI modules (fonts at import)

    import engine
    from gui.main_window import MainWindow

    w = MainWindow(restore_layout=False)
    w.resize(1600, 1000)
    w.show()
    w.files.ask_save_changes = lambda: "discard"
    for preset, name in CANVAS_SHOTS:
        if args.only and name != args.only:
            continue
        if not canvas_shot(w, app, preset, Path(args.out) / name):
            print(f"cannot make {name}")
            return 1
    trained: str | None = None
    for preset, epochs, panel, name, whole, block in SHOTS:
        if args.only and name != args.only:
            continue
        ctrl = w.training
        if trained != preset:
            if preset.startswith("onnx:"):
                graph = imported_resnet()
                if graph is None:
                    print(f"{name}: skipped (needs torch and onnx)")
                    continue
                w.tidy_layout(graph)
            else:
                graph = engine.load_graph(ROOT / "presets" / f"{preset}.json")
            graph.set_meta("training", {**graph.training, "epochs": epochs})
            w.graph.replace_with(graph)
            w.undo_stack.clear()
            app.processEvents()
            w.canvas.fit_all()
            app.processEvents()
            ctrl.dock.set_spec(graph.training)
            ctrl.panel_docks[panel].show()
            ctrl.panel_docks[panel].raise_()
            if not ctrl.start():
                print(f"{preset}: cannot start: {ctrl.dock.error.text()}")
                return 1
            while ctrl.active is not None:
                app.processEvents()
                time.sleep(0.01)
            trained = preset
        dock = ctrl.panel_docks[panel]
        dock.show()
        dock.raise_()
        if block and hasattr(ctrl.panels[panel], "follow"):
            ctrl.panels[panel].follow(block)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        ctrl.redraw(force=True)
        app.processEvents()
        target = Path(args.out) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (w if whole else dock).grab().save(str(target)):
            print(f"cannot write {target}")
            return 1
        print(f"{target}: {preset}, {epochs} epochs, {ctrl.current.status}")
    w.files.ask_save_changes = lambda: "discard"
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
