"""BlockProp: the GUI by default, sub-commands for headless use.

python app.py [GRAPH.json] [--screenshot out.png]    open the GUI (with that graph)
python app.py check GRAPH.json                       validate; print the summary table
python app.py train GRAPH.json [--epochs N] ...      train headless
python app.py export GRAPH.json --to numpy|pytorch|onnx   export Python code or ONNX
python app.py import MODEL.onnx -o GRAPH.json        an ONNX model as a graph (+ --save-weights)
python app.py presets                                list the presets
python app.py explain GRAPH.json --weights W.npz --input X.png -o OUT   what the model looks at
python app.py experiment GRAPH.json --vary lr=0.1,0.01 --out DIR  runs with settings varied
python app.py decode GRAPH.json --weights W.npz --source TEXT [--beam K]  greedy and beam search
"""

from __future__ import annotations

import signal
import sys

COMMANDS = ("check", "train", "export", "import", "presets", "explain", "experiment", "decode")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.main import main as gui_main

    return gui_main(argv)


class _Interrupts:
    """Ctrl+C while starting up (importing NumPy, opening a file) ends the program with one
    line and status 130, not a traceback. The handler notes the signal because a library being
    imported can turn the KeyboardInterrupt into another error (NumPy: an ImportError)."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: object) -> None:
        cls.seen = True
        raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _Interrupts.handler)
    try:
        status = main()
    except BaseException as e:
        if not (isinstance(e, KeyboardInterrupt) or _Interrupts.seen):
            raise
        print("app.py: interrupted", file=sys.stderr)
        status = 130
    sys.exit(status)
