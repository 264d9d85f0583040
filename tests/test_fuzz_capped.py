"""The property tests of graph, data and weights files (tests/test_*_fuzz.py), run in a child
process whose address space is capped at 1.5 GiB: a file that makes a reader allocate without
limit fails here with a MemoryError instead of exhausting the machine running the tests."""

from __future__ import annotations

import re

from memcap import FUZZ_CHILD, FUZZ_MODULES, MEMORY_CAP, ROOT, run_capped


def test_the_cap_turns_a_blow_up_into_a_failure():
    r = run_capped("import numpy; numpy.ones(MEMORY_CAP := 2**31, dtype=numpy.uint8)")
    assert r.returncode != 0 and "MemoryError" in r.stderr
    assert run_capped("import numpy; numpy.ones(2**28, dtype=numpy.uint8)").returncode == 0


def test_fuzz_graph_data_and_weights_files_under_a_memory_cap():
    r = run_capped(
        argv=["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
        + [str(ROOT / "tests" / m) for m in FUZZ_MODULES],
        cap=MEMORY_CAP,
        timeout=600,
        env={FUZZ_CHILD: "1", "QT_QPA_PLATFORM": "offscreen"},
    )
    report = r.stdout[-6000:] + r.stderr[-3000:]
    assert r.returncode == 0, report
    summary = r.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 12 and "skipped" not in summary, report
