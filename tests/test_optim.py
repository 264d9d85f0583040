"""Optimizers (lecture formulas by hand, PyTorch parity, convergence), specs, L1/L2
regularisation and gradient clipping (learning-rate schedules: test_schedules.py)."""

import math

import numpy as np
import pytest

from engine.errors import ConfigError, ShapeError
from engine.optim import (
    OPTIMIZERS,
    check_optimizer_spec,
    clip_grad_norm,
    make_optimizer,
    regularize,
)
from engine.optim_rules import RULES, TORCH_EQUIVALENT

rng = np.random.default_rng(0)


def _trajectory(spec, w0=1.0, steps=3):
    """Minimise f(w) = w^2 (gradient 2w) from w0; the stored weight after each step."""
    opt = make_optimizer(spec)
    w = np.array([w0])
    out = []
    for _ in range(steps):
        opt.step({"w": w}, {"w": 2 * w})
        out.append(float(w[0]))
    return out


# --- the lecture's formulas, step by step on f(w) = w^2 -------------------------------------------


def test_sgd_by_hand():
    # w <- w - lr f'(w) = w - 0.1 * 2w
    assert _trajectory({"name": "sgd", "lr": 0.1}) == pytest.approx([0.8, 0.64, 0.512])


def test_momentum_by_hand():
    # v = 0.9 v + 0.1 g ; w -= v:  v1 = 0.2, w1 = 0.8; v2 = 0.18 + 0.16 = 0.34, w2 = 0.46;
    # v3 = 0.306 + 0.092 = 0.398, w3 = 0.062
    got = _trajectory({"name": "momentum", "lr": 0.1, "momentum": 0.9})
    assert got == pytest.approx([0.8, 0.46, 0.062])


def test_nesterov_by_hand():
    # Lecture: v_t = gamma v_{t-1} + lr grad(w_t - gamma v_{t-1}) ; w_{t+1} = w_t - v_t.
    # w0 = 1, v0 = 0: g = 2; v1 = 0.2; w1 = 0.8
    # look-ahead 0.8 - 0.18 = 0.62: g = 1.24; v2 = 0.18 + 0.124 = 0.304; w2 = 0.496
    # look-ahead 0.496 - 0.2736 = 0.2224: g = 0.4448; v3 = 0.31808; w3 = 0.17792
    # The engine stores the look-ahead point u_t = w_t - gamma v_{t-1}, where the trainer's
    # gradient is taken: u1 = 0.62, u2 = 0.2224, u3 = 0.17792 - 0.286272 = -0.108352.
    got = _trajectory({"name": "nesterov", "lr": 0.1, "momentum": 0.9})
    assert got == pytest.approx([0.62, 0.2224, -0.108352])


def test_adagrad_by_hand():
    # G += g^2 ; w -= lr g / sqrt(G + eps), eps inside the root (lecture 001)
    lr, eps, w, G, want = 0.1, 0.01, 1.0, 0.0, []
    for _ in range(3):
        g = 2 * w
        G += g * g
        w -= lr * g / math.sqrt(G + eps)
        want.append(w)
    assert want[0] == pytest.approx(1 - 0.2 / math.sqrt(4.01))
    assert want[0] != pytest.approx(1 - 0.2 / (2 + 0.01))  # PyTorch's placement differs
    assert _trajectory({"name": "adagrad", "lr": lr, "eps": eps}) == pytest.approx(want)


@pytest.mark.parametrize("name", ["adadelta", "rmsprop"])
def test_decaying_average_by_hand(name):
    # E = rho E + (1 - rho) g^2 ; w -= lr g / sqrt(E + eps)
    lr, rho, eps, w, E, want = 0.1, 0.9, 0.01, 1.0, 0.0, []
    for _ in range(3):
        g = 2 * w
        E = rho * E + (1 - rho) * g * g
        w -= lr * g / math.sqrt(E + eps)
        want.append(w)
    # step 1: E = 0.4, w = 1 - 0.2 / sqrt(0.41)
    assert want[0] == pytest.approx(1 - 0.2 / math.sqrt(0.41))
    spec = {"name": name, "lr": lr, "rho": rho, "eps": eps}
    assert _trajectory(spec) == pytest.approx(want)


