"""The PyTorch ``Net`` of a graph with module instances: one ``nn.Module`` class per module
definition, instantiated once per instance with that instance's blocks (its settings).

A definition's class holds the wiring: ``__init__`` takes the blocks that have weights (or any
``nn.Module``) as arguments, ``forward`` runs its blocks in the definition's order and returns
its output block's value. ``Net`` builds each instance as ``ResModule(c0=nn.Conv2d(...), ...)``
with the instance's own sizes, so "Inception 3a" and "3b" are one class with different
arguments, and the state_dict keys mirror the engine's names (``res_1/c0.weight`` ->
``res_1.c0.weight``). Instances whose settings change the forward code itself (an activation
function exposed as a parameter) get a class of their own, named after the definition.
"""

from __future__ import annotations

import re
from functools import partial

from engine.errors import GraphError
from engine.export.naming import call, comment, identifiers, literal, pretty
from engine.export.plan import Plan
from engine.export.torch_modules import init_methods, torch_block
from engine.modules.definition import MODULE_KEY
from engine.modules.edit import definition_graph

PORTS = tuple(f"x{k}" for k in range(64))


class _Writer:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.graph = plan.modular
        self.flat = plan.flat
        self.helpers: dict[str, str] = {}
        self.name_map: dict[str, str] = {}
        self.init_table: list[str] = []
        self.after: list[str] = []
        self.classes: dict[str, str] = {}  # class source (name as "{cls}") -> class name
        self.class_lines: list[str] = []
        self.taken: set[str] = {"Net"}

    # --- one scope: the top-level graph, or one instance's definition --------------------------
    def scope(self, path: str, attr: str, indent: int) -> tuple[list, list[str]]:
        """(its submodules as (identifier, constructor expression, note line), its forward
        lines) for the scope at flat ``path`` ("" for the graph)."""
        if path:
            name = self.flat.instances[path]
            sub = definition_graph(self.graph, name)
            d = self.graph.modules[name]
            port_of = {
                (t["block"], t["port"]): k for k, port in enumerate(d["inputs"]) for t in port
            }
            out_id, prefix = d["output"], path + "/"
        else:
            sub, port_of, out_id, prefix = self.graph, {}, None, ""
        order = sub.topological_order()[0]
        idents = identifiers(order, reserved=PORTS)
        var: dict[str, str] = {}
        members, fwd = [], []

        def source(block: str, port: int) -> str:
            feeders = [s for s, _, p in sub.in_edges(block) if p == port]
            if feeders:
                return var[feeders[0]]
            if (block, port) in port_of:
                return PORTS[port_of[(block, port)]]
            return "x"  # the graph's Input

        for n in order:
            fid, ident = prefix + n, idents[n]
            a = f"{attr}.{ident}" if attr else ident
            nports = self._ports(sub, n, port_of)
            inputs = [source(n, p) for p in range(nports)]
            if fid in self.flat.instances:
                expr = self.instance(fid, a, indent)
                members.append((ident, expr, f"# {self._note(fid)}"))
                fwd.append(f"{ident} = self.{ident}({', '.join(inputs)})")
                var[n] = ident
                continue
            b = self.plan.by_id[fid]
            tb = torch_block(b, self.plan)
            for h, src in tb.helpers.items():
                self.helpers.setdefault(h, src)
            m = ""
            if tb.module is not None:
                self.name_map[fid] = a
                module = tb.module
                if isinstance(module, tuple):
                    cls, args_ = module
                    table = f"connections={pretty(args_[-1], indent + 4)}"
                    module = call(cls, [*args_[:-1], table], indent)
                members.append((ident, module, f"# {b.note}"))
                m = f"self.{ident}"
            for key, method, settings in init_methods(b):
                tname = tb.names.get(key, key)
                self.init_table.append(
                    f"    ({literal(a + '.' + tname)}, {literal(method)}, {literal(settings)}),"
                )
            self.after += [line.format(m=f"model.{a}") for line in tb.init_after]
            if b.type == "Input":
                var[n] = "x"
                continue
            refs = {}
            for k, r in tb.refs.items():
                local = r[len(prefix) :] if r.startswith(prefix) else None
                if local not in var:
                    raise GraphError(
                        f"'{fid}' links to '{r}' across a module's edge; the PyTorch export "
                        "needs both in the same module",
                        block=fid.split("/")[0],
                    )
                refs[k], refs[f"{k}_in"] = var[local], source(local, 0)
            fwd.append(f"{ident} = {tb.forward.format(*inputs, m=m, **refs)}")
            var[n] = ident
        if out_id is not None:
            fwd.append(f"return {var[out_id]}")
        return members, fwd

    def _ports(self, sub, n: str, port_of: dict) -> int:
        ports = [p for _, _, p in sub.in_edges(n)] + [p for (b, p) in port_of if b == n]
        return max(ports) + 1 if ports else 0

    def _note(self, fid: str) -> str:
        name = self.flat.instances[fid]
        values = {k: v for k, v in self._config(fid).items() if k != MODULE_KEY}
        settings = ", ".join(f"{k}={literal(v)}" for k, v in values.items())
        shape = ", ".join(map(str, self.plan.by_id[self._exit(fid)].out_shape))
        params = sum(self.plan.by_id[f].params for f in self.flat.top if f.startswith(fid + "/"))
        settings = f" ({settings})" if settings else ""
        return comment(f"{fid}: module '{name}'{settings} -> ({shape}), {params:,} params", 90)

    def _exit(self, fid: str) -> str:
        name = self.flat.instances[fid]
        out = f"{fid}/{self.graph.modules[name]['output']}"
        return self._exit(out) if out in self.flat.instances else out

    def _config(self, fid: str) -> dict:
        parts = fid.split("/")
        if len(parts) == 1:
            return self.graph.config_of(fid)
        from engine.modules.definition import inner_config

        parent = "/".join(parts[:-1])
        d = self.graph.modules[self.flat.instances[parent]]
        values = {k: v for k, v in self._config(parent).items() if k != MODULE_KEY}
        return inner_config(d, parts[-1], values)

    def instance(self, fid: str, attr: str, indent: int) -> str:
        """The constructor expression of instance ``fid`` (its class written if new)."""
        members, fwd = self.scope(fid, attr, indent + 4)
        args = [ident for ident, _, _ in members]
        ctor = [f"{ident}={expr}" for ident, expr, _ in members]
        name = self.flat.instances[fid]
        d = self.graph.modules[name]
        ports = ", ".join(PORTS[: len(d["inputs"])])
        body = [
            "class {cls}(nn.Module):",
            f"    # Module '{comment(name, 60)}': {len(d['inputs'])} input(s), one output;"
            f" parameters: {comment(', '.join(d['params']) or 'none', 40)}",
            "",
            f"    def __init__(self{''.join(', ' + a for a in args)}):",
            "        super().__init__()",
            *[f"        self.{a} = {a}" for a in args],
            "",
            f"    def forward(self, {ports}):",
            *[f"        {line}" for line in fwd],
        ]
        key = "\n".join(body)
        cls = self.classes.get(key)
        if cls is None:
            stem = "".join(p[:1].upper() + p[1:] for p in re.split(r"_+", _ident(name)) if p)
            cls, k = f"{stem}Module", 2
            while cls in self.taken:
                cls, k = f"{stem}Module{k}", k + 1
            self.taken.add(cls)
            self.classes[key] = cls
            self.class_lines += [*(line.replace("{cls}", cls) for line in body), "", ""]
        return call(cls, ctor, indent)


