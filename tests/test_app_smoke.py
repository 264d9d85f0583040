"""The app opens: the main window shows, and --screenshot writes a PNG."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["gui_support"]


def test_main_window_opens(window):
    assert window.isVisible()
    assert "BlockProp" in window.windowTitle()


def offscreen_env(tmp_path):
    # Settings and recovery files of the child go to tmp_path, not the user's real ones.
    return {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }


def test_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    r = subprocess.run(
        [sys.executable, "app.py", "presets/lenet5.json", "--screenshot", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=offscreen_env(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gui_with_a_missing_graph_file_says_so(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "app.py",
            str(tmp_path / "nope.json"),
            "--screenshot",
            str(tmp_path / "x.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=offscreen_env(tmp_path),
    )
    assert r.returncode == 2
    assert "nope.json" in r.stderr and "Traceback" not in r.stderr
