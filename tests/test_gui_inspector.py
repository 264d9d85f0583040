"""The inspector: typed editors built from each Opt, edits reach the Graph as undoable
commands (spin-box typing merges into one), refused values are not applied and say why."""

from __future__ import annotations

from gui_helpers import build_chain, settle
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from gui.editors import format_value, parse_value

pytest_plugins = ["gui_support"]  # fixtures: gui_env, make_window, window


def select(w, n):
    w.scene.select_ids([n])
    assert w.inspector.block == n


def test_editors_are_typed_from_the_options(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 32, 32]}),
            ("c1", "Conv2D", {"filters": 6, "kernel_size": 5}),
            ("a", "Activation", {"fn": "tanh"}),
            ("p", "MaxPool2D", {"kernel_size": 2}),
        ],
    )
    select(w, "c1")
    ed = w.inspector.editors
    assert isinstance(ed["filters"], QSpinBox) and ed["filters"].value() == 6
    assert ed["filters"].minimum() == 1
    assert isinstance(ed["bias"], QCheckBox) and ed["bias"].isChecked()
    assert isinstance(ed["padding"], QComboBox) and ed["padding"].isEditable()
    assert {ed["padding"].itemText(i) for i in range(ed["padding"].count())} >= {"same", "valid"}
    assert isinstance(ed["init"], QComboBox)
    assert ed["init"].itemData(0) is None and "he_normal" in [
        ed["init"].itemData(i) for i in range(ed["init"].count())
    ]
    assert isinstance(ed["init_std"], QDoubleSpinBox)
    assert isinstance(ed["kernel_size"], QLineEdit) and ed["kernel_size"].text() == "5"
    assert isinstance(ed["connections"], QLineEdit) and ed["connections"].text() == ""
    assert "Output: 6×28×28" in w.inspector.info.text()
    assert "156 params" in w.inspector.info.text()
    select(w, "a")
    assert w.inspector.editors["fn"].currentText() == "tanh"
    select(w, "in")
    assert w.inspector.editors["shape"].text() == "1, 32, 32"
    select(w, "p")
    assert (
        w.inspector.editors["stride"].text() == ""
        and w.inspector.editors["stride"].placeholderText() == "auto"
    )


def test_spinbox_typing_is_one_undoable_edit(window):
    w = window
    build_chain(w, [("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 8})])
    select(w, "d")
    spin = w.inspector.editors["units"]
    count = w.undo_stack.count()
    spin.selectAll()
    QTest.keyClicks(spin, "120")
    assert w.graph.config_of("d")["units"] == 120
    assert w.undo_stack.count() == count + 1
    settle(w)
    assert w.scene.blocks["d"].settings == "120"
    assert w.scene.blocks["d"].params_text == "600 params"
    w.undo_stack.undo()
    assert w.graph.config_of("d")["units"] == 8
    assert spin.value() == 8  # the editor follows the model


def test_choice_checkbox_padding_and_text_edits_apply(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 10, 10]}),
            ("c", "Conv2D", {"filters": 2, "kernel_size": 3}),
            ("a", "Activation", {}),
        ],
    )
    select(w, "c")
    ed = w.inspector.editors
    ed["bias"].click()
    assert w.graph.config_of("c")["bias"] is False
    ed["padding"].setFocus()
    ed["padding"].lineEdit().selectAll()
    QTest.keyClicks(ed["padding"].lineEdit(), "same")
    QTest.keyClick(ed["padding"].lineEdit(), Qt.Key.Key_Return)
    assert w.graph.config_of("c")["padding"] == "same"
    ed["kernel_size"].setText("5, 3")
    ed["kernel_size"].editingFinished.emit()
    assert w.graph.config_of("c")["kernel_size"] == [5, 3]
    settle(w)
    assert w.scene.blocks["c"].shape_text == "2×10×10"
    select(w, "a")
    combo = w.inspector.editors["fn"]
    combo.setCurrentIndex(combo.findData("sigmoid"))
    assert w.graph.config_of("a")["fn"] == "sigmoid"
    assert w.undo_stack.undoText() == "Edit fn of a"
    for _ in range(4):
        w.undo_stack.undo()
    assert w.graph.config_of("c") == {"filters": 2, "kernel_size": 3}