def test_rmsprop_default_is_the_lectures_gamma():
    assert OPTIMIZERS["rmsprop"]["rho"] == 0.9
    assert OPTIMIZERS["adam"] == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def test_adam_by_hand():
    # m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2 ; m^ = m/(1-b1^t) ; v^ = v/(1-b2^t) ;
    # w -= lr m^ / sqrt(v^ + eps)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 0.01
    w, m, v, want = 1.0, 0.0, 0.0, []
    for t in range(1, 4):
        g = 2 * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1**t)) / math.sqrt(v / (1 - b2**t) + eps)
        want.append(w)
    # step 1: m^ = g = 2, v^ = g^2 = 4: the bias correction makes the first step lr * 2/sqrt(4.01)
    assert want[0] == pytest.approx(1 - 0.1 * 2 / math.sqrt(4.01))
    spec = {"name": "adam", "lr": lr, "beta1": b1, "beta2": b2, "eps": eps}
    assert _trajectory(spec) == pytest.approx(want)


# --- engine step == pure rule (what the exporter copies) -----------------------------------------


def _run_rule(name, spec, w, grads, lr_at):
    hyper = {k: v for k, v in spec.items() if k not in ("name", "lr")}
    state = {}
    for i, g in enumerate(grads):
        w, state = RULES[name](w, g, state, lr_at(i), **hyper)
    return w


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_equals_pure_rule_with_changing_lr(name):
    spec = check_optimizer_spec(name)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(20)]
    lr_at = lambda i: spec["lr"] * (1.0 if i < 10 else 0.3)  # noqa: E731
    opt = make_optimizer(spec)
    w = w0.copy()
    for i, g in enumerate(grads):
        opt.lr = lr_at(i)
        opt.step({"p.weight": w}, {"p.weight": g})
    np.testing.assert_allclose(w, _run_rule(name, spec, w0.copy(), grads, lr_at), rtol=1e-12)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_pure_rules_run_on_torch_tensors(name):
    torch = pytest.importorskip("torch")
    spec = check_optimizer_spec(name)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(5)]
    want = _run_rule(name, spec, w0, grads, lambda i: spec["lr"])
    got = _run_rule(
        name, spec, torch.tensor(w0), [torch.tensor(g) for g in grads], lambda i: spec["lr"]
    )
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


# --- PyTorch parity, driven by TORCH_EQUIVALENT --------------------------------------------------

PARITY_SPECS = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.05, "momentum": 0.8},
    "nesterov": {"lr": 0.05, "momentum": 0.8},
    # custom ones: equal to the closest torch optimizer as eps -> 0 (1e-30 inside the root
    # vs 1e-30 outside are both far below float64 resolution)
    "adagrad": {"lr": 0.05, "eps": 1e-30},
    "adadelta": {"lr": 0.05, "rho": 0.85, "eps": 1e-30},
    "rmsprop": {"lr": 0.05, "rho": 0.85, "eps": 1e-30},
    "adam": {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-30},
}


def _torch_run(torch, name, spec, params, grads, lr_at):
    eq = TORCH_EQUIVALENT[name]
    cls = eval(eq["torch"], {"torch": torch})
    kwargs = {k: eval(expr, {}, dict(spec)) for k, expr in eq["kwargs"].items()}
    ts = [torch.tensor(p, requires_grad=True) for p in params]
    opt = cls(ts, **kwargs)
    for i, gs in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        for t, g in zip(ts, gs, strict=True):
            t.grad = torch.tensor(g)
        opt.step()
    return [t.detach().numpy() for t in ts]


def _engine_run(spec, params, grads, lr_at):
    opt = make_optimizer(spec)
    ps = {f"b{i}.weight": p.copy() for i, p in enumerate(params)}
    for i, gs in enumerate(grads):
        opt.lr = lr_at(i)
        opt.step(ps, {k: g for k, g in zip(ps, gs, strict=True)})
    return list(ps.values())


def _random_problem(steps=20):
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_matches_torch_over_20_steps(name):
    torch = pytest.importorskip("torch")
    assert set(TORCH_EQUIVALENT) == set(OPTIMIZERS)
    spec = check_optimizer_spec({"name": name, **PARITY_SPECS[name]})
    params, grads = _random_problem()
    lr_at = lambda i: spec["lr"]  # noqa: E731
    ours = _engine_run(spec, params, grads, lr_at)
    theirs = _torch_run(torch, name, spec, params, grads, lr_at)
    assert not np.allclose(ours[0], params[0])
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", [n for n, e in TORCH_EQUIVALENT.items() if e["equal"] == "custom"])
def test_custom_ones_really_differ_from_torch(name):
    """With a visible eps the lecture's sqrt(. + eps) is not PyTorch's sqrt(.) + eps."""
    torch = pytest.importorskip("torch")
    spec = check_optimizer_spec({"name": name, **PARITY_SPECS[name], "eps": 0.1})
    params, grads = _random_problem(5)
    lr_at = lambda i: spec["lr"]  # noqa: E731
    ours = _engine_run(spec, params, grads, lr_at)
    theirs = _torch_run(torch, name, spec, params, grads, lr_at)
    assert not np.allclose(ours[0], theirs[0], rtol=1e-6)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_equals_torch_only_while_lr_is_constant(name):
    torch = pytest.importorskip("torch")
    assert TORCH_EQUIVALENT[name]["equal"] == "constant_lr"
    spec = check_optimizer_spec({"name": name, **PARITY_SPECS[name]})
    params, grads = _random_problem()
    lr_at = lambda i: 0.05 if i < 10 else 0.01  # noqa: E731
    ours = _engine_run(spec, params, grads, lr_at)
    theirs = _torch_run(torch, name, spec, params, grads, lr_at)
    assert not np.allclose(ours[0], theirs[0], rtol=1e-6)
    # the lecture's rule, which the exporter uses in that case, is what the engine did
    hyper = {"momentum": spec["momentum"]}
    w, state = params[0].copy(), {}
    for i, gs in enumerate(grads):
        w, state = RULES[name](w, gs[0], state, lr_at(i), **hyper)
    np.testing.assert_allclose(ours[0], w, rtol=1e-12)


# --- behaviour -----------------------------------------------------------------------------------

CONVERGE_LR = {
    "sgd": 0.05,
    "momentum": 0.02,
    "nesterov": 0.02,
    "adagrad": 0.5,
    "adadelta": 0.01,
    "rmsprop": 0.01,
    "adam": 0.01,
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_converges_on_a_convex_quadratic(name):
    # f(w) = 1/2 sum a_i w_i^2, badly conditioned (a = 1 and 10), minimum at 0
    a = np.array([1.0, 10.0], np.float32)
    w = np.array([1.0, -1.0], np.float32)
    f0 = 0.5 * float(np.sum(a * w * w))
    opt = make_optimizer({"name": name, "lr": CONVERGE_LR[name]})
    for _ in range(2000):
        opt.step({"w": w}, {"w": a * w})
    assert 0.5 * float(np.sum(a * w * w)) < 1e-4 * f0


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_is_in_place_and_float32(name):
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    params = {"fc.weight": w, "fc.bias": b}
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    before = w.copy()
    opt = make_optimizer(name)
    opt.step(params, grads)
    opt.step(params, grads)
    assert params["fc.weight"] is w and params["fc.bias"] is b
    assert w.dtype == np.float32 and not np.array_equal(w, before)
    for st in opt.state.values():
        assert st["t"] == 2
        assert all(v.dtype == np.float32 for k, v in st.items() if k != "t")


def test_lr_is_a_mutable_attribute():
    opt = make_optimizer({"name": "sgd", "lr": 0.1})
    w = np.array([1.0])
    opt.step({"w": w}, {"w": np.array([1.0])})
    opt.lr = 0.5
    opt.step({"w": w}, {"w": np.array([1.0])})
    assert w[0] == pytest.approx(1 - 0.1 - 0.5)
    assert opt.get_config() == {"name": "sgd", "lr": 0.5}


def test_gradient_shape_must_match():
    with pytest.raises(ShapeError, match="'fc.weight'"):
        make_optimizer("adam").step({"fc.weight": np.zeros((2, 3))}, {"fc.weight": np.zeros(6)})


# --- specs ---------------------------------------------------------------------------------------


def test_check_optimizer_spec_fills_defaults():
    assert check_optimizer_spec({"name": "adam"}) == {"name": "adam", **OPTIMIZERS["adam"]}
    assert check_optimizer_spec("momentum") == {"name": "momentum", "lr": 0.01, "momentum": 0.9}
    spec = check_optimizer_spec({"name": "rmsprop", "lr": 1, "rho": 0.5})
    assert spec == {"name": "rmsprop", "lr": 1.0, "rho": 0.5, "eps": 1e-8}
    assert isinstance(spec["lr"], float)


@pytest.mark.parametrize(
    "spec,words",
    [
        ({"name": "adamw"}, ["adamw", "sgd", "nesterov", "adam"]),
        ({"lr": 0.1}, ["None", "adagrad"]),
        ({"name": "sgd", "momentum": 0.9}, ["'momentum'", "lr"]),
        ({"name": "adam", "betas": [0.9, 0.99]}, ["'betas'", "beta1", "beta2", "eps"]),
        ({"name": "sgd", "lr": 0}, ["'lr'", "> 0"]),
        ({"name": "sgd", "lr": "fast"}, ["'lr'", "number"]),
        ({"name": "momentum", "momentum": 1.0}, ["'momentum'", "< 1"]),
        ({"name": "adam", "eps": 0}, ["'eps'"]),
        ([1, 2], ["object"]),
        ({"name": ["adam"]}, ["unknown optimizer"]),
    ],
)
def test_bad_optimizer_specs_say_what_is_valid(spec, words):
    with pytest.raises(ConfigError) as e:
        make_optimizer(spec)
    assert all(w in str(e.value) for w in words), str(e.value)


# --- regularisation and clipping -----------------------------------------------------------------


def _params_and_grads():
    params = {
        "fc.weight": rng.standard_normal((3, 4)),
        "fc.bias": rng.standard_normal(3),
        "rnn.weight_ih": rng.standard_normal((6, 2)),
        "bn.bias": rng.standard_normal(2),
    }
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    return params, grads


def test_regularize_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads = _params_and_grads()
    base = {k: g.copy() for k, g in grads.items()}
    l1, l2 = 0.03, 0.2
    penalty = regularize(params, grads, l1=l1, l2=l2)
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    weights = [t for k, t in ts.items() if k.split(".")[-1].startswith("weight")]
    total = sum(l1 * t.abs().sum() + l2 / 2 * (t * t).sum() for t in weights)
    total.backward()
    assert penalty == pytest.approx(total.item(), rel=1e-12)
    for k in params:
        extra = ts[k].grad.numpy() if ts[k].grad is not None else 0
        np.testing.assert_allclose(grads[k], base[k] + extra, rtol=1e-12)
    np.testing.assert_array_equal(grads["fc.bias"], base["fc.bias"])  # biases untouched


def test_regularize_off_and_bad_values():
    params, grads = _params_and_grads()
    base = {k: g.copy() for k, g in grads.items()}
    assert regularize(params, grads, 0.0, 0.0) == 0.0
    assert regularize(params, grads, np.float32(0), np.float64(0)) == 0.0
    assert all(np.array_equal(grads[k], base[k]) for k in grads)
    with pytest.raises(ConfigError, match="'l2'"):
        regularize(params, grads, 0.0, -1.0)


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    _, grads = _params_and_grads()
    ts = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for t, g in zip(ts, grads.values(), strict=True):
        t.grad = torch.tensor(g)
    want = torch.nn.utils.clip_grad_norm_(ts, max_norm).item()
    before = {k: g.copy() for k, g in grads.items()}
    total = clip_grad_norm(grads, max_norm)
    assert total == pytest.approx(want, rel=1e-12)
    for t, g in zip(ts, grads.values(), strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    if max_norm < total:
        assert math.sqrt(sum(float(np.sum(g * g)) for g in grads.values())) == pytest.approx(
            max_norm, rel=1e-5
        )
    else:
        assert all(np.array_equal(grads[k], before[k]) for k in grads)


def test_clip_grad_norm_uses_the_callers_sum_of_squares():
    """The Trainer passes the sum of g^2 it computed for the gradient RMS: the same scaling
    as computing it again."""
    _, grads = _params_and_grads()
    orig = {k: g.copy() for k, g in grads.items()}
    again = {k: g.copy() for k, g in grads.items()}
    sum_sq = sum(float(np.vdot(g, g)) for g in grads.values())
    assert clip_grad_norm(grads, 1e-3, sum_sq) == clip_grad_norm(again, 1e-3)
    assert all(np.array_equal(grads[k], again[k]) for k in grads)
    # it is used, not checked: four times the sum scales by max_norm / (2 norm)
    third = {k: g.copy() for k, g in orig.items()}
    clip_grad_norm(third, 1e-3, 4 * sum_sq)
    for k, g in third.items():
        np.testing.assert_allclose(g, orig[k] * 1e-3 / (2 * math.sqrt(sum_sq) + 1e-6), rtol=1e-12)


def test_clip_grad_norm_refuses_bad_max_norm():
    with pytest.raises(ConfigError, match="clip_norm"):
        clip_grad_norm({"w": np.ones(2)}, 0)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_small_models_flat_step_gives_the_per_parameter_numbers(name):
    """Below flat_max_values the parameters are updated as one flat array: the same element-wise
    rule, so the same numbers, bit for bit, also after the parameters change (a step without
    one of them goes on per parameter from the same state)."""
    r = np.random.default_rng(5)
    shapes = {"a.weight": (6, 5), "a.bias": (6,), "b.weight": (2, 6, 3)}
    start = {k: r.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    grads = [
        {k: r.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(4)
    ]
    runs = {}
    for cap in (10**9, 0):  # every rule flat (SGD's is by default never), then per array
        params = {k: v.copy() for k, v in start.items()}
        opt = make_optimizer({"name": name, "lr": 0.05})
        opt.flat_max_values = cap
        for g in grads[:3]:
            opt.step(params, g)
        assert (opt.__dict__.get("_flat") is not None) == (cap > 0)
        opt.step({k: params[k] for k in ("a.weight", "b.weight")}, grads[3])
        assert all(st["t"] == (4 if k != "a.bias" else 3) for k, st in opt.state.items())
        runs[cap] = params
    for k, v in runs[0].items():
        np.testing.assert_array_equal(runs[10**9][k], v, err_msg=k)
        assert not np.array_equal(v, start[k])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_step_on_the_flat_arrays_it_was_given_gathers_nothing_and_gives_the_same_numbers(name):
    """use_flat: parameters and gradients that are pieces of two flat arrays (engine.parallel)
    are updated where they are, at any size, with the per-array numbers bit for bit; a step
    given other gradient arrays gathers them and gives the same numbers too."""
    r = np.random.default_rng(7)
    shapes = {"a.weight": (40, 30), "a.bias": (40,), "b.weight": (3, 40, 5)}
    sizes = [int(np.prod(s)) for s in shapes.values()]
    w, g = np.empty(sum(sizes), np.float32), np.empty(sum(sizes), np.float32)
    at, params, grad_views = 0, {}, []
    for (k, s), n in zip(shapes.items(), sizes, strict=True):
        params[k] = w[at : at + n].reshape(s)
        params[k][...] = r.standard_normal(s)
        grad_views.append(g[at : at + n].reshape(s))
        at += n
    start = {k: v.copy() for k, v in params.items()}
    steps = [[r.standard_normal(s).astype(np.float32) for s in shapes.values()] for _ in range(3)]
    ref = {k: v.copy() for k, v in start.items()}
    opt_ref = make_optimizer({"name": name, "lr": 0.05})
    opt_ref.flat_max_values = 0  # one array at a time
    opt = make_optimizer({"name": name, "lr": 0.05})
    opt.flat_max_values = 0  # the given flat arrays are used whatever the size
    opt.use_flat(list(params.values()), w, grad_views, g)
    for i, gs in enumerate(steps):
        opt_ref.step(ref, dict(zip(shapes, gs, strict=True)))
        if i < 2:
            for view, v in zip(grad_views, gs, strict=True):
                view[...] = v
            opt.step(params, dict(zip(shapes, grad_views, strict=True)))
            assert "w" not in opt._flat and "g" not in opt._flat
        else:  # other gradient arrays: gathered into a buffer of its own
            opt.step(params, dict(zip(shapes, gs, strict=True)))
            assert "g" in opt._flat and "w" not in opt._flat
        for k, v in ref.items():
            np.testing.assert_array_equal(params[k], v, err_msg=k)
    assert not np.array_equal(w[: sizes[0]], start["a.weight"].ravel())
