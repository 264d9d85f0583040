"""The project-wide run history: every finished run, once, in the user's data folder.

    $BLOCKPROP_HISTORY_DIR, else $XDG_DATA_HOME/blockprop/runs (~/.local/share/blockprop/runs)
      index.json       one short entry per run (name, graph, settings, final metrics): what
                       the Runs table lists, read at start-up
      <key>.json       the whole run (curves, epochs, BPTT profiles: ``runs_file.run_to_dict``)
                       and the graph it trained (its name, its file, a copy of its dict)

A run's curves are read only when a panel needs them (``load``). Every file is untrusted: read
with a size limit, ``json`` only, field by field (an entry or a run that does not check out
is left out with a message; a key is a short name of letters, digits and dashes, so an index
never points outside the folder). The history keeps at most ``MAX_RUNS`` runs and
``MAX_TOTAL_BYTES``: the oldest go first. Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from engine.errors import BlockPropError
from engine.graph_json import save_json_atomic
from engine.safe_io import read_limited
from gui.training.run_data import RunData
from gui.training.runs_file import run_from_dict, run_to_dict

ENV = "BLOCKPROP_HISTORY_DIR"
INDEX_FORMAT = "blockprop-run-history"
RUN_FORMAT = "blockprop-run"
VERSION = 1
MAX_RUNS = 300
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_RUN_BYTES = 32 * 1024 * 1024
MAX_INDEX_BYTES = 16 * 1024 * 1024
KEY = re.compile(r"^[0-9a-z-]{1,40}$")
ENTRY_KEYS = ("name", "graph_name", "graph_path", "started", "status", "settings", "final")


def history_dir() -> Path:
    """Where the history lives: ``BLOCKPROP_HISTORY_DIR``, else the XDG data folder."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "blockprop" / "runs"


def _check_entry(e: Any) -> dict:
    """An index entry as the Runs table needs it; ValueError when it does not check out."""
    if not isinstance(e, dict):
        raise ValueError("an entry must be an object")
    key = e.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise ValueError(f"bad run key {str(key)[:40]!r}")
    out: dict[str, Any] = {"key": key}
    for k in ("name", "graph_name", "status"):
        v = e.get(k, "")
        if not isinstance(v, str):
            raise ValueError(f'"{k}" must be a string')
        out[k] = v[:200]
    gp = e.get("graph_path")
    out["graph_path"] = gp[:4096] if isinstance(gp, str) else None
    started = e.get("started")
    out["started"] = float(started) if isinstance(started, (int, float)) else 0.0
    for k in ("settings", "final"):
        v = e.get(k, {})
        if not isinstance(v, dict):
            raise ValueError(f'"{k}" must be an object')
        out[k] = v
    size = e.get("bytes", 0)
    out["bytes"] = int(size) if isinstance(size, int) and size >= 0 else 0
    return out


