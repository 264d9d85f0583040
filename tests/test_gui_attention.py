"""The Attention panel: a real run's alignment matrix, live (from the training process's
snapshot) and after the run, equal to the engine's own array for the chosen validation sample;
the axes carry the sample's source and target tokens."""

from __future__ import annotations

import numpy as np
from training_support import replay, run_to_end, show_all_panels

import engine

# fixtures: gui_env (settings files in tmp_path); train_window
pytest_plugins = ["gui_support", "training_support"]


def attention_graph(epochs: int = 2) -> engine.Graph:
    L, K = 5, 4
    g = engine.Graph(name="tiny attention")
    g.add_node("Input", {"shape": [2 * L, K + 2]}, node_id="in")
    g.add_node("Slice", {"start": 0, "stop": L}, node_id="source")
    g.add_node("Slice", {"start": L, "stop": 2 * L}, node_id="shifted")
    g.add_node("LSTM", {"hidden_size": 8, "return_sequences": True}, node_id="enc")
    g.add_node("LSTM", {"hidden_size": 8, "return_sequences": True}, node_id="dec")
    g.add_node("Attention", {"score": "general"}, node_id="att")
    g.add_node("Concat", {"axis": -1}, node_id="cat")
    g.add_node("Dense", {"units": K + 2}, node_id="out")
    for s, t, p in [
        ("in", "source", 0),
        ("in", "shifted", 0),
        ("source", "enc", 0),
        ("shifted", "dec", 0),
        ("dec", "att", 0),
        ("enc", "att", 1),
        ("dec", "cat", 0),
        ("att", "cat", 1),
        ("cat", "out", 0),
    ]:
        g.add_edge(s, t, p)
    g.set_meta(
        "training",
        {
            "dataset": {"name": "reversal", "n": 200, "length": L, "symbols": K},
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01},
            "batch_size": 20,
            "epochs": epochs,
            "seed": 0,
            "val_split": 0.2,
        },
    )
    return g


def engine_alignment(model, run, i: int) -> np.ndarray:
    model.forward(run.info["val_X"][i : i + 1], training=False)
    return model.layers["att"].alignment[0]


def test_attention_panel_shows_the_engines_alignment_live_and_after(qtbot, train_window):
    w = train_window(attention_graph())
    ctrl = w.training
    show_all_panels(ctrl)
    ctrl.panel_docks["attention"].raise_()
    panel = ctrl.panels["attention"]
    assert ctrl.start(paused=True)
    qtbot.waitUntil(lambda: ctrl.current.status == "running", timeout=10_000)
    qtbot.waitUntil(lambda: bool(ctrl.current.info.get("n_val")), timeout=10_000)
    ctrl.redraw(force=True)  # the sample's range follows the run's validation set
    panel.sample.setValue(3)
    ctrl.step()
    qtbot.waitUntil(
        lambda: (
            ctrl.current.attention.get("step") == 1 and ctrl.current.attention.get("index") == 3
        ),
        timeout=10_000,
    )
    ctrl.redraw(force=True)
    assert panel.shown_block == "att" and panel.matrix.shape == (5, 5)
    live = replay(ctrl.current, steps=1).model
    np.testing.assert_allclose(panel.matrix, engine_alignment(live, ctrl.current, 3), atol=1e-6)
    np.testing.assert_allclose(panel.matrix.sum(1), 1.0, atol=1e-5)
    # the axes: the target (the source reversed) down, the source across
    x, y = ctrl.current.info["val_X"][3], ctrl.current.info["val_y"][3]
    vocab = ctrl.current.info["vocab"]
    assert panel.cols == [vocab[i] for i in x[:5].argmax(-1)]
    assert panel.rows == [vocab[i] for i in y] == panel.cols[::-1]
    ctrl.resume()
    run_to_end(qtbot, ctrl)
    panel.sample.setValue(1)
    ctrl.redraw(force=True)
    final = replay(ctrl.current).model
    np.testing.assert_allclose(panel.matrix, engine_alignment(final, ctrl.current, 1), atol=1e-6)
    header, rows = panel.table()
    assert len(rows) == 25 and rows[0][4] == panel.matrix[0, 0]


