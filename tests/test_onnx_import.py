"""ONNX import: round trips of every preset, models made by PyTorch's own exporter, operators
with no block, and ONNX files as untrusted input."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import cli

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_onnx import CASES, _chain, perturbed_state, sample_input  # noqa: E402

from engine.export.onnx import MISSING, export_onnx, import_onnx  # noqa: E402
from engine.export.onnx import files as onnx_files  # noqa: E402
from engine.export.onnx.files import OnnxFileError  # noqa: E402
from engine.export.onnx.importer import import_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "presets").glob("*.json"))
TOL = 1e-5


def same_graph(a: engine.Graph, b: engine.Graph) -> None:
    """Equal to_dict() up to layout: blocks (id, type, every setting with defaults filled
    in), wires, name, description and training settings."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        for n in d["nodes"]:
            n.pop("pos")
    assert {n["id"]: n["type"] for n in da["nodes"]} == {n["id"]: n["type"] for n in db["nodes"]}
    assert {n: a.full_config(n) for n in a.nodes()} == {n: b.full_config(n) for n in b.nodes()}
    key = lambda e: (e["target"], e["target_port"])  # noqa: E731
    assert sorted(da["edges"], key=key) == sorted(db["edges"], key=key)
    for k in ("name", "description", "training", "format", "version"):
        assert da[k] == db[k]


# Presets whose export runs (tests/test_attention.py) but whose ONNX the importer cannot yet turn
# back into blocks: it refuses them in one line naming the node.
# The value: what the one line says.
NO_IMPORT = {
    "attention_copy": "node 'att/",  # the importer has no Attention pattern (MatMul/Tanh/Softmax)
    # nor ONNX's Slice of the input (the line names the Slice, not the LSTM/Conv reading it)
    "seq2seq_reversal": "no block for these ONNX operators: Slice 'source' (",
    "seq2seq_reversal_attention": "Slice 'source' (",
    "attention_dates": "Slice 'source' (",
    "attention_dates_luong": "Slice 'source' (",
    "captioning_digits": "no block for these ONNX operators: Slice 'image' (",
}


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_round_trips_through_onnx(path, tmp_path, capsys):
    g = engine.load_graph(path)
    model = engine.build_model(g, seed=0)
    state = perturbed_state(model)
    (tmp_path / "m.onnx").write_bytes(export_onnx(g, arrays=state))
    out, w = tmp_path / "back.json", tmp_path / "back.npz"
    argv = ["import", str(tmp_path / "m.onnx"), "-o", str(out), "--save-weights", str(w)]
    if path.stem in NO_IMPORT:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and NO_IMPORT[path.stem] in err, err
        return
    assert cli.main(argv) == 0
    g2 = engine.load_graph(out)
    same_graph(g, g2)
    model2 = engine.build_model(g2, seed=0)
    engine.load_weights(model2, w)
    for k, v in model2.state().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    x = sample_input(model)
    model.set_state(state)
    np.testing.assert_array_equal(model2.forward(x), model.forward(x))
    # laid out left to right: each block right of the blocks feeding it
    for s, t, _ in g2.edges():
        assert g2.pos_of(t)[0] > g2.pos_of(s)[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_block_settings_round_trip(case):
    blocks, shape = CASES[case]
    g = _chain(*blocks, shape=shape)
    model = engine.build_model(g, seed=1)
    state = perturbed_state(model, seed=2)
    g2, arrays = import_model(onnx.load_from_string(export_onnx(g, arrays=state)), "m.onnx")
    same_graph(g, g2)
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)


