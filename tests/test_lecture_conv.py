"""The lectures' convolution and pooling numbers, reproduced by the engine.

000 = VE593 (Weng), 001 = Korea Univ. (Kang), 003 = CMU 10-601 (Mitchell); /work/shared/seeds.
"""

import numpy as np
import pytest

from engine import functional as F
from engine.layers import Conv2D, ConvTranspose2D, MaxPool2D, Subsample2D

# Lecture 000, "Convolutional Layer: Numerical Example" (and "Pooling Layer: Max").
IMAGE_000 = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]],
    dtype=float,
)
FILTER_000 = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=float)
MAP_000 = [[12, 12, 17], [10, 17, 19], [9, 6, 14]]
MAXPOOL_000 = [[3, 3, 3], [3, 3, 3], [3, 2, 3]]

# Lecture 001, "Convolution with padding": the image, the sharpen kernel, output[0, 0] = 320.
IMAGE_001 = np.array(
    [
        [105, 102, 100, 97, 96],
        [103, 99, 103, 101, 102],
        [101, 98, 104, 102, 100],
        [99, 101, 106, 104, 99],
        [104, 104, 104, 100, 98],
    ],
    dtype=float,
)
SHARPEN = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float)

# LeNet-5's C3 table (LeCun et al. 1998, Table I): the S2 maps each C3 map reads.
LENET_C3 = [
    [0, 1, 2],
    [1, 2, 3],
    [2, 3, 4],
    [3, 4, 5],
    [4, 5, 0],
    [5, 0, 1],
    [0, 1, 2, 3],
    [1, 2, 3, 4],
    [2, 3, 4, 5],
    [3, 4, 5, 0],
    [4, 5, 0, 1],
    [5, 0, 1, 2],
    [0, 1, 3, 4],
    [1, 2, 4, 5],
    [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


def as_batch(img):
    return np.asarray(img, dtype=float)[None, None]


def test_000_numerical_example_gives_the_feature_map():
    out = F.conv2d(as_batch(IMAGE_000), as_batch(FILTER_000))
    np.testing.assert_array_equal(out[0, 0], MAP_000)
    layer = Conv2D(filters=1, kernel_size=3, bias=False).build((1, 5, 5))
    layer.params["weight"][...] = FILTER_000
    np.testing.assert_allclose(layer.forward(as_batch(IMAGE_000).astype(np.float32))[0, 0], MAP_000)


def test_000_convolution_is_cross_correlation():
    # The slides slide the filter as written (no flip), as PyTorch does; a true convolution
    # (kernel flipped) gives another map.
    flipped = F.conv2d(as_batch(IMAGE_000), as_batch(FILTER_000[::-1, ::-1].copy()))
    assert not np.array_equal(flipped[0, 0], MAP_000)
    top_left = sum(IMAGE_000[i, j] * FILTER_000[i, j] for i in range(3) for j in range(3))
    assert top_left == MAP_000[0][0] == 12


def test_000_max_pool_3x3_stride_1():
    out = F.max_pool2d(as_batch(IMAGE_000), 3, stride=1)
    np.testing.assert_array_equal(out[0, 0], MAXPOOL_000)
    layer = MaxPool2D(kernel_size=3, stride=1).build((1, 5, 5))
    np.testing.assert_array_equal(layer.forward(as_batch(IMAGE_000))[0, 0], MAXPOOL_000)


def test_001_feature_detector_example():
    image = np.array(
        [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
        dtype=float,
    )
    x_filter = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)
    out = F.conv2d(as_batch(image), as_batch(x_filter))[0, 0]
    assert out[0, 0] == 4  # the slide's first value
    np.testing.assert_array_equal(out, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_001_sharpen_kernel_with_padding_1_gives_320_at_the_corner():
    layer = Conv2D(filters=1, kernel_size=3, padding=1, bias=False).build((1, 5, 5))
    layer.params["weight"][...] = SHARPEN
    out = layer.forward(as_batch(IMAGE_001).astype(np.float32))
    assert out.shape == (1, 1, 5, 5)  # padding 1 keeps 5x5 with a 3x3 kernel
    assert out[0, 0, 0, 0] == 320  # 105*5 - 102 - 103
    # "same" is the same padding for a 3x3 kernel
    same = F.conv2d(as_batch(IMAGE_001), as_batch(SHARPEN), padding="same")
    np.testing.assert_array_equal(same, out)


@pytest.mark.parametrize(
    "size,kernel,stride,pad,expected",
    [
        (5, 3, 1, 0, 3),  # 000: the numerical example
        (5, 3, 1, 1, 5),  # 001: the sharpen example with padding 1
        (6, 3, 1, 1, 6),  # 001: 6x6 image padded with size 1
        (7, 3, 2, 0, 3),  # stride 2
        (32, 5, 1, 0, 28),  # LeNet-5 C1
        (227, 11, 4, 0, 55),  # AlexNet conv1
        (224, 7, 2, 3, 112),  # GoogLeNet's first convolution
        (8, 3, 2, 0, 3),  # (8 - 3) / 2 + 1 = 3.5: floor
    ],
)
def test_output_size_formula(size, kernel, stride, pad, expected):
    # (W - F + 2P) / S + 1, floored
    assert F.conv_output_size(size, kernel, stride, pad) == expected
    layer = Conv2D(filters=1, kernel_size=kernel, stride=stride, padding=pad)
    assert layer.output_shape((1, size, size)) == (1, expected, expected)


def test_003_lenet5_shapes_and_parameter_counts():
    c1 = Conv2D(filters=6, kernel_size=5)
    assert c1.output_shape((1, 32, 32)) == (6, 28, 28)
    assert c1.param_count((1, 32, 32)) == 156  # 6 * (5*5 + 1)
    s2 = Subsample2D(kernel_size=2)
    assert s2.output_shape((6, 28, 28)) == (6, 14, 14)
    assert s2.param_count((6, 28, 28)) == 12  # a weight and a bias per map
    c3 = Conv2D(filters=16, kernel_size=5, connections=LENET_C3)
    assert c3.output_shape((6, 14, 14)) == (16, 10, 10)
    assert c3.param_count((6, 14, 14)) == 1516  # 60 connected maps * 25 + 16 biases
    assert Conv2D(filters=16, kernel_size=5).param_count((6, 14, 14)) == 2416  # without table
    assert Subsample2D().output_shape((16, 10, 10)) == (16, 5, 5)  # S4
    c5 = Conv2D(filters=120, kernel_size=5)
    assert c5.output_shape((16, 5, 5)) == (120, 1, 1)
    assert c5.param_count((16, 5, 5)) == 48120
    built = c3.build((6, 14, 14))
    assert int(np.count_nonzero(built.params["weight"])) + built.params["bias"].size == 1516


def test_003_lenet5_subsampling_is_weight_times_window_sum_plus_bias():
    s2 = Subsample2D().build((6, 28, 28))
    s2.params["weight"][...] = np.arange(1, 7)
    s2.params["bias"][...] = -1.0
    x = np.random.default_rng(0).standard_normal((2, 6, 28, 28)).astype(np.float32)
    out = s2.forward(x)
    window = x[1, 4, 2:4, 6:8]
    assert out[1, 4, 1, 3] == pytest.approx(5 * window.sum() - 1.0, rel=1e-5)
    fresh = Subsample2D().build((6, 28, 28))  # starts as 2x2 average pooling
    np.testing.assert_allclose(fresh.forward(x), F.avg_pool2d(x, 2), rtol=1e-6, atol=1e-6)


def test_003_kernel_gradient_formula():
    # dJ/dK(m, n) = sum over the output map S of dJ/dS(i, j) * I(i + m, j + n)
    r = np.random.default_rng(1)
    image = r.standard_normal((6, 7))
    layer = Conv2D(filters=1, kernel_size=3, bias=False).build((1, 6, 7))
    layer.astype(np.float64)
    layer.forward(image[None, None], training=True)
    ds = r.standard_normal((4, 5))
    layer.backward(ds[None, None])
    expected = [
        [sum(ds[i, j] * image[i + m, j + n] for i in range(4) for j in range(5)) for n in range(3)]
        for m in range(3)
    ]
    np.testing.assert_allclose(layer.grads["weight"][0, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("padding,stride,expected", [(0, 1, 5), (1, 1, 3), (0, 2, 7), (1, 2, 5)])
def test_001_transpose_convolution_padding_rules(padding, stride, expected):
    # 3x3 feature map, 3x3 filter. The slide's rule: insert S - 1 zeros between pixels, pad
    # with (K - 1) - P zeros (P = 0: 2 pixels; P = 1: 1 pixel), then slide the filter
    # (flipped, for the transpose) with stride 1. Output (H - 1) * S - 2P + K.
    r = np.random.default_rng(2)
    x = r.standard_normal((1, 1, 3, 3))
    w = r.standard_normal((1, 1, 3, 3))
    out = F.conv_transpose2d(x, w, stride=stride, padding=padding)
    assert out.shape == (1, 1, expected, expected)
    assert F.conv_transpose_output_size(3, 3, stride, padding) == expected
    spread = np.zeros((1, 1, 3 + 2 * (stride - 1), 3 + 2 * (stride - 1)))
    spread[:, :, ::stride, ::stride] = x
    ring = 3 - 1 - padding
    lecture = F.conv2d(
        np.pad(spread, ((0, 0), (0, 0), (ring, ring), (ring, ring))), w[:, :, ::-1, ::-1].copy()
    )
    np.testing.assert_allclose(out, lecture, rtol=1e-12, atol=1e-12)
    layer = ConvTranspose2D(filters=1, kernel_size=3, stride=stride, padding=padding, bias=False)
    assert layer.output_shape((1, 3, 3)) == (1, expected, expected)
