"""The JSON of graph files (and of what the clipboard and the module library hold): parsed as
untrusted data with limits (engine.graph's file format), ids and positions checked, written
atomically. Nothing read is executed or unpickled."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Any

from engine.atomic import write_atomic
from engine.errors import GraphError
from engine.escaping import escape

# What a graph file's JSON may hold. The deepest real graph nests 5 levels (a connections table);
# Python's own limits are 4,300 digits per int (a ValueError) and ~1,000 levels (RecursionError),
# and deep lists crash copy and repr long before that.
MAX_DEPTH = 32
MAX_INT_DIGITS = 30
# Characters a block id must not hold: control characters (NUL cuts weights-file member names,
# ESC and newlines reach terminals), format characters (bidi overrides, zero-width joiners),
# lone surrogates (cannot be written as UTF-8), line and paragraph separators.
_BAD_ID_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_id(value: Any, what: str) -> str:
    """``value`` if it can be a block or module id (``what`` names it), else GraphError."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise GraphError(
            f"{what} must be a non-empty string of at most 200 characters, got {value!r}"
        )
    bad = next((ch for ch in value if unicodedata.category(ch) in _BAD_ID_CATEGORIES), None)
    if bad is not None:
        raise GraphError(
            f"{what} must not hold control or invisible characters; {value!r} holds '{escape(bad)}'"
        )
    return value


def valid_id(value: Any) -> bool:
    """Whether ``value`` can be a block id (what ``add_node`` accepts)."""
    try:
        check_id(value, "id")
    except GraphError:
        return False
    return True


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise GraphError(
            f"the file holds a number with {digits:,} digits; numbers in a graph file have "
            f"at most {MAX_INT_DIGITS}"
        )
    return int(text)


def _where(path: tuple) -> str:
    """('nodes', (3, ('config', ()))) -> 'nodes[3].config' for messages."""
    parts = []
    while path:
        key, path = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{escape(key)}")
    return "".join(reversed(parts)).lstrip(".") or "the top level"


def parse_json(text: str | bytes) -> Any:
    """JSON from an untrusted graph file or clipboard, or GraphError saying in one line what is
    wrong: not JSON, a number of more than MAX_INT_DIGITS digits, nesting deeper than
    MAX_DEPTH, or a lone surrogate (an escape such as \\ud800 that is no character) in any
    string, which could then be neither printed nor saved."""
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise GraphError(f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise GraphError(
            f"JSON nested too deeply (a graph file nests at most {MAX_DEPTH})"
        ) from None
    stack: list[tuple[Any, int, tuple]] = [(data, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            m = _SURROGATE.search(value)
            if m:
                raise GraphError(
                    f"{_where(path)} holds the lone surrogate '{escape(m.group())}', which is "
                    "not a character; fix the text in the graph file"
                )
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise GraphError(
                    f"{_where(path)} is nested more than {MAX_DEPTH} levels deep; "
                    "nothing in a graph file nests that deep"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = []
            for k, v in items:
                if isinstance(k, str):
                    children.append((k, depth + 1, (k, path)))
                children.append((v, depth + 1, (k, path)))
            stack.extend(reversed(children))  # the first problem in the file is reported
    return data


def check_pos(value: Any, block: str) -> tuple[float, float]:
    """A block's canvas position [x, y] as a tuple, or GraphError."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e9 and v == v
            for v in value
        )
    ):
        raise GraphError(f"'pos' must be [x, y] numbers, got {value!r}", block=block)
    return (value[0], value[1])


def save_json_atomic(data: Any, path: str | os.PathLike) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically (engine.atomic.write_atomic)."""
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    # A lone surrogate (which no file should hold, but code can put in a name) cannot be
    # encoded: it is written as JSON's \\ud800-style escape instead, so the save never fails.
    write_atomic(path, lambda f: f.write(text.encode("utf-8", "backslashreplace")))
