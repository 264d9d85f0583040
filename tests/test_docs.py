"""The notes for the next person point at files that exist (a renamed module breaks them)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b((?:app|engine|gui|tests|benchmarks|docs|presets)[\w/]*\.(?:py|md|json))\b")


@pytest.mark.parametrize("doc", ["docs/ARCHITECTURE.md", "benchmarks/NOTES.md"])
def test_files_named_in_the_docs_exist(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    named = {p for p in PATH.findall(text) if "/" in p or p == "app.py"}
    assert named, f"{doc} names no files"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"{doc} names files that do not exist: {missing}"
