"""docs/screenshots.py trains real runs: they must not go into the user's run history."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from gui.training import history as hist

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "screenshots.py"


def _script():
    spec = importlib.util.spec_from_file_location("screenshots_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_screenshots_use_a_history_of_their_own(monkeypatch, tmp_path):
    mod = _script()
    monkeypatch.delenv("BLOCKPROP_HISTORY_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user"))
    user = hist.history_dir()
    folder = mod.private_history()
    assert folder is not None
    assert hist.history_dir() != user
    assert Path(os.environ["BLOCKPROP_HISTORY_DIR"]).parent == Path(tempfile.gettempdir())
    folder.cleanup()
    monkeypatch.setenv("BLOCKPROP_HISTORY_DIR", str(tmp_path / "mine"))
    assert mod.private_history() is None  # set by the caller: kept
    assert hist.history_dir() == tmp_path / "mine"
