"""``python app.py decode``: greedy decoding and beam search of a trained seq2seq graph.

    python app.py decode GRAPH.json --weights W.npz --source "6 December 2026" [--beam 4]

The graph must train on a data set holding a source and a shifted target side by side
(reversal, sorting, dates, digit_strips); the source is typed as that data set's symbols
(engine/seq2seq_decode.py). Prints the greedy output, then the beam's candidates with their
log-probabilities.
"""

from __future__ import annotations

import argparse
import math

from engine.data import DATASET_OPTIONS, load_dataset
from engine.graph import load_graph
from engine.model import build_model
from engine.seq2seq_decode import MAX_BEAM, Seq2SeqTask, decode
from engine.weights import load_weights


def add_parser(sub, file_name) -> None:
    d = sub.add_parser("decode", help="decode a typed source with a trained seq2seq graph")
    d.add_argument("graph", metavar="GRAPH.json")
    d.add_argument("--weights", required=True, type=file_name, metavar="W.npz")
    d.add_argument("--source", required=True, metavar="TEXT", help='e.g. "6 December 2026"')
    d.add_argument(
        "--beam", type=int, default=4, metavar="K", help=f"beam width, 1 to {MAX_BEAM} (4)"
    )
    d.set_defaults(func=cmd_decode)


def cmd_decode(args: argparse.Namespace, out=print) -> int:
    graph = load_graph(args.graph)
    spec = graph.training.get("dataset")
    spec = {"name": spec} if isinstance(spec, str) else dict(spec or {})
    if "n" in DATASET_OPTIONS.get(spec.get("name"), {}):
        spec["n"] = 1  # the vocabulary and layout only
    ds = load_dataset(spec) if spec.get("name") else None
    task = Seq2SeqTask.of(
        spec.get("name"),
        getattr(ds, "vocab", None),
        ds.meta.get("seq2seq") if ds is not None else None,
        getattr(ds, "input_shape", ()),
    )
    model = build_model(graph)
    load_weights(model, args.weights)
    greedy, beams = decode(model, task, args.source, args.beam)
    out(f"greedy: {task.text(greedy.tokens)}  (log p {greedy.score:.3f})")
    out(f"beam search, width {args.beam}:")
    for k, c in enumerate(beams, 1):
        out(f"{k:>3}. {task.text(c.tokens)}  (log p {c.score:.3f}, p {math.exp(c.score):.3g})")
    return 0
