"""Each block as PyTorch, as its layer class says: ``Layer.to_torch`` gives the module (its
constructor source, how forward calls it, the helper classes it needs, how the engine's
parameter names map to the module's) and ``Layer.init_rule`` how the engine starts each
parameter. A block type without a PyTorch form raises GraphError naming the block: export never
writes a script that cannot run.
"""

from __future__ import annotations

from typing import Any

from engine.errors import GraphError
from engine.export.plan import Block, Plan
from engine.layers import LAYER_TYPES
from engine.layers.base import Layer, TorchBlock

__all__ = ["TorchBlock", "init_methods", "torch_block"]


def _layer(block: Block, plan: Plan | None = None) -> Layer:
    layer = LAYER_TYPES[block.type](name=block.id, **block.config)
    for key in type(layer).links:  # the blocks it reads (MaxUnpool2D's pool), as analysed
        other = plan.by_id.get(layer.config.get(key)) if plan is not None else None
        if other is not None:
            partner = _layer(other)
            partner.in_shape, partner.out_shape = other.in_shape, other.out_shape
            layer.bind(key, partner)
    return layer


def torch_block(block: Block, plan: Plan | None = None) -> TorchBlock:
    """The PyTorch form of ``block`` (GraphError naming it if there is none); ``plan`` gives
    the blocks a block links to."""
    tb = _layer(block, plan).to_torch(block.in_shape)
    if tb is None:
        raise GraphError(
            f"{block.type} has no PyTorch export yet; export to numpy (engine "
            "code) instead, or replace the block",
            block=block.id,
        )
    return tb


def init_methods(block: Block) -> list[tuple[str, str, dict[str, Any]]]:
    """(engine parameter name, method, its settings): how the engine initialises each parameter
    (the same ``init_rule`` the layer's ``init_param`` draws from)."""
    layer = _layer(block)
    return [
        (key, *layer.init_rule(key, shape))
        for key, shape in layer.param_shapes(block.in_shape).items()
    ]
