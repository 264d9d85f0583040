"""ONNX export: every preset, with weights, runs in onnxruntime and gives the engine's numbers;
the checker passes; errors are one line. (Import: test_onnx_import.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import cli
from engine.errors import ConfigError, GraphError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from engine.export.onnx import builders, export_onnx, require_onnx  # noqa: E402
from engine.export.onnx.exporter import safe_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "presets").glob("*.json"))
# float32 on both sides; the sums run in different orders (im2col vs onnxruntime's kernels,
# the recurrent loops), which moves the last bits: measured at most 3e-6 over the presets.
TOL = 1e-5


def perturbed_state(model, seed: int = 1) -> dict[str, np.ndarray]:
    """The model's weights with random biases, BatchNorm statistics and gammas, so every
    parameter matters (initial biases are zero, running statistics 0 and 1)."""
    rng = np.random.default_rng(seed)
    state = model.state()
    for k, v in state.items():
        if k.endswith(("bias", "running_mean", "bias_ih", "bias_hh")) or "bias_" in k:
            state[k] = (v + rng.normal(0, 0.3, v.shape)).astype(v.dtype)
        elif k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)
    for n, layer in model.layers.items():
        if layer.type_name == "BatchNorm":
            w = state[f"{n}.weight"]
            state[f"{n}.weight"] = (w + rng.normal(0, 0.3, w.shape)).astype(w.dtype)
    return state


def sample_input(model, n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    first = [model.layers[s] for s in model.layers if model.inputs[s] == [model.input_id]]
    emb = [la for la in first if la.type_name == "Embedding"]
    if emb:
        hi = emb[0].config["num_embeddings"]
        return rng.integers(0, hi, (n, *model.input_shape)).astype(np.int64)
    return rng.standard_normal((n, *model.input_shape)).astype(np.float32)


def run_onnx(data: bytes, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_exported_with_weights_matches_the_engine(path, tmp_path):
    g = engine.load_graph(path)
    model = engine.build_model(g, seed=0)
    model.set_state(perturbed_state(model))
    w = tmp_path / "w.npz"
    engine.save_weights(model, w)
    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(path), "--to", "onnx", "--weights", str(w), "-o", str(out)]) == 0
    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    # readable names: every block is a node (or the graph's input) and weights keep their names
    node_names = {nd.name for nd in m.graph.node}
    assert set(model.layers) - {model.input_id} <= node_names
    assert m.graph.input[0].name == model.input_id
    assert m.graph.output[0].name == model.output_id
    x = sample_input(model)
    want = model.forward(x, training=False)
    got = run_onnx(out.read_bytes(), x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_without_weights_the_graph_initial_weights_at_its_seed(tmp_path):
    g = engine.load_graph(ROOT / "presets" / "lenet5.json")
    model = engine.build_model(g, seed=int(g.training.get("seed", 0)))
    x = sample_input(model)
    np.testing.assert_allclose(
        run_onnx(export_onnx(g), x), model.forward(x, training=False), rtol=TOL, atol=TOL
    )
    m = onnx.load_from_string(export_onnx(g))
    inits = {t.name for t in m.graph.initializer}
    assert {"c1.weight", "c1.bias", "f6.weight", "f6.bias"} <= inits


def _graph(nodes, edges, name="t"):
    return engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "name": name,
            "nodes": [
                {"id": i, "type": t, "config": c, "pos": [k * 100, 0]}
                for k, (i, t, c) in enumerate(nodes)
            ],
            "edges": [{"source": s, "target": t, "target_port": p} for s, t, p in edges],
        }
    )


def _chain(*blocks, shape):
    nodes = [("in", "Input", {"shape": list(shape)})]
    nodes += [(f"b{i}", t, c) for i, (t, c) in enumerate(blocks)]
    ids = [n[0] for n in nodes]
    return _graph(nodes, [(a, b, 0) for a, b in zip(ids, ids[1:], strict=False)])


CASES = {
    "conv_same_even_kernel": (
        [("Conv2D", {"filters": 3, "kernel_size": 4, "padding": "same"})],
        (2, 7, 7),
    ),
    "conv_stride_pad_pair": (
        [("Conv2D", {"filters": 4, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0]})],
        (3, 9, 8),
    ),
    "conv_groups": (
        [("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1, "groups": 2})],
        (6, 7, 7),
    ),
    "conv_depthwise_lrn": (
        [
            ("Conv2D", {"filters": 3, "kernel_size": 3, "stride": 2, "groups": 3}),
            ("LocalResponseNorm", {"size": 3, "alpha": 0.001, "beta": 0.75, "k": 2.0}),
        ],
        (3, 9, 8),
    ),
    "max_pool_ceil_mode": (
        [
            ("MaxPool2D", {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
            ("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        ],
        (2, 12, 11),
    ),
    "conv1d_same": ([("Conv1D", {"filters": 3, "kernel_size": 4, "padding": "same"})], (2, 9)),
    "conv1d_stride": ([("Conv1D", {"filters": 2, "kernel_size": 3, "stride": 2})], (2, 11)),
    "conv_transpose": (
        [("ConvTranspose2D", {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1})],
        (3, 5, 4),
    ),
    "pools_padded": (
        [
            ("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1}),
            ("AvgPool2D", {"kernel_size": 3, "stride": 1, "padding": 1}),
        ],
        (2, 9, 9),
    ),
    "subsample_upsample": (
        [("Subsample2D", {"kernel_size": [2, 3]}), ("Upsample2D", {"scale": [3, 2]})],
        (2, 7, 8),
    ),
    "gap_dense": ([("GlobalAvgPool2D", {}), ("Dense", {"units": 3})], (4, 5, 5)),
    "reshape_leaky_softmax": (
        [
            ("Reshape", {"shape": [3, 4]}),
            ("Dense", {"units": 5, "bias": False}),
            ("Activation", {"fn": "leaky_relu", "negative_slope": 0.2}),
            ("Activation", {"fn": "softmax"}),
        ],
        (12,),
    ),
    "batchnorm_sequence": ([("BatchNorm", {"eps": 1e-3})], (5, 4)),
    "rnn_relu_bidirectional_sequences": (
        [
            (
                "RNN",
                {
                    "hidden_size": 3,
                    "nonlinearity": "relu",
                    "bidirectional": True,
                    "return_sequences": True,
                },
            )
        ],
        (6, 4),
    ),
    "lstm_bidirectional_last": (
        [("LSTM", {"hidden_size": 5, "bidirectional": True})],
        (7, 3),
    ),
    "lstm_peepholes_bidirectional_sequences": (
        [
            (
                "LSTM",
                {
                    "hidden_size": 3,
                    "peepholes": True,
                    "bidirectional": True,
                    "return_sequences": True,
                },
            )
        ],
        (6, 2),
    ),
    "gru_bidirectional_sequences": (
        [("GRU", {"hidden_size": 4, "bidirectional": True, "return_sequences": True})],
        (5, 3),
    ),
    "gru_last": ([("GRU", {"hidden_size": 4})], (5, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_block_settings_match_the_engine(case):
    blocks, shape = CASES[case]
    g = _chain(*blocks, shape=shape)
    model = engine.build_model(g, seed=3)
    state = perturbed_state(model, seed=4)
    model.set_state(state)
    x = sample_input(model, n=2, seed=5)
    want = model.forward(x, training=False)
    got = run_onnx(export_onnx(g, arrays=state), x)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_three_way_add_and_concat_on_features():
    g = _graph(
        [
            ("in", "Input", {"shape": [4, 3]}),
            ("a", "Dense", {"units": 3}),
            ("b", "Dense", {"units": 3}),
            ("sum", "Add", {}),
            ("cat", "Concat", {"axis": -1}),
        ],
        [
            ("in", "a", 0),
            ("in", "b", 0),
            ("in", "sum", 0),
            ("a", "sum", 1),
            ("b", "sum", 2),
            ("sum", "cat", 0),
            ("a", "cat", 1),
        ],
    )
    model = engine.build_model(g, seed=0)
    x = sample_input(model)
    got = run_onnx(export_onnx(g), x)
    np.testing.assert_allclose(got, model.forward(x), rtol=TOL, atol=TOL)
    ops = [nd.op_type for nd in onnx.load_from_string(export_onnx(g)).graph.node]
    assert "Sum" in ops and "Concat" in ops


def test_a_block_without_onnx_form_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(builders.ONNX_BUILDERS, engine.layers.Subsample2D)
    path = ROOT / "presets" / "lenet5_1998.json"
    rc = cli.main(["export", str(path), "--to", "onnx", "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "Subsample2D has no ONNX form" in err[0] and "block '" in err[0]
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(GraphError, match="Subsample2D"):
        export_onnx(engine.load_graph(path))


def test_onnx_export_needs_an_output_file(capsys):
    rc = cli.main(["export", str(ROOT / "presets" / "xor.json"), "--to", "onnx"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "-o MODEL.onnx" in err[0]


def test_missing_onnx_package_is_reported_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ConfigError, match="pip install onnx"):
        require_onnx()
    rc = cli.main(
        ["export", str(ROOT / "presets" / "xor.json"), "--to", "onnx", "-o", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        "app.py: ONNX export and import need the onnx package: pip install onnx"
    ]


@pytest.mark.parametrize("text", ["a\udc80b", "x\x00y\n\"'", "Ωμέγα→🚀 " * 3, "</script>"])
def test_user_text_goes_into_the_model_as_plain_valid_text(text):
    g = _chain(("Dense", {"units": 2}), shape=(3,))
    g.set_meta("name", text)
    g.set_meta("description", text)
    m = onnx.load_from_string(export_onnx(g))
    assert m.graph.doc_string == safe_text(text)
    assert m.graph.name == safe_text(text)
    assert "\udc80" not in m.graph.doc_string
    props = {p.key: p.value for p in m.metadata_props}
    assert props["blockprop.name"].startswith('"')  # JSON, read back as data only
