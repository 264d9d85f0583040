"""The project's own error types.

Every problem a user can cause (a bad graph, a bad setting, a bad file, a wrong shape) raises a
``BlockPropError`` whose message names the block or the file and says what to do. The GUI and the
command line show ``str(error)``; they never show a traceback for these.
"""

from __future__ import annotations

from engine.escaping import escape, printable


class BlockPropError(Exception):
    """Base class: a problem the user can fix.

    ``block`` is the id of the block at fault (or None); ``file`` the path of the file at fault.
    """

    def __init__(self, message: str, block: str | None = None, file: str | None = None):
        self.message = message
        self.block = block
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []  # names the user chose, escaped: no control character reaches a terminal
        if self.file:
            where.append(printable(self.file))
        if self.block is not None:
            where.append(f"block '{escape(self.block, ascii_only=False)}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConfigError(BlockPropError):
    """A block's settings are wrong: unknown key, wrong type, value out of range."""


class ShapeError(BlockPropError):
    """A tensor has the wrong shape for a block."""


class GraphError(BlockPropError):
    """The graph's structure is wrong: cycles, missing input, wrong number of inputs."""


class DataError(BlockPropError):
    """A data set or data file cannot be used."""


class WeightsError(BlockPropError):
    """A weights file does not fit the graph."""