def test_invalid_value_is_refused_with_a_message(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [1, 10, 10]}),
            ("c", "Conv2D", {"filters": 2, "kernel_size": 3, "stride": 2}),
        ],
    )
    select(w, "c")
    ed = w.inspector.editors
    before = w.graph.to_dict()
    count = w.undo_stack.count()
    ed["padding"].setEditText("same")
    ed["padding"].lineEdit().editingFinished.emit()
    assert w.graph.to_dict() == before and w.undo_stack.count() == count
    assert not w.inspector.error.isHidden()
    assert "stride" in w.inspector.error.text()
    assert ed["padding"].currentText() == "0"  # back to the Graph's value
    ed["kernel_size"].setText("three")
    ed["kernel_size"].editingFinished.emit()
    assert w.graph.to_dict() == before
    assert "whole number" in w.inspector.error.text()
    ed["connections"].setText("0; 1; 0")
    ed["connections"].editingFinished.emit()
    assert "rows" in w.inspector.error.text() and w.graph.to_dict() == before
    ed["connections"].setText("0; 0")
    ed["connections"].editingFinished.emit()
    assert w.graph.config_of("c")["connections"] == [[0], [0]]
    assert w.inspector.error.isHidden()


def test_rename_block_from_inspector(window):
    w = window
    build_chain(
        w,
        [
            ("in", "Input", {"shape": [4]}),
            ("dense_1", "Dense", {"units": 2}),
            ("d2", "Dense", {"units": 2}),
        ],
    )
    select(w, "dense_1")
    w.inspector.id_edit.setText("hidden")
    w.inspector.id_edit.editingFinished.emit()
    assert "hidden" in w.graph and "dense_1" not in w.graph
    assert w.graph.edges() == [("in", "hidden", 0), ("hidden", "d2", 0)]
    assert w.selected_blocks() == ["hidden"] and w.inspector.block == "hidden"
    w.inspector.id_edit.setText("d2")
    w.inspector.id_edit.editingFinished.emit()
    assert "already a block" in w.inspector.error.text()
    assert w.inspector.id_edit.text() == "hidden"
    w.undo_stack.undo()
    assert w.graph.nodes() == ["in", "dense_1", "d2"]


def test_graph_name_edit_and_problem_fix_button(window):
    w = window
    w.scene.select_ids([])
    name = w.inspector.editors["meta:name"]
    name.setText("My net")
    name.editingFinished.emit()
    assert w.graph.name == "My net"
    build_chain(w, [("in", "Input", {"shape": [1, 8, 8]}), ("d", "Dense", {"units": 3})])
    select(w, "d")
    settle(w)
    from PySide6.QtWidgets import QPushButton

    buttons = [b for b in w.inspector.findChildren(QPushButton) if b.text() == "Fix"]
    assert len(buttons) == 1 and "Flatten" in buttons[0].toolTip()
    buttons[0].click()
    settle(w)
    assert w.analysis.ok and w.graph.inputs_of("d") == ["flatten_1"]


def test_parse_and_format_round_trip():
    assert parse_value("shape", "1, 32, 32") == [1, 32, 32]
    assert parse_value("shape", "1x28x28") == [1, 28, 28]
    assert parse_value("size", "5") == 5 and parse_value("size", "5 3") == [5, 3]
    assert parse_value("padding", "Same") == "same" and parse_value("padding", "2") == 2
    table = [[0, 1, 2], [1, 2, 3]]
    assert parse_value("connections", format_value("connections", table)) == table
    assert parse_value("connections", "[[0, 1], [2]]") == [[0, 1], [2]]
    assert parse_value("connections", "") is None
