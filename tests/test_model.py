"""engine.Model: forward/backward through branching graphs, seeds, weights files."""

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

import engine
from engine.errors import GraphError, ShapeError, WeightsError
from engine.model import build_model
from engine.weights import load_weights, save_weights


def branchy() -> engine.Graph:
    """in -> d1 -> t1; t1 feeds d2, d3 and the Concat (three successors: their gradients sum)."""
    g = engine.Graph("branchy")
    g.add_node("Input", {"shape": [5]}, node_id="in")
    g.add_node("Dense", {"units": 4}, node_id="d1")
    g.add_node("Activation", {"fn": "tanh"}, node_id="t1")
    g.add_node("Dense", {"units": 4}, node_id="d2")
    g.add_node("Dense", {"units": 4, "bias": False}, node_id="d3")
    g.add_node("Add", {}, node_id="sum")
    g.add_node("Concat", {}, node_id="cat")
    g.add_node("Dense", {"units": 3}, node_id="out")
    for s, t in [
        ("in", "d1"),
        ("d1", "t1"),
        ("t1", "d2"),
        ("t1", "d3"),
        ("d2", "sum"),
        ("d3", "sum"),
        ("cat", "out"),
    ]:
        g.add_edge(s, t)
    g.add_edge("t1", "cat", port=1)
    g.add_edge("sum", "cat", port=0)  # port 0 although wired after t1
    return g


def mlp() -> engine.Graph:
    g = engine.Graph("mlp")
    g.add_node("Input", {"shape": [6]}, node_id="in")
    g.add_node("Dense", {"units": 5}, node_id="h")
    g.add_node("Activation", {"fn": "relu"}, node_id="r")
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_edge("in", "h")
    g.add_edge("h", "r")
    g.add_edge("r", "out")
    return g


def test_forward_matches_numpy_by_hand():
    m = build_model(mlp(), seed=3)
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    p = m.params
    h = np.maximum(x @ p["h.weight"].T + p["h.bias"], 0)
    want = h @ p["out.weight"].T + p["out.bias"]
    out = m.forward(x)
    assert out.dtype == np.float32 and out.shape == (7, 2)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    assert m.input_shape == (6,) and m.output_shape == (2,)
    assert m.input_id == "in" and m.output_id == "out"
    assert list(m.layers) == ["in", "h", "r", "out"]


def test_concat_inputs_follow_target_port():
    m = build_model(branchy())
    assert m.inputs["cat"] == ["sum", "t1"]
    assert m.layers["cat"].in_shape == [(4,), (4,)]


def test_whole_model_gradients_with_shared_outputs():
    m = build_model(branchy(), seed=1).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5))
    R = rng.standard_normal((3, 3))

    def f():
        return float(np.sum(m.forward(x) * R))

    m.forward(x, training=True)
    dx = m.backward(R.copy())
    grads = {k: v.copy() for k, v in m.grads.items()}
    assert set(grads) == set(m.params)
    for k, p in m.params.items():
        assert rel_error(grads[k], numeric_grad(f, p)) < 1e-6, k
    assert dx.shape == x.shape
    assert rel_error(dx, numeric_grad(f, x)) < 1e-6


def test_param_names_and_grads_view():
    m = build_model(branchy())
    assert set(m.params) == {
        "d1.weight",
        "d1.bias",
        "d2.weight",
        "d2.bias",
        "d3.weight",
        "out.weight",
        "out.bias",
    }
    assert m.params["d1.weight"] is m.layers["d1"].params["weight"]
    x = np.ones((2, 5), np.float32)
    m.backward(np.ones_like(m.forward(x, training=True)))
    # grads are read afresh: Dense rebinds its grads in backward
    assert m.grads["d1.weight"] is m.layers["d1"].grads["weight"]
    assert m.n_params == sum(v.size for v in m.params.values())
    assert all(v.dtype == np.float32 for v in m.params.values())


def test_seeds_are_per_block():
    a, b = build_model(mlp(), seed=0), build_model(mlp(), seed=0)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    c = build_model(mlp(), seed=1)
    assert not np.array_equal(a.params["h.weight"], c.params["h.weight"])
    g = mlp()  # adding a block changes no other block's initial weights
    g.add_node("Dense", {"units": 6}, node_id="pre")
    g.remove_edge("in", "h")
    g.add_edge("in", "pre")
    g.add_edge("pre", "h")
    d = build_model(g, seed=0)
    np.testing.assert_array_equal(a.params["out.weight"], d.params["out.weight"])
    np.testing.assert_array_equal(a.params["h.weight"], d.params["h.weight"])


def test_build_refuses_a_graph_with_problems():
    g = mlp()
    g.add_node("Dense", {"units": 1}, node_id="stray")
    g.add_node("Input", {"shape": [6]}, node_id="in2")
    with pytest.raises(GraphError) as e:
        build_model(g)
    msg = str(e.value)
    assert "2 problems" in msg and "'stray'" in msg and "'in2'" in msg


