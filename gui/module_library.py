"""The user's module library: definitions kept across graphs, in ``modules.json`` in the
user's config folder (beside the app's settings file). It is read like a graph file, as
untrusted JSON (size-capped, every definition checked); one that cannot be read is left alone
and the palette shows no library modules, saying why in its tooltip.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import BlockPropError, GraphError
from engine.graph_json import parse_json, save_json_atomic
from engine.modules.definition import check_definitions, closure
from engine.safe_io import read_limited
from gui.settings import app_settings

FORMAT = "blockprop-modules"
MAX_BYTES = 20 * 1024 * 1024


def library_path() -> Path:
    return Path(app_settings().fileName()).parent / "modules.json"


class ModuleLibrary:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else library_path()
        self.modules: dict[str, dict] = {}
        self.error: str | None = None
        self.load()

    def load(self) -> None:
        self.modules, self.error = {}, None
        if not self.path.exists():
            return
        try:
            raw = read_limited(str(self.path), MAX_BYTES, GraphError, "module library")
            d = parse_json(raw.decode("utf-8-sig"))
            if (
                not isinstance(d, dict)
                or d.get("format") != FORMAT
                or set(d)
                - {
                    "format",
                    "version",
                    "modules",
                }
            ):
                raise GraphError(f'not a module library ("format" must be "{FORMAT}")')
            self.modules = check_definitions(d.get("modules", {}))
        except (BlockPropError, UnicodeDecodeError) as e:
            self.error = f"{self.path}: {e}"

    def names(self) -> list[str]:
        return list(self.modules)

    def needed(self, name: str) -> dict[str, dict]:
        """What a graph needs to hold an instance of the library's ``name``."""
        return closure(self.modules, name)

    def add(self, graph_modules: dict[str, dict], name: str) -> None:
        """Keep module ``name`` of a graph (and what it uses) in the library, on disk."""
        merged = {**self.modules, **closure(graph_modules, name)}
        merged = check_definitions(merged)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_json_atomic({"format": FORMAT, "version": 1, "modules": merged}, self.path)
        self.modules, self.error = merged, None
