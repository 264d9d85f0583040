"""The PyTorch target: a standalone script (torch + numpy; scikit-learn for the digits data set,
Pillow for image folders) with an ``nn.Module`` for the graph, the data set, and a training loop
with the graph's loss, optimizer, schedule, L1/L2 and clipping that runs on one process or, under
``torchrun``, with DistributedDataParallel.

What makes its numbers the engine's: the modules compute the same functions (each layer's to_torch);
``--weights`` loads the engine's own weights file; one process splits and shuffles the data with
NumPy exactly as ``engine.Trainer`` does; where no torch optimizer applies the lecture's update,
a custom one runs the engine's own rule (``engine.optim_rules.RULES``).
"""

from __future__ import annotations

import inspect
from typing import Any

from engine import augment
from engine.data import DATASET_OPTIONS
from engine.data.base import check_options
from engine.errors import ConfigError
from engine.export import standalone_data, torch_templates
from engine.export.naming import call, comment, comment_lines, kwarg, literal, pretty
from engine.export.numpy_export import header
from engine.export.plan import Plan
from engine.export.torch_modules import init_methods, torch_block
from engine.optim_rules import RULES, TORCH_EQUIVALENT
from engine.training_spec import check_mask_padding


def _net(plan: Plan) -> tuple[list[str], dict[str, str], dict[str, str], list[str]]:
    """(Net class lines, helper classes' sources by name, NAME_MAP, init_weights body lines)."""
    if plan.modular is not None:  # a class per module definition
        from engine.export.torch_scopes import modular_net

        return modular_net(plan)
    init_lines = ["        super().__init__()"]
    fwd_lines = []
    helpers: dict[str, str] = {}
    name_map: dict[str, str] = {}
    init_table: list[str] = []
    after: list[str] = []
    var = {}
    for b in plan.blocks:
        tb = torch_block(b, plan)
        for h, source in tb.helpers.items():
            helpers.setdefault(h, source)
        args = [var[s] for s in b.inputs]
        note = f"# {b.note}"
        if tb.module is not None:
            name_map[b.id] = b.ident
            init_lines.append(f"        {note}")
            module = tb.module
            if isinstance(module, tuple):  # (class, [args..., connections table])
                cls, args_ = module
                used = 8 + len(f"self.{b.ident} = ")
                table = f"connections={pretty(args_[-1], 12)}"
                module = call(cls, [*args_[:-1], table], 8, width=99 - used + 8)
            init_lines.append(f"        self.{b.ident} = {module}")
            m = f"self.{b.ident}"
        else:
            m = ""
        if b.type == "Input":
            var[b.id] = "x"
            continue
        refs = {k: var[r] for k, r in tb.refs.items()}
        refs |= {f"{k}_in": var[plan.by_id[r].inputs[0]] for k, r in tb.refs.items()}
        fwd_lines.append(f"        {b.ident} = {tb.forward.format(*args, m=m, **refs)}")
        var[b.id] = b.ident
        for key, method, settings in init_methods(b):
            tname = tb.names.get(key, key)
            init_table.append(
                f"    ({literal(b.ident + '.' + tname)}, {literal(method)}, {literal(settings)}),"
            )
        after += [line.format(m=f"model.{b.ident}") for line in tb.init_after]
    fwd_lines += returns(plan, var.__getitem__)
    net = [
        "class Net(nn.Module):",
        '    """The graph as a module: one submodule per block (NAME_MAP: block id -> attribute),',
        '    forward in the graph\'s topological order."""',
        "",
        "    def __init__(self):",
        *init_lines,
        "",
        forward_line(plan),
        *fwd_lines,
    ]
    return net, helpers, name_map, init_section(init_table, after)


def init_section(init_table: list[str], after: list[str]) -> list[str]:
    """INIT and init_weights: how BlockProp initialises each parameter, then the statements
    that set values in place (``after``, under no_grad)."""
    init = [
        "# How BlockProp initialises each parameter: (parameter, initialiser, its settings).",
        "INIT = [",
        *init_table,
        "]",
        "",
        "",
        "def init_weights(model):",
        '    """Initialise like BlockProp: same distributions (torch draws the numbers)."""',
        "    for name, method, settings in INIT:",
        "        engine_init(model.get_parameter(name), method, **settings)",
    ]
    if after:
        init += ["    with torch.no_grad():", *[f"        {line}" for line in after]]
    return init


