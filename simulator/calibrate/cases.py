"""The graphs `capplan validate` runs for real: an MLP, a transformer block, a small CNN.

All three are built by the graph layer's own builders (the same code the
simulator uses for bundled models): the MLP and the CNN with the sequential
spec builder, the transformer through `load_model` from an inline GPT-2-style
config with one block. fp32, sized so one forward pass takes milliseconds on
a CPU; `scale` multiplies the batch (a GPU gets bigger cases).
"""
from __future__ import annotations

from typing import Callable

import networkx as nx

from simulator.errors import UnknownNameError


def mlp(scale: int = 1) -> nx.DiGraph:
    """4-layer ReLU MLP, 1024 wide, batch 256 (x scale)."""
    from simulator.graph.importers.cnn import build_sequential
    spec = [("fc", 1024), ("relu",), ("fc", 1024), ("relu",), ("fc", 1024), ("relu",), ("fc", 256)]
    g = build_sequential(spec, input_shape=(256 * scale, 1024), dt=4.0, dtype="fp32")
    g.graph.update(name="mlp", source="cnn", dtype="fp32", batch=256 * scale)
    return g


def cnn(scale: int = 1) -> nx.DiGraph:
    """Small VGG-style CNN on 16 (x scale) 32x32 RGB images: 5 3x3 convs, 2 max pools, GAP, fc."""
    from simulator.graph.importers.cnn import build_sequential
    spec = [("conv", 32, 3, 1, 1), ("relu",), ("conv", 32, 3, 1, 1), ("relu",), ("maxpool", 2, 2),
            ("conv", 64, 3, 1, 1), ("relu",), ("conv", 64, 3, 1, 1), ("relu",), ("maxpool", 2, 2),
            ("conv", 128, 3, 1, 1), ("relu",), ("gap",), ("fc", 10)]
    g = build_sequential(spec, input_shape=(16 * scale, 3, 32, 32), dt=4.0, dtype="fp32")
    g.graph.update(name="cnn-small", source="cnn", dtype="fp32", batch=16 * scale)
    return g


def transformer_block(scale: int = 1) -> nx.DiGraph:
    """One GPT-2 block (h 512, 8 heads, GELU MLP 2048) on 256 tokens x scale, with embedding,
    final norm, a 2048-token vocabulary head and the loss."""
    from simulator.graph.build import load_model
    config = {"model_type": "gpt2", "n_embd": 512, "n_layer": 1, "n_head": 8, "n_inner": 2048,
              "vocab_size": 2048, "n_positions": 512}
    return load_model(config, seq_len=256, batch=scale, dtype="fp32")


CASES: dict[str, Callable[[int], nx.DiGraph]] = {
    "mlp": mlp,
    "transformer-block": transformer_block,
    "cnn-small": cnn,
}


def build_case(name: str, scale: int = 1) -> nx.DiGraph:
    if name not in CASES:
        raise UnknownNameError("validation case", name, CASES, field="--case")
    return CASES[name](scale)
