"""engine.Model: a checked graph compiled to layers, run forward and backward in topological order.

Forward keeps a block's output only until its last successor has read it (each layer caches on
itself what its own backward needs). Backward walks the blocks in reverse order; where a
block's output feeds several successors, the gradients they send back are summed (the
multivariate chain rule: dL/dh = sum over successors s of dL/ds * ds/dh).

Every layer draws its initial weights from its own Generator, seeded by (seed, crc32(block id)),
so adding or removing one block leaves the initial weights of all the others unchanged.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import inference
from engine.analysis import Analysis, analyze
from engine.analysis_checks import MAX_NAMED
from engine.errors import ConfigError, GraphError
from engine.layers import LAYER_TYPES
from engine.layers.base import Layer

if TYPE_CHECKING:
    from engine.graph import Graph


def layer_rng(seed: int, block_id: str) -> np.random.Generator:
    """The Generator that initialises block ``block_id``: independent of every other block."""
    return np.random.default_rng([seed, zlib.crc32(block_id.encode("utf-8"))])


def check_seed(seed: Any) -> int:
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"'seed' must be a non-negative integer, got {seed!r}")
    return seed


class Model:
    """The layers of a checked graph. Build with ``build_model(graph, seed)``.

    Shapes: x (N, *input_shape) -> out (N, *output_shape)
    Parameter, gradient and buffer names are ``"<block id>.<name>"`` (e.g. ``"c1.weight"``).
    """

    def __init__(
        self,
        graph: Graph,
        seed: int = 0,
        analysis: Analysis | None = None,
        batch_size: int | None = None,
        training: bool = False,
    ):
        seed = check_seed(seed)
        if graph.has_instances():  # modules run as their blocks, named "instance/inner"
            from engine.modules.expand import flatten

            a = analysis if analysis is not None else analyze(graph, batch_size, training=training)
            graph, analysis = (flatten(graph).graph, a.flat) if a.ok else (graph, a)
        a = analysis if analysis is not None else analyze(graph, batch_size, training=training)
        if not a.ok:
            n = len(a.problems)
            lines = "; ".join(str(p) for p in a.problems[:MAX_NAMED])
            if n > MAX_NAMED:
                lines += f"; and {n - MAX_NAMED:,} more"
            raise GraphError(
                f"the graph has {n:,} problem{'s' * (n != 1)}: {lines}",
                block=a.problems[0].block if n == 1 else None,
            )
        self.analysis = a
        self.name = graph.name
        self.seed = seed
        self.input_id: str = a.input_id
        self.output_id: str = a.output_id
        self.input_shape: tuple = a.shapes[a.input_id]
        self.output_shape: tuple = a.shapes[a.output_id]
        # Extra outputs (engine.heads): block -> loss weight; their outputs of the last forward.
        self.heads: dict[str, float] = dict(a.heads)
        self.head_outputs: dict[str, np.ndarray] = {}
        self.layers: dict[str, Layer] = {}
        self.inputs: dict[str, list[str]] = {}
        for n in a.order:
            layer = LAYER_TYPES[a.types[n]](name=n, **graph.config_of(n))
            for key in type(layer).links:  # MaxUnpool2D reads its (upstream, built) pool
                layer.bind(key, self.layers[layer.config[key]])
            layer.build(a.in_shapes[n], layer_rng(seed, n))
            self.layers[n] = layer
            self.inputs[n] = graph.inputs_of(n)
        self._multi = {
            n: type(layer).takes_list(len(self.inputs[n])) for n, layer in self.layers.items()
        }
        # How many successors read each block's output (to free it after the last one).
        self._readers = {n: 0 for n in self.layers}
        for preds in self.inputs.values():
            for p in preds:
                self._readers[p] += 1
        self._params = {
            f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.params.items()
        }
        # the 1-D array every parameter is a consecutive piece of, in order (move_params)
        self.flat_params: np.ndarray | None = None
        self.kept: dict[str, np.ndarray] = {}  # see forward's and backward's ``keep``
        self.kept_grads: dict[str, np.ndarray] = {}
        self._plans: dict[tuple[str, ...], dict] = {}  # predict's, by keep (engine.inference)
        self._predicted = False  # the last forward pass was predict's: no backward can follow

    # --- state ---------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        """Trainable arrays by name; updated in place by optimizers (rebound only by
        ``astype`` and ``move_params``)."""
        return self._params

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Gradients by name, read afresh from the layers (backward may rebind them)."""
        return {f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.grads.items()}

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the weights (BatchNorm running statistics)."""
        return {f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.buffers.items()}

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self._params.values()))

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer (what a weights file holds)."""
        return {k: v.copy() for k, v in {**self.params, **self.buffers}.items()}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy ``arrays`` into the parameters and buffers in place (names and shapes must fit).
        Buffers are set on the layer's dict, since a layer may rebind them."""
        for n, layer in self.layers.items():
            for k, v in layer.params.items():
                name = f"{n}.{k}"
                if name in arrays:
                    v[...] = arrays[name]
            for k, v in layer.buffers.items():
                name = f"{n}.{k}"
                if name in arrays:
                    layer.buffers[k] = np.array(arrays[name], dtype=v.dtype)

    def move_params(self, arrays: dict[str, np.ndarray], flat: np.ndarray | None = None) -> None:
        """Make ``arrays`` (by name, the parameters' shapes) the parameters themselves, their
        current values copied in first: engine.parallel keeps them in memory its helper process
        maps too. Unlike ``set_state`` this rebinds: arrays taken from ``params`` before are no
        longer the model's. ``flat``: the 1-D array that ``arrays``, one for every parameter,
        are consecutive pieces of in ``params``' order (kept as ``flat_params``)."""
        for n, layer in self.layers.items():
            for k, v in layer.params.items():
                a = arrays.get(f"{n}.{k}")
                if a is not None:
                    if a.shape != v.shape or a.dtype != v.dtype:
                        raise ValueError(f"move_params: {n}.{k} is {v.dtype}{v.shape}")
                    a[...] = v
                    layer.params[k] = a
        self._params = {
            f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.params.items()
        }
        self.flat_params = flat

    def astype(self, dtype: Any) -> Model:
        """Convert every layer (float64 for gradient checks). Returns self."""
        for layer in self.layers.values():
            layer.astype(dtype)
        self._params = {
            f"{n}.{k}": v for n, layer in self.layers.items() for k, v in layer.params.items()
        }
        self.flat_params = None
        return self

    # --- computing -----------------------------------------------------------------------------
    def forward(
        self, x: np.ndarray, training: bool = False, keep: tuple[str, ...] = ()
    ) -> np.ndarray:
        """Run every block in topological order; returns the output block's output. The
        outputs of the blocks in ``keep`` stay in ``self.kept`` (explanations read them)."""
        return self._walk(x, training, keep_all=False, keep=keep)[0]

    def predict(self, x: np.ndarray, keep: tuple[str, ...] = ()) -> np.ndarray:
        """The evaluation-mode output for x when no backward pass follows (Try it, the
        explanations without gradients, validation): forward(x, training=False)'s values up
        to rounding, with a convolution's BatchNorm and ReLU done inside its own pass
        (engine.inference). ``keep`` as forward's. ``backward`` may not follow it."""
        keep = tuple(keep)  # the plan's key (a list from a caller too)
        fused = self._plans.get(keep)
        if fused is None:
            fused = self._plans[keep] = inference.plan(self, keep)
        out = self._walk(x, False, keep_all=False, keep=keep, fused=fused)[0]
        self._predicted = True
        return out

    def block_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Forward ``x`` (evaluation mode) and keep every block's output (the app's panels).

        Shapes: x (N, *input_shape) -> {block id: (N, *out_shape)}.
        """
        return self._walk(x, False, keep_all=True)[1]

    def _walk(
        self,
        x: np.ndarray,
        training: bool,
        keep_all: bool,
        keep: tuple[str, ...] = (),
        fused: dict | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        self.kept = {}
        self.head_outputs = {}
        self._predicted = False
        outs: dict[str, np.ndarray] = {}
        left = dict(self._readers)
        out = main = x
        for n, layer in self.layers.items():
            preds = self.inputs[n]
            if fused and n in fused:  # predict: done by or with the blocks around it
                step = fused[n]
                if step is None:  # inside the block before: its output is this block's
                    out = outs[preds[0]]
                else:
                    ins = [outs[p] for p in preds] if self._multi[n] else outs[preds[0]]
                    out = inference.run(self, layer, ins, step)
            elif not preds:
                out = layer.forward(x, training=training)
            elif self._multi[n]:
                out = layer.forward([outs[p] for p in preds], training=training)
            else:
                out = layer.forward(outs[preds[0]], training=training)
            for p in preds:
                left[p] -= 1
                if left[p] == 0 and not keep_all:
                    del outs[p]
            if n in keep:
                self.kept[n] = out
            if left[n] or keep_all:
                outs[n] = out
            if n == self.output_id:
                main = out
            elif n in self.heads:
                self.head_outputs[n] = out
        return main, outs

    def backward(
        self,
        dout: np.ndarray,
        input_grad: bool = True,
        keep: tuple[str, ...] = (),
        heads: dict[str, np.ndarray] | None = None,
        weights: bool = True,
    ) -> Any:
        """Backpropagate ``dout`` (gradient of the loss w.r.t. the output); fills every layer's
        grads and returns the gradient w.r.t. the Input's data, or None with
        ``input_grad=False`` (training needs no gradient for the data, and the first
        convolution then skips computing it, as PyTorch does). The gradients with respect to
        the outputs of the blocks in ``keep`` stay in ``self.kept_grads`` (Grad-CAM).
        ``heads`` gives the gradients w.r.t. the extra outputs (engine.heads), weighted:
        backward starts from every one of them. ``weights=False``: the caller reads no weight
        gradients: the convolutions skip theirs (saliency, SmoothGrad), and with
        ``input_grad=False`` the walk stops as soon as every block in ``keep`` has its
        gradient (Grad-CAM of a late block: the few blocks after it, not the whole net); what
        is not computed keeps its old value."""
        if self._predicted:
            raise RuntimeError(
                "backward needs forward's caches: Model.predict keeps none (use forward)"
            )
        self.kept_grads = {}
        douts: dict[str, np.ndarray] = {self.output_id: dout, **(heads or {})}
        dx = None
        wanted = set(keep)  # kept blocks whose gradient has not been reached yet
        for n in reversed(self.layers):
            d = douts.pop(n, None)
            if d is None:  # nothing flows back here (integer ids into an Embedding)
                continue
            if n in keep:  # complete: every block reading n came before it in this walk
                self.kept_grads[n] = d
                wanted.discard(n)
            if not (weights or input_grad or wanted):
                break
            layer = self.layers[n]
            if self.inputs[n] == [self.input_id] and hasattr(layer, "needs_input_grad"):
                layer.needs_input_grad = input_grad
            if hasattr(layer, "needs_weight_grad"):  # set at every call: training wants them
                layer.needs_weight_grad = weights
            dn = layer.backward(d)
            preds = self.inputs[n]
            if not preds:  # the Input
                dx = dn
                continue
            parts = dn if self._multi[n] else [dn]
            for p, dp in zip(preds, parts, strict=True):
                if dp is None:
                    continue
                # A fresh array, never +=: layers may hand back the same array twice (Add).
                douts[p] = douts[p] + dp if p in douts else dp
        return dx

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward(x, training=training)

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, {len(self.layers)} blocks, {self.n_params:,} params, "
            f"{self.input_shape} -> {self.output_shape})"
        )


def build_model(
    graph: Graph, seed: int = 0, batch_size: int | None = None, training: bool = False
) -> Model:
    """Compile ``graph`` to a Model; GraphError lists the problems if ``analyze`` finds any.

    Its memory check is for running the model (inference) at ``batch_size``, by default the
    batch of the graph's training settings; ``training=True`` checks training at that batch
    (the Trainer builds its model so)."""
    return Model(graph, seed=seed, batch_size=batch_size, training=training)