# --- models made by PyTorch's exporter ------------------------------------------------------------
def _torch_models():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5, padding=2)
            self.c2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            x = nn.functional.avg_pool2d(torch.tanh(self.c2(x)), 2)
            x = torch.sigmoid(self.fc1(torch.flatten(x, 1)))
            x = nn.functional.leaky_relu(self.fc2(x), 0.1)
            return torch.softmax(self.fc3(x), dim=1)

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(x + y)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.b1, self.b2 = Residual(8), Residual(8)
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = self.b2(self.b1(torch.relu(self.bn(self.stem(x)))))
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return self.fc(self.drop(x))

    class Inception(nn.Module):
        """GoogLeNet's module: 1x1, 1x1 -> 3x3, 1x1 -> 5x5 and pool -> 1x1, concatenated."""

        def __init__(self, c=4):
            super().__init__()
            self.b1 = nn.Conv2d(c, 4, 1)
            self.b3r, self.b3 = nn.Conv2d(c, 3, 1), nn.Conv2d(3, 6, 3, padding=1)
            self.b5r, self.b5 = nn.Conv2d(c, 2, 1), nn.Conv2d(2, 3, 5, padding=2)
            self.bpc = nn.Conv2d(c, 2, 1)
            self.head = nn.Conv2d(15, 2, 1)

        def forward(self, x):
            r = torch.relu
            pool = nn.functional.max_pool2d(x, 3, stride=1, padding=1)
            y = torch.cat(
                [
                    r(self.b1(x)),
                    r(self.b3(r(self.b3r(x)))),
                    r(self.b5(r(self.b5r(x)))),
                    r(self.bpc(pool)),
                ],
                dim=1,
            )
            return self.head(nn.functional.interpolate(y, scale_factor=2, mode="nearest"))

    class LSTMClassifier(nn.Module):
        def __init__(self, last_step: bool = False):
            super().__init__()
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.fc = nn.Linear(8, 4)
            self.last_step = last_step

        def forward(self, x):
            out, (h, _) = self.lstm(x)
            return self.fc(out[:, -1] if self.last_step else h[-1])

    class GRUTagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(5, 6, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(12, 3)

        def forward(self, x):
            return self.fc(self.gru(x)[0])

    return torch, {
        "lenet": (LeNet, (1, 28, 28), ["Conv2D", "MaxPool2D", "AvgPool2D", "Dense"]),
        "resnet": (ResNet, (3, 16, 16), ["BatchNorm", "Add", "GlobalAvgPool2D"]),
        "inception": (Inception, (4, 8, 8), ["Concat", "Upsample2D", "MaxPool2D"]),
        "lstm_h_n": (LSTMClassifier, (7, 6), ["LSTM", "Dense"]),
        "lstm_last_step": (lambda: LSTMClassifier(True), (7, 6), ["LSTM", "Dense"]),
        "gru_tagger": (GRUTagger, (5, 5), ["GRU", "Dense"]),
    }


def _torch_export(torch, module, x, dynamo: bool) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:  # torch's default exporter; optimize=False keeps BatchNorm (not folded)
            batch = torch.export.Dim("N")
            prog = torch.onnx.export(
                module, (x,), dynamo=True, optimize=False, dynamic_shapes=({0: batch},)
            )
            return prog.model_proto.SerializeToString()
        f = io.BytesIO()
        torch.onnx.export(
            module,
            (x,),
            f,
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "N"}},
        )
        return f.getvalue()


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize(
    "name", ["lenet", "resnet", "inception", "lstm_h_n", "lstm_last_step", "gru_tagger"]
)
def test_models_from_pytorchs_exporter(name, dynamo, tmp_path):
    torch, models = _torch_models()
    if dynamo:
        pytest.importorskip("onnxscript")
    make, shape, types = models[name]
    torch.manual_seed(0)
    module = make().eval()
    with torch.no_grad():  # BatchNorm statistics that matter
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    x = torch.randn(3, *shape)
    (tmp_path / "m.onnx").write_bytes(_torch_export(torch, module, x, dynamo))
    g, arrays = import_onnx(tmp_path / "m.onnx")
    model = engine.build_model(g, seed=0)
    model.set_state(arrays)
    assert model.n_params == sum(p.numel() for p in module.parameters())
    got_types = {g.type_of(n) for n in g.nodes()}
    assert set(types) <= got_types
    if name == "resnet":  # block ids from PyTorch's module paths
        assert {"stem", "b1.conv1", "b1.bn1", "b2.conv2", "fc"} <= set(g.nodes())
    with torch.no_grad():
        want = module(x).numpy()
    got = model.forward(x.numpy(), training=False)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
    # and a batch size other than the one exported with
    x5 = torch.randn(5, *shape)
    with torch.no_grad():
        np.testing.assert_allclose(
            model.forward(x5.numpy()), module(x5).numpy(), rtol=TOL, atol=TOL
        )


def test_lstm_hidden_sequence_without_a_block_is_refused():
    torch, _ = _torch_models()
    nn = torch.nn

    class LastOfBidirectional(nn.Module):  # out[:, -1] of a bidirectional LSTM: no block does it
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)

        def forward(self, x):
            return self.lstm(x)[0][:, -1]

    data = _torch_export(torch, LastOfBidirectional().eval(), torch.randn(2, 5, 3), False)
    with pytest.raises(OnnxFileError, match="nothing was imported"):
        import_model(onnx.load_from_string(data), "m.onnx")