# The data sets whose samples end with the decoder's input (meta["seq2seq"]: engine.decoding)
SEQ2SEQ_SETS = ("reversal", "sorting", "dates", "digit_strips")


def _data(plan: Plan) -> list[str]:
    spec = plan.training.get("dataset")
    if spec is None:
        return [
            "def load_data():",
            '    raise SystemExit("this graph has no data set: set one in its training '
            'settings in BlockProp and export again")',
        ]
    name = spec["name"]
    if plan.training.get("scheduled_sampling") and name not in SEQ2SEQ_SETS:
        raise ConfigError(
            "cannot export: 'scheduled_sampling' needs a data set holding the source and the "
            f"shifted target side by side ({', '.join(SEQ2SEQ_SETS)}), not {name!r}"
        )
    try:  # mask_padding: the script's loss_fn, counted and hits leave out class 0
        check_mask_padding(plan.training, plan.by_id[plan.output_id].out_shape)
    except ConfigError as e:
        raise ConfigError(f"cannot export: {e.message}") from None
    if name not in standalone_data.MAKERS:
        raise ConfigError(
            f"cannot export: the data set {name!r} has no standalone loader; "
            "export to numpy (engine code) instead"
        )
    options = {k: v for k, v in spec.items() if k != "target"}
    target = spec.get("target", "labels")  # "input": an autoencoder's targets are its inputs
    try:  # the script calls the loader with every option spelled out
        if target not in ("labels", "input"):
            raise ConfigError(
                f"data set {name!r}: 'target' must be labels or input, got {target!r}"
            )
        cfg = check_options(name, options, DATASET_OPTIONS[name])
    except ConfigError as e:
        raise ConfigError(f"cannot export: {e.message}") from None
    fn, takes_rng, needs = standalone_data.MAKERS[name]
    out = []
    for n in needs:
        obj = getattr(standalone_data, n)
        if callable(obj):
            out += [inspect.getsource(obj).rstrip(), "", ""]
        else:
            out += [f"{n} = {pretty(obj)}", "", ""]
    out += [inspect.getsource(getattr(standalone_data, fn)).rstrip(), "", ""]
    args = (["np.random.default_rng(SEED)"] if takes_rng else []) + [
        kwarg(k, pretty(v, 8)) for k, v in cfg.items()
    ]
    out += [
        f"# The data set: {comment(spec, 80)}",
        "def load_data():",
        '    """(X, y) of the graph\'s data set, as BlockProp makes it for SEED."""',
    ]
    if target == "input":
        out += [
            f"    X, _labels = {call(fn, args, 4)}",
            "    return X, X.copy()  # an autoencoder: it learns to give back its input",
        ]
    else:
        out += [f"    return {call(fn, args, 4)}"]
    return out


def _optimizer(plan: Plan) -> list[str]:
    spec = dict(plan.training["optimizer"])
    name = spec.pop("name")
    eq = TORCH_EQUIVALENT[name]
    constant = plan.training["schedule"]["name"] == "constant"
    hyper = [f"    {k} = OPTIMIZER[{literal(k)}]" for k in spec]
    out = [f"OPTIMIZER = {pretty({'name': name, **spec})}", ""]
    if eq["equal"] == "exact" or (eq["equal"] == "constant_lr" and constant):
        kwargs = ", ".join(f"{k}={v}" for k, v in eq["kwargs"].items())
        out += [
            "",
            "def make_optimizer(params):",
            f'    """{comment(name, 20)}: {comment(eq["note"], 80)}."""',
            *hyper,
            f"    return {eq['torch']}(params, {kwargs})",
        ]
        return out
    rule = RULES[name]
    why = (
        eq["note"]
        if eq["equal"] == "custom"
        else f"{eq['note']}; the learning rate changes, so the lecture's rule is applied as is"
    )
    out += [
        "",
        "# The lecture's update rule, as BlockProp's engine applies it:",
        *comment_lines(why),
        inspect.getsource(rule).rstrip(),
        "",
        "",
        f"RULE = {rule.__name__}",
        "",
        "",
        torch_templates.LECTURE_OPTIMIZER.strip(),
        "",
        "",
        "def make_optimizer(params):",
        *hyper,
        "    return LectureOptimizer(params, " + ", ".join(f"{k}={k}" for k in spec) + ")",
    ]
    return out


