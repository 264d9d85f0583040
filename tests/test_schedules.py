"""Learning-rate schedules: the lecture's factors by hand, their specs and messages, and the
PyTorch schedulers SCHEDULE_TORCH_EQUIVALENT names giving the same learning rates."""

import math

import pytest

from engine.errors import ConfigError
from engine.schedules import (
    SCHEDULE_TORCH_EQUIVALENT,
    SCHEDULES,
    check_schedule_spec,
    make_schedule,
)


def test_schedules_by_hand():
    step = make_schedule({"name": "step", "step_size": 3, "gamma": 0.5})
    # a_t = a0 beta^floor(t/h)
    assert [step.lr(0.1, t) for t in range(7)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    )
    expo = make_schedule({"name": "exponential", "k": 0.1})
    assert expo.lr(0.1, 0) == 0.1 and expo.lr(0.1, 10) == pytest.approx(0.1 / math.e)
    time = make_schedule({"name": "time", "k": 0.5})
    assert [time.lr(0.1, t) for t in (0, 2, 6)] == pytest.approx([0.1, 0.05, 0.025])
    assert make_schedule(None).lr(0.3, 99) == 0.3 == make_schedule("constant").lr(0.3, 5)


def test_check_schedule_spec():
    assert check_schedule_spec(None) == {"name": "constant"}
    assert check_schedule_spec("step") == {"name": "step", **SCHEDULES["step"]}
    assert check_schedule_spec({"name": "time", "k": 1}) == {"name": "time", "k": 1.0}


@pytest.mark.parametrize(
    "spec,words",
    [
        ({"name": "cosine"}, ["cosine", "constant", "step", "exponential", "time"]),
        ({"name": "step", "k": 0.1}, ["'k'", "step_size", "gamma"]),
        ({"name": "constant", "gamma": 0.1}, ["'gamma'", "none"]),
        ({"name": "step", "gamma": 1.0}, ["'gamma'", "< 1"]),
        ({"name": "step", "step_size": 0}, ["'step_size'", ">= 1"]),
        ({"name": "step", "step_size": 2.5}, ["'step_size'", "integer"]),
        ({"name": "exponential", "k": 0}, ["'k'", "> 0"]),
        (3, ["object"]),
        ({"name": {"step": 1}}, ["unknown learning-rate schedule"]),
    ],
)
def test_bad_schedule_specs_say_what_is_valid(spec, words):
    with pytest.raises(ConfigError) as e:
        make_schedule(spec)
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "step", "step_size": 2, "gamma": 0.7},
        {"name": "exponential", "k": 0.3},
        {"name": "time", "k": 0.4},
    ],
)
def test_schedules_match_torch(spec):
    torch = pytest.importorskip("torch")
    spec = check_schedule_spec(spec)
    eq = SCHEDULE_TORCH_EQUIVALENT[spec["name"]]
    cls = eval(eq["torch"], {"torch": torch})
    kwargs = {k: eval(expr, {"math": math, **spec}) for k, expr in eq["kwargs"].items()}
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    sched = cls(opt, **kwargs)
    ours = make_schedule(spec)
    for epoch in range(8):
        assert opt.param_groups[0]["lr"] == pytest.approx(ours.lr(0.2, epoch), rel=1e-12)
        opt.step()
        sched.step()
