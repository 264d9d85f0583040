"""Modules in the app: group / ungroup / undo, the instance on the canvas, editing a
definition in place (breadcrumb back), the inspector's parameters, the palette's Modules,
save / open, copy / paste across windows."""

from __future__ import annotations

import json

from gui_helpers import settle, view_pos
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_modules import RES, res_graph

from engine.graph import Graph, load_graph
from engine.modules import edit
from engine.modules.definition import MODULE_KEY, MODULE_TYPE

pytest_plugins = ["gui_support"]


def ModuleItem():  # noqa: N802 -- the class, imported once a QApplication exists
    from gui.canvas.module_item import ModuleItem

    return ModuleItem


def load(w, g: Graph) -> None:
    w.graph.replace_with(g)
    w.undo_stack.clear()
    settle(w)


def group_in_window(w, ids, name="Res") -> str:
    w.modules.ask_name = lambda suggestion: name
    w.scene.select_ids(ids)
    w.modules.group.trigger()
    settle(w)
    return w.scene.selected_ids()[0]


def test_group_ungroup_and_undo_restore_the_graph_exactly(window):
    w = window
    load(w, res_graph())
    before = w.graph.to_dict()
    inst = group_in_window(w, RES)
    grouped = w.graph.to_dict()
    assert w.graph.type_of(inst) == MODULE_TYPE and w.undo_stack.count() == 1
    item = w.scene.blocks[inst]
    assert isinstance(item, ModuleItem()) and item.type_name == "Res" and len(item.in_ports) == 1
    assert item.shape_text == "4×8×8" and item.params_text == "296 params"
    assert set(w.scene.blocks) == set(w.graph.nodes())
    w.undo_stack.undo()
    settle(w)
    assert w.graph.to_dict() == before and set(w.scene.blocks) == set(w.graph.nodes())
    w.undo_stack.redo()
    settle(w)
    assert w.graph.to_dict() == grouped
    w.scene.select_ids([inst])
    w.modules.ungroup.trigger()
    settle(w)
    assert w.graph.to_dict() == before and w.undo_stack.count() == 2
    w.undo_stack.undo()
    assert w.graph.to_dict() == grouped
    assert len(w.scene.wires) == len(w.graph.edges())


def test_grouping_what_cannot_be_a_module_says_why_and_changes_nothing(window):
    w = window
    load(w, res_graph())
    before = w.graph.to_dict()
    messages = []
    w.controller.message.connect(lambda text, err: messages.append(text))
    w.modules.ask_name = lambda s: "X"
    w.scene.select_ids(["d0", "c1"])
    w.modules.group.trigger()
    assert w.graph.to_dict() == before and w.undo_stack.count() == 0
    assert "one output" in messages[-1]


