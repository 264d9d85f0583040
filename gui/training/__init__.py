"""Training in the app and seeing inside: the Training dock, the worker, the live panels.

``attach(window)`` is called by ``MainWindow`` at the end of its ``__init__``. The window must
offer what the team contract lists: ``graph``, ``canvas`` (``set_block_badges``,
``clear_block_badges``), ``selectionChanged``, ``set_locked``, ``add_panel_dock``, ``menu``,
``toolbar``; ``controller.set_meta`` or ``undo_stack`` for the undoable settings edit; and
``path`` (the graph file, if any) for the runs file. The controller is a child of the window
and watches the window's Close event to stop training before the window goes.
"""

from __future__ import annotations


def attach(window):
    """Add training to ``window``; returns the TrainingController (also ``window.training``)."""
    from gui.training.controller import TrainingController

    ctrl = TrainingController(window)
    window.training = ctrl
    return ctrl


__all__ = ["attach"]
