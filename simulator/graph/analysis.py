"""Pure analysis functions over a computation graph (networkx.DiGraph of ops).

>>> from simulator.graph.build import load_model
>>> g = load_model("gpt2", seq_len=128)
>>> total_params(g)
124439808
"""
from __future__ import annotations

from typing import Iterable

import networkx as nx

from simulator.errors import InputError


def check_dag(g: nx.DiGraph, source: str | None = None) -> None:
    """Raise InputError naming a cycle when `g` is not a directed acyclic graph."""
    if nx.is_directed_acyclic_graph(g):
        return
    cycle = [u for u, _ in nx.find_cycle(g)]
    shown = " -> ".join(cycle[:6]) + (" -> ..." if len(cycle) > 6 else "") + f" -> {cycle[0]}"
    raise InputError(f"the computation graph has a cycle: {shown}", source=source or g.graph.get("name"),
                     expected="an acyclic graph (each tensor produced before it is used)")


def _ops(g: nx.DiGraph, phase: str | None = None, kinds: Iterable[str] | None = None):
    kinds = frozenset(kinds) if kinds is not None else None
    for _, a in g.nodes(data=True):
        if (phase is None or a["phase"] == phase) and (kinds is None or a["kind"] in kinds):
            yield a


def total_params(g: nx.DiGraph) -> int:
    """Parameters of the model (owned by forward ops; shared weights counted once)."""
    return sum(a["params"] for a in _ops(g, "forward"))


def total_flops(g: nx.DiGraph, phase: str | None = None, kinds: Iterable[str] | None = None) -> float:
    """FLOPs of all ops, or of one phase (forward, backward, recompute, optimizer) and/or kinds."""
    return float(sum(a["flops"] for a in _ops(g, phase, kinds)))


def total_bytes(g: nx.DiGraph, phase: str | None = None) -> float:
    """Bytes read plus written by all ops (or one phase), each op on its own (no fusion)."""
    return float(sum(a["bytes_read"] + a["bytes_written"] for a in _ops(g, phase)))


def layer_table(g: nx.DiGraph) -> list[dict]:
    """One row per layer, in execution order; ops outside layers are grouped by the id prefix
    before the first dot (embed, stem, final_norm, lm_head, loss).

    Row keys: layer (int or None), name, ops, params, forward_flops, flops (all phases), bytes.
    """
    rows: dict[object, dict] = {}
    for n in nx.topological_sort(g):
        a = g.nodes[n]
        layer = a["layer"]
        key = ("L", layer) if layer is not None else ("op", _outer_name(a))
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"layer": layer, "name": f"L{layer}" if layer is not None else key[1],
                               "ops": 0, "params": 0, "forward_flops": 0.0, "flops": 0.0, "bytes": 0.0}
        row["ops"] += 1
        row["flops"] += a["flops"]
        row["bytes"] += a["bytes_read"] + a["bytes_written"]
        if a["phase"] == "forward":
            row["params"] += a["params"]
            row["forward_flops"] += a["flops"]
    return list(rows.values())


def _outer_name(a: dict) -> str:
    """Row of an op outside layers: its id up to the first dot ("stem.conv" -> "stem",
    "embed.ln" -> "embed"), so backward/recompute/optimizer ops join their forward op."""
    return a["id"].split(".", 1)[0]


def critical_path(g: nx.DiGraph, weight: str = "flops") -> tuple[float, list[str]]:
    """Longest path through the DAG where each node weighs `g.nodes[n][weight]`.

    A lower bound of the makespan on any number of devices (DESIGN.md 4).
    """
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    nodes = g.nodes
    for n in nx.topological_sort(g):
        w = float(nodes[n].get(weight, 0.0) or 0.0)
        p_best, p = 0.0, None
        for u in g.predecessors(n):
            if best[u] > p_best or p is None:
                p_best, p = best[u], u
        best[n] = p_best + w
        prev[n] = p
    if not best:
        return 0.0, []
    end = max(best, key=best.__getitem__)
    path = [end]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]])
    return best[end], path[::-1]


def _holds_activation(a: dict) -> bool:
    return a["phase"] != "optimizer" and not a["id"].endswith(".bwd_weight")


def peak_activation_bytes(g: nx.DiGraph, order: list[str] | None = None) -> float:
    """Peak bytes of live activations over a topological order (default: networkx's).

    Each op's output is live from the op until its last consumer has run.
    Weight gradients and optimizer state are not activations and are excluded.
    """
    order = order if order is not None else list(nx.topological_sort(g))
    pos = {n: i for i, n in enumerate(order)}
    free_at: dict[int, float] = {}
    nodes = g.nodes
    live = peak = 0.0
    for i, n in enumerate(order):
        a = nodes[n]
        if _holds_activation(a):
            size = a["bytes_written"]
            last = max((pos[v] for v in g.successors(n)), default=i)
            live += size
            peak = max(peak, live)
            free_at[last] = free_at.get(last, 0.0) + size
        live -= free_at.pop(i, 0.0)
    return peak
