"""Editing a module's definition in place: double-click an instance and the canvas shows the
definition's blocks (with the shapes and parameter counts of that instance); a breadcrumb bar
above the canvas leads back. Nested modules open level by level.

How it stays one model: the definition is copied into a Graph of its own
(``engine.modules.edit.definition_graph``) with its own scene, controller and inspector. Each
edit there becomes ONE undo step on the window's stack, a ``ModuleEdit`` that sets the
definition in the window's graph (so every instance follows); undo and redo change the window's
graph, and the open definition is brought back in line with it (``Graph.restore``). An edit the
definition cannot take (deleting its output block) is taken back and said why.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QToolBar

from engine.analysis import Analysis, Problem
from engine.errors import BlockPropError
from engine.graph import Graph
from engine.graph_events import ModuleChanged, Reset
from engine.modules.definition import MODULE_KEY, MODULE_TYPE, dependency_order
from engine.modules.edit import definition_graph, updated_definition
from gui import commands as cmd
from gui.canvas.scene import GraphScene
from gui.edit_controller import Controller
from gui.inspector import Inspector


def inner_analysis(a: Analysis, sub: Graph, prefix: str) -> Analysis:
    """The window's analysis as the open definition sees it: each inner block's shape and
    parameters are those of ``prefix + block`` (the instance it was opened from)."""
    out = Analysis(name=sub.name, order=sub.nodes(), batch_size=a.batch_size)
    out.types = {n: sub.type_of(n) for n in out.order}
    fa = a.flat
    for n in out.order:
        f = prefix + n
        out.shapes[n], out.in_shapes[n], out.params[n] = None, None, 0
        if fa is None:
            continue
        if f in fa.shapes:
            out.shapes[n], out.in_shapes[n] = fa.shapes[f], fa.in_shapes.get(f)
            out.params[n] = fa.params.get(f, 0)
        elif sub.type_of(n) == MODULE_TYPE:
            inner = [x for x in fa.order if x.startswith(f + "/")]
            out.params[n] = sum(fa.params.get(x, 0) for x in inner)
            out.shapes[n] = _exit_shape(sub, n, f, fa)
    for p in a.flat.problems if fa is not None else ():
        if p.block is not None and p.block.startswith(prefix):
            rest = p.block[len(prefix) :]
            top = rest.split("/")[0]
            if top in sub:
                msg = p.message if rest == top else f"in '{p.block}': {p.message}"
                out.problems.append(Problem(top, msg, p.fix if rest == top else None))
    return out


def _exit_shape(sub: Graph, n: str, path: str, fa: Analysis):
    """The output shape of inner instance ``n`` (flat path ``path``): its definition's output
    block's, followed down through nested instances."""
    modules = sub.modules
    name = sub.config_of(n)[MODULE_KEY]
    for _ in range(16):
        d = modules.get(name)
        if d is None:
            return None
        out = d["output"]
        path = f"{path}/{out}"
        if path in fa.shapes:
            return fa.shapes[path]
        nd = next((x for x in d["nodes"] if x["id"] == out), None)
        if nd is None or nd["type"] != MODULE_TYPE:
            return None
        name = nd["config"][MODULE_KEY]
    return None


class SubLive(QObject):
    """What a controller and inspector need of a LiveAnalysis, for an open definition: the
    window's analysis, seen from inside the instance (``inner_analysis``)."""

    changed = Signal(object)

    def __init__(self, live, sub: Graph, prefix: str, parent=None) -> None:
        super().__init__(parent)
        self.main, self.sub, self.prefix = live, sub, prefix
        self.training = None
        self.analysis = inner_analysis(live.analysis, sub, prefix)
        live.changed.connect(self._relay)

    def _relay(self, a: Analysis) -> None:
        self.analysis = inner_analysis(a, self.sub, self.prefix)
        self.changed.emit(self.analysis)

    def flush(self) -> Analysis:
        self._relay(self.main.flush())
        return self.analysis

    def detach(self) -> None:
        self.main.changed.disconnect(self._relay)


class Level:
    """One open definition: its Graph, scene, controller, inspector."""

    def __init__(self, editor: DefinitionEditor, name: str, prefix: str) -> None:
        w = editor.w
        self.name, self.prefix = name, prefix
        self.sub = definition_graph(w.graph, name)
        w.tidy_layout(self.sub)  # blocks grouped from a cramped corner get room to be read
        self.stack = QUndoStack(editor)
        self.live = SubLive(w.live, self.sub, prefix, editor)
        self.controller = Controller(self.sub, self.stack, self.live)
        self.controller.setParent(editor)
        self.scene = GraphScene(self.sub, editor)
        self.controller.scene = self.scene
        self.inspector = Inspector(self.sub, self.controller, self.live)
        self.inspector.module_actions = getattr(w.inspector, "module_actions", None)
        self.live.changed.connect(self.scene.apply_analysis)
        self.scene.apply_analysis(self.live.analysis)
        self.scene.selectionChanged.connect(self._selection_changed)
        self.controller.message.connect(w._message)
        self.controller.selectRequested.connect(self.scene.select_ids)
        self.stack.indexChanged.connect(lambda _i: editor.sub_changed(self))

    def _selection_changed(self) -> None:
        # A scene being destroyed (its window closing) still emits selectionChanged as its
        # items go, after the Python side of it is gone.
        if shiboken6.isValid(self.scene) and shiboken6.isValid(self.inspector):
            self.inspector.show_selection(self.scene.selected_ids())

    def close(self) -> None:
        self.scene.selectionChanged.disconnect(self._selection_changed)
        self.stack.indexChanged.disconnect()
        self.scene.detach()
        self.inspector.detach()
        self.live.detach()
        for obj in (self.inspector, self.scene, self.controller, self.stack, self.live):
            obj.deleteLater()


