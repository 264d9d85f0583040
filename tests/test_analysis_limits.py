"""Problems stay linear in the graph and every message stays short, whatever the graph: many
loose ends, a long loop, a block with thousands of wires, thousands of problems at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memcap import outcomes

import engine
import engine.cli as cli
from engine.analysis import analyze
from engine.analysis_checks import MAX_NAMED, named
from engine.errors import GraphError

MAX_MESSAGE = 400  # characters: a few names and counts, never a list of the whole graph


def graph(nodes, edges) -> engine.Graph:
    return engine.Graph.from_dict(
        {"format": "blockprop-graph", "version": 1, "name": "g", "nodes": nodes, "edges": edges}
    )


def node(i, t="Dense", **config):
    return {"id": i, "type": t, "config": config or ({"units": 2} if t == "Dense" else {})}


def fan_out(n: int) -> dict:
    """An Input feeding n Dense blocks: n ends, each a problem."""
    nodes = [node("in", "Input", shape=[4])] + [node(f"d{i}") for i in range(n)]
    edges = [{"source": "in", "target": f"d{i}", "target_port": 0} for i in range(n)]
    return {"format": "blockprop-graph", "version": 1, "name": "g", "nodes": nodes, "edges": edges}


def test_named_counts_the_rest():
    assert named(["a", "b"]) == "'a', 'b'"
    assert named([str(i) for i in range(1000)]) == "'0', '1', '2', '3', '4' and 995 more"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_ten_thousand_loose_ends_give_ten_thousand_short_problems(tmp_path):
    """Was one problem per end, each listing every end: 919 MB for this 1 MB file. In a child
    capped at 1.5 GiB; the text of all problems together is now linear in the ends. The peak is
    the child's own (VmHWM): ru_maxrss also counts the pytest process it was forked from (the
    kernel carries the old memory's peak across exec), which made this fail late in a run."""
    path = tmp_path / "ends.json"
    path.write_text(json.dumps(fan_out(10_000)))
    got = outcomes(
        f"""
        import json
        import engine
        a = engine.analyze(engine.load_graph({str(path)!r}))
        sizes = [len(p.message) for p in a.problems]
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        print(json.dumps([len(sizes), max(sizes), sum(sizes), int(status.split()[0]) // 1024]))
        print(json.dumps(a.problems[0].message))
        """
    )
    (count, longest, total, peak_mb), first = got
    assert count == 10_000 and longest < MAX_MESSAGE and total < 10_000 * MAX_MESSAGE
    assert peak_mb < 400
    assert first.startswith("the graph has 10,000 ends ('d0', 'd1', 'd2', 'd3', 'd4' and 9,995 ")


def test_a_long_loop_names_its_ends_and_counts_the_middle():
    n = 1000
    nodes = [node("in", "Input", shape=[2])] + [
        node(f"a{i}", "Activation", fn="relu") for i in range(n)
    ]
    edges = [{"source": "in", "target": "a0", "target_port": 0}]
    edges += [{"source": f"a{i}", "target": f"a{i + 1}", "target_port": 0} for i in range(n - 1)]
    edges += [{"source": f"a{n - 1}", "target": "a1", "target_port": 1}]
    a = analyze(graph(nodes, edges))
    loop = [p for p in a.problems if "loop" in p.message]
    assert len(loop) == 1 and len(loop[0].message) < MAX_MESSAGE
    assert (
        "a1 -> a2 -> a3 -> a4 -> a5 -> ... 990 more ... -> a996 -> a997 -> a998 -> a999 -> a1"
        in (loop[0].message)
    )
    short = analyze(
        graph(nodes[:4], edges[:3] + [{"source": "a2", "target": "a1", "target_port": 1}])
    )
    assert "(a1 -> a2 -> a1)" in short.problems[0].message  # short loops are written out


def test_a_block_with_many_wires_names_a_few():
    n = 64  # the most ports a block has
    nodes = (
        [node("in", "Input", shape=[4])]
        + [node(f"d{i}") for i in range(n)]
        + [node("f", "Flatten")]
    )
    edges = [{"source": "in", "target": f"d{i}", "target_port": 0} for i in range(n)]
    edges += [{"source": f"d{i}", "target": "f", "target_port": i} for i in range(n)]
    a = analyze(graph(nodes, edges))
    (p,) = a.problems_of("f")
    assert p.message.startswith("Flatten takes exactly one input but gets 64 (from 'd0', ")
    assert "and 59 more" in p.message and len(p.message) < MAX_MESSAGE
    nodes.append(node("x", "Flatten"))
    edges.append({"source": "x", "target": "in", "target_port": 0})
    msgs = [p.message for p in analyze(graph(nodes, edges)).problems_of("in")]
    assert "Input takes no inputs: remove the wire from 'x'" in msgs


def test_build_model_and_the_command_line_report_a_bounded_number_of_problems(tmp_path, capsys):
    g = engine.Graph.from_dict(fan_out(300))
    with pytest.raises(GraphError) as e:
        engine.build_model(g)
    assert str(e.value).startswith("the graph has 300 problems: block 'd0': the graph has 300 ends")
    assert (
        str(e.value).endswith("; and 295 more")
        and len(str(e.value)) < (MAX_NAMED + 1) * MAX_MESSAGE
    )
    path = tmp_path / "ends.json"
    g.save(path)
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == cli.MAX_REPORTED + 1
    assert err[-1] == f"app.py: {path}: and 250 more problems (fix these first)"
