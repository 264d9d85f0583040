"""One escaping function for user text that leaves BlockProp: generated code, comments, the
terminal.

A graph file is untrusted, and its strings (name, description, block ids, data set names and
paths) end up in exported Python files and on the user's terminal. There they must stay inert
text: a newline in a comment would start a line of code, ``# coding: utf-7`` in the first two
lines of a file changes how Python decodes all of it, an ANSI escape repaints the terminal, and a
lone surrogate cannot even be encoded. ``escape`` writes any string as one line of printable
characters (pure ASCII unless asked otherwise) from which the original can be read back exactly;
``printable`` applies the same escapes only to the characters a terminal must not receive raw.
"""

from __future__ import annotations

from typing import Any

_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    """Python's escape for one character: \\n, \\x1b, \\u2028, \\U0001f680."""
    if ch in _SHORT:
        return _SHORT[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def escape(text: Any, *, ascii_only: bool = True, quote: str = "'") -> str:
    """``text`` as one line of printable characters, written as the body of a Python string
    literal quoted with ``quote``.

    A backslash, the ``quote`` character, and every character that is not printable (control
    characters, ``\\r``, ``\\n``, ``\\x0c``, NUL, ESC, line and paragraph separators, format
    characters such as bidi overrides, lone surrogates) become escapes like ``\\\\``, ``\\'``,
    ``\\n``, ``\\x1b``, ``\\u2028``, ``\\udc80``; with ``ascii_only`` (the default, for
    generated code) every other non-ASCII character too (``\\u03a9``). So
    ``ast.literal_eval(quote + escape(s, quote=quote) + quote) == s`` for every string, and
    the result never holds a line break. ``quote=""`` leaves quotes as they are (comments).
    """
    s = str(text)
    if s.isprintable() and (s.isascii() or not ascii_only) and "\\" not in s:
        return s.replace(quote, "\\" + quote) if quote else s
    out = []
    for ch in s:
        if ch == quote:
            out.append("\\" + ch)
        elif ch != "\\" and ch.isprintable() and (not ascii_only or ch.isascii()):
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def printable(text: Any) -> str:
    """``text`` safe to print on a terminal: only the characters that are not printable
    (control characters such as ESC and newline, separators, lone surrogates) are escaped, one
    by one, as ``escape`` writes them; the rest, backslashes included, is left as it is."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in s)
