"""Run test code in a child process whose address space is capped (``resource.setrlimit``), so
code that tries to allocate without limit fails the test with a MemoryError instead of taking
the machine's memory (and a hang fails it by timeout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Python, NumPy and the engine take about 170 MB of address space; every case here needs far
# less than this on top, and an unbounded read or allocation needs far more.
MEMORY_CAP = 1536 * 1024**2


def _limit(cap: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


# The property tests of hostile files: tests/conftest.py skips them in the test run itself and
# tests/test_fuzz_capped.py runs them in a child process under MEMORY_CAP.
FUZZ_MODULES = ("test_graph_fuzz.py", "test_data_files_fuzz.py", "test_weights_fuzz.py")
FUZZ_CHILD = "BLOCKPROP_FUZZ_CHILD"  # set to 1 in that child (or to run them directly)


def run_capped(
    code: str | None = None,
    cap: int = MEMORY_CAP,
    timeout: float = 120,
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented, with ``python -c``) or ``python *argv`` from the project
    folder, its address space capped at ``cap`` bytes."""
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",  # BLAS threads reserve address space they never use
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        **(env or {}),
    }
    args = ["-c", textwrap.dedent(code)] if argv is None else argv
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit(cap),
    )


def outcomes(code: str, cap: int = MEMORY_CAP, timeout: float = 120) -> list:
    """Run ``code`` capped; it prints one JSON value per line: the list of them. A crash, a
    MemoryError or any traceback fails with the child's stderr."""
    r = run_capped(code, cap, timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
