"""Process helpers for tests (Linux /proc)."""

from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The ids of the live processes whose parent is ``pid``."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids
