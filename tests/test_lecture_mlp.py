"""Lecture 001's worked examples, rebuilt from engine layers, the 1/2-MSE loss and SGD.

"MLP: Training - Error Back-Propagation: Example": inputs x1 = x2 = 0.5 with bias input 1,
target y = 1, eta = 0.1, a sigmoid hidden layer of two units and a linear output unit. Slide
weights (w_j1, w_j2, w_j0): H1 (1, 1, 0), H2 (0, 1, -2); output (w_1, w_2, w_0) = (1, 1, 1).
The loss is L = 1/2 (y - y^)^2.

What the slide's arithmetic does, and how the engine reproduces it:
- It computes a1 = 1, a2 = -1.5 and then h1 = 1/(1 + exp(1)) = 0.269, h2 = 1/(1 + exp(-1.5))
  = 0.818: that is h = 1/(1 + exp(+a)) = sigmoid(-a) (sigmoid(a) would give 0.731 and 0.182).
  The engine's Dense + sigmoid gives exactly the slide's h when its hidden weights are the
  slide's weights negated; everything below maps them back with that sign.
- Hidden-layer updates: the engine's one SGD step gives the slide's 1.011, 1.011, 0.021 (H1)
  and -1.984 (H2 bias). For H2's input weights the slide prints -0.005 and 0.995, which cannot
  both hold with -1.984: x1 = x2 = 0.5 is half the bias input 1, so each must move by half of
  w20's +0.016. The engine gives 0.008 and 1.008.
- Output-layer updates: the slide prints 1.029, 1.089, 1.109, i.e. w + 0.1 (y^ - y) h: it puts
  the target in the output's place in "(y - y^)" (on the previous slide y is the output), which
  moves the weights uphill (the loss goes 0.590 -> 0.814). Gradient descent moves them by the
  same amounts downhill, to 0.971, 0.911, 0.891 (loss 0.402). The tests assert both facts.
"""

import numpy as np
import pytest

from engine.layers import Activation, Dense
from engine.losses import get_loss
from engine.optim import make_optimizer

X = np.array([[0.5, 0.5]])
Y = np.array([[1.0]])
SLIDE_HIDDEN = np.array(
    [
        [1.0, 1.0, 0.0],  # H1: w11, w12, w10 (bias)
        [0.0, 1.0, -2.0],
    ]
)  # H2: w21, w22, w20
SLIDE_OUT = np.array([1.0, 1.0, 1.0])  # w1, w2, w0 (bias)


def _net():
    hidden = Dense(units=2, name="hidden").build((2,)).astype(np.float64)
    act = Activation(fn="sigmoid", name="sigmoid").build((2,))
    out = Dense(units=1, name="out").build((2,)).astype(np.float64)
    # the slide's h = 1 / (1 + exp(a)) = sigmoid(-a): negate the hidden weights
    hidden.params["weight"][...] = -SLIDE_HIDDEN[:, :2]
    hidden.params["bias"][...] = -SLIDE_HIDDEN[:, 2]
    out.params["weight"][...] = SLIDE_OUT[None, :2]
    out.params["bias"][...] = SLIDE_OUT[2:]
    return hidden, act, out


def _params(layers):
    return (
        {f"{layer.name}.{k}": v for layer in layers for k, v in layer.params.items()},
        {f"{layer.name}.{k}": v for layer in layers for k, v in layer.grads.items()},
    )


def _one_sgd_step():
    hidden, act, out = _net()
    loss = get_loss("mse", half=True)
    a = hidden.forward(X)
    h = act.forward(a)
    y_hat = out.forward(h)
    value = loss.forward(y_hat, Y)
    dh = out.backward(loss.backward())
    hidden.backward(act.backward(dh))
    params, grads = _params([hidden, out])
    grads = {k: v.copy() for k, v in grads.items()}
    make_optimizer({"name": "sgd", "lr": 0.1}).step(params, grads)
    return {
        "a": -a[0],
        "h": h[0],
        "y_hat": y_hat[0, 0],
        "loss": value,
        "grads": grads,
        "hidden": np.column_stack([-hidden.params["weight"], -hidden.params["bias"]]),
        "out": np.r_[out.params["weight"][0], out.params["bias"]],
    }


def test_forward_pass_gives_the_slides_numbers():
    r = _one_sgd_step()
    np.testing.assert_allclose(r["a"], [1.0, -1.5])  # a1 = 1, a2 = -1.5 in the slide's terms
    assert np.round(r["h"], 3).tolist() == [0.269, 0.818]
    assert round(r["y_hat"], 3) == 2.087  # 1 x 0.269 + 1 x 0.818 + 1 x 1
    assert r["loss"] == pytest.approx(0.5 * (1 - r["y_hat"]) ** 2)
    # the standard sigmoid of the slide's a would give other numbers
    assert np.round(1 / (1 + np.exp(-r["a"])), 3).tolist() == [0.731, 0.182]


def test_output_layer_update_is_the_slides_step_taken_downhill():
    r = _one_sgd_step()
    h1, h2 = r["h"]
    # dL/dw_j = (y^ - y) h_j, with h_0 = 1 for the bias
    np.testing.assert_allclose(r["grads"]["out.weight"][0], (r["y_hat"] - 1) * r["h"])
    assert r["grads"]["out.bias"][0] == pytest.approx(r["y_hat"] - 1)
    assert np.round(r["out"], 3).tolist() == [0.971, 0.911, 0.891]
    assert np.round(SLIDE_OUT - r["out"], 3).tolist() == [0.029, 0.089, 0.109]
    # the slide's printed weights are the same step in the other direction
    slide_printed = [1.029, 1.089, 1.109]
    assert np.round(2 * SLIDE_OUT - r["out"], 3).tolist() == slide_printed

    def loss_with(w):
        return 0.5 * (1 - (w[0] * h1 + w[1] * h2 + w[2])) ** 2

    assert loss_with(r["out"]) < loss_with(SLIDE_OUT) < loss_with(np.array(slide_printed))
    assert round(loss_with(SLIDE_OUT), 3) == 0.590


def test_hidden_layer_updates():
    r = _one_sgd_step()
    new = r["hidden"]  # rows H1, H2; columns w_j1, w_j2, w_j0, in the slide's sign
    assert np.round(new[0], 3).tolist() == [1.011, 1.011, 0.021]  # slide: 1.011, 1.011, 0.021
    assert round(new[1, 2], 3) == -1.984  # slide: w20 = -1.984
    # the inputs (0.5) are half the bias input (1): each input weight moves half as far
    delta = new[1] - SLIDE_HIDDEN[1]
    np.testing.assert_allclose(delta[:2], [delta[2] / 2] * 2)
    assert np.round(new[1, :2], 3).tolist() == [0.008, 1.008]  # the slide prints -0.005, 0.995


def test_perceptron_gradient_formula():
    # 001 "Learning: Gradient Descent": for y = h = sigmoid(w.x) and L = 1/2 (t - y)^2,
    # dL/dw_i = (y - t) * 1 * h (1 - h) * x_i
    x = np.array([[2.0, 2.0]])  # the slides' first training example, t = 1
    t = np.array([[1.0]])
    unit = Dense(units=1, bias=False, name="p").build((2,)).astype(np.float64)
    unit.params["weight"][...] = [[0.3, -0.7]]
    act = Activation(fn="sigmoid").build((1,))
    loss = get_loss("half_mse")
    h = act.forward(unit.forward(x))
    loss.forward(h, t)
    unit.backward(act.backward(loss.backward()))
    want = (h - t) * 1 * h * (1 - h) * x
    np.testing.assert_allclose(unit.grads["weight"], want)


def _sigmoid_unit(w, b):
    d = Dense(units=1, name="unit").build((2,)).astype(np.float64)
    d.params["weight"][...] = [w]
    d.params["bias"][...] = [b]
    act = Activation(fn="sigmoid").build((1,))
    return lambda x: act.forward(d.forward(np.asarray(x, np.float64)))[:, 0]


INPUTS = [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_xor_sigmoid_units_from_the_slide():
    # "Combine multiple perceptrons": OR, NAND and AND units with weights +-20 and biases
    or_unit = _sigmoid_unit([20, 20], -10)
    nand_unit = _sigmoid_unit([-20, -20], 30)
    and_unit = _sigmoid_unit([20, 20], -30)
    np.testing.assert_array_equal(np.round(or_unit(INPUTS)), [0, 1, 1, 1])
    np.testing.assert_array_equal(np.round(nand_unit(INPUTS)), [1, 1, 1, 0])
    np.testing.assert_array_equal(np.round(and_unit(INPUTS)), [0, 0, 0, 1])
    # "~ 0" and "~ 1" on the slide: within sigmoid(-10) = 4.5e-5 of 0 or 1
    for unit in (or_unit, nand_unit, and_unit):
        v = unit(INPUTS)
        assert np.all(np.minimum(v, 1 - v) < 5e-5)


def test_xor_network_truth_table():
    # hidden = [OR, NAND], output = AND(hidden): XOR
    hidden = Dense(units=2, name="hidden").build((2,)).astype(np.float64)
    hidden.params["weight"][...] = [[20, 20], [-20, -20]]
    hidden.params["bias"][...] = [-10, 30]
    out = Dense(units=1, name="out").build((2,)).astype(np.float64)
    out.params["weight"][...] = [[20, 20]]
    out.params["bias"][...] = [-30]
    sig1 = Activation(fn="sigmoid").build((2,))
    sig2 = Activation(fn="sigmoid").build((1,))
    y = sig2.forward(out.forward(sig1.forward(hidden.forward(np.array(INPUTS, float)))))[:, 0]
    np.testing.assert_array_equal(np.round(y), [0, 1, 1, 0])
    assert np.all(np.abs(y - [0, 1, 1, 0]) < 1e-4)


def test_xor_sign_units_table():
    # "XOR problem revisited": inputs in {1/2, 3/2}, a1 = x1 + x2 - 3/2, a2 = x1 + x2 - 5/2,
    # h = g(a) = 1 if a >= 0 else -1 (the engine has no step activation: applied here).
    x = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5]])
    hidden = Dense(units=2, name="hidden").build((2,)).astype(np.float64)
    hidden.params["weight"][...] = [[1, 1], [1, 1]]
    hidden.params["bias"][...] = [-1.5, -2.5]
    a = hidden.forward(x)
    np.testing.assert_allclose(a[:, 0], [-0.5, 0.5, 0.5, 1.5])  # slide's a1 column
    np.testing.assert_allclose(a[:, 1], [-1.5, -0.5, -0.5, 0.5])  # a2 column
    h = np.where(a >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(h[:, 0], [-1, 1, 1, 1])
    np.testing.assert_array_equal(h[:, 1], [-1, -1, -1, 1])
    # The slide's table has o = -1, 1, 1, -1: that is o = h1 - h2 - 1. The formula printed
    # under it, o = h1 + h2 - 1, would give -3, -1, -1, 1 (not XOR).
    out = Dense(units=1, name="out").build((2,)).astype(np.float64)
    out.params["weight"][...] = [[1, -1]]
    out.params["bias"][...] = [-1]
    o = out.forward(h)[:, 0]
    np.testing.assert_array_equal(o, [-1, 1, 1, -1])
    np.testing.assert_array_equal(h[:, 0] + h[:, 1] - 1, [-3, -1, -1, 1])
    np.testing.assert_array_equal(np.where(o >= 0, 1, -1), [-1, 1, 1, -1])  # y = g(o)
