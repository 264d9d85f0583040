"""Shared by the PyTorch export's tests (test_export_torch.py, test_export_torch_data.py): the
golden graphs, an exported module imported from its written file, an engine model with
perturbed biases and statistics, a sample input, a small autoencoder graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.export import export_code

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "golden" / "graphs"
PRESETS = sorted((ROOT / "presets").glob("*.json"))


def graph(name: str, **training) -> engine.Graph:
    g = engine.load_graph(GRAPHS / f"{name}.json")
    if training:
        g.set_meta("training", {**g.training, **training})
    return g


def exported(g: engine.Graph, tmp_path: Path, weights: str | None = None, name: str = "net"):
    """Export ``g`` to PyTorch, write it, import it; returns the module."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = tmp_path / f"{name}.py"
    path.write_text(export_code(g, "pytorch", weights=weights), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def perturbed_model(g: engine.Graph, seed: int = 1) -> engine.Model:
    """An engine model whose biases and BatchNorm statistics are not at their start values,
    so a wrong mapping of any of them shows."""
    m = engine.build_model(g, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in m.layers.values():
        for k, v in layer.params.items():
            if k.startswith("bias") or v.ndim == 1:
                v[...] = rng.uniform(-0.5, 0.5, v.shape)
        if "running_mean" in layer.buffers:
            mean, var = layer.buffers["running_mean"], layer.buffers["running_var"]
            mean[...] = rng.normal(size=mean.shape)
            var[...] = rng.uniform(0.5, 2.0, var.shape)
    return m


def sample_input(m: engine.Model, n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    emb = [layer for layer in m.layers.values() if layer.type_name == "Embedding"]
    if emb:
        return rng.integers(0, emb[0].config["num_embeddings"], (n, *m.input_shape))
    return rng.standard_normal((n, *m.input_shape)).astype(np.float32)


def autoencoder() -> engine.Graph:
    return engine.Graph.from_dict(
        {
            "format": "blockprop-graph",
            "version": 1,
            "nodes": [
                {"id": "in", "type": "Input", "config": {"shape": [64]}},
                {"id": "code", "type": "Dense", "config": {"units": 8}},
                {"id": "out", "type": "Dense", "config": {"units": 64}},
            ],
            "edges": [
                {"source": "in", "target": "code", "target_port": 0},
                {"source": "code", "target": "out", "target_port": 0},
            ],
            "training": {
                "dataset": {"name": "digits", "flatten": True, "target": "input"},
                "loss": "mse",
                "optimizer": {"name": "adam", "lr": 0.01},
            },
        }
    )
