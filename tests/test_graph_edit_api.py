"""The Graph's editing API the GUI uses (wire checks with the refusal reason, reorder, queries),
and the boundary: gui/ never imports networkx and never touches ``Graph.nx``."""

import ast
from pathlib import Path

import pytest

import engine
from engine.errors import GraphError

GUI = Path(__file__).resolve().parent.parent / "gui"


def chain() -> engine.Graph:
    """in -> d1 -> add <- d2 <- in, add -> out; a free Dense 'z'."""
    g = engine.Graph()
    g.add_node("Input", {"shape": [4]}, node_id="in")
    g.add_node("Dense", {"units": 4}, node_id="d1")
    g.add_node("Dense", {"units": 4}, node_id="d2")
    g.add_node("Add", {}, node_id="add")
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_node("Dense", {"units": 2}, node_id="z")
    g.add_edge("in", "d1")
    g.add_edge("in", "d2")
    g.add_edge("d1", "add", 0)
    g.add_edge("d2", "add", 1)
    g.add_edge("add", "out")
    return g


@pytest.mark.parametrize(
    "source, target, port, strict, block, text",
    [
        ("nope", "d1", None, False, "nope", "no such block"),
        ("d1", "d1", None, False, "d1", "cannot feed itself"),
        ("in", "d1", None, False, "d1", "already wired"),
        ("z", "add", 1, False, "add", "input port 1 is already connected"),
        ("z", "add", 64, False, "add", "integer 0-63"),
        ("z", "in", None, True, "in", "is an Input block: it takes no input"),
        ("z", "d1", None, True, "d1", "takes one input and is already fed by 'in'"),
        ("out", "in", None, True, "in", "takes no input"),
        ("out", "d2", 1, True, "d2", "takes one input"),
        ("out", "add", 2, True, "add", "would make a loop: 'add' already feeds 'out'"),
    ],
)
def test_check_edge_returns_the_refusal_add_edge_raises(source, target, port, strict, block, text):
    g = chain()
    before = g.to_dict()
    refused = g.check_edge(source, target, port, strict=strict)
    assert isinstance(refused, GraphError) and text in refused.message
    assert refused.block == block
    if not strict:
        with pytest.raises(GraphError) as e:
            g.add_edge(source, target, port)
        assert str(e.value) == str(refused)
    assert g.to_dict() == before


def test_check_edge_accepts_what_add_edge_makes_and_strict_only_adds_refusals():
    g = chain()
    assert g.check_edge("z", "add", 2) is None and g.check_edge("z", "add", 2, strict=True) is None
    # a file may hold a second feeder of a one-input block or a loop; the canvas refuses them
    assert g.check_edge("z", "d1") is None and g.check_edge("z", "d1", strict=True) is not None
    assert g.check_edge("out", "d2") is None
    assert g.add_edge("out", "d2") == 1  # the first free port
    assert ("out", "d2", 1) in g.edges()


def test_queries():
    g = chain()
    assert g.has_edge("in", "d1") and not g.has_edge("d1", "in")
    assert g.port_of("d2", "add") == 1
    with pytest.raises(GraphError, match="no wire from 'z' to 'add'"):
        g.port_of("z", "add")
    assert g.in_edges("add") == [("d1", "add", 0), ("d2", "add", 1)]
    assert g.in_edges("in") == []
    assert g.descendants("d1") == {"add", "out"} and g.descendants("z") == set()
    assert g.topological_order() == (["in", "d1", "d2", "add", "out", "z"], [])


def test_topological_order_and_without_loops_on_a_graph_with_a_loop():
    g = chain()
    g.add_edge("out", "d2")  # a loop d2 -> add -> out -> d2, as a broken file may hold
    order, stuck = g.topological_order()
    assert order == ["in", "d1", "z"] and stuck == ["d2", "add", "out"]
    h = g.without_loops()
    assert len(h.edges()) == len(g.edges()) - 1 and h.topological_order()[1] == []
    assert len(g.edges()) == 6  # the original keeps its wires
    assert not h._listeners


def test_reorder_changes_order_only_and_emits_nothing():
    g = chain()
    seen = []
    g.subscribe(seen.append)
    nodes, edges = g.nodes(), g.edges()
    content = {k: v for k, v in g.to_dict().items() if k not in ("nodes", "edges")}
    assert g.reorder(nodes[::-1], edges[::-1])
    assert g.nodes() == nodes[::-1] and g.edges() == edges[::-1] and seen == []
    assert {k: v for k, v in g.to_dict().items() if k not in ("nodes", "edges")} == content
    assert g.reorder(nodes, edges) and g.nodes() == nodes and g.edges() == edges
    # lists that are not this graph's blocks and wires change nothing
    assert not g.reorder(nodes[:-1], edges) and g.nodes() == nodes
    assert not g.reorder(nodes, edges[:-1] + [("z", "out", 0)]) and g.edges() == edges


# --- the boundary: the GUI edits and reads the graph only through the Graph's methods ---------
def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [
            f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] == "networkx"
        ]
        if isinstance(node, ast.Attribute) and node.attr == "nx":
            found.append(f"{path.name}:{node.lineno} reads .nx")
    return found


def test_gui_never_imports_networkx_nor_touches_graph_nx():
    files = sorted(GUI.rglob("*.py"))
    assert len(files) > 30
    assert [v for f in files for v in _violations(f)] == []


def test_the_boundary_check_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import networkx as nx\nfrom networkx.algorithms import dag\ng.nx.nodes\n")
    assert _violations(bad) == [
        "bad.py:1 imports networkx",
        "bad.py:2 imports networkx.algorithms",
        "bad.py:3 reads .nx",
    ]
