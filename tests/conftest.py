import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

# Helper modules the tests import and load as plugins: their asserts are rewritten too.
pytest.register_assert_rewrite("gui_support", "training_support")


@pytest.fixture(autouse=True)
def _run_history_in_tmp(tmp_path, monkeypatch):
    """The app's project-wide run history (gui/training/history.py) in the test's tmp_path,
    never in the user's data folder."""
    monkeypatch.setenv("BLOCKPROP_HISTORY_DIR", str(tmp_path / "run_history"))


@pytest.fixture(scope="session", autouse=True)
def _clear_clipboard_at_exit():
    """PySide6 6.11 crashes at interpreter exit (SIGSEGV) while the clipboard still holds a
    QMimeData made in Python; empty it once the tests are done."""
    yield
    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.clipboard().clear()


MODAL_PATIENCE_MS = 20_000


@pytest.fixture(autouse=True)
def _no_forgotten_modal_dialog(request):
    """A modal dialog nobody answers (offscreen, no user) would wait forever, inside Qt's own
    event loop where pytest-timeout's signal cannot reach. One left open for 20 s is closed and
    fails its test, naming the dialog."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("qapp")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen: list[str] = []
    state = {"widget": None, "clock": QElapsedTimer()}

    def check():
        w = QApplication.activeModalWidget()
        if w is None or w is not state["widget"]:
            state["widget"] = w
            state["clock"].start()
            return
        if state["clock"].elapsed() >= MODAL_PATIENCE_MS:
            text = w.text() if isinstance(w, QMessageBox) else ""
            seen.append(f"{w.windowTitle()!r}: {text}")
            w.reject()
            state["widget"] = None

    timer = QTimer()
    timer.setInterval(500)
    timer.timeout.connect(check)
    timer.start()
    yield
    timer.stop()
    if seen:
        pytest.fail("a modal dialog waited for an answer nobody gave: " + "; ".join(seen))


@pytest.fixture(autouse=True)
def _collect_widgets_in_the_gui_thread(request):
    """A GUI test's windows and dialogs, closed at its teardown, are often in reference cycles:
    collect them now, in the main thread. Left to Python's next automatic collection they could
    be freed in whatever thread allocated then (a data-loading thread of a later test), where a
    widget's destructor deadlocks with the GUI thread (seen: a land run hung 10 minutes in
    QObject::~QObject). This fixture is set up first, so its teardown runs after the window
    fixtures close their windows (gui/main.py does the same for the app with a GUI-thread
    collector)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    yield
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def pytest_collection_modifyitems(config, items):
    """The fuzz tests of hostile files run in tests/test_fuzz_capped.py's memory-capped child
    (so a blow-up fails a test, not the machine); set BLOCKPROP_FUZZ_CHILD=1 to run them here."""
    from memcap import FUZZ_CHILD, FUZZ_MODULES

    if os.environ.get(FUZZ_CHILD) == "1":
        return
    skip = pytest.mark.skip(reason="run under a memory cap by tests/test_fuzz_capped.py")
    for item in items:
        if item.path.name in FUZZ_MODULES:
            item.add_marker(skip)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config._blockprop_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process with pytest's exit status, skipping the interpreter's teardown.

    With PySide6 6.11, freeing the last Python references to some Qt objects during that
    teardown's garbage collection can crash (SIGSEGV) AFTER every test passed and the summary
    was printed: a fresh-clone CI run once ended with exit code 139 that way, and a forced
    gc.collect() at the end of the session reproduced it. Nothing is left to do at this point
    (every other plugin has unconfigured; the report is written), so the exit code must be
    the tests' verdict, not the teardown's. Set BLOCKPROP_NORMAL_EXIT=1 to exit normally.
    """
    status = getattr(config, "_blockprop_exitstatus", None)
    if status is None or os.environ.get("BLOCKPROP_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
