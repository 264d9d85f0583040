"""Typed settings: what keys a thing takes, their types, defaults and valid ranges.

Blocks, data sets, optimizers, schedules and the trainer declare their settings the same way,
e.g. a layer class's ``options = {"filters": Opt("int", min=1), ...}``. ``check_spec`` turns a
user's dict (from a graph file, the inspector, the command line or code) into a complete,
checked copy, or raises ``ConfigError`` naming the thing, the key and what is allowed. The GUI
builds its typed editors from the same declarations.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

REQUIRED = object()

# Every integer in a setting has an upper bound, so a typo or a hostile file (stride 10**18) is
# refused when the graph is checked, not by an OverflowError deep in NumPy while training. An
# option's own ``max`` is used when it declares one; otherwise these: sizes of a window (kernel,
# stride, padding, scale, per side) up to SIZE_LIMIT, any other integer up to INT_LIMIT (a C int,
# the range of the app's spin boxes).
SIZE_LIMIT = 65_536
INT_LIMIT = 2**31 - 1

INITS = (
    "zeros",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "orthogonal",
)


@dataclass(frozen=True)
class Opt:
    """One setting.

    kind: "int" | "float" | "bool" | "choice" | "padding" | "size" (int or [h, w]; ``max``
          bounds each side) | "shape" (list of positive ints) | "connections" (list of lists
          of ints) | "path" (a non-empty string) | "str" (any string) | "column" (a column
          name or an integer index) | "block" (the id of another block)
    """

    kind: str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple = ()
    nullable: bool = False
    doc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _range_text(opt: Opt) -> str:
    lo = "" if opt.min is None else f"{'>' if opt.min_exclusive else '>='} {opt.min:g}"
    hi = "" if opt.max is None else f"{'<' if opt.max_exclusive else '<='} {opt.max:g}"
    return " and ".join(p for p in (lo, hi) if p)


def _show(value: Any) -> str:
    """``repr(value)`` for a message; Python refuses to print ints of over 4,300 digits."""
    try:
        return repr(value)
    except ValueError:
        return "a number of more than 4,300 digits"


def _int_limit(opt: Opt) -> float:
    """The largest integer ``opt`` takes (for size-like kinds: on each side)."""
    if opt.max is not None:
        return opt.max
    return SIZE_LIMIT if opt.kind in ("size", "padding") else INT_LIMIT


def _ints_in_range(block: str, key: str, value: Any, ints: list, opt: Opt) -> None:
    limit = _int_limit(opt)
    if any(i > limit for i in ints):
        raise ConfigError(
            f"'{key}' takes integers up to {limit:,}; got {_show(value)}", block=block
        )


def _check_range(block: str, key: str, v: float, opt: Opt) -> None:
    bad = (opt.min is not None and (v <= opt.min if opt.min_exclusive else v < opt.min)) or (
        opt.max is not None and (v >= opt.max if opt.max_exclusive else v > opt.max)
    )
    if bad:
        raise ConfigError(f"'{key}' must be {_range_text(opt)}, got {_show(v)}", block=block)


def check_value(block: str, key: str, value: Any, opt: Opt) -> Any:
    """Check one value against its option; return the normalised value (JSON-ready)."""
    if value is None and opt.nullable:
        return None
    k = opt.kind
    if k == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise ConfigError(f"'{key}' must be an integer, got {_show(value)}", block=block)
        _check_range(block, key, value, opt)
        _ints_in_range(block, key, value, [value], opt)
        return value
    if k == "float":
        if not _is_num(value):
            raise ConfigError(f"'{key}' must be a number, got {_show(value)}", block=block)
        _check_range(block, key, float(value), opt)
        return float(value)
    if k == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {_show(value)}", block=block)
        return value
    if k == "choice":
        if value not in opt.choices:
            allowed = ", ".join(str(c) for c in opt.choices)
            raise ConfigError(f"'{key}' must be one of {allowed}; got {_show(value)}", block=block)
        return value
    if k == "padding":
        if value in ("same", "valid"):
            return value
        if _is_int(value) and value >= 0:
            _ints_in_range(block, key, value, [value], opt)
            return value
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_is_int(p) and p >= 0 for p in value)
        ):
            _ints_in_range(block, key, value, list(value), opt)
            return [int(p) for p in value]
        raise ConfigError(
            f'\'{key}\' must be a non-negative integer, [h, w], "same" or "valid"; '
            f"got {_show(value)}",
            block=block,
        )
    if k == "size":
        if _is_int(value) and value >= 1:
            _ints_in_range(block, key, value, [value], opt)
            return value
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_is_int(p) and p >= 1 for p in value)
        ):
            _ints_in_range(block, key, value, list(value), opt)
            return [int(p) for p in value]
        raise ConfigError(
            f"'{key}' must be a positive integer or a pair [h, w] of them; got {_show(value)}",
            block=block,
        )
    if k == "shape":
        if (
            isinstance(value, (list, tuple))
            and 1 <= len(value) <= 4
            and all(_is_int(p) and p >= 1 for p in value)
        ):
            _ints_in_range(block, key, value, list(value), opt)
            return [int(p) for p in value]
        raise ConfigError(
            f"'{key}' must be a list of 1 to 4 positive integers, e.g. [1, 28, 28]; "
            f"got {_show(value)}",
            block=block,
        )
    if k == "connections":
        if (
            isinstance(value, (list, tuple))
            and value
            and all(
                isinstance(row, (list, tuple)) and row and all(_is_int(i) and i >= 0 for i in row)
                for row in value
            )
        ):
            _ints_in_range(block, key, value, [i for row in value for i in row], opt)
            return [[int(i) for i in row] for row in value]
        raise ConfigError(
            f"'{key}' must be a list, for each output map, of the input maps it reads "
            f"(non-empty lists of indices); got {_show(value)}",
            block=block,
        )
    if k == "block":  # another block's id (MaxUnpool2D's pool)
        if (
            isinstance(value, str)
            and 0 < len(value) <= 200
            and all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value)
        ):
            return value
        raise ConfigError(
            f"'{key}' must be the id of a block in the graph; got {_show(value)}", block=block
        )
    if k in ("path", "str"):
        if not isinstance(value, (str, Path)) or (k == "path" and not str(value)):
            what = "file path" if k == "path" else "string"
            raise ConfigError(f"'{key}' must be a {what}, got {_show(value)}", block=block)
        return str(value)
    if k == "column":
        if not (isinstance(value, str) or _is_int(value)):
            raise ConfigError(
                f"'{key}' must be a column name or index, got {_show(value)}", block=block
            )
        return value
    raise ConfigError(f"'{key}' has an unknown option kind {k!r}", block=block)


def check_spec(
    what: str,
    spec: Any,
    options: dict[str, Opt],
    *,
    block: str | None = None,
    noun: str = "setting",
    checked_elsewhere: tuple[str, ...] = (),
) -> dict:
    """A complete, checked copy of ``spec`` against ``options`` (defaults filled in), or
    ConfigError.

    ``what`` names the thing in messages ("Conv2D", "optimizer 'adam'", "data set 'csv'");
    a ``block`` id goes on every error instead of ``what`` as a prefix. Keys named in
    ``checked_elsewhere`` are accepted (the caller checks them) and left out of the result.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        msg = f"settings must be an object, got {spec!r}"
        raise ConfigError(msg if block is not None else f"{what}: {msg}", block=block)
    unknown = [k for k in spec if k not in options and k not in checked_elsewhere]
    if unknown:
        known = ", ".join((*checked_elsewhere, *options)) or "none"
        raise ConfigError(
            f"{what} has no {noun} {', '.join(map(repr, unknown))} (its {noun}s: {known})",
            block=block,
        )
    out = {}
    for key, opt in options.items():
        if key not in spec:
            if opt.required:
                raise ConfigError(
                    f"{what} needs the {noun} {key!r} ({opt.doc or opt.kind})", block=block
                )
            out[key] = opt.default
            continue
        try:
            out[key] = check_value(block, key, spec[key], opt)
        except ConfigError as e:
            if block is not None:
                raise
            raise ConfigError(f"{what}: {e.message}") from None
    return out
