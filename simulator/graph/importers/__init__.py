"""Importer registry: one module per model format, keyed by the graph's `source` kind.

Each importer is `build(spec, *, batch, seq_len, dtype, dims, options, training) -> nx.DiGraph`
returning a forward graph with `g.graph` filled in (see simulator.schema.graph).
`simulator.graph.build.load_model` picks the importer from the reference given.
"""
from __future__ import annotations

from typing import Callable

import networkx as nx

Importer = Callable[..., nx.DiGraph]
IMPORTERS: dict[str, Importer] = {}


def register_importer(kind: str) -> Callable[[Importer], Importer]:
    """Decorator: register an importer under `kind` (config, cnn, onnx, ...)."""
    def deco(fn: Importer) -> Importer:
        IMPORTERS[kind] = fn
        return fn
    return deco


def get_importer(kind: str) -> Importer:
    from simulator.graph.importers import _builtin  # noqa: F401 - registers the built-in importers
    from simulator.errors import UnknownNameError
    if kind not in IMPORTERS:
        raise UnknownNameError("importer", kind, IMPORTERS)
    return IMPORTERS[kind]