class DefinitionEditor(QObject):
    """The open definitions of one window (see the module docstring)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.levels: list[Level] = []
        self.main = (window.scene, window.controller, window.inspector)
        self.bar = QToolBar("Module", window)
        self.bar.setObjectName("module_breadcrumb")
        self.bar.setMovable(False)
        window.addToolBarBreak()
        window.addToolBar(self.bar)
        self.bar.hide()
        self._syncing = False
        window.graph.subscribe(self._on_main_event)

    @property
    def active(self) -> bool:
        return bool(self.levels)

    # --- opening and leaving -------------------------------------------------------------------
    def open(self, block: str) -> bool:
        """Open the definition of instance ``block`` of what the canvas shows now."""
        graph = self.levels[-1].sub if self.levels else self.w.graph
        if block not in graph or graph.type_of(block) != MODULE_TYPE:
            return False
        name = graph.config_of(block)[MODULE_KEY]
        prefix = (self.levels[-1].prefix if self.levels else "") + block + "/"
        self.levels.append(Level(self, name, prefix))
        self._show(self.levels[-1])
        return True

    def back(self, depth: int = 0) -> None:
        """Leave to ``depth`` levels open (0: the graph itself)."""
        while len(self.levels) > depth:
            self.levels.pop().close()
        if self.levels:
            self._show(self.levels[-1])
        else:
            scene, controller, inspector = self.main
            self._swap(scene, controller, inspector)
            self.bar.hide()

    def _show(self, level: Level) -> None:
        self._swap(level.scene, level.controller, level.inspector)
        self._breadcrumb()
        self.w.canvas.fit_all()

    def _swap(self, scene, controller, inspector) -> None:
        w = self.w
        w.scene, w.controller = scene, controller
        w.canvas.setScene(scene)
        w.canvas.gscene, w.canvas.controller = scene, controller
        controller.locked = w.locked
        scene.set_locked(w.locked)
        dock = w._docks["inspector"]
        if dock.widget() is not inspector:
            old = dock.widget()
            if old is not None:
                old.setParent(None)
                old.hide()
            dock.setWidget(inspector)
            inspector.show()
        w.inspector = inspector
        w.canvas.set_empty(len(scene.graph) == 0)

    def _breadcrumb(self) -> None:
        self.bar.clear()
        self.bar.show()
        back = self.bar.addAction("◀ Back")
        back.setToolTip("Back to the graph (Esc leaves nothing: use this or the names)")
        back.triggered.connect(lambda: self.back(len(self.levels) - 1))
        self.bar.addSeparator()
        top = self.bar.addAction(self.w.graph.name or "graph")
        top.triggered.connect(lambda: self.back(0))
        for k, level in enumerate(self.levels):
            self.bar.addWidget(_label(" › "))
            users = len(self.w.graph.instances_of(level.name))
            a = self.bar.addAction(f"{level.name}  ({level.prefix.rstrip('/')})")
            a.setToolTip(
                f"Module '{level.name}': edits here change every instance ({users} in the "
                "graph); Make Unique first to change one only"
            )
            a.triggered.connect(lambda _c=False, d=k + 1: self.back(d))
        d = self.w.graph.modules.get(self.levels[-1].name)
        if d is not None:
            ports = "; ".join(
                f"input {k}: " + ", ".join(f"{t['block']}[{t['port']}]" for t in port)
                for k, port in enumerate(d["inputs"])
            )
            self.bar.addSeparator()
            self.bar.addWidget(_label(f"  {ports or 'no inputs'}; output: {d['output']}  "))

    # --- keeping the definition and the graph in step ------------------------------------------
    def sub_changed(self, level: Level) -> None:
        """An edit in the open definition: one undo step on the window's stack."""
        if self._syncing:
            return
        g = self.w.graph
        old = g.modules.get(level.name)
        if old is None:
            return
        # modules made inside this one (Group into Module here) join the graph's
        made = {m: d for m, d in level.sub.modules.items() if m not in g.modules}

        def change(gr: Graph) -> None:
            for m in dependency_order({**gr.modules, **made}):
                if m in made:
                    gr.set_module(m, made[m])
            gr.set_module(level.name, new)

        try:
            new = updated_definition(old, level.sub)
            if new == old and not made:
                return
            change(g.copy())
        except BlockPropError as e:
            self.w._message(f"Not applied to module '{level.name}': {e}", True)
            self._syncing = True
            try:
                level.stack.undo()
            finally:
                self._syncing = False
            return
        text = level.stack.undoText() or "Edit"
        self._syncing = True
        try:
            self.w.undo_stack.push(cmd.ModuleEdit(g, f"{text} in {level.name}", change))
        finally:
            self._syncing = False

    def _on_main_event(self, event) -> None:
        if self._syncing or not self.levels:
            return
        if isinstance(event, Reset):  # another file: its modules are other modules
            self.back(0)
            return
        if not isinstance(event, ModuleChanged):
            return
        g = self.w.graph
        for k, level in enumerate(self.levels):
            if level.name not in g.modules:
                self.back(k)
                return
            want = definition_graph(g, level.name).to_dict()
            if level.sub.to_dict() != want:
                self._syncing = True
                try:
                    level.sub.modules = {m: d for m, d in g.modules.items() if m != level.name}
                    level.sub.restore(want)
                finally:
                    self._syncing = False


def _label(text: str):
    from PySide6.QtWidgets import QLabel

    return QLabel(text)
