"""The app opens: the main window shows, and --screenshot writes a PNG."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_main_window_opens(qtbot):
    from gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.isVisible()
    assert "BlockProp" in w.windowTitle()
    w.close()


def test_screenshot_command(tmp_path):
    out = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "app.py", "--screenshot", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
