"""New, Open, Save, Save As, Open Recent, the unsaved-changes prompt, autosave and crash
recovery for one main window.

The prompts are methods (``ask_save_changes``, ``ask_open_path``, ``ask_save_path``,
``ask_restore``, ``show_error``) so tests can replace them instead of clicking dialogs.
"""

from __future__ import annotations

import math
import os
import re
import time
import unicodedata
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.errors import BlockPropError
from engine.graph import (
    MAX_FILE_BYTES,
    ZOO_FOLDER,
    Graph,
    load_graph,
)
from engine.graph_json import parse_json, save_json_atomic
from engine.safe_io import read_limited
from gui import commands as cmd
from gui.preset_dialog import PRESETS_DIR
from gui.settings import app_settings, recovery_dir, settings_list

ZOO_DIR = PRESETS_DIR / ZOO_FOLDER

RECOVERY_FORMAT = "blockprop-recovery"
AUTOSAVE_MS = 60_000
MAX_RECENT = 10
ACTIVE_RECOVERY: set[str] = set()  # this process's windows' recovery files (not crashes)


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0 or os.name == "nt":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_stem(name: object) -> str:
    """A file name (without .json) proposed for a graph called ``name``: lower case, words
    joined by "_", nothing a file system or shell trips over ("Optimizers: Adam" ->
    "optimizers_adam"); "graph" when nothing is left."""
    text = unicodedata.normalize("NFKD", name if isinstance(name, str) else "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    stem = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:60].strip("_")
    return stem or "graph"


def recovery_text(data: dict) -> str:
    """What the recovery question says about a recovery file's graph: its name, file (or
    preset), size and when it was saved. The file is untrusted: every part is checked."""
    saved = data.get("saved_at")
    saved = saved if isinstance(saved, (int, float)) and math.isfinite(saved) else 0
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved))
    graph = data.get("graph") if isinstance(data.get("graph"), dict) else {}
    name = graph.get("name") if isinstance(graph.get("name"), str) else ""
    name = " ".join(name.split())[:80] or "untitled"
    nodes = graph.get("nodes")
    size = f", {len(nodes)} block{'s' * (len(nodes) != 1)}" if isinstance(nodes, list) else ""
    path = data.get("path") if isinstance(data.get("path"), str) else None
    preset = data.get("preset") if isinstance(data.get("preset"), str) else None
    where = (
        f"file {Path(path).name}"
        if path
        else f"from the preset {Path(preset).stem}"
        if preset
        else "never saved"
    )
    return (
        f'BlockProp did not close properly. A copy of the graph "{name}" ({where}{size}) '
        f"from {when} was saved automatically."
    )


def find_recoveries(folder: Path | None = None) -> list[tuple[Path, dict]]:
    """Recovery files left by windows that did not close cleanly, newest first."""
    folder = recovery_dir() if folder is None else folder
    found = []
    for p in folder.glob("recovery-*.json"):
        if str(p) in ACTIVE_RECOVERY:
            continue
        try:
            data = parse_json(read_limited(p, MAX_FILE_BYTES).decode("utf-8"))
        except (BlockPropError, UnicodeDecodeError):  # not a regular file, too large, bad JSON
            continue
        if not isinstance(data, dict) or data.get("format") != RECOVERY_FORMAT:
            continue
        if data.get("pid") != os.getpid() and _pid_alive(data.get("pid")):
            continue  # another BlockProp is running and owns it
        found.append((p, data))
    found.sort(key=lambda pd: -float(pd[1].get("saved_at", 0) or 0))
    return found


def is_shipped_preset(path: str | os.PathLike) -> bool:
    """Is ``path`` one of the presets that come with BlockProp (in its presets folder)?"""
    try:
        return Path(path).resolve().parent in (PRESETS_DIR.resolve(), ZOO_DIR.resolve())
    except (OSError, RuntimeError):
        return False


