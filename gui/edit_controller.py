"""The controller turns user intents (add a block here, wire these ports, set this option) into
undo commands, after checking them. Refusals come back as reasons the canvas shows at the cursor
and in the status bar; nothing invalid reaches the Graph.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QUndoStack

from engine.analysis import analyze
from engine.errors import BlockPropError, ConfigError
from engine.graph import Graph
from engine.layers import LAYER_TYPES
from engine.modules.definition import MODULE_KEY, MODULE_TYPE, closure
from gui import commands as cmd
from gui.canvas.style import BLOCK_H, BLOCK_W, GRID, LAYOUT_DX, LAYOUT_DY
from gui.clipboard import fragment_modules, remap_fragment
from gui.layout import layered_positions
from gui.live_analysis import LiveAnalysis
from gui.palette import MODULE_PREFIX

KIND_STARTERS = {"int": 16, "float": 0.1, "bool": False, "size": 3, "shape": [1], "padding": 0}


def starter_config(type_name: str) -> dict:
    """Settings for a new block: its layer's ``starter``, then a value for any other required
    one."""
    cls = LAYER_TYPES[type_name]
    cfg = {k: copy.deepcopy(v) for k, v in cls.starter.items() if k in cls.all_options()}
    for key, opt in cls.all_options().items():
        if opt.required and key not in cfg:
            if opt.kind == "choice" and opt.choices:
                cfg[key] = opt.choices[0]
            elif opt.kind == "int":
                lo = int(opt.min) if opt.min is not None else 1
                cfg[key] = max(lo, min(16, int(opt.max) if opt.max is not None else 16))
            else:
                cfg[key] = copy.deepcopy(KIND_STARTERS.get(opt.kind, 1))
    return cfg


@dataclass
class Verdict:
    """Whether a wire may be made: ``ok`` and, if not, the reason; ``note`` for a wire that is
    accepted with a problem the analysis can fix in one click (Dense after a conv block)."""

    ok: bool
    reason: str = ""
    note: str = ""


class Controller(QObject):
    message = Signal(str, bool)  # text for the status bar, is_error
    selectRequested = Signal(list)  # block ids to select after a change (rename, paste)

    def __init__(self, graph: Graph, stack: QUndoStack, live: LiveAnalysis) -> None:
        super().__init__()
        self.graph, self.stack, self.live = graph, stack, live
        self.locked = False
        self.scene = None  # set by the window: lets fixes find free room on the canvas

    def _refuse_locked(self) -> bool:
        if self.locked:
            self.message.emit("Editing is locked while the network trains.", True)
        return self.locked

    # --- blocks --------------------------------------------------------------------------------
    def add_block(
        self, type_name: str, pos, config: dict | None = None, after: str | None = None
    ) -> str | None:
        """Add a block (top-left at ``pos``); with ``after``, wire it after that block too when
        that can work. Returns the new id."""
        if self._refuse_locked():
            return None
        if type_name.startswith(MODULE_PREFIX):
            return self.add_instance(type_name[len(MODULE_PREFIX) :], pos)
        config = starter_config(type_name) if config is None else config
        node_id = self.graph.new_id(type_name)
        pos = (round(pos[0]), round(pos[1]))
        add = cmd.AddBlock(self.graph, type_name, config, pos, node_id)
        if after is None or after not in self.graph:
            self.stack.push(add)
            return node_id
        self.stack.beginMacro(add.text())
        self.stack.push(add)
        verdict = self.check_connection(after, node_id, 0)
        if verdict.ok:
            self.stack.push(cmd.Connect(self.graph, after, node_id, 0))
        self.stack.endMacro()
        return node_id

    # --- modules -------------------------------------------------------------------------------
    def module_edit(self, text: str, change) -> Any:
        """Run ``change(graph)`` (a module edit of engine.modules.edit) as one undo step, after
        trying it on a copy: a refusal is reported and changes nothing. Returns its result."""
        if self._refuse_locked():
            return None
        try:
            change(self.graph.copy())
        except BlockPropError as e:
            self.message.emit(f"{text}: {e}", True)
            return None
        command = cmd.ModuleEdit(self.graph, text, change)
        self.stack.push(command)
        return command.result

    def add_instance(self, name: str, pos) -> str | None:
        """An instance of module ``name``: this graph's, or the user library's (its definition,
        and those it uses, are brought in with it, in the same undo step)."""
        pos = (round(pos[0]), round(pos[1]))
        wanted = {} if name in self.graph.modules else self.library_modules(name)
        if name not in self.graph.modules and not wanted:
            self.message.emit(f"There is no module '{name}'.", True)
            return None

        def change(g: Graph) -> str:
            for m, d in wanted.items():
                if m not in g.modules:
                    g.set_module(m, d)
            return g.add_node(MODULE_TYPE, {MODULE_KEY: name}, pos)

        return self.module_edit(f"Add {name}", change)

    def library_modules(self, name: str) -> dict:
        """The definitions an instance of the library's module ``name`` needs (replaced by the
        window: gui.module_library)."""
        return {}

    def free_spot(self, scene, near: tuple[float, float], ignore=()) -> tuple[float, float]:
        """The first place at or below ``near`` where a block overlaps nothing."""
        x, y = (round(near[0] / GRID) * GRID, round(near[1] / GRID) * GRID)
        for k in range(200):
            yy = y + k * (BLOCK_H + 30)
            rect = QRectF(x - 20, yy - 20, BLOCK_W + 40, BLOCK_H + 40)
            if scene.is_free(rect, ignore):
                return (x, yy)
        return (x, y)

    def delete(
        self, ids: list[str], wires: list[tuple[str, str]] = (), text: str | None = None
    ) -> None:
        if self._refuse_locked():
            return
        ids = [n for n in ids if n in self.graph]
        gone = set(ids)
        wires = [
            w for w in wires if self.graph.has_edge(*w) and w[0] not in gone and w[1] not in gone
        ]
        if not ids and not wires:
            return
        steps = len(wires) + (1 if ids else 0)
        if steps > 1 or text:
            self.stack.beginMacro(text or f"Delete {len(ids)} blocks, {len(wires)} wires")
        for s, t in wires:
            self.stack.push(cmd.Disconnect(self.graph, s, t))
        if ids:
            self.stack.push(cmd.RemoveBlocks(self.graph, ids))
        if steps > 1 or text:
            self.stack.endMacro()

    def move(self, new_positions: dict[str, tuple[float, float]], text: str = "") -> None:
        """One undo step for a whole drag (called on mouse release) or a layout."""
        moves = {}
        for n, pos in new_positions.items():
            old = self.graph.pos_of(n)
            new = (round(pos[0]), round(pos[1]))
            if tuple(old) != new:
                moves[n] = (old, new)
        if not moves or self._refuse_locked():
            return
        if not text:
            text = (
                f"Move {self.graph.type_of(next(iter(moves)))}"
                if len(moves) == 1
                else f"Move {len(moves)} blocks"
            )
        self.stack.push(cmd.MoveBlocks(self.graph, moves, text))

    def rename(self, node_id: str, new_id: str) -> str | None:
        """Rename a block; returns the reason when refused."""
        new_id = new_id.strip()
        if new_id == node_id or self._refuse_locked():
            return None
        if not new_id or len(new_id) > 200:
            return "A block id must be 1 to 200 characters."
        if new_id in self.graph:
            return f"There is already a block '{new_id}'."
        if self.graph.type_of(node_id) == MODULE_TYPE and "/" in new_id:
            return "A module instance's id cannot hold '/' (it separates its blocks' paths)."
        self.stack.push(cmd.Rename(self.graph, node_id, new_id))
        self.selectRequested.emit([new_id])
        return None

    # --- settings ------------------------------------------------------------------------------
    def _config_change(self, node_id: str, key: str, value: Any) -> tuple[dict, dict, str | None]:
        """(old config, new config, reason it is refused or None)."""
        old = self.graph.config_of(node_id)
        new = dict(old)
        if self.graph.type_of(node_id) == MODULE_TYPE:  # an instance's parameter
            new[key] = value
            try:
                self.graph.copy().set_config(node_id, new)
            except BlockPropError as e:
                return old, new, str(e)
            return old, new, None
        cls = LAYER_TYPES[self.graph.type_of(node_id)]
        opt = cls.all_options().get(key)
        if opt is None:
            return old, old, f"{cls.type_name} has no setting '{key}'."
        if value is None and opt.nullable and opt.default is None:
            new.pop(key, None)
        else:
            new[key] = value
        try:
            cls(name=node_id, **new)  # the same checks as Graph.set_config
        except ConfigError as e:
            return old, new, str(e)
        return old, new, None

    def set_option(self, node_id: str, key: str, value: Any, text: str | None = None) -> str | None:
        """Set one setting. Returns the reason (and changes nothing) when the value is refused."""
        if self._refuse_locked():
            return "Editing is locked while the network trains."
        old, new, reason = self._config_change(node_id, key, value)
        if reason:
            self.message.emit(reason, True)
            return reason
        if new != old:
            self.stack.push(
                cmd.SetConfig(self.graph, node_id, old, new, None if text else key, text)
            )
        return None

    def set_meta(self, key: str, value: Any) -> None:
        if getattr(self.graph, key) != value and not self._refuse_locked():
            self.stack.push(cmd.SetMeta(self.graph, key, value))

    # --- wires ---------------------------------------------------------------------------------
    def check_connection(self, source: str, target: str, port: int | None = None) -> Verdict:
        """Can ``source``'s output feed ``target`` (input slot ``port``)? See the module doc."""
        g = self.graph
        refused = g.check_edge(source, target, port, strict=True)
        if refused is not None:
            return Verdict(False, refused.message[:1].upper() + refused.message[1:] + ".")
        if g.type_of(target) == MODULE_TYPE:
            return Verdict(True)  # the analysis says what does not fit inside it
        cls = LAYER_TYPES[g.type_of(target)]
        lo, hi = cls.arity
        port = g.free_port(target) if port is None else port
        return self._check_shapes(source, target, port, cls, lo, hi)

    def _check_shapes(self, source, target, port, cls, lo, hi) -> Verdict:
        a = self.live.flush()
        shapes = {p: a.shapes.get(s) for s, _, p in self.graph.in_edges(target)}
        shapes[port] = a.shapes.get(source)
        if any(s is None for s in shapes.values()) or len(shapes) < lo or 0 not in shapes:
            return Verdict(True)  # not enough known yet to judge (port 0 not wired yet)
        in_shape = shapes[port] if hi == 1 else [shapes[p] for p in sorted(shapes)]
        try:
            layer = cls(name=target, **self.graph.config_of(target))
            out = layer.output_shape(in_shape)
            if not all(int(d) >= 1 for d in out):
                reason = (
                    f"'{target}' would output an empty tensor {tuple(out)} from {tuple(in_shape)}."
                )
            else:
                return Verdict(True)
        except BlockPropError as e:
            reason = e.message
        # Refused by the layer. If the analysis of the graph with this wire offers a one-click
        # fix (insert Flatten, padding "same"), accept the wire and let the user apply it.
        trial = self.graph.copy()
        trial.add_edge(source, target, port)
        for p in analyze(trial).problems:
            if p.block == target:
                if p.fix:
                    return Verdict(True, note=p.message)
                reason = p.message
                break
        return Verdict(False, f"Cannot wire '{source}' into '{target}': {reason}")

    def connect(self, source: str, target: str, port: int | None = None) -> Verdict:
        if self.locked:
            return Verdict(False, "Editing is locked while the network trains.")
        v = self.check_connection(source, target, port)
        if not v.ok:
            self.message.emit(v.reason, True)
            return v
        port = self.graph.free_port(target) if port is None else port
        self.stack.push(cmd.Connect(self.graph, source, target, port))
        if v.note:
            self.message.emit(f"Connected, with a problem you can fix in one click: {v.note}", True)
        else:
            self.message.emit(f"Connected {source} → {target}.", False)
        return v

    def disconnect(self, source: str, target: str) -> None:
        if self.graph.has_edge(source, target) and not self._refuse_locked():
            self.stack.push(cmd.Disconnect(self.graph, source, target))

    # --- clipboard fragments -------------------------------------------------------------------
    def fragment(self, ids: list[str]) -> dict:
        """The blocks ``ids`` and the wires among them, as graph-file dicts."""
        ids = [n for n in self.graph.nodes() if n in set(ids)]
        inside = set(ids)
        nodes = [{"id": n, **self.graph.node(n)} for n in ids]
        for nd in nodes:
            nd["pos"] = list(nd["pos"])
        edges = [
            {"source": s, "target": t, "target_port": p}
            for s, t, p in self.graph.edges()
            if s in inside and t in inside
        ]
        out = {"nodes": nodes, "edges": edges}
        used = [nd["config"][MODULE_KEY] for nd in nodes if nd["type"] == MODULE_TYPE]
        if used:  # an instance travels with its definition (and those it uses)
            out["modules"] = closure(self.graph.modules, used)
        return out

    def paste(self, fragment: dict, offset=(40.0, 40.0), at=None, text: str = "Paste") -> list[str]:
        """Add a copy of ``fragment`` with fresh ids (shifted by ``offset``, or with its
        top-left block at ``at``). Returns the new ids."""
        if self._refuse_locked():
            return []
        try:
            nodes, edges = remap_fragment(self.graph, fragment, offset, at)
            defs, _ = fragment_modules(self.graph, fragment)
        except BlockPropError as e:
            self.message.emit(f"Cannot paste: {e}", True)
            return []
        if not nodes:
            return []
        if defs:  # definitions first, then the blocks: one undo step
            label = f"{text} {len(nodes)} block" + "s" * (len(nodes) > 1)
            add = cmd.AddBlocks(self.graph, nodes, edges, label)

            def change(g: Graph) -> None:
                for m, d in defs.items():
                    g.set_module(m, d)
                add.graph = g
                add.redo()

            self.module_edit(label, change)
            return [nd["id"] for nd in nodes]
        self.stack.push(
            cmd.AddBlocks(
                self.graph, nodes, edges, f"{text} {len(nodes)} block" + "s" * (len(nodes) > 1)
            )
        )
        return [nd["id"] for nd in nodes]

    # --- layout and fixes ----------------------------------------------------------------------
    def auto_layout(self, aspect: float | None = None) -> None:
        """Left to right, parallel branches side by side (gui.layout). Long networks wrap
        into rows when that shows them larger in a window of this ``aspect`` (width /
        height)."""
        pos = layered_positions(self.graph, LAYOUT_DX, LAYOUT_DY, aspect, BLOCK_H)
        self.move(pos, "Auto-layout")

    def apply_fix(self, fix: dict) -> str | None:
        """Apply an analysis fix as one undoable step; returns the reason if it cannot."""
        if self._refuse_locked():
            return "Editing is locked while the network trains."
        g = self.graph
        if fix.get("kind") == "set":
            if fix.get("block") not in g:
                return "This fix no longer applies."
            return self.set_option(
                fix["block"],
                fix["key"],
                fix["value"],
                text=f"Fix: set {fix['key']} of {fix['block']} to {fix['value']!r}",
            )
        if fix.get("kind") == "training":  # the data set's options or a training setting
            from engine.data_fit import apply_training_fix, fix_words

            base = self.live.training if self.live.training is not None else g.training
            self.set_meta("training", apply_training_fix(base, fix))
            self.message.emit(f"{fix_words(fix)}.", False)
            return None
        if fix.get("kind") != "insert":
            return f"Unknown fix {fix!r}."
        s, t, type_name = fix["source"], fix["target"], fix["type"]
        if not g.has_edge(s, t) or type_name not in LAYER_TYPES:
            return "This fix no longer applies."
        port = g.port_of(s, t)
        config = dict(fix.get("config") or {}) or starter_config(type_name)
        sx, sy = g.pos_of(s)
        tx, ty = g.pos_of(t)
        self.stack.beginMacro(f"Insert {type_name}")
        if abs(ty - sy) < BLOCK_H and tx > sx:  # side by side: in between, making room
            if tx - sx < 2 * LAYOUT_DX - 10:  # shift the target and all after it
                shift = sx + 2 * LAYOUT_DX - tx
                after = g.descendants(t) | {t}
                self.move(
                    {n: (g.pos_of(n)[0] + shift, g.pos_of(n)[1]) for n in g.nodes() if n in after},
                    "Make room",
                )
                tx += shift
            pos = (round((sx + tx) / 2), round((sy + ty) / 2))
        else:  # elsewhere (a wrapped layout): right of the source, where there is room
            pos = (sx + LAYOUT_DX, sy)
            if self.scene is not None:
                pos = self.free_spot(self.scene, pos)
        new_id = g.new_id(type_name)
        self.stack.push(cmd.Disconnect(g, s, t))
        self.stack.push(cmd.AddBlock(g, type_name, config, pos, new_id))
        self.stack.push(cmd.Connect(g, s, new_id, 0))
        self.stack.push(cmd.Connect(g, new_id, t, port))
        self.stack.endMacro()
        self.message.emit(f"Inserted {type_name} '{new_id}' between '{s}' and '{t}'.", False)
        return None
