"""benchmarks/train_vs_export.py times epochs from the lines a training program prints."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import train_vs_export as tve  # noqa: E402


def test_epoch_times_are_the_intervals_between_epoch_lines():
    script = (
        "import time\n"
        "print('training in 1 process')\n"
        "for i in range(1, 4):\n"
        "    time.sleep(0.15 * i)\n"
        "    print(f'epoch {i}/3  train_loss 0.5')\n"
        "print('epoch-like text that is not an epoch line')\n"
    )
    per_epoch, total = tve.timed_epochs([sys.executable, "-c", script], timeout=60)
    assert len(per_epoch) == 2  # the first epoch (start-up included) is not timed
    assert per_epoch[0] == pytest.approx(0.30, abs=0.12)
    assert per_epoch[1] == pytest.approx(0.45, abs=0.12)
    assert total >= sum(per_epoch)


def test_a_failing_program_is_reported_not_timed():
    with pytest.raises(RuntimeError, match="failed"):
        tve.timed_epochs([sys.executable, "-c", "raise SystemExit(3)"], timeout=60)