class RunHistory:
    """The history folder. ``entries`` is the index (read once, lazily); ``add`` stores a
    finished run; ``load`` reads one run whole; ``delete`` and ``rename`` edit it."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else history_dir()
        self._entries: list[dict] | None = None
        self.problems: list[str] = []

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"

    def entries(self) -> list[dict]:
        """The runs in the history, oldest first (problems with the index in ``problems``)."""
        if self._entries is None:
            self._entries = self._read_index()
        return self._entries

    def _read_index(self) -> list[dict]:
        p = self.index_path
        if not p.exists():
            return []
        try:
            data = json.loads(read_limited(p, MAX_INDEX_BYTES, what="run history").decode("utf-8"))
        except BlockPropError as e:
            self.problems.append(str(e))
            return []
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.problems.append(f"{p}: cannot read the run history ({e})")
            return []
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            self.problems.append(f"{p}: not a BlockProp run history")
            return []
        if data.get("version") != VERSION:
            self.problems.append(f"{p}: run history version {data.get('version')!r} not supported")
            return []
        items = data.get("runs")
        if not isinstance(items, list):
            self.problems.append(f'{p}: "runs" must be a list')
            return []
        out, seen = [], set()
        for i, e in enumerate(items[: MAX_RUNS * 2]):
            try:
                entry = _check_entry(e)
            except (ValueError, TypeError, OverflowError) as err:
                self.problems.append(f"{p}: history entry #{i + 1} skipped ({err})")
                continue
            if entry["key"] not in seen:
                seen.add(entry["key"])
                out.append(entry)
        return out

    def _write_index(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        save_json_atomic(
            {"format": INDEX_FORMAT, "version": VERSION, "runs": self.entries()}, self.index_path
        )

    def find(self, key: str) -> dict | None:
        return next((e for e in self.entries() if e["key"] == key), None)

    def add(self, run: RunData, graph: dict | None, graph_path: str | None) -> dict:
        """Store ``run`` (with the graph it trained) and return its index entry; the oldest
        runs go when the history is over its caps. OSError if it cannot be written."""
        entries = self.entries()
        key = f"{int(run.started * 1000):x}-{secrets.token_hex(3)}"
        name = (graph or {}).get("name") if isinstance(graph, dict) else None
        graph_name = str(name or (Path(graph_path).stem if graph_path else "untitled"))[:200]
        d = run_to_dict(run)
        doc = {
            "format": RUN_FORMAT,
            "version": VERSION,
            "run": d,
            "graph": {"name": graph_name, "path": graph_path, "graph": graph},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{key}.json"
        save_json_atomic(doc, target)
        entry = {
            "key": key,
            "name": d["name"],
            "graph_name": graph_name,
            "graph_path": graph_path,
            "started": d["started"],
            "status": d["status"],
            "settings": d["settings"],
            "final": d["final"],
            "bytes": target.stat().st_size,
        }
        entries.append(entry)
        self._cap(keep=key)
        self._write_index()
        return entry

    def _cap(self, keep: str) -> None:
        entries = self.entries()
        while len(entries) > 1 and (
            len(entries) > MAX_RUNS or sum(e["bytes"] for e in entries) > MAX_TOTAL_BYTES
        ):
            old = next(e for e in entries if e["key"] != keep)
            entries.remove(old)
            self._unlink(old["key"])

    def _unlink(self, key: str) -> None:
        try:
            (self.folder / f"{key}.json").unlink()
        except OSError:
            pass  # already gone: nothing to free

    def load(self, key: str, run_id: int) -> tuple[RunData, dict]:
        """(the whole run, its graph link {"name", "path", "graph"}); ValueError with a one-line
        reason when the run's file is missing or does not check out."""
        if not isinstance(key, str) or not KEY.match(key):
            raise ValueError(f"bad run key {str(key)[:40]!r}")
        p = self.folder / f"{key}.json"
        try:
            data = json.loads(read_limited(p, MAX_RUN_BYTES, what="run").decode("utf-8"))
        except BlockPropError as e:
            raise ValueError(str(e)) from None
        except (OSError, UnicodeDecodeError, RecursionError) as e:
            raise ValueError(f"{p}: cannot read the run ({e})") from None
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            raise ValueError(f"{p}: not a BlockProp run")
        if data.get("version") != VERSION:
            raise ValueError(f"{p}: run version {data.get('version')!r} not supported")
        try:
            run = run_from_dict(data.get("run"), run_id)
        except (ValueError, TypeError, OverflowError) as e:
            raise ValueError(f"{p}: {e}") from None
        g = data.get("graph")
        link = {"name": "", "path": None, "graph": None}
        if isinstance(g, dict):
            link["name"] = str(g.get("name", ""))[:200]
            link["path"] = g["path"] if isinstance(g.get("path"), str) else None
            link["graph"] = g["graph"] if isinstance(g.get("graph"), dict) else None
        return run, link

    def delete(self, key: str) -> None:
        entry = self.find(key)
        if entry is None:
            return
        self.entries().remove(entry)
        self._unlink(key)
        self._write_index()

    def set_test(self, key: str, test: dict) -> None:
        """Keep a run's final evaluation on its test set (index and run file)."""
        entry = self.find(key)
        if entry is None:
            return
        entry["final"] = {**entry["final"], **{k: test.get(k) for k in ("test_loss", "test_acc")}}
        self._edit_run(key, lambda run: run.setdefault("end", {}).update(test=test))
        self._write_index()

    def _edit_run(self, key: str, change) -> None:
        p = self.folder / f"{key}.json"
        try:
            doc = json.loads(read_limited(p, MAX_RUN_BYTES, what="run").decode("utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("run"), dict):
                change(doc["run"])
                save_json_atomic(doc, p)
        except (BlockPropError, OSError, ValueError, RecursionError, AttributeError):
            pass  # the index keeps it; the run file is read with the index's values

    def rename(self, key: str, name: str) -> None:
        """The index's name (what the table shows) and the run file's, both."""
        entry = self.find(key)
        if entry is None:
            return
        entry["name"] = name[:200]
        self._edit_run(key, lambda run: run.update(name=name[:200]))
        self._write_index()
