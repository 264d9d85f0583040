"""The training panels, each a dockable widget drawn with pyqtgraph.

``PANEL_TYPES`` maps a key to its class, in the order the docks are added.
"""

from __future__ import annotations

from gui.training.panels.activations import ActivationsPanel
from gui.training.panels.attention import AttentionPanel
from gui.training.panels.confusion import ConfusionPanel
from gui.training.panels.filters import FiltersPanel
from gui.training.panels.gradients import GradientsPanel
from gui.training.panels.loss import LossPanel
from gui.training.panels.runs import RunsPanel
from gui.training.panels.try_it import TryItPanel
from gui.training.panels.why import WhyPanel

PANEL_TYPES = {
    "loss": LossPanel,
    "gradients": GradientsPanel,
    "filters": FiltersPanel,
    "activations": ActivationsPanel,
    "attention": AttentionPanel,
    "confusion": ConfusionPanel,
    "runs": RunsPanel,
    "try_it": TryItPanel,
    "why": WhyPanel,
}

__all__ = ["PANEL_TYPES"]
