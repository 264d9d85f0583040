"""BlockProp's engine: NumPy layers written by hand, the graph model, training, data and export.

Never imports Qt: everything the GUI does to a model, code can do through this package.
"""

from engine import functional, init, layers
from engine.graph import Graph, load_graph
from engine.errors import (
    BlockPropError,
    ConfigError,
    DataError,
    GraphError,
    ShapeError,
    WeightsError,
)

__all__ = [
    "BlockPropError", "ConfigError", "DataError", "GraphError", "ShapeError", "WeightsError",
    "Graph", "functional", "init", "layers", "load_graph",
]  # fmt: skip
