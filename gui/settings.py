"""Where the GUI keeps its settings (window layout, recent files, recovery folder).

Tests point QSettings at a temporary folder (``QSettings.setPath``) so nothing leaks into the
user's real settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORG = APP = "BlockProp"


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def settings_list(s: QSettings, key: str) -> list[str]:
    """A string list from QSettings (which returns a bare string for one item, None for none)."""
    v = s.value(key, [])
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v else []
    return [str(x) for x in v]


def recovery_dir() -> Path:
    """The autosave folder: settings key files/recovery_dir, else the app-data location."""
    custom = app_settings().value("files/recovery_dir", "")
    if custom:
        d = Path(str(custom))
    else:
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        d = Path(base or Path.home() / ".blockprop") / "recovery"
    d.mkdir(parents=True, exist_ok=True)
    return d
