"""Training in the app and seeing inside: the Training dock, the worker, the live panels.

``attach(window)`` is called by ``MainWindow`` at the end of its ``__init__``. The window is a
``gui.window_api.TrainingWindow`` (its graph, canvas badges, selection, locking, docks, menus,
the undoable settings edit and the graph's file, for the runs file). The controller is a child
of the window and watches the window's Close event to stop training before the window goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.training.training_controller import TrainingController
    from gui.window_api import TrainingWindow


def attach(window: TrainingWindow) -> TrainingController:
    """Add training to ``window``; returns the TrainingController (also ``window.training``)."""
    from gui.training.training_controller import TrainingController

    ctrl = TrainingController(window)
    window.training = ctrl
    return ctrl


__all__ = ["attach"]
