"""BlockProp's engine: NumPy layers written by hand, the graph model, training, data and export.

Never imports Qt: everything the GUI does to a model, code can do through this package.
"""

from engine import functional, init, layers
from engine.analysis import Analysis, Problem, analyze, summary_text
from engine.errors import (
    BlockPropError,
    ConfigError,
    DataError,
    GraphError,
    ShapeError,
    WeightsError,
)
from engine.graph import Graph, load_graph
from engine.model import Model, build_model
from engine.trainer import Trainer
from engine.weights import load_weights, save_weights

__all__ = [
    "BlockPropError",
    "ConfigError",
    "DataError",
    "GraphError",
    "ShapeError",
    "WeightsError",
    "Graph",
    "functional",
    "init",
    "layers",
    "load_graph",
    "Analysis",
    "Problem",
    "analyze",
    "summary_text",
    "Model",
    "build_model",
    "save_weights",
    "load_weights",
    "Trainer",
]
