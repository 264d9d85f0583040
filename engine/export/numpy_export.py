"""The engine target: a readable script that rebuilds the graph from ``engine.layers`` classes and
trains it with ``engine.Trainer`` and the graph's settings.

The model is built through ``engine.build_model(graph, seed)``, exactly as the app and
``python app.py train`` build it, so the same seed gives the same initial weights, the same
batches and the same losses.
"""

from __future__ import annotations

from engine import layers
from engine.export.naming import call, comment, comment_lines, kwarg, literal, pretty
from engine.export.plan import Plan
from engine.layers import LAYER_TYPES

HELPERS = '''
def add(g, layer, *inputs):
    """Put ``layer`` into graph ``g`` as the block named ``layer.name``, fed by ``inputs``
    (in input-port order); return it so later blocks can wire to it."""
    g.add_node(layer.type_name, layer.get_config(), node_id=layer.name)
    for port, source in enumerate(inputs):
        g.add_edge(source.name, layer.name, port)
    return layer
'''

WEIGHTS_HELPER = '''
def weights_path():
    """WEIGHTS as given, or, for a relative path not found here, next to this script."""
    if os.path.isabs(WEIGHTS) or os.path.exists(WEIGHTS):
        return WEIGHTS
    here = os.path.dirname(os.path.abspath(globals().get("__file__", WEIGHTS)))
    return os.path.join(here, WEIGHTS)
'''

TRAIN = '''
def load_data():
    """The graph's data set, made (or read) exactly as the app does for this seed."""
    if TRAINING["dataset"] is None:
        raise SystemExit("this graph has no data set: set one in its training settings")
    return load_dataset(TRAINING["dataset"], seed=SEED)


def make_trainer(model=None, dataset=None, epochs=None):
    """An engine.Trainer with the graph's training settings."""
    settings = {k: v for k, v in TRAINING.items() if k != "dataset"}
    if epochs is not None:
        settings["epochs"] = epochs
    return engine.Trainer(
        build_model() if model is None else model,
        load_data() if dataset is None else dataset,
        **settings,
    )


def train(epochs=None, steps=None, save=None):
    """Train, printing one line per epoch; stop after ``steps`` steps if given."""
    trainer = make_trainer(epochs=epochs)
    for event in trainer.run():
        if event["event"] == "step":
            if steps is not None and event["step"] >= steps:
                print(f"step {event['step']}  loss {event['loss']:.6f}")
                trainer.stop()
        elif event["event"] == "epoch":
            print(
                f"epoch {event['epoch']}/{trainer.epochs}  train_loss {event['train_loss']:.4f}"
                f"  val_loss {fmt(event['val_loss'])}  val_acc {fmt(event['val_acc'], 3)}"
            )
        else:
            print(f"{event['reason']} after {event['step']} steps", event.get("message", ""))
    if save:
        engine.save_weights(trainer.model, save)
        print(f"saved the weights to {save}")
    return trainer


def fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train this network with the BlockProp engine.")
    parser.add_argument("--epochs", type=int, help="override the graph's number of epochs")
    parser.add_argument("--steps", type=int, help="stop after this many steps")
    parser.add_argument("--save", metavar="weights.npz", help="save the trained weights")
    args = parser.parse_args()
    train(args.epochs, args.steps, args.save)
'''


def header(plan: Plan, what: str) -> list[str]:
    """The opening comment. Python reads an encoding declaration (``# coding: X``) from the
    first two lines of a file, so those hold only fixed text; the graph's name and description
    come after them, escaped like all user text (the file is pure ASCII)."""
    lines = [f"# Exported from BlockProp ({what}).", "#"]
    lines.append(f"# Graph: {comment(plan.name, 80) or 'untitled'}")
    desc = comment_lines(plan.description, max_lines=6)
    if desc:
        lines += ["#", *desc]
    return lines


def layer_call(block, indent: int = 4, used: int = 0) -> str:
    """``layers.Conv2D(filters=6, kernel_size=5, name='c1')``: only the settings the user gave.
    ``used``: characters the line already holds besides the indentation."""
    args = [kwarg(k, pretty(v, indent + 4)) for k, v in block.config.items()]
    args.append(f"name={literal(block.id)}")
    # engine.layers names the engine's own classes; a type registered elsewhere is looked up
    cls = (
        f"layers.{block.type}"
        if block.type.isidentifier()
        and getattr(layers, block.type, None) is LAYER_TYPES[block.type]
        else f"layers.LAYER_TYPES[{literal(block.type)}]"
    )
    return call(cls, args, indent, width=99 - used)


def export_numpy(plan: Plan, weights: str | None = None) -> str:
    """The engine script for ``plan`` (see the module docstring)."""
    out = header(plan, "engine code")
    out += [
        "#",
        "# Needs the BlockProp engine importable (run it from the BlockProp folder or put that",
        "# folder on PYTHONPATH). build_model() returns the engine Model; running this file",
        "# trains it with the graph's settings: the same seed gives the same losses as",
        "# `python app.py train GRAPH.json`.",
        "#   python this_file.py [--epochs N] [--steps N] [--save weights.npz]",
        "import argparse",
        "import os",
        "",
        "import engine",
        "from engine import layers",
        "from engine.data import load_dataset",
        "",
        f"SEED = {plan.seed}",
        f"WEIGHTS = {literal(weights)}  # engine weights (.npz) loaded by build_model(), or None",
        "# The graph's training settings (defaults filled in).",
        f"TRAINING = {pretty(plan.training)}",
        "",
        HELPERS.rstrip(),
        "",
        "",
        "def build_graph():",
        '    """The network: one engine layer per block, named by its block id."""',
        "    g = "
        + call(
            "engine.Graph",
            [
                f"name={pretty(plan.name, 8)}",
                f"description={pretty(plan.description, 8)}",
                "training=TRAINING",
            ],
            4,
        ),
    ]
    for b in plan.blocks:
        inputs = "".join(f", {plan.by_id[s].ident}" for s in b.inputs)
        # the output's variable would never be read: no name for it
        target = "" if b.id == plan.output_id else f"{b.ident} = "
        layer = layer_call(b, 4, used=len(f"{target}add(g, ){inputs}"))
        out.append(f"    # {b.note}")
        out.append(f"    {target}add(g, {layer}{inputs})")
    out += [
        "    return g",
        "",
        "",
        "def build_model():",
        '    """The engine Model (initial weights from SEED, or the WEIGHTS file)."""',
        "    model = engine.build_model(build_graph(), seed=SEED)",
        "    if WEIGHTS is not None:",
        "        engine.load_weights(model, weights_path())",
        "    return model",
        "",
        WEIGHTS_HELPER.rstrip(),
        "",
        TRAIN.rstrip(),
        "",
    ]
    return "\n".join(out)
