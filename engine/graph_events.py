"""The change events an ``engine.Graph`` sends its subscribers: one small frozen dataclass per kind.

A subscriber is a callable taking one event. It dispatches on the event's class (a dict keyed by
class, or ``isinstance``), never on a string. Every event is sent after the change is made, so the
Graph already shows the new state when a subscriber reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GraphEvent:
    """Base class of every Graph event."""


@dataclass(frozen=True)
class NodeAdded(GraphEvent):
    block: str


@dataclass(frozen=True)
class NodeRemoved(GraphEvent):
    block: str


@dataclass(frozen=True)
class NodeMoved(GraphEvent):
    block: str
    pos: tuple[float, float]


@dataclass(frozen=True)
class ConfigChanged(GraphEvent):
    block: str
    config: dict[str, Any]  # a copy: the subscriber may keep it


@dataclass(frozen=True)
class EdgeAdded(GraphEvent):
    source: str
    target: str
    port: int


@dataclass(frozen=True)
class EdgeRemoved(GraphEvent):
    source: str
    target: str
    port: int


@dataclass(frozen=True)
class MetaChanged(GraphEvent):
    key: str  # "name", "description" or "training"


@dataclass(frozen=True)
class ModuleChanged(GraphEvent):
    """A module definition was added, changed or removed: every instance of it may differ."""

    name: str


@dataclass(frozen=True)
class Reset(GraphEvent):
    """The whole content was replaced (a file opened, a recovery restored)."""


Listener = Callable[[GraphEvent], None]

# What changes the network a model is built from (everything but positions and metadata).
STRUCTURE_EVENTS: tuple[type[GraphEvent], ...] = (
    NodeAdded,
    NodeRemoved,
    ConfigChanged,
    EdgeAdded,
    EdgeRemoved,
    ModuleChanged,
    Reset,
)