def _schedule(plan: Plan) -> list[str]:
    s = plan.training["schedule"]
    name = s["name"]
    body = {
        "constant": "1.0",
        "step": f"{literal(s.get('gamma', 0.5))} ** (epoch // {s.get('step_size', 1)})",
        "exponential": f"math.exp(-{literal(s.get('k', 0.1))} * epoch)",
        "time": f"1.0 / (1.0 + {literal(s.get('k', 0.1))} * epoch)",
    }[name]
    return [
        "def lr_factor(epoch):",
        f'    """Learning-rate schedule {literal(name)} (epoch from 0): '
        "lr = lr0 * lr_factor(epoch),",
        '    stepped once per epoch by LambdaLR."""',
        f"    return {body}",
    ]


def forward_line(plan: Plan) -> str:
    return "    def forward(self, x, heads=None):" if plan.heads else "    def forward(self, x):"


def returns(plan: Plan, var_of: Any) -> list[str]:
    """Net.forward's return: the main output; with extra heads (engine.heads) also a dict of
    theirs, while training (as torchvision's GoogLeNet) or when called with heads=True."""
    main = f"        return {var_of(plan.output_id)}"
    if not plan.heads:
        return [main]
    extra = ", ".join(f"{literal(h)}: {var_of(h)}" for h in plan.heads)
    return [
        "        if self.training if heads is None else heads:",
        f"            return {var_of(plan.output_id)}, {{{extra}}}",
        main,
    ]


HEADS_LOSS = """

# The training setting "heads": each extra output (block id) and the weight of its loss.
HEADS = {heads}


def total_loss(out, extra, y):
    \"\"\"The main output's loss + each head's, weighted (BlockProp's engine/heads.py).\"\"\"
    return loss_fn(out, y) + sum(w * loss_fn(extra[h], y) for h, w in HEADS.items())
"""


def _heads_template(plan: Plan, text: str) -> str:
    """The training loop and evaluation of a graph with extra heads: the weighted total loss."""
    if not plan.heads:
        return text
    pairs = [
        (
            "\n\ndef predict(out):",
            HEADS_LOSS.format(heads=pretty(plan.heads)) + "\n\ndef predict(out):",
        ),
        (
            "        out = model(xb)\n        total += float(loss_fn(out, yb))",
            "        out, extra = model(xb, heads=True)\n"
            "        total += float(total_loss(out, extra, yb))",
        ),
        (
            "            out = model(xb)\n            loss = loss_fn(out, yb)",
            "            out, extra = model(xb, heads=True)\n"
            "            loss = total_loss(out, extra, yb)",
        ),
    ]
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def export_pytorch(plan: Plan, weights: str | None = None) -> str:
    """The standalone PyTorch script for ``plan`` (see the module docstring)."""
    net, helpers, name_map, init = _net(plan)
    ds = plan.training.get("dataset")
    needs = "torch and numpy"
    if ds and ds["name"] == "digits":
        needs += ", plus scikit-learn (its digits data set)"
    elif ds and ds["name"] == "image_folder":
        needs += ", plus Pillow (to read the images)"
    out = header(plan, "a standalone PyTorch script")
    out += [
        "#",
        f"# Needs {needs}; not BlockProp.",
        "#   python this_file.py [--epochs N] [--steps N] [--save w.npz] [--log run.jsonl]",
        "#   torchrun --nproc_per_node=4 this_file.py   (DistributedDataParallel; gloo on CPU, "
        "nccl on GPU)",
        "# build_model() gives the nn.Module"
        + (
            " with the exported weights."
            if weights
            else " initialised as BlockProp initialises it."
        ),
        "# One process trains on the same batches as BlockProp's engine for the same seed.",
        torch_templates.IMPORTS.rstrip(),
        "",
        f"SEED = {plan.seed}",
        f"WEIGHTS = {literal(weights)}  # BlockProp weights (.npz) for build_model(), or None",
        "# The graph's training settings (defaults filled in).",
        f"TRAINING = {pretty(plan.training)}",
        f"OUT_SHAPE = {literal(tuple(plan.by_id[plan.output_id].out_shape))}"
        "  # one sample's output",
        "# BlockProp block id -> attribute of Net (weights files name arrays '<block id>.<name>').",
        f"NAME_MAP = {pretty(name_map)}",
    ]
    for source in helpers.values():
        out += ["", source.rstrip()]
    out += [
        "",
        "",
        *net,
        "",
        "",
        *init,
        "",
        "",
        "def build_model():",
        '    """The network, initialised from SEED, then the WEIGHTS file if there is one."""',
        "    torch.manual_seed(SEED)",
        "    model = Net()",
        "    init_weights(model)",
        "    if WEIGHTS is not None:",
        "        load_engine_weights(model, weights_path())",
        "    return model",
        "",
        torch_templates.WEIGHTS_IO.rstrip(),
        "",
        torch_templates.ENGINE_INIT.rstrip(),
        "",
        "",
        *_data(plan),
        "",
        "",
        *_optimizer(plan),
        "",
        "",
        *_schedule(plan),
        "",
        *_augment(plan),
        _heads_template(plan, _train_template(plan)).rstrip(),
        "",
    ]
    return "\n".join(out)


