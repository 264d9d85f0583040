"""ONNX import: a model the importer refuses gets one line naming the node really refused (its
name and operator) and why, not the block downstream that happened to read its data."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export.onnx.files import OnnxFileError  # noqa: E402
from engine.export.onnx.importer import import_model  # noqa: E402

H = 4  # the LSTMs' hidden size (and feature count, so a slice of the input fits initial_h)


def _model(nodes, inits, in_shape, out_rank):
    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [
            helper.make_tensor_value_info(
                nodes[-1].output[0], TensorProto.FLOAT, [f"d{i}" for i in range(out_rank)]
            )
        ],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _refusal(model) -> str:
    with pytest.raises(OnnxFileError) as e:
        import_model(model, "m.onnx")
    msg = str(e.value)
    assert "\n" not in msg and "nothing was imported" in msg, msg
    return msg


def _slice(name, src, start, stop, axis):
    return helper.make_node(
        "Slice", [src, f"{name}.start", f"{name}.stop", f"{name}.axis"], [name], name=name
    ), {
        f"{name}.start": np.array([start], np.int64),
        f"{name}.stop": np.array([stop], np.int64),
        f"{name}.axis": np.array([axis], np.int64),
    }


def _lstm_weights():
    rng = np.random.default_rng(0)
    return {
        "W": rng.normal(size=(1, 4 * H, H)).astype(np.float32),
        "R": rng.normal(size=(1, 4 * H, H)).astype(np.float32),
    }


def test_a_slice_no_block_reads_is_named_not_the_conv_reading_it():
    # the flat input's first 64 values as a 1x8x8 image (captioning_digits' export)
    cut, inits = _slice("image", "x", 0, 64, 1)
    nodes = [
        cut,
        helper.make_node("Reshape", ["image", "img.shape"], ["img"], name="img"),
        helper.make_node("Conv", ["img", "w"], ["conv"], name="conv1"),
    ]
    inits |= {"img.shape": np.array([-1, 1, 8, 8], np.int64)}
    inits |= {"w": np.ones((2, 1, 3, 3), np.float32)}
    msg = _refusal(_model(nodes, inits, (80,), 4))
    assert "Slice 'image' (block 'x''s output after Slice 'image', Reshape 'img'" in msg, msg
    assert "Conv node 'conv1' cannot read it" in msg, msg


def test_a_slice_before_an_lstm_is_named_not_the_lstm():
    # the first 3 of 6 time steps, made time-major: seq2seq_reversal's encoder input
    cut, inits = _slice("source", "x", 0, 3, 1)
    nodes = [
        cut,
        helper.make_node("Transpose", ["source"], ["tm"], perm=[1, 0, 2], name="enc/Transpose"),
        helper.make_node("LSTM", ["tm", "W", "R"], ["Y"], hidden_size=H, name="enc"),
    ]
    msg = _refusal(_model(nodes, inits | _lstm_weights(), (6, H), 4))
    assert msg.count("Slice 'source'") == 2, msg  # the refused node, then the path
    assert "LSTM node 'enc' cannot read it as its (time, batch, features) sequence" in msg, msg


@pytest.mark.parametrize("computed", [True, False])
def test_an_lstm_initial_state_is_named_with_the_input_and_why(computed):
    nodes = [helper.make_node("Transpose", ["x"], ["tm"], perm=[1, 0, 2], name="tm")]
    inits = _lstm_weights()
    if computed:  # the first time step as initial_h: computed from the data
        cut, more = _slice("h0", "tm", 0, 1, 0)
        nodes.append(cut)
        inits |= more
    else:
        inits["h0"] = np.full((1, 1, H), 0.5, np.float32)
    ins = ["tm", "W", "R", "", "", "h0"]
    nodes.append(helper.make_node("LSTM", ins, ["Y"], hidden_size=H, name="dec/LSTM"))
    msg = _refusal(_model(nodes, inits, (5, H), 4))
    how = "computed from the data" if computed else "a constant not zero"
    assert f"LSTM (initial_h 'h0' {how}: blocks start from zero state) x1" in msg, msg
    assert "(node 'dec/LSTM')" in msg, msg


def test_refused_nodes_are_listed_by_name_with_their_count():
    nodes = [
        helper.make_node("Elu", ["x"], ["a"], name="act1"),
        helper.make_node("Elu", ["a"], ["b"], name="act2"),
        helper.make_node("Selu", ["b"], ["c"]),  # no name: its output's
    ]
    msg = _refusal(_model(nodes, {}, (3, 8, 8), 4))
    assert "Elu x2 (nodes 'act1', 'act2')" in msg and "Selu x1 (node 'c')" in msg, msg


def test_an_output_that_is_a_slice_names_the_slice():
    cut, inits = _slice("half", "x", 0, 2, 1)
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), cut]
    nodes[1].input[0] = "r"
    msg = _refusal(_model(nodes, inits, (4,), 2))
    assert "the output of the model is a transposed or sliced part of block 'relu''s output " in msg
    assert "after Slice 'half'" in msg, msg