def _ident(name: str) -> str:
    return identifiers([name])[name]


def modular_net(plan: Plan) -> tuple[list[str], dict[str, str], dict[str, str], list[str]]:
    """What ``pytorch_export._net`` gives, for a graph with module instances."""
    from engine.export.pytorch_export import forward_line, returns

    w = _Writer(plan)
    members, fwd = w.scope("", "", 8)
    init_lines = ["        super().__init__()"]
    for ident, expr, note in members:
        init_lines += [f"        {note}", f"        self.{ident} = {expr}"]
    net = [
        *w.class_lines,
        "class Net(nn.Module):",
        '    """The graph as a module: one submodule per block or module instance (NAME_MAP:',
        '    block id -> attribute path), forward in the graph\'s topological order."""',
        "",
        "    def __init__(self):",
        *init_lines,
        "",
        forward_line(plan),
        *[f"        {line}" for line in fwd],
        *returns(plan, partial(_top_var, w, plan)),
    ]
    from engine.export.pytorch_export import init_section  # imports this module lazily

    return net, w.helpers, w.name_map, init_section(w.init_table, w.after)


def _top_var(w: _Writer, plan: Plan, block: str) -> str:
    """The forward's variable holding flat block ``block``'s output (an instance's exit: the
    instance's)."""
    top = plan.flat.top[block]
    order = plan.modular.topological_order()[0]
    return identifiers(order, reserved=PORTS)[top]
