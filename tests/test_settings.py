"""engine.settings: one checker for every declared setting (blocks, data sets, optimizers,
schedules, the trainer) gives the same messages everywhere."""

from __future__ import annotations

import pytest

from engine.data import DATASET_OPTIONS
from engine.data.base import check_options
from engine.errors import ConfigError
from engine.layers import LAYER_TYPES
from engine.optim import check_optimizer_spec
from engine.schedules import check_schedule_spec
from engine.settings import Opt, check_spec
from engine.training_spec import check_training

OPTIONS = {
    "units": Opt("int", min=1, doc="outputs"),
    "rate": Opt("float", default=0.5, min=0.0, max=1.0, max_exclusive=True),
    "size": Opt("size", default=8, max=64),
    "path": Opt("path", default=None, nullable=True),
    "label": Opt("column", default=-1),
}


def test_check_spec_fills_defaults_and_normalises():
    out = check_spec("thing", {"units": 3.0, "size": [4, 5], "label": "y"}, OPTIONS)
    assert out == {"units": 3, "rate": 0.5, "size": [4, 5], "path": None, "label": "y"}
    assert type(out["units"]) is int


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "thing needs the setting 'units' (outputs)"),
        ({"units": 1, "x": 1, "y": 2}, "thing has no setting 'x', 'y' (its settings: units, "),
        ({"units": 0}, "thing: 'units' must be >= 1, got 0"),
        ({"units": 1, "rate": 1.0}, "thing: 'rate' must be >= 0 and < 1, got 1.0"),
        ({"units": 1, "size": [4, 65]}, "thing: 'size' takes integers up to 64"),
        ({"units": 1, "path": ""}, "thing: 'path' must be a file path"),
        ({"units": 1, "label": 1.5}, "thing: 'label' must be a column name or index"),
        ([1], "thing: settings must be an object"),
    ],
)
def test_check_spec_messages(spec, message):
    with pytest.raises(ConfigError) as e:
        check_spec("thing", spec, OPTIONS)
    assert str(e.value).startswith(message)


def test_block_errors_name_the_block_not_the_type():
    with pytest.raises(ConfigError) as e:
        check_spec("Dense", {"units": 0}, LAYER_TYPES["Dense"].all_options(), block="fc1")
    assert str(e.value).startswith("block 'fc1': 'units' must be >= 1")


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (
            lambda: check_optimizer_spec({"name": "sgd", "beta": 1}),
            "optimizer 'sgd' has no setting",
        ),
        (lambda: check_schedule_spec({"name": "step", "gamma": -1}), "schedule 'step': 'gamma'"),
        (lambda: check_training({"epochs": 0}, need_dataset=False), "training: 'epochs'"),
        (lambda: check_training({"epoch": 1}, need_dataset=False), "training has no setting"),
        (
            lambda: check_options("csv", {"sep": ","}, DATASET_OPTIONS["csv"]),
            "data set 'csv' has no option 'sep'",
        ),
    ],
)
def test_every_declaring_part_uses_the_one_checker(check, message):
    with pytest.raises(ConfigError) as e:
        check()
    assert str(e.value).startswith(message)
