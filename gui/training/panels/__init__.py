"""The training panels, each a dockable widget drawn with pyqtgraph.

``PANEL_TYPES`` maps a key to its class, in the order the docks are added.
"""

from __future__ import annotations

import pyqtgraph as pg

# Set once for every pyqtgraph image in the app: arrays are (row, column) like NumPy's.
pg.setConfigOptions(imageAxisOrder="row-major")

from gui.training.panels.activations import ActivationsPanel  # noqa: E402
from gui.training.panels.confusion import ConfusionPanel  # noqa: E402
from gui.training.panels.filters import FiltersPanel  # noqa: E402
from gui.training.panels.gradients import GradientsPanel  # noqa: E402
from gui.training.panels.loss import LossPanel  # noqa: E402
from gui.training.panels.runs import RunsPanel  # noqa: E402
from gui.training.panels.try_it import TryItPanel  # noqa: E402
from gui.training.panels.why import WhyPanel  # noqa: E402

PANEL_TYPES = {
    "loss": LossPanel,
    "gradients": GradientsPanel,
    "filters": FiltersPanel,
    "activations": ActivationsPanel,
    "confusion": ConfusionPanel,
    "runs": RunsPanel,
    "try_it": TryItPanel,
    "why": WhyPanel,
}

__all__ = ["PANEL_TYPES"]
