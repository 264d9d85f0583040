"""``app.py explain``: the evidence map of one input (engine/explain.py) written as a picture over
the input and as the raw map."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from engine.cli_output import out, write_output
from engine.data import BUILTIN_DATASETS
from engine.errors import BlockPropError, ConfigError
from engine.escaping import printable
from engine.explain import METHODS
from engine.graph import load_graph


def add_parser(sub, file_name) -> None:
    x = sub.add_parser("explain", help="map the evidence for a class on one input")
    x.add_argument("graph", metavar="GRAPH.json")
    x.add_argument("--weights", required=True, metavar="W.npz", help="trained weights")
    x.add_argument("--input", required=True, metavar="X.png|X.npy", help="one sample")
    x.add_argument("--method", default="gradcam", choices=METHODS)
    x.add_argument("--class", dest="cls", type=int, metavar="K", help="default: the predicted")
    x.add_argument("--block", metavar="ID", help="Grad-CAM's block (default: the last conv)")
    x.add_argument("-o", "--output", required=True, type=file_name, metavar="OUT")
    x.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    import io
    import time

    from PIL import Image

    from engine import explain as ex
    from engine import explain_files
    from engine.model import build_model
    from engine.weights import load_weights

    stem = args.output.removesuffix(".png").removesuffix(".npy")
    for path in (f"{stem}.png", f"{stem}.npy"):  # refuse a path that cannot work before work
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(f"cannot write {printable(path)}: there is no folder {folder}")
    model = build_model(load_graph(args.graph))
    load_weights(model, args.weights)
    x = explain_files.read_input(args.input, model.input_shape)
    t0 = time.perf_counter()
    e = ex.explain(model, x, args.method, cls=args.cls, block=args.block)
    took = time.perf_counter() - t0
    picture = explain_files.overlay(x, e.map, 0.5)
    if picture.shape[0] == 1:  # a sequence: a strip, each position a 24-pixel-high cell
        picture = picture.repeat(24, axis=0).repeat(max(1, 512 // picture.shape[1]), axis=1)
    else:
        scale = max(1, 256 // max(1, min(picture.shape[:2])))
        picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
    png = io.BytesIO()
    Image.fromarray(picture).save(png, format="PNG")
    write_output(f"{stem}.png", png.getvalue())
    npy = io.BytesIO()
    np.save(npy, e.map.astype(np.float32))
    write_output(f"{stem}.npy", npy.getvalue())
    top = ", ".join(f"{k} ({e.scores[k]:.3g})" for k in ex.top_classes(e.scores))
    on = f" of block {e.block}" if e.block else ""
    out(f"{e.method}{on} for class {e.cls} (top classes: {top}); {took * 1000:.0f} ms")
    if ex.reads_ids(model):  # a text model: each word (or id) with its value
        vocab = vocab_of(model, args.graph)
        tokens = [vocab[i] if 0 <= i < len(vocab) else str(i) for i in x.tolist()]
        out(" ".join(f"{t}({v:+.2g})" for t, v in zip(tokens, e.map.tolist(), strict=True)))
    size = "x".join(str(d) for d in e.map.shape)
    out(f"wrote {stem}.png (the map over the input) and {stem}.npy ({size} float32)")
    return 0


def vocab_of(model: Any, graph_path: str) -> list[str]:
    """The words of a built-in text data set the graph trains on (generated in a moment); ids
    as numbers otherwise (a user's text file is not read again just for names)."""
    from engine.data import load_dataset

    spec = load_graph(graph_path).training.get("dataset")
    name = spec.get("name") if isinstance(spec, dict) else spec
    if name not in BUILTIN_DATASETS:
        return []
    try:
        return list(load_dataset(spec).vocab or [])
    except BlockPropError:
        return []
