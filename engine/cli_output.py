"""What the command line writes: lines to the terminal, escaped (a user's names never reach it
raw), and output files, atomically, with one ConfigError naming a path that cannot work."""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError
from engine.escaping import printable
from engine.weights import write_atomic


def out(text: str) -> None:
    """Print ``text`` (which may name blocks, files, a graph): every line escaped so no
    control character in a user's names reaches the terminal raw."""
    print("\n".join(printable(line) for line in str(text).split("\n")), flush=True)


def write_output(path: str, data: bytes) -> None:
    """Write ``data`` to the user's ``path`` atomically; a path that cannot be written is one
    ConfigError naming it (not the temporary file next to it)."""
    p = Path(path).expanduser()
    where = printable(path)
    if not path:
        raise ConfigError("the output path is empty: give a file name such as model.py")
    if p.is_dir():
        raise ConfigError(f"cannot write {where}: it is a folder; give a file name in it")
    if not p.parent.is_dir():
        raise ConfigError(f"cannot write {where}: there is no folder {printable(p.parent)}")
    try:
        write_atomic(p, lambda f: f.write(data))
    except OSError as e:
        raise ConfigError(f"cannot write {where}: {e.strerror or e}") from None
