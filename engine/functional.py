"""Pure forward functions (no state, no gradients): conv2d, max_pool2d, avg_pool2d, ...

The layers in engine.layers call these for their forward passes.
"""

from __future__ import annotations
