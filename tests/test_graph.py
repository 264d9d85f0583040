"""engine.Graph: round trips, atomic save, change events, refusals, load_graph errors."""

import dataclasses
import json
import os

import pytest

import engine
from engine import graph_events as ev
from engine.errors import BlockPropError, ConfigError, GraphError


def mlp_graph() -> engine.Graph:
    g = engine.Graph(
        "mlp", "two layers\nsecond line", training={"dataset": {"name": "moons"}, "epochs": 3}
    )
    g.add_node("Input", {"shape": [2]}, (0, 0), node_id="in")
    g.add_node("Dense", {"units": 8}, (160, 0), node_id="d1")
    g.add_node("Activation", {"fn": "tanh"}, (320, 0), node_id="a1")
    g.add_node("Dense", {"units": 2, "bias": False, "init": "he_normal"}, (480, 0), node_id="out")
    g.add_edge("in", "d1")
    g.add_edge("d1", "a1")
    g.add_edge("a1", "out")
    return g


def test_to_dict_from_dict_round_trip():
    g = mlp_graph()
    d = g.to_dict()
    assert d["format"] == "blockprop-graph" and d["version"] == 1
    assert engine.Graph.from_dict(d).to_dict() == d
    assert json.loads(json.dumps(d)) == d  # plain JSON data


def test_save_load_round_trip(tmp_path):
    g = mlp_graph()
    path = tmp_path / "g.json"
    g.save(path)
    h = engine.load_graph(path)
    assert h.to_dict() == g.to_dict()
    assert h.inputs_of("out") == ["a1"]
    assert h.pos_of("d1") == (160, 0)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    mlp_graph().save(path)
    before = path.read_bytes()
    g = mlp_graph()
    g.add_node("Dense", {"units": 3}, node_id="extra")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        g.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]  # no temporary file left


def test_events_one_per_change():
    g = engine.Graph()
    seen = []
    g.subscribe(seen.append)
    g.add_node("Input", {"shape": [4]}, node_id="in")
    g.add_node("Dense", {"units": 2}, node_id="d")
    assert seen == [ev.NodeAdded("in"), ev.NodeAdded("d")]
    seen.clear()
    assert g.add_edge("in", "d") == 0
    assert seen == [ev.EdgeAdded("in", "d", 0)]
    seen.clear()
    g.move_node("d", (5, 6))
    assert seen == [ev.NodeMoved("d", (5, 6))]
    seen.clear()
    g.set_config("d", {"units": 7})
    assert seen == [ev.ConfigChanged("d", {"units": 7})]
    seen.clear()
    g.set_meta("name", "renamed")
    assert seen == [ev.MetaChanged("name")] and g.name == "renamed"
    seen.clear()
    g.remove_node("d")  # its wire goes first, then the block
    assert seen == [ev.EdgeRemoved("in", "d", 0), ev.NodeRemoved("d")]
    seen.clear()
    g.replace_with(mlp_graph())
    assert seen == [ev.Reset()] and "out" in g
    assert all(isinstance(e, ev.GraphEvent) for e in seen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.NodeAdded("x").block = "y"  # type: ignore[misc]


def test_refused_changes_emit_nothing_and_change_nothing():
    g = mlp_graph()
    before = g.to_dict()
    seen = []
    g.subscribe(seen.append)
    with pytest.raises(ConfigError) as e:
        g.set_config("d1", {"units": -1})
    assert e.value.block == "d1" and "units" in str(e.value)
    with pytest.raises(ConfigError) as e:
        g.add_node("Dense", {"unitz": 3}, node_id="x")
    assert "unitz" in str(e.value) and e.value.block == "x"
    with pytest.raises(GraphError, match="unknown block type"):
        g.add_node("Convolution", {})
    with pytest.raises(GraphError, match="already exists"):
        g.add_node("Dense", {"units": 1}, node_id="d1")
    with pytest.raises(GraphError, match="feed itself"):
        g.add_edge("d1", "d1")
    with pytest.raises(GraphError, match="already wired"):
        g.add_edge("in", "d1")
    with pytest.raises(GraphError, match="already connected"):
        g.add_edge("in", "a1", port=0)
    assert g.to_dict() == before and seen == []


def test_unsubscribe_and_copy_are_independent():
    g = mlp_graph()
    seen = []

    def listener(event):
        seen.append(event)

    g.subscribe(listener)
    c = g.copy()
    c.add_node("Dense", {"units": 1}, node_id="z")
    assert "z" not in g and seen == []
    g.unsubscribe(listener)
    g.move_node("in", (1, 1))
    assert seen == []


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "JSON object"),
        ({"format": "other", "version": 1}, "not a BlockProp graph"),
        ({"format": "blockprop-graph", "version": 9}, "made by a newer BlockProp"),
        ({"format": "blockprop-graph", "version": 1, "extra": 1}, "unknown field"),
        (
            {"format": "blockprop-graph", "version": 1, "nodes": [{"id": "a", "type": "Nope"}]},
            "unknown block type",
        ),
        (
            {"format": "blockprop-graph", "version": 1, "nodes": [], "edges": [{"source": "a"}]},
            "no such block|edge",
        ),
    ],
)
def test_from_dict_refuses(bad, match):
    with pytest.raises(BlockPropError, match=match):
        engine.Graph.from_dict(bad)


def test_load_graph_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(GraphError) as e:
        engine.load_graph(missing)
    assert e.value.file == str(missing) and "no such file" in str(e.value)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(GraphError, match="not valid JSON") as e:
        engine.load_graph(bad_json)
    assert str(bad_json) in str(e.value)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(GraphError, match="not a text file"):
        engine.load_graph(binary)
    bad_cfg = tmp_path / "cfg.json"
    d = mlp_graph().to_dict()
    d["nodes"][1]["config"]["units"] = "many"
    bad_cfg.write_text(json.dumps(d))
    with pytest.raises(ConfigError) as e:
        engine.load_graph(bad_cfg)
    assert e.value.block == "d1" and e.value.file == str(bad_cfg)


def test_summary_rows():
    rows = mlp_graph().summary()
    assert [tuple(r) for r in rows] == [
        ("in", "Input", (2,), 0),
        ("d1", "Dense", (8,), 2 * 8 + 8),
        ("a1", "Activation", (8,), 0),
        ("out", "Dense", (2,), 8 * 2),
    ]
    assert rows[1].id == "d1" and rows[1].shape == (8,) and rows[1].params == 24


def test_inputs_ordered_by_port():
    g = engine.Graph()
    g.add_node("Input", {"shape": [3]}, node_id="in")
    for n in ("a", "b"):
        g.add_node("Dense", {"units": 2}, node_id=n)
        g.add_edge("in", n)
    g.add_node("Concat", {}, node_id="cat")
    g.add_edge("b", "cat", port=1)
    g.add_edge("a", "cat", port=0)
    assert g.inputs_of("cat") == ["a", "b"]
    assert g.free_port("cat") == 2


def test_saved_file_gets_normal_permissions_and_keeps_existing_ones(tmp_path):
    import os
    import stat

    g = engine.Graph()
    g.add_node("Input", {"shape": [3]})
    new = tmp_path / "new.json"
    g.save(new)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    os.chmod(new, 0o640)
    g.save(new)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