BATCH_LINE = "            xb, yb = Xtr[idx].to(device), ytr[idx].to(device)\n"


def _augment(plan: Plan) -> list[str]:
    """engine.augment's NumPy functions, copied, when the graph augments its training data."""
    if not augment.active(plan.training.get("augment")):
        return []
    return [
        inspect.getsource(augment.affine_batch).rstrip(),
        "",
        "",
        inspect.getsource(augment.augment_tokens).rstrip(),
        "",
        "",
        inspect.getsource(augment.augment_batch).rstrip(),
        "",
    ]


def _train_template(plan: Plan) -> str:
    """The training loop; with augmentation each batch passes through augment_batch with the
    engine's stream, default_rng([SEED, 2]): one process trains on the engine's batches."""
    text = torch_templates.TRAIN
    if plan.training.get("mask_padding") and not plan.heads:
        text = torch_templates.MASKED_SHARE + text.replace(
            "            loss.backward()\n",
            "            if world > 1:  # the mean over every process's counted targets\n"
            "                (loss * masked_share(yb, world)).backward()\n"
            "            else:\n"
            "                loss.backward()\n",
            1,
        )
    if plan.training.get("scheduled_sampling"):  # the engine's stream, default_rng([SEED, 3])
        text = text.replace(
            '    step, reason = 0, "finished"\n',
            '    step, reason = 0, "finished"\n'
            "    # scheduled sampling's draws; under torchrun each process draws its own\n"
            "    sampling_rng = np.random.default_rng([SEED, 3] + ([rank] if world > 1 else []))\n",
            1,
        ).replace(
            "            optimizer.zero_grad(set_to_none=False)\n",
            "            xb = scheduled_sampling(net, xb, sampling_rng)\n"
            "            optimizer.zero_grad(set_to_none=False)\n",
            1,
        )
        text = torch_templates.SCHEDULED_SAMPLING + text
    if not augment.active(plan.training.get("augment")):
        return text
    assert BATCH_LINE in text
    return text.replace(
        '    step, reason = 0, "finished"\n',
        '    step, reason = 0, "finished"\n'
        "    # the engine's augmentation stream; under torchrun each process draws its own\n"
        "    aug_rng = np.random.default_rng([SEED, 2] + ([rank] if world > 1 else []))\n",
        1,
    ).replace(
        BATCH_LINE,
        "            xb = torch.from_numpy(augment_batch(Xtr[idx].numpy(), aug_rng, "
        '**TRAINING["augment"])).to(device)\n'
        "            yb = ytr[idx].to(device)\n",
        1,
    )