def test_double_click_opens_the_definition_and_edits_change_every_instance(window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    b = edit.group(g, ["c1", "r1", "d1", "add1"], "Tmp")
    g.set_config(b, {MODULE_KEY: "Res"})
    g.set_module("Tmp", None)
    load(w, g)
    main_scene = w.scene
    w.canvas.fit_all()
    QTest.mouseDClick(
        w.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view_pos(w, w.scene.blocks[a].sceneBoundingRect().center()),
    )
    settle(w)
    assert w.modules.editor.active and w.scene is not main_scene
    assert set(w.scene.blocks) == set(RES) and w.modules.editor.bar.isVisible()
    assert w.scene.blocks["c0"].shape_text == "4×8×8"  # the instance's shapes inside
    w.controller.set_option("c0", "kernel_size", 1)  # through the definition's controller
    settle(w)
    assert w.undo_stack.count() == 1
    flat = w.live.flush().flat
    assert flat.params[f"{a}/c0"] == flat.params[f"{b}/c0"] == 4 * 4 + 4
    assert w.scene.blocks["c0"].params_text == "20 params"
    w.undo_stack.undo()  # the window's undo takes the definition back, and the open view
    settle(w)
    assert w.graph.modules["Res"]["nodes"][0]["config"]["kernel_size"] == 3
    assert w.scene.graph.config_of("c0")["kernel_size"] == 3
    w.controller.delete(["add0"])  # the module's output: refused, taken back
    settle(w)
    assert "add0" in w.scene.graph and w.undo_stack.count() == 1
    w.modules.editor.back(0)
    assert w.scene is main_scene and not w.modules.editor.bar.isVisible()


def test_inspector_sets_an_exposed_parameter_and_make_unique_splits_one_off(window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    edit.expose(g, "Res", "width", [["c0", "filters"]])
    load(w, g)
    w.scene.select_ids([a])
    settle(w)
    assert "width" in w.inspector.editors
    w.inspector._edited("width", 6)
    settle(w)
    assert w.graph.config_of(a)["width"] == 6
    assert w.live.flush().flat.shapes[f"{a}/c0"] == (6, 8, 8)
    new = w.modules.make_unique()
    assert new == "Res 2" and w.graph.config_of(a)[MODULE_KEY] == "Res 2"
    assert w.scene.blocks[a].type_name == "Res 2"
    w.undo_stack.undo()
    assert w.scene.blocks[a].type_name == "Res"


def test_palette_lists_modules_and_a_drop_adds_an_instance(window):
    w = window
    g = res_graph()
    edit.group(g, RES, "Res")
    load(w, g)
    assert "Module:Res" in w.palette_panel.items
    new = w.controller.add_block("Module:Res", (0, 400))
    settle(w)
    assert w.graph.type_of(new) == MODULE_TYPE and isinstance(w.scene.blocks[new], ModuleItem())
    w.undo_stack.undo()
    assert new not in w.graph


def test_library_keeps_a_module_across_graphs(window, make_window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    load(w, g)
    w.scene.select_ids([a])
    w.modules.add_to_library()
    other = make_window()
    assert "Module:Res" in other.palette_panel.items and not other.graph.modules
    new = other.controller.add_block("Module:Res", (0, 0))
    assert other.graph.type_of(new) == MODULE_TYPE and "Res" in other.graph.modules
    other.undo_stack.undo()
    assert not other.graph.modules and not len(other.graph)


def test_save_and_open_keep_modules(window, tmp_path):
    w = window
    g = res_graph()
    edit.group(g, RES, "Res")
    load(w, g)
    path = tmp_path / "m.json"
    w.files.ask_save_path = lambda: str(path)
    assert w.files.save_as()
    assert json.loads(path.read_text())["version"] == 2
    assert load_graph(path).to_dict() == w.graph.to_dict()
    w.files.new()
    assert w.files.load(str(path))
    assert w.graph.to_dict() == load_graph(path).to_dict()
    assert any(isinstance(i, ModuleItem()) for i in w.scene.blocks.values())


def test_copy_paste_of_an_instance_across_windows_brings_its_definition(window, make_window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    load(w, g)
    w.scene.select_ids([a])
    assert w.actions.copy_selection()
    from gui.clipboard import read_fragment

    assert "modules" in read_fragment()
    other = make_window()
    other.graph.set_module("Res", {**g.modules["Res"], "description": "another Res"})
    pasted = other.actions.paste_clipboard()
    settle(other)
    assert len(pasted) == 1 and other.graph.type_of(pasted[0]) == MODULE_TYPE
    name = other.graph.config_of(pasted[0])[MODULE_KEY]
    assert name == "Res 2" and other.graph.modules[name] == g.modules["Res"]
    assert other.undo_stack.count() == 1
    other.undo_stack.undo()
    assert "Res 2" not in other.graph.modules and not len(other.graph)


def test_gradients_panel_shows_a_module_as_one_bar_expandable_to_its_blocks(qtbot):
    import numpy as np
    import pytest
    from test_gui_panels import Ctrl, _run

    from gui.training.panels.gradients import GradientsPanel

    run = _run(3)
    blocks = ["stem", "res_1/c0", "res_1/d0", "out"]
    run.set_blocks(blocks, {b: "Conv2D" for b in blocks})
    run.info["block_params"] = {"stem": 40, "res_1/c0": 100, "res_1/d0": 300, "out": 10}
    rms = {"stem": 1e-3, "res_1/c0": 1e-2, "res_1/d0": 2e-2, "out": 0.1}
    run.add_steps([{"step": 5, "epoch": 1, "loss": 0.1, "lr": 0.1, "grad_rms": rms}])
    panel = GradientsPanel(Ctrl(run))
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()
    assert panel.refresh(run)
    module = np.sqrt((100 * 1e-4 + 300 * 4e-4) / 400)  # the RMS over all its parameters
    assert panel.values == pytest.approx({"stem": 1e-3, "res_1 ▸": module, "out": 0.1})
    assert len(panel.lines) == 3
    from PySide6.QtCore import QPointF

    class Click:  # a click on the module's bar (the second), as the plot's scene reports it
        def scenePos(self):
            lo, hi = panel.p_bars.vb.viewRange()[1]
            return panel.p_bars.vb.mapViewToScene(QPointF(1.0, (lo + hi) / 2))

    panel._clicked(Click())
    assert panel.values == pytest.approx(rms) and len(panel.lines) == 4
    panel.expanded.clear()
    panel.expand_all.setChecked(True)
    assert panel.values == pytest.approx(rms)
    from gui.training.panels.module_bars import module_values

    badges = module_values(blocks, rms, run.info["block_params"])
    assert badges == pytest.approx({"res_1": module})  # the instance's canvas badge


def test_inside_a_definition_the_palette_and_help_act_on_its_blocks(window):
    from gui.help import help_for_focus

    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    load(w, g)
    assert w.modules.editor.open(a)
    w.scene.select_ids(["r0"])
    new = w.actions.add_block("Dropout")  # the palette's double-click: after r0, inside
    settle(w)
    assert new in w.scene.graph and new not in w.graph
    assert any(nd["id"] == new for nd in w.graph.modules["Res"]["nodes"])
    w.scene.select_ids(["c0"])
    help_for_focus(w)  # F1 names the inner block's type, not a block of the graph
    w.modules.editor.back(0)
    w.scene.select_ids([a])
    help_for_focus(w)  # a module instance has no block page: no error


def test_exposing_a_setting_inside_a_definition_gives_each_instance_its_own(window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    b = edit.group(g, ["c1", "r1", "d1", "add1"], "Tmp")
    g.set_config(b, {MODULE_KEY: "Res"})
    g.set_module("Tmp", None)
    load(w, g)
    assert not w.modules.expose_setting()  # only inside a module
    w.modules.editor.open(a)
    w.scene.select_ids(["c0", "r0"])  # a Conv2D and an Activation share no setting
    offered = []
    w.modules.ask_setting = lambda keys: offered.append(keys) or ("init", "start")
    assert not w.modules.expose_setting() and not offered
    w.scene.select_ids(["c0", "d0"])
    assert w.modules.expose_setting() and "init" in offered[0] and "fn" not in offered[0]
    assert w.graph.modules["Res"]["params"]["start"]["targets"] == [["c0", "init"], ["d0", "init"]]
    w.undo_stack.undo()
    assert "start" not in w.graph.modules["Res"]["params"]
    w.scene.select_ids(["c0", "d0"])
    w.modules.ask_setting = lambda keys: ("filters", "width")
    assert w.modules.expose_setting() and w.undo_stack.count() == 1
    assert w.graph.modules["Res"]["params"]["width"] == {
        "default": 4,
        "targets": [["c0", "filters"], ["d0", "filters"]],
    }
    w.modules.editor.back(0)
    w.scene.select_ids([b])
    settle(w)
    w.inspector._edited("width", 2)  # only b: its convolutions give 2 maps, and its Add fails
    settle(w)
    a_ = w.live.flush()
    assert a_.flat.shapes[f"{b}/d0"] == (2, 8, 8) and a_.flat.shapes[f"{a}/d0"] == (4, 8, 8)
    assert a_.problems_of(b) and not a_.problems_of(a)


def test_nested_modules_open_level_by_level_and_edit_the_inner_definition(window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    b = edit.group(g, ["c1", "r1", "d1", "add1"], "Tmp")
    g.set_config(b, {MODULE_KEY: "Res"})
    g.set_module("Tmp", None)
    stage = edit.group(g, [a, b], "Stage")
    load(w, g)
    assert w.modules.editor.open(stage) and set(w.scene.blocks) == {a, b}
    assert w.scene.blocks[b].shape_text == "4×8×8"
    assert w.modules.editor.open(b) and set(w.scene.blocks) == set(RES)
    assert w.scene.blocks["c0"].params_text == "148 params"
    w.controller.set_option("r0", "fn", "tanh")
    settle(w)
    model_layers = w.live.flush().flat.types
    assert model_layers[f"{stage}/{a}/r0"] == "Activation"
    assert w.graph.modules["Res"]["nodes"][1]["config"]["fn"] == "tanh"
    w.modules.editor.back(1)
    assert set(w.scene.blocks) == {a, b}
    w.modules.editor.back(0)
    assert stage in w.scene.blocks


def test_a_hostile_library_file_is_left_alone(window, gui_env):
    from gui.module_library import ModuleLibrary, library_path

    path = library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    bomb = {
        "A": {"nodes": [{"id": "x", "type": "Module", "config": {"module": "A"}}], "output": "x"}
    }
    path.write_text(json.dumps({"format": "blockprop-modules", "version": 1, "modules": bomb}))
    lib = ModuleLibrary()
    assert lib.names() == [] and "contains itself" in lib.error
    path.write_text("[" * 100_000)
    lib = ModuleLibrary()
    assert lib.names() == [] and "nested" in lib.error
    w = window
    w.modules.library = lib
    w.modules.refresh_palette()
    assert not any(k.startswith("Module:") for k in w.palette_panel.items)


def test_grouping_inside_an_open_definition_nests_a_new_module(window):
    w = window
    g = res_graph()
    a = edit.group(g, RES, "Res")
    load(w, g)
    w.modules.editor.open(a)
    w.modules.ask_name = lambda suggestion: "Nope"
    w.scene.select_ids(["c0", "r0"])  # c0 is fed by the module's input port
    assert w.modules.group_selection() is None and w.undo_stack.count() == 0
    inner = group_in_window(w, ["r0", "d0"], "ConvRelu")
    assert w.undo_stack.count() == 1
    assert "ConvRelu" in w.graph.modules
    assert [nd["type"] for nd in w.graph.modules["Res"]["nodes"]].count(MODULE_TYPE) == 1
    flat = w.live.flush()
    assert flat.ok, flat.problems
    assert flat.flat.shapes[f"{a}/{inner}/d0"] == (4, 8, 8)
    w.undo_stack.undo()
    settle(w)
    assert "ConvRelu" not in w.graph.modules and "c0" in w.scene.graph
    w.modules.editor.back(0)
    w.scene.select_ids([a])
    assert w.inspector.id_edit.text() == a
    assert w.controller.rename(a, "x/y") and a in w.graph  # refused: '/' splits paths
