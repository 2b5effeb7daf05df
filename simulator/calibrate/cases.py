"""The graphs `capplan validate` runs for real: an MLP, a transformer block, a small CNN.

All three are built by the graph layer's own builders (the same code the
simulator uses for bundled models): the MLP and the CNN with the sequential
spec builder, the transformer block as layer 0 of the graph `load_model`
builds from an inline GPT-2-style config. fp32, sized so one forward pass takes milliseconds on
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
    """Layer 0 of a GPT-2-style model (h 2048, 16 heads, GELU MLP 8192) on 128 tokens x scale:
    the unit the simulator costs once and reuses for every identical layer."""
    from simulator.graph.build import load_model
    config = {"model_type": "gpt2", "n_embd": 2048, "n_layer": 1, "n_head": 16, "n_inner": 8192,
              "vocab_size": 1024, "n_positions": 512}
    g = load_model(config, seq_len=128, batch=scale, dtype="fp32")
    block = g.subgraph([n for n, a in g.nodes(data=True) if a.get("layer") == 0]).copy()
    block.graph.update(g.graph, name="transformer-block")
    return block


CASES: dict[str, Callable[[int], nx.DiGraph]] = {
    "mlp": mlp,
    "transformer-block": transformer_block,
    "cnn-small": cnn,
}


def build_case(name: str, scale: int = 1) -> nx.DiGraph:
    if name not in CASES:
        raise UnknownNameError("validation case", name, CASES, field="--case")
    return CASES[name](scale)
