"""A block type's help page, as the app's "?" shows it: what the class says of itself.

The formulas are the class's ``formulas`` declaration (the lecture's maths, TeX as matplotlib's
mathtext reads it); the summary, the shapes and the reference implementation come from its
docstring (its first paragraph, its ``Shapes:`` text and its ``Reference:`` line, which
tests/test_reference.py already holds to the ``engine.reference`` functions); the settings
from its ``options``. No Qt here: the app renders the page (gui/help.py).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass

REFERENCE = re.compile(r"Reference: engine\.reference\.(\w+)\.(\w+) / (\w+)")


@dataclass(frozen=True)
class BlockHelp:
    """What a block type's help page shows."""

    type_name: str
    family: str
    summary: str  # the docstring's first paragraph, one line
    formulas: tuple[str, ...]
    shapes: str  # the docstring's "Shapes:" text, one line ("" when it has none)
    reference: tuple[str, str, str] | None  # (module, forward, backward) in engine.reference
    settings: tuple[tuple[str, str], ...]  # (name, what it does)

    @property
    def reference_path(self) -> str | None:
        """The reference implementation's file, relative to the project (engine/reference/...)."""
        return None if self.reference is None else f"engine/reference/{self.reference[0]}.py"


def _paragraphs(doc: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", inspect.cleandoc(doc)) if p.strip()]


def _shapes(doc: str) -> str:
    """The text after "Shapes:" up to the end of its sentence block (continuation lines are
    indented no less and do not start a new "Word:" field)."""
    lines = inspect.cleandoc(doc).splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Shapes:"):
            out = [line[len("Shapes:") :].strip()]
            for more in lines[i + 1 :]:
                if not more.strip() or re.match(r"^[A-Z][\w ]*:", more) or more.startswith("``"):
                    break
                out.append(more.strip())
            return " ".join(out)
    return ""


def block_help(cls: type) -> BlockHelp:
    """The help page of layer class ``cls`` (any registered block type, ours or a user's)."""
    doc = cls.__doc__ or ""
    paras = _paragraphs(doc)
    summary = " ".join(paras[0].split()) if paras else cls.type_name
    ref = REFERENCE.search(" ".join(doc.split()))
    settings = tuple((name, opt.doc or "") for name, opt in cls.all_options().items())
    return BlockHelp(
        type_name=cls.type_name,
        family=getattr(cls, "family", "") or "",
        summary=summary,
        formulas=tuple(getattr(cls, "formulas", ())),
        shapes=_shapes(doc),
        reference=ref.groups() if ref else None,
        settings=settings,
    )


def reference_source(module: str, function: str) -> str:
    """The source text of ``engine.reference.<module>.<function>`` (the readable version)."""
    if not re.fullmatch(r"\w+", module) or not re.fullmatch(r"\w+", function):
        raise ValueError(f"not a reference function: {module}.{function}")
    mod = importlib.import_module(f"engine.reference.{module}")
    return inspect.getsource(getattr(mod, function))