class FileManager(QObject):
    changed = Signal()  # the file name or the modified state changed (update the title)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.graph: Graph = window.graph
        self.stack = window.undo_stack
        self.path: str | None = None
        self.preset: str | None = None  # name of the preset the graph came from, if any
        self.recovery_path = recovery_dir() / f"recovery-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        ACTIVE_RECOVERY.add(str(self.recovery_path))
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        self.stack.cleanChanged.connect(self._clean_changed)

    def _clean_changed(self, _clean: bool) -> None:
        self.changed.emit()

    # --- prompts (replaced in tests) -----------------------------------------------------------
    def ask_save_changes(self) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"Save the changes to {self.display_name()}?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open graph", self._start_dir(), "BlockProp graphs (*.json);;All files (*)"
        )
        return path or None

    def ask_save_path(self) -> str | None:
        start = self.path or str(Path(self._start_dir()) / f"{file_stem(self.graph.name)}.json")
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save graph as", start, "BlockProp graphs (*.json)"
        )
        return path or None

    def ask_restore(self, data: dict) -> bool:
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Recover unsaved work?")
        box.setTextFormat(Qt.TextFormat.PlainText)  # names from the file are text, never HTML
        box.setText(recovery_text(data))
        box.setInformativeText("Restore it? Discard deletes the copy.")
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(restore)
        box.exec()
        return box.clickedButton() is restore

    def show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self.window, title, text)

    # --- state ---------------------------------------------------------------------------------
    def _start_dir(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else os.getcwd()

    def display_name(self) -> str:
        if self.path:
            return Path(self.path).name
        if self.preset:
            return f"{self.preset} (preset)"
        return "Untitled"

    def modified(self) -> bool:
        return not self.stack.isClean()

    def maybe_save(self) -> bool:
        """Before the graph is replaced or the window closes: True when it is safe to go on."""
        if not self.modified():
            return True
        choice = self.ask_save_changes()
        if choice == "save":
            return self.save()
        return choice == "discard"

    def _take(self, g: Graph, path: str | None, preset: str | None) -> None:
        self.graph.replace_with(g)
        self.stack.clear()
        self.stack.setClean()
        self.path, self.preset = path, preset
        self.remove_recovery()
        self.changed.emit()

    # --- commands ------------------------------------------------------------------------------
    def take_new(self, g: Graph) -> None:
        """Show ``g`` (an imported model) as a new graph with no file yet; the caller asked
        ``maybe_save`` first."""
        self._take(g, None, None)

    def start_dir(self) -> str:
        """Where file dialogs open: the folder of the most recent file, else the working one."""
        return self._start_dir()

    def new(self) -> bool:
        if not self.maybe_save():
            return False
        self._take(Graph(), None, None)
        return True

    def open(self, path: str | None = None) -> bool:
        if not self.maybe_save():
            return False
        path = path or self.ask_open_path()
        return bool(path) and self.load(path)

    def load(self, path: str, as_preset: bool = False) -> bool:
        """Read ``path`` into this window. A bad file shows its problem and changes nothing.
        A shipped preset, however it is opened, comes in as Open Preset gives it: a copy with
        no file (Save asks where), so the preset and its folder are never written."""
        try:
            g = load_graph(path)
        except BlockPropError as e:
            self.show_error("Cannot open graph", str(e))
            return False
        as_preset = as_preset or is_shipped_preset(path)
        if as_preset:  # a fresh copy: lay it out for this canvas if its blocks are too close
            self.window.tidy_layout(g)
        self._take(
            g, None if as_preset else str(Path(path).resolve()), g.name if as_preset else None
        )
        if not as_preset:
            self.add_recent(self.path)
        self.window.canvas.fit_all()
        self.window.statusBar().showMessage(
            f"Opened the preset {g.name}: a copy (File > Save As keeps your changes)"
            if as_preset
            else f"Opened {path}",
            5000,
        )
        return True

    def save(self) -> bool:
        if not self.path:
            return self.save_as()
        try:
            self.graph.save(self.path)
        except (OSError, BlockPropError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.show_error("Cannot save graph", f"{self.path}: {reason}")
            return False
        self.stack.setClean()
        self.preset = None
        self.remove_recovery()
        self.add_recent(self.path)
        self.changed.emit()
        self.window.statusBar().showMessage(f"Saved {self.path}", 5000)
        return True

    def save_as(self) -> bool:
        path = self.ask_save_path()
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += ".json"
        old = self.path
        self.path = str(Path(path).resolve())
        if not self.save():
            self.path = old
            return False
        return True

    # --- recent files --------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        return settings_list(app_settings(), "files/recent")

    def add_recent(self, path: str) -> None:
        s = app_settings()
        recent = [p for p in settings_list(s, "files/recent") if p != path]
        s.setValue("files/recent", [path, *recent][:MAX_RECENT])

    def clear_recent(self) -> None:
        app_settings().setValue("files/recent", [])

    # --- autosave and recovery -----------------------------------------------------------------
    def autosave(self) -> None:
        """Write the recovery file while there are unsaved changes; remove it otherwise."""
        if not self.modified():
            self.remove_recovery()
            return
        data = {
            "format": RECOVERY_FORMAT,
            "version": 1,
            "pid": os.getpid(),
            "saved_at": time.time(),
            "path": self.path,
            "preset": self.preset,
            "graph": self.graph.to_dict(),
        }
        try:
            save_json_atomic(data, self.recovery_path)
        except OSError as e:
            self.window.statusBar().showMessage(f"Autosave failed: {e.strerror}", 8000)

    def remove_recovery(self) -> None:
        self._unlink(self.recovery_path)

    def close(self) -> None:
        """A clean close: no recovery file stays behind."""
        self.timer.stop()
        self.remove_recovery()
        ACTIVE_RECOVERY.discard(str(self.recovery_path))

    def offer_recovery(self) -> bool:
        """At start: offer what a crashed session autosaved. Returns True if restored."""
        for p, data in find_recoveries(self.recovery_path.parent):
            if self.ask_restore(data):
                try:
                    Graph.from_dict(data.get("graph"))
                except BlockPropError as e:
                    self.show_error("Cannot recover", f"{p}: {e}")
                else:
                    self.stack.push(
                        cmd.ReplaceGraph(self.graph, data["graph"], "Restore recovered graph")
                    )
                    path, preset = data.get("path"), data.get("preset")
                    self.path = path if isinstance(path, str) else None
                    self.preset = preset if isinstance(preset, str) else None
                    self.changed.emit()
                    self.window.canvas.fit_all()
                    self._unlink(p)
                    self.autosave()  # the work is now this window's own recovery file
                    return True  # any older copies are offered at the next start
            self._unlink(p)
        return False

    @staticmethod
    def _unlink(p: Path) -> None:
        try:
            p.unlink()
        except OSError:
            pass
