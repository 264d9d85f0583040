"""A block type made up here, in one class and one register() call, reaches every part of
BlockProp: the palette, the block's summary on the canvas, the analysis, training and both
exports. Nothing outside the class lists block types, so nothing else needs an edit."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from gradcheck import check_layer
from gui_helpers import settle

import engine
from engine.export import export_code
from engine.layers import LAYER_TYPES, Opt, register
from engine.layers.base import Layer, TorchBlock, code

pytest_plugins = ["gui_support"]  # fixtures: make_window

TORCH_SCALE = '''
class Scale(nn.Module):
    """x times a learned factor per feature (BlockProp's Scale)."""

    def __init__(self, features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x):
        return x * self.weight
'''


class Scale(Layer):
    """Multiplies each feature by a learned factor: out = x * weight.

    Shapes: x (N, *s, F) -> out (N, *s, F); weight (F,)
    """

    type_name = "Scale"
    family = "Experiments"
    has_weights = True
    options = {"start": Opt("float", default=1.0, min=-10.0, max=10.0, doc="starting factor")}
    starter = {"start": 0.5}

    @classmethod
    def summary(cls, cfg):
        return f"×{cfg.get('start'):g} per feature"

    def param_shapes(self, in_shape):
        return {"weight": (int(in_shape[-1]),)}

    def init_rule(self, key, shape):
        if self.config["init"]:
            return super().init_rule(key, shape)
        return "constant", {"value": float(self.config["start"])}

    def forward(self, x, training=False):
        self.check_input(x)
        self._cache = x
        return x * self.params["weight"]

    def backward(self, dout):
        x = self._cache
        # dL/dweight_f = sum over samples (and positions) of dout * x; dL/dx = dout * weight
        self.grads["weight"] = (dout * x).reshape(-1, x.shape[-1]).sum(axis=0)
        return dout * self.params["weight"]

    def to_torch(self, in_shape):
        return TorchBlock(f"Scale({int(in_shape[-1])})", "{m}({0})", {"Scale": TORCH_SCALE})


@pytest.fixture
def scale_block():
    register(Scale)
    yield Scale
    del LAYER_TYPES["Scale"]


def xor_graph() -> engine.Graph:
    g = engine.Graph(
        name="scaled",
        training={
            "dataset": {"name": "xor", "repeat": 16},
            "epochs": 2,
            "batch_size": 16,
            "optimizer": {"name": "sgd", "lr": 0.5},
        },
    )
    g.add_node("Input", {"shape": [2]}, node_id="in")
    g.add_node("Dense", {"units": 8}, node_id="hidden")
    g.add_node("Activation", {"fn": "tanh"}, node_id="act")
    g.add_node("Scale", {"start": 0.5}, node_id="sc")
    g.add_node("Dense", {"units": 2}, node_id="out")
    for s, t in (("in", "hidden"), ("hidden", "act"), ("act", "sc"), ("sc", "out")):
        g.add_edge(s, t)
    return g


def test_register_refuses_a_class_without_its_own_name_or_a_taken_one(scale_block):
    class Nameless(Scale):
        pass

    with pytest.raises(TypeError, match="type_name"):
        register(Nameless)

    class Impostor(Layer):
        type_name = "Dense"

    with pytest.raises(TypeError, match="already"):
        register(Impostor)
    assert LAYER_TYPES["Dense"].__module__ == "engine.layers.dense"
    assert register(Scale) is Scale  # registering again changes nothing


def test_gradients_of_the_made_up_block(scale_block):
    layer = Scale(start=0.7).build((3, 4), np.random.default_rng(0))
    np.testing.assert_array_equal(layer.params["weight"], np.full(4, 0.7, np.float32))
    check_layer(layer, np.random.default_rng(1).standard_normal((2, 3, 4)))


def test_made_up_block_in_analysis_training_and_engine_export(scale_block):
    g = xor_graph()
    a = engine.analyze(g)
    assert a.ok, a.problems
    assert a.shapes["sc"] == (8,) and a.params["sc"] == 8
    assert "sc (Scale)" in engine.summary_text(a)

    trainer = engine.Trainer.from_graph(g)
    w0 = trainer.model.layers["sc"].params["weight"].copy()
    np.testing.assert_array_equal(w0, np.full(8, 0.5, np.float32))
    steps = [e for e in trainer.run() if e["event"] == "step"]
    assert len(steps) >= 3 and all(np.isfinite(e["loss"]) for e in steps)
    assert not np.array_equal(trainer.model.layers["sc"].params["weight"], w0)  # it learned

    # the engine export rebuilds the same model (same seed, same first weights)
    script = export_code(g, "numpy")
    assert "layers.LAYER_TYPES['Scale'](start=0.5, name='sc')" in script
    ns: dict = {"__name__": "exported"}
    exec(compile(script, "scaled.py", "exec"), ns)
    model = ns["build_model"]()
    fresh = engine.build_model(g, seed=ns["SEED"])
    assert isinstance(model.layers["sc"], Scale)
    x = np.random.default_rng(2).standard_normal((5, 2)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), fresh.forward(x))


def test_made_up_block_in_the_pytorch_export(scale_block, tmp_path):
    torch = pytest.importorskip("torch")
    g = xor_graph()
    m = engine.build_model(g, seed=3)
    m.layers["sc"].params["weight"][...] = np.linspace(-1, 1, 8, dtype=np.float32)
    engine.save_weights(m, tmp_path / "w.npz")
    script = export_code(g, "pytorch", weights=str(tmp_path / "w.npz"))
    assert "class Scale(nn.Module)" in script
    assert f"('sc.weight', 'constant', {code({'value': 0.5})})" in script  # starts as the engine
    path = tmp_path / "scaled.py"
    path.write_text(script, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("scaled", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.build_model().eval()
    x = np.random.default_rng(4).standard_normal((5, 2)).astype(np.float32)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, m.forward(x), atol=1e-5, rtol=0)
    fresh = mod.Net()
    mod.init_weights(fresh)
    assert torch.all(fresh.sc.weight == 0.5)


def test_made_up_block_in_the_palette_and_on_the_canvas(scale_block, make_window):
    w = make_window()
    palette = w.palette_panel
    item = palette.items["Scale"]
    assert item.parent() is palette.groups["Experiments"]
    w.graph.add_node("Input", {"shape": [2]}, node_id="in")
    settle(w)
    w.scene.select_ids(["in"])
    palette.tree.itemActivated.emit(item, 0)  # double-click: added after the selected block
    settle(w)
    new = [n for n in w.graph.nodes() if w.graph.type_of(n) == "Scale"]
    assert len(new) == 1 and w.graph.inputs_of(new[0]) == ["in"]
    assert w.graph.config_of(new[0]) == {"start": 0.5}  # the class's starter
    block = w.scene.blocks[new[0]]
    assert block.settings == "×0.5 per feature"
    assert block.shape_text == "2" and block.params_text == "2 params"