# --- operators without a block --------------------------------------------------------------------
def _model(nodes, inits, in_shape=(1, 3, 8, 8), out_rank=4, opset=18):
    g = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [
            helper.make_tensor_value_info(
                nodes[-1].output[0], TensorProto.FLOAT, [f"d{i}" for i in range(out_rank)]
            )
        ],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_unsupported_operators_listed_with_counts_and_nothing_written(tmp_path, capsys):
    nodes = [  # three branches from x, summed: LRN -> Elu, dilated Conv, LRN (even sizes)
        helper.make_node("LRN", ["x"], ["a"], size=4),
        helper.make_node("Elu", ["a"], ["b"]),
        helper.make_node("Conv", ["x", "wg"], ["c"], group=3, pads=[2, 2, 2, 2], dilations=[2, 2]),
        helper.make_node("LRN", ["x"], ["d"], size=2),
        helper.make_node("Sum", ["b", "c", "d"], ["e"]),
    ]
    inits = {"wg": np.ones((3, 1, 3, 3), np.float32)}
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, inits), path)
    out = tmp_path / "g.json"
    rc = cli.main(["import", str(path), "-o", str(out), "--save-weights", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "LRN (even size) x2" in err[0] and "Elu x1" in err[0]
    assert "Conv (dilation) x1" in err[0]
    assert "nothing was imported" in err[0]
    assert not out.exists() and not (tmp_path / "w.npz").exists()


def test_matmul_add_becomes_dense_with_bias_and_reshape_chains_fold():
    rng = np.random.default_rng(0)
    w, b = (
        rng.standard_normal((12, 5)).astype(np.float32),
        rng.standard_normal(5).astype(np.float32),
    )
    nodes = [  # x (N, 3, 4) -> Shape -> Gather(0) -> Concat([n, -1]) -> Reshape -> MatMul + Add
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["y"]),
    ]
    inits = {
        "zero": np.array(0, np.int64),
        "axes0": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "w": w,
        "b": b,
    }
    g, arrays = import_model(_model(nodes, inits, in_shape=(1, 3, 4), out_rank=2), "m.onnx")
    assert [g.type_of(n) for n in g.nodes()] == ["Input", "Reshape", "Dense"]
    model = engine.build_model(g)
    model.set_state(arrays)
    x = rng.standard_normal((4, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(model.forward(x), x.reshape(4, 12) @ w + b, rtol=TOL, atol=TOL)


# --- untrusted files ------------------------------------------------------------------------------
def _one_line_exit_2(capsys, argv, *needles):
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    for n in needles:
        assert n in err[0]
    return err[0]


def test_bad_files_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "g.json")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\xff\xff\xff\xff\xff\xff garbage" * 10)
    _one_line_exit_2(capsys, ["import", str(garbage), "-o", out], "garbage.onnx")
    _one_line_exit_2(capsys, ["import", str(tmp_path), "-o", out], "folder")
    _one_line_exit_2(capsys, ["import", str(tmp_path / "none.onnx"), "-o", out], "no such file")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    _one_line_exit_2(capsys, ["import", str(empty), "-o", out], "not an ONNX model")
    # too large: refused before reading (the limit made small here)
    good = tmp_path / "m.onnx"
    good.write_bytes(export_onnx(engine.load_graph(ROOT / "presets" / "lenet5.json")))
    monkeypatch.setattr(onnx_files, "MAX_MODEL_BYTES", 1000)
    monkeypatch.setattr("engine.export.onnx.files.MAX_MODEL_BYTES", 1000)
    _one_line_exit_2(capsys, ["import", str(good), "-o", out], "at most")
    assert not Path(out).exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    _one_line_exit_2(capsys, ["import", str(fifo), "-o", str(tmp_path / "g.json")], "regular")


def _external_model(tmp_path: Path, location: str) -> Path:
    """A Dense model whose weight is stored in the external file ``location``."""
    g = _chain(("Dense", {"units": 2}), shape=(3,))
    m = onnx.load_from_string(export_onnx(g))
    t = next(t for t in m.graph.initializer if t.name == "b0.weight")
    raw = numpy_helper.to_array(t).tobytes()
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        e = t.external_data.add()
        e.key, e.value = k, v
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return path, raw


def test_external_data_inside_the_folder_is_read(tmp_path):
    path, raw = _external_model(tmp_path, "weights.bin")
    (path.parent / "weights.bin").write_bytes(raw)
    g, arrays = import_onnx(path)
    np.testing.assert_array_equal(arrays["b0.weight"].tobytes(), raw)


@pytest.mark.parametrize(
    "location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", "link.bin"]
)
def test_external_data_outside_the_folder_is_refused(tmp_path, capsys, location):
    path, raw = _external_model(tmp_path, location)
    (tmp_path / "secret.bin").write_bytes(raw)
    (path.parent / "link.bin").symlink_to(tmp_path / "secret.bin")
    _one_line_exit_2(
        capsys, ["import", str(path), "-o", str(tmp_path / "g.json")], "inside the model's folder"
    )


def test_missing_onnx_package_for_import(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    line = _one_line_exit_2(
        capsys, ["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "g.json")]
    )
    assert line == f"app.py: {MISSING}"


def test_corrupted_models_never_crash(tmp_path):
    """60 random byte flips, truncations and insertions in a real model: each either imports or
    raises OnnxFileError (the CLI's one line); never another exception."""
    g = engine.load_graph(ROOT / "presets" / "adding_lstm.json")
    data = bytearray(export_onnx(g))
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(60):
        d = bytearray(data)
        kind = rng.integers(3)
        if kind == 0:
            for i in rng.integers(0, len(d), rng.integers(1, 8)):
                d[i] = int(rng.integers(256))
        elif kind == 1:
            d = d[: int(rng.integers(len(d)))]
        else:
            i = int(rng.integers(len(d)))
            d[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 16))).astype(np.uint8))
        path.write_bytes(bytes(d))
        try:
            import_onnx(path)
            outcomes["ok"] += 1
        except OnnxFileError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 60