def test_forward_checks_the_input_shape():
    m = build_model(mlp())
    with pytest.raises(ShapeError) as e:
        m.forward(np.zeros((2, 7), np.float32))
    assert e.value.block == "in"


# --- weights files -------------------------------------------------------------------------------


def test_weights_round_trip(tmp_path):
    a, b = build_model(branchy(), seed=0), build_model(branchy(), seed=5)
    path = tmp_path / "w.npz"
    save_weights(a, path)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(a.params)
    load_weights(b, path)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        assert b.params[k] is b.layers[k.split(".")[0]].params[k.split(".")[1]]  # in place
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_weights_include_buffers(tmp_path):
    g = mlp()
    g.add_node("BatchNorm", {}, node_id="bn")
    g.remove_edge("h", "r")
    g.add_edge("h", "bn")
    g.add_edge("bn", "r")
    a = build_model(g)
    a.forward(
        np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32) * 3 + 1, training=True
    )
    assert a.buffers and any(np.any(v != 0) for v in a.buffers.values())
    save_weights(a, tmp_path / "w.npz")
    b = build_model(g, seed=9)
    load_weights(b, tmp_path / "w.npz")
    for k, v in a.buffers.items():
        np.testing.assert_array_equal(v, b.buffers[k])


def test_load_refuses_a_file_that_does_not_fit(tmp_path):
    path = tmp_path / "w.npz"
    save_weights(build_model(mlp()), path)
    g = mlp()
    g.set_config("h", {"units": 7})  # h.weight (7, 6), out.weight (2, 7): wrong shapes
    g.add_node("Dense", {"units": 2}, node_id="more")
    g.remove_edge("r", "out")
    g.add_edge("r", "more")
    g.add_edge("more", "out")
    m = build_model(g)
    before = m.state()
    with pytest.raises(WeightsError) as e:
        load_weights(m, path)
    msg = str(e.value)
    assert e.value.file == str(path) and str(path) in msg
    assert "missing more.weight, more.bias" in msg
    assert "h.weight (5, 6) in the file, (7, 6) in the graph" in msg
    assert "out.weight (2, 5) in the file, (2, 2) in the graph" in msg
    for k, v in before.items():  # nothing changed
        np.testing.assert_array_equal(v, m.state()[k])
    np.savez(tmp_path / "extra.npz", **build_model(mlp()).state(), stray=np.zeros(3))
    with pytest.raises(WeightsError, match="unexpected stray"):
        load_weights(build_model(mlp()), tmp_path / "extra.npz")


