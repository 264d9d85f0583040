"""BlockProp: the GUI by default, sub-commands for headless use.

python app.py [GRAPH.json] [--screenshot out.png]    open the GUI (with that graph)
python app.py check GRAPH.json                       validate; print the summary table
python app.py train GRAPH.json [--epochs N] ...      train headless
python app.py export GRAPH.json --to numpy|pytorch|onnx   export Python code or ONNX
python app.py import MODEL.onnx -o GRAPH.json        an ONNX model as a graph (+ --save-weights)
python app.py presets                                list the presets
"""

from __future__ import annotations

import sys

COMMANDS = ("check", "train", "export", "import", "presets")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.main import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