def test_attention_panel_explains_a_network_without_attention(qtbot, train_window):
    from training_support import mlp_xor

    w = train_window(mlp_xor())
    ctrl = w.training
    show_all_panels(ctrl)
    ctrl.panel_docks["attention"].raise_()
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    panel = ctrl.panels["attention"]
    panel.refresh(ctrl.current, force=True)
    assert panel.matrix is None and "no Attention block" in panel.message.text()


def test_try_it_decodes_a_typed_source_with_the_runs_model(qtbot, train_window):
    from engine.seq2seq_decode import Seq2SeqTask, decode

    w = train_window(attention_graph(epochs=1))
    ctrl = w.training
    show_all_panels(ctrl)
    ctrl.panel_docks["try_it"].raise_()
    assert ctrl.start()
    run_to_end(qtbot, ctrl)
    panel = ctrl.panels["try_it"]
    panel.refresh(ctrl.current, force=True)
    assert panel.stack.currentWidget() is panel.decode_page
    assert panel.source.text() == "s2 s1 s4 s3 s2"  # an example of the run's length
    panel.source.setText("s1 s2 s3 s4 s1")
    panel.beam_width.setValue(3)
    panel.decode_button.click()
    info = ctrl.current.info
    task = Seq2SeqTask.of(info["dataset"], info["vocab"], info["seq2seq"], info["input_shape"])
    greedy, beams = decode(replay(ctrl.current).model, task, "s1 s2 s3 s4 s1", 3)
    assert [t for t, _ in panel.candidates] == [task.text(b.tokens) for b in beams]
    np.testing.assert_allclose(
        [s for _, s in panel.candidates], [b.score for b in beams], atol=1e-4
    )
    text = panel.decoded.toPlainText()
    assert text.startswith(f"greedy:  {task.text(greedy.tokens)}") and "width 3" in text
    panel.source.setText("s1 s9")
    panel.decode_button.click()
    assert "'s9' is not a symbol" in panel.decoded.toPlainText()


def test_attention_panel_hatches_the_masked_source_steps(qtbot):
    """Padding the mask leaves out gets weight exactly 0, which viridis draws as dark as "not
    looked at": the panel hatches those steps and says how many, and the CSV marks them."""
    from test_attention import built

    from gui.training.panels.attention import AttentionPanel
    from gui.training.run_data import RunData

    layer, xs = built("general", masked=True)  # sample 0: its last two source steps padded
    layer.forward(xs)
    a = layer.alignment[0]
    run = RunData(1, "masked", {})
    run.set_blocks(["att"], {"att": "Attention"})
    run.info.update({"n_val": 4, "n_val_shown": 4, "all_blocks": ["att"]})

    class Ctrl:
        weights_version = 0

        def __init__(self):
            self.runlist = self

        def request_redraw(self):
            pass

        def watch_changed(self):
            pass

        def current_attention(self, run, sample):
            return {"weights": {"att": a}, "index": 0, "step": 7}

    panel = AttentionPanel(Ctrl())
    qtbot.addWidget(panel)
    panel.draw(run)
    assert panel.masked.tolist() == [3, 4]
    assert len(panel.mask_items) == 2 and all(i.scene() is not None for i in panel.mask_items)
    assert "2 masked: hatched" in panel.title_label.text
    header, rows = panel.table()
    assert header[-1] == "masked" and [r[2] for r in rows if r[-1]] == [3, 4] * 3
    # a sample without padding: nothing hatched, the old marks removed
    a = layer.alignment[2]
    panel.draw(run)
    assert panel.masked.size == 0 and not panel.mask_items