@pytest.mark.parametrize(
    "kind", ["garbage", "truncated", "pickle", "npy", "missing", "nan", "float64_huge", "folder"]
)
def test_load_refuses_bad_files(tmp_path, kind):
    m = build_model(mlp())
    path = tmp_path / "w.npz"
    if kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "truncated":
        save_weights(m, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "pickle":
        np.savez(path, **{"h.weight": np.array([{"a": 1}], dtype=object)})
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "nan":
        state = m.state()
        state["h.bias"][0] = np.nan
        np.savez(path, **state)
    elif kind == "float64_huge":  # finite as float64, inf as the model's float32
        state = {k: v.astype(np.float64) for k, v in m.state().items()}
        state["h.bias"][0] = 1e300
        np.savez(path, **state)
    elif kind == "folder":
        path.mkdir()
    before = m.state()
    with pytest.raises(WeightsError) as e:
        load_weights(m, path)
    assert e.value.file == str(path)
    if kind == "pickle":
        assert "Python objects" in str(e.value)
    if kind in ("nan", "float64_huge"):
        assert "h.bias" in str(e.value) and "float32" in str(e.value)
    for k, v in before.items():  # nothing changed
        np.testing.assert_array_equal(v, m.state()[k])


def test_float64_weights_in_float32_range_load(tmp_path):
    a, b = build_model(mlp(), seed=0), build_model(mlp(), seed=1)
    np.savez(tmp_path / "w.npz", **{k: v.astype(np.float64) for k, v in a.state().items()})
    load_weights(b, tmp_path / "w.npz")
    for k, v in a.state().items():
        np.testing.assert_array_equal(b.state()[k], v)
        assert b.state()[k].dtype == np.float32


def test_save_weights_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    save_weights(build_model(mlp(), seed=0), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(WeightsError, match="cannot write"):
        save_weights(build_model(mlp(), seed=1), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
    assert zipfile.is_zipfile(path)


def test_backward_without_input_grad_skips_the_first_conv_dx_and_keeps_weight_grads():
    import numpy as np

    import engine

    g = engine.Graph()
    g.add_node("Input", {"shape": [1, 6, 6]}, node_id="in")
    g.add_node("Conv2D", {"filters": 2, "kernel_size": 3}, node_id="c")
    g.add_node("Flatten", {}, node_id="f")
    g.add_node("Dense", {"units": 3}, node_id="d")
    for s, t in [("in", "c"), ("c", "f"), ("f", "d")]:
        g.add_edge(s, t)
    m = engine.build_model(g, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    dy = np.ones((2, 3), np.float32)
    m.forward(x, training=True)
    dx = m.backward(dy)
    full = {k: v.copy() for k, v in m.grads.items()}
    assert dx is not None and dx.shape == x.shape
    m.forward(x, training=True)
    assert m.backward(dy, input_grad=False) is None
    for k, v in m.grads.items():  # the same sums, added in another order (float32 rounding)
        np.testing.assert_allclose(v, full[k], rtol=1e-6, atol=1e-6)
    m.forward(x, training=True)
    assert m.backward(dy).shape == x.shape  # asking again gives it again


def test_a_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from engine.atomic import write_atomic\n"
        "def write(f):\n"
        "    f.write(b'half a file')\n"
        "    f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "write_atomic(sys.argv[1], write)\n"
    )
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.npz")], cwd=root)
    assert r.returncode == -9
    orphans = [p.name for p in tmp_path.iterdir()]
    assert len(orphans) == 1 and orphans[0].startswith(".w.npz.") and orphans[0].endswith(".tmp")
    # Temporary files of living writers stay: another process's, and this one's.
    for pid in (os.getppid(), os.getpid()):
        (tmp_path / f".other.npz.{pid}-abcdefgh.tmp").write_bytes(b"being written")
    (tmp_path / "notes.tmp").write_text("not ours")
    save_weights(build_model(mlp()), tmp_path / "another.npz")  # a save into that folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "another.npz",
            "notes.tmp",
            f".other.npz.{os.getppid()}-abcdefgh.tmp",
            f".other.npz.{os.getpid()}-abcdefgh.tmp",
        ]
    )


def test_backward_for_kept_gradients_alone_stops_at_the_kept_blocks():
    """weights=False and no input gradient (Grad-CAM): the walk ends once the kept blocks have
    their gradients, which are the full walk's; the blocks before them are not run."""
    m = build_model(branchy(), seed=0)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float32)
    m.forward(x)
    m.backward(dy, input_grad=False, keep=("t1", "sum"))
    want = {k: v.copy() for k, v in m.kept_grads.items()}
    ran = []
    for n, layer in m.layers.items():
        layer.backward = lambda d, _f=layer.backward, _n=n: ran.append(_n) or _f(d)
    m.forward(x)
    assert m.backward(dy, input_grad=False, keep=("t1", "sum"), weights=False) is None
    assert set(m.kept_grads) == {"t1", "sum"}
    for k, v in want.items():
        np.testing.assert_array_equal(m.kept_grads[k], v)
    assert "d1" not in ran and "t1" not in ran and {"out", "cat", "sum", "d2", "d3"} <= set(ran)
    ran.clear()
    m.forward(x)
    m.backward(dy, input_grad=False, keep=("sum",), weights=False)
    assert ran == ["out", "cat"]  # cat's gradient reaches sum: nothing more is needed


def test_backward_without_weight_gradients_gives_the_same_input_gradient():
    """weights=False (saliency, SmoothGrad): the convolutions skip dW on every path (im2col,
    folded, by phases, grouped, Winograd) and the input gradient is the whole walk's; their
    weight gradients keep the old values, and the next training backward makes them again."""
    g = engine.Graph()
    g.add_node("Input", {"shape": [3, 16, 16]}, node_id="in")
    chain = [
        ("c1", "Conv2D", {"filters": 32, "kernel_size": 3, "padding": 1}),  # folded / wide
        ("c2", "Conv2D", {"filters": 32, "kernel_size": 3, "padding": 1}),  # Winograd
        ("c3", "Conv2D", {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1}),
        ("c4", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": 1, "groups": 2}),
        ("c5", "Conv2D", {"filters": 8, "kernel_size": 5}),  # im2col, long rows
        ("f", "Flatten", {}),
        ("d", "Dense", {"units": 3}),
    ]
    prev = "in"
    for nid, kind, cfg in chain:
        g.add_node(kind, cfg, node_id=nid)
        g.add_edge(prev, nid)
        prev = nid
    m = build_model(g, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    m.forward(x)
    assert m.layers["c2"]._cache[2] is not None  # the Winograd path is covered
    want_dx = m.backward(dy)
    want = {k: v.copy() for k, v in m.grads.items()}
    stale = {k: np.full_like(v, 7.0) for k, v in want.items() if k.endswith(".weight")}
    for k, v in stale.items():
        m.layers[k.split(".")[0]].grads["weight"] = v
    m.forward(x)
    dx = m.backward(dy, weights=False)
    np.testing.assert_array_equal(dx, want_dx)
    for k, v in stale.items():
        if k.startswith("c"):  # the convolutions left them as they were
            assert m.layers[k.split(".")[0]].grads["weight"] is v and (v == 7.0).all()
    m.forward(x, training=True)
    m.backward(dy)
    for k, v in want.items():
        np.testing.assert_allclose(m.grads[k], v, rtol=1e-5, atol=1e-6)
