"""The Layer contract every block follows (CS231n / Chainer style: forward and backward by hand).

A layer is made from its settings, then ``build(in_shape, rng)`` checks the input shape and
creates its parameters (PyTorch layouts, float32). ``forward`` keeps on ``self._cache`` only what
``backward`` needs; ``backward`` fills ``self.grads[k]`` for every ``k`` in ``self.params`` and
returns the gradient with respect to the input.

Rules the Model and the optimizers rely on:
- ``params`` arrays are never rebound after ``build`` (optimizers update them in place);
  ``grads`` entries may be rebound by ``backward``.
- Computation follows the dtype of the input and parameters (float32 in training, float64 in
  gradient checks via ``astype``).
- Multi-input layers (``arity`` max > 1) take and return lists.
- Shapes exclude the batch axis.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.errors import ShapeError
from engine.init import initialize
from engine.layers.options import INITS, Opt, check_config

Shape = tuple[int, ...]

INIT_OPTIONS = {
    "init": Opt(
        "choice",
        default=None,
        choices=INITS,
        nullable=True,
        doc="weight initialiser (empty: the layer's usual one)",
    ),
    "init_std": Opt(
        "float",
        default=0.01,
        min=0.0,
        min_exclusive=True,
        doc="standard deviation for init 'normal'",
    ),
    "init_limit": Opt(
        "float",
        default=0.05,
        min=0.0,
        min_exclusive=True,
        doc="limit a of U(-a, a) for init 'uniform'",
    ),
}


class Layer:
    """Base class. Subclasses set ``type_name``, ``options`` and implement the shape/maths hooks."""

    type_name: ClassVar[str] = "Layer"
    family: ClassVar[str] = ""
    options: ClassVar[dict[str, Opt]] = {}
    has_weights: ClassVar[bool] = False
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # (min, max) number of inputs; None: any

    registry: ClassVar[dict[str, type[Layer]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "type_name" in cls.__dict__:
            Layer.registry[cls.type_name] = cls

    def __init__(self, name: str | None = None, **config: Any):
        self.name = name if name is not None else self.type_name.lower()
        self.config = check_config(self.type_name, self.name, config, self.all_options())
        self.check_settings()
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.in_shape: Any = None
        self.out_shape: Shape | None = None
        self._cache: Any = None

    # --- declarations -------------------------------------------------------------------------
    @classmethod
    def all_options(cls) -> dict[str, Opt]:
        return {**cls.options, **(INIT_OPTIONS if cls.has_weights else {})}

    def check_settings(self) -> None:
        """Cross-field checks of ``self.config`` that need no input shape (raise ConfigError)."""

    def output_shape(self, in_shape: Any) -> Shape:
        """Output shape (without batch) for ``in_shape``; raises ShapeError naming the block."""
        return tuple(in_shape)

    def param_shapes(self, in_shape: Any) -> dict[str, Shape]:
        """Shapes of the trainable parameters, PyTorch layouts. Empty for parameter-free layers."""
        return {}

    def buffer_shapes(self, in_shape: Any) -> dict[str, Shape]:
        """Shapes of non-trainable state saved with the weights (BatchNorm running stats)."""
        return {}

    def param_count(self, in_shape: Any) -> int:
        """Number of trainable parameters (layers with masked weights override this)."""
        return int(sum(int(np.prod(s)) for s in self.param_shapes(in_shape).values()))

    def get_config(self) -> dict:
        """The hyperparameters, JSON-ready (defaults included)."""
        return dict(self.config)

    # --- building ------------------------------------------------------------------------------
    def default_init(self, key: str) -> str:
        """The layer's usual initialiser for ``key`` (Keras's: Glorot weights, zero bias)."""
        return "zeros" if key.startswith("bias") else "xavier_uniform"

    def init_param(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        # A chosen init applies to the weights; biases keep the layer's usual start (zeros),
        # except "zeros", which the lecture's zero-initialisation experiment applies to all.
        chosen = self.config.get("init")
        if chosen and (not key.startswith("bias") or chosen == "zeros"):
            method = chosen
        else:
            method = self.default_init(key)
        return initialize(
            method,
            shape,
            rng,
            std=self.config.get("init_std", 0.01),
            limit=self.config.get("init_limit", 0.05),
        )

    def build(self, in_shape: Any, rng: np.random.Generator | None = None) -> Layer:
        """Check ``in_shape``, create parameters and buffers; returns self."""
        if rng is None:
            rng = np.random.default_rng(0)
        if self.arity[1] == 1:
            in_shape = tuple(int(d) for d in in_shape)
        else:
            in_shape = [tuple(int(d) for d in s) for s in in_shape]
        self.out_shape = tuple(self.output_shape(in_shape))
        self.in_shape = in_shape
        shapes = self.param_shapes(in_shape)
        self.params = {k: self.init_param(k, s, rng) for k, s in shapes.items()}
        self.after_init(rng)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {k: np.zeros(s, np.float32) for k, s in self.buffer_shapes(in_shape).items()}
        self.init_buffers()
        return self

    def after_init(self, rng: np.random.Generator) -> None:
        """Adjust freshly initialised params (e.g. LSTM forget-gate bias, connection masks)."""

    def init_buffers(self) -> None:
        """Set buffers' initial values (zeros unless overridden)."""

    def astype(self, dtype: Any) -> Layer:
        """Convert params, grads and buffers (float64 for gradient checks)."""
        for d in (self.params, self.grads, self.buffers):
            for k in d:
                d[k] = d[k].astype(dtype)
        return self

    # --- computing -----------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> None:
        """Raise ShapeError if ``x`` (with batch axis) does not match the built input shape."""
        if self.in_shape is not None and tuple(x.shape[1:]) != tuple(self.in_shape):
            raise ShapeError(
                f"{self.type_name} expects input of shape (N, {', '.join(map(str, self.in_shape))})"
                f", got {tuple(x.shape)}",
                block=self.name,
            )

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} does not define forward")

    def backward(self, dout: np.ndarray) -> Any:
        raise TypeError(f"{type(self).__name__} does not define backward")

    def zero_grads(self) -> None:
        for k in self.grads:
            self.grads[k][...] = 0

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({cfg}, name={self.name!r})"
