"""The Layer contract every block follows (CS231n / Chainer style: forward and backward by hand).

A layer is made from its settings, then ``build(in_shape, rng)`` checks the input shape and
creates its parameters (PyTorch layouts, float32). ``forward`` keeps on ``self._cache`` only what
``backward`` needs; ``backward`` fills ``self.grads[k]`` for every ``k`` in ``self.params`` and
returns the gradient with respect to the input.

Rules the Model and the optimizers rely on:
- ``params`` arrays are never rebound after ``build`` (optimizers update them in place) but by
  the Model (``astype``, ``move_params``): a layer reads them from ``params`` at each call;
  ``grads`` entries may be rebound by ``backward``.
- Computation follows the dtype of the input and parameters (float32 in training, float64 in
  gradient checks via ``astype``).
- Multi-input layers (``arity`` max > 1) take and return lists; a layer with optional extra
  inputs (``arity`` (1, k): the recurrent blocks' initial state) gets a bare array while only
  its first input is wired (``takes_list``).
- Shapes exclude the batch axis.

A new block type is one class (tests/test_new_block_type.py makes one up): ``type_name``,
``options``, ``output_shape``, ``param_shapes``, ``forward``, ``backward``; then what the app
asks of it, each with a default that fits most layers: ``family`` and ``starter`` (palette),
``summary`` (canvas), ``input_problem``, ``grows_input`` and ``param_note`` (analysis and its
Summary), ``links`` and ``bind`` (a setting naming another block whose state it reads:
analysis checks the pair, the Model connects it, the canvas draws a dashed link), ``macs``,
``whole_batch`` and ``batch_statistics`` (splitting a step over processes), ``recurrent``,
``shows_filters`` and ``shows_alignment`` (training panels), ``init_rule`` (engine and exported
starts), ``to_torch`` (PyTorch export). A class in engine.layers registers as it is defined;
one made elsewhere calls ``register(cls)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.errors import ShapeError
from engine.init import initialize
from engine.settings import INITS, Opt, check_spec

Shape = tuple[int, ...]

# The families a layer class may name (``Layer.family``), in the palette's order (Neural Network
# Console and Deep Network Designer group the same way), with each one's colour on the canvas.
FAMILIES = {
    "Input": "#2e7d32",
    "Convolution": "#1565c0",
    "Pooling": "#00838f",
    "Dense": "#6a1b9a",
    "Recurrent": "#d84315",
    "Normalisation and regularisation": "#5d4037",
    "Merge": "#ad1457",
    "Activation": "#9e7c00",
    "Reshape": "#455a64",
}

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


@dataclass
class TorchBlock:
    """A block as PyTorch source (see ``Layer.to_torch``; engine.export writes it out)."""

    # constructor source, e.g. "nn.Linear(64, 10)", or (class, [argument sources..., last
    # argument's value]) when it may need several lines; None: no module
    module: str | tuple | None
    forward: str  # expression; "{m}" is the module (self.<attr>), "{0}", "{1}"... the inputs
    helpers: dict[str, str] = field(default_factory=dict)  # class name -> its source
    names: dict[str, str] = field(default_factory=dict)  # engine name -> module's name
    init_after: list[str] = field(default_factory=list)  # lines, "{m}" = model.<attr>
    # name -> block id: forward may use "{name}" (that block's output) and "{name_in}" (its
    # first input's), e.g. MaxUnpool2D's pool
    refs: dict[str, str] = field(default_factory=dict)


def code(value: Any) -> str:
    """``value`` as a Python literal for generated code (engine.export.naming.literal)."""
    from engine.export.naming import literal  # engine.export imports the layers: not at the top

    return literal(value)


def torch_size(v: Any) -> str:
    """A size or pair as a PyTorch argument: 5 -> '5', [2, 3] -> '(2, 3)'."""
    a, b = (v, v) if isinstance(v, int) else (v[0], v[1])
    return str(int(a)) if a == b else f"({int(a)}, {int(b)})"


def shape_text(shape: Any) -> str:
    """(6, 28, 28) -> '6×28×28'; None -> '?'; several shapes joined by ' | '."""
    if shape is None:
        return "?"
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return " | ".join(shape_text(s) for s in shape)
    return "×".join(str(int(d)) for d in shape) if len(shape) else "scalar"


def size_text(v: Any) -> str:
    """A kernel or window size for a summary: 5 -> '5x5', [2, 3] -> '2x3'."""
    return "x".join(str(p) for p in v) if isinstance(v, (list, tuple)) else f"{v}x{v}"


def stride_text(v: Any) -> str:
    return "s" + ",".join(str(p) for p in v) if isinstance(v, (list, tuple)) else f"s{v}"


def pad_text(v: Any) -> str:
    if v in ("same", "valid"):
        return f"p {v}"
    return "p" + ",".join(str(p) for p in v) if isinstance(v, (list, tuple)) else f"p{v}"


class Layer:
    """Base class. Subclasses set ``type_name``, ``options`` and implement the shape/maths hooks.

    What the rest of BlockProp knows about a block type, the class says itself (the palette,
    canvas, analysis, trainer, panels and export ask it; none of them lists type names):
    the declarations below, and the hooks ``summary``, ``input_problem``, ``macs``,
    ``init_rule`` and ``to_torch``.
    """

    type_name: ClassVar[str] = "Layer"
    family: ClassVar[str] = ""  # the palette's group and colour: one of FAMILIES, or a new one
    options: ClassVar[dict[str, Opt]] = {}
    has_weights: ClassVar[bool] = False
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # (min, max) number of inputs; None: any
    starter: ClassVar[dict[str, Any]] = {}  # settings of a new block from the palette
    recurrent: ClassVar[bool] = False  # scans a sequence (time gradients, BPTT panels)
    whole_batch: ClassVar[str] = ""  # why an output depends on the whole batch ("": it does not)
    # True: training reads sums over the whole batch, which the halves of a split step swap
    # through the layer's ``batch_sync`` (engine.batch_sync; BatchNorm)
    batch_statistics: ClassVar[bool] = False
    shows_filters: ClassVar[bool] = False  # its weight (F, C, *kernel) is drawn as filters
    # it keeps ``alignment`` (N, Tq, Tm), attention weights, after each forward (Attention panel)
    shows_alignment: ClassVar[bool] = False
    grows_input: ClassVar[bool] = False  # its kernel may be larger than its input
    reads_ids: ClassVar[bool] = False  # its input is integer ids (Embedding): no input gradient
    # its weight (classes, features) scores the features linearly (Dense): a class activation
    # map weighs the maps with it (engine.explain.cam)
    class_weights: ClassVar[bool] = False
    links: ClassVar[tuple[str, ...]] = ()  # settings naming a block whose state it reads
    # the lecture's formulas for it, TeX as matplotlib's mathtext reads it ("$...$" and text):
    # its "?" help page renders them (engine.layers.docs gathers the rest from the docstring)
    formulas: ClassVar[tuple[str, ...]] = ()

    registry: ClassVar[dict[str, type[Layer]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # The engine's own block types register as they are defined; others call register().
        if "type_name" in cls.__dict__ and cls.__module__.startswith("engine.layers."):
            register(cls)

    def __init__(self, name: str | None = None, **config: Any):
        self.name = name if name is not None else self.type_name.lower()
        self.config = check_spec(self.type_name, config, self.all_options(), block=self.name)
        self.check_settings()
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.in_shape: Any = None
        self.out_shape: Shape | None = None
        self._cache: Any = None

    # --- declarations -------------------------------------------------------------------------
    @classmethod
    def takes_list(cls, n_inputs: int) -> bool:
        """Whether ``forward`` gets a list (and ``backward`` returns one) with ``n_inputs``
        wired: always for multi-input layers (arity min > 1), never for single-input ones, and
        for optional extra inputs (arity (1, k)) only when one is wired."""
        lo, hi = cls.arity
        return hi != 1 and (lo > 1 or n_inputs > 1)

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

    @classmethod
    def summary(cls, cfg: dict) -> str:
        """The settings that identify a block at a glance on the canvas (Conv2D '6@5x5 s1 p2',
        Dense '120'), like PyTorch's ``extra_repr``. ``cfg`` is the full config, or, for a
        loaded block the layer refuses, what the file gave. This default: the first two
        simple settings."""
        parts = []
        for k, v in cfg.items():
            if k.startswith("init") or v is None or isinstance(v, (list, dict)):
                continue
            parts.append(f"{k} {v}")
            if len(parts) == 2:
                break
        return ", ".join(parts)

    def input_problem(self, in_shape: Any, source: str) -> tuple[str, dict | None] | None:
        """A common mistake in the input (e.g. an image into a Dense block) worth a specific
        message, and the one-click fix the analysis offers for it (or None); None if none."""
        return None

    def kept_scratch_bytes(self, in_shape: Any, training: bool) -> int:
        """Bytes the layer keeps whatever the batch, beyond its parameters, buffers and the
        activations engine.memory counts per sample (Conv2D: Winograd's kept input
        transform); the memory estimate adds them. 0 for most layers."""
        return 0

    def param_note(self, in_shape: Any) -> str:
        """A sentence the Summary adds under its table about this block's parameter count
        (e.g. where it differs from the lectures' formula); "" for none."""
        return ""

    def macs(self, in_shape: Any, out_shape: tuple) -> int:
        """Multiply-adds of one sample's forward pass (an estimate: each weight value is used
        once per output position, positions being the output's size over its channels)."""
        weights = sum(
            math.prod(s) for k, s in self.param_shapes(in_shape).items() if k.startswith("weight")
        )
        return weights * (math.prod(out_shape) // max(1, out_shape[0])) if weights else 0

    def bind(self, key: str, other: Layer) -> None:
        """Connect the block named by setting ``key`` (one of ``links``; MaxUnpool2D's pool),
        an upstream block whose ``in_shape`` and ``out_shape`` are known. Analysis and the
        Model call it before ``output_shape``; raise ShapeError or ConfigError (naming both
        blocks) if ``other`` does not fit."""

    def to_torch(self, in_shape: Any) -> TorchBlock | None:
        """The PyTorch module computing what this block computes, for input ``in_shape`` (a
        list of shapes for multi-input blocks; None for the Input); None: no PyTorch form."""
        return None

    # --- building ------------------------------------------------------------------------------
    def default_init(self, key: str) -> str:
        """The layer's usual initialiser for ``key`` (Keras's: Glorot weights, zero bias)."""
        return "zeros" if key.startswith("bias") else "xavier_uniform"

    def init_rule(self, key: str, shape: Shape) -> tuple[str, dict[str, Any]]:
        """(initialiser, its settings) for parameter ``key``: engine.init.initialize draws it
        here, and the PyTorch export's engine_init there, so both start alike."""
        # A chosen init applies to the weights; biases keep the layer's usual start (zeros),
        # except "zeros", which the lecture's zero-initialisation experiment applies to all.
        chosen = self.config.get("init")
        if chosen and (not key.startswith("bias") or chosen == "zeros"):
            method = chosen
        else:
            method = self.default_init(key)
        if method == "normal":
            return method, {"std": float(self.config["init_std"])}
        if method == "uniform":
            return method, {"limit": float(self.config["init_limit"])}
        return method, {}

    def init_param(self, key: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
        method, settings = self.init_rule(key, shape)
        return initialize(method, shape, rng, **settings)

    def build(self, in_shape: Any, rng: np.random.Generator | None = None) -> Layer:
        """Check ``in_shape``, create parameters and buffers; returns self."""
        if rng is None:
            rng = np.random.default_rng(0)
        if not (isinstance(in_shape, list) and in_shape and isinstance(in_shape[0], (list, tuple))):
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


def register(cls: type[Layer]) -> type[Layer]:
    """Make ``cls`` a block type (palette, graph files, analysis, training, export), keyed by its
    ``type_name``; returns ``cls``. The engine's own layers register as they are defined."""
    name = cls.__dict__.get("type_name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must set its own type_name to be a block type")
    other = Layer.registry.get(name)
    if other is not None and other is not cls:
        raise TypeError(f"block type {name!r} is already {other.__module__}.{other.__name__}")
    Layer.registry[name] = cls
    return cls
