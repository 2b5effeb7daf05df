"""Graph build speed and memory: GPT-3 175B training graphs and a synthetic 100k-op graph.

Run: python benchmarks/bench_graph.py   (prints a table; not part of the test run)
Time is the best of `--repeat` runs (wall clock); memory is tracemalloc's peak during one run.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import networkx as nx
import numpy as np

from simulator.graph.analysis import critical_path, peak_activation_bytes, total_flops
from simulator.graph.build import load_model
from simulator.graph.ops import add_op, make_op


def synthetic(n_ops: int, seed: int = 0) -> nx.DiGraph:
    """A chain of n_ops matmul/elementwise ops with random skip edges (residual-like), seeded."""
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    skips = rng.integers(2, 32, size=n_ops)
    flops = rng.uniform(1e6, 1e9, size=n_ops)
    for i in range(n_ops):
        deps = [f"op{i - 1}"] if i else []
        if i >= skips[i] and i % 4 == 0:
            deps.append(f"op{i - skips[i]}")
        kind = "matmul" if i % 3 == 0 else "elementwise"
        add_op(g, make_op(f"op{i}", kind, layer=i // 16, flops=float(flops[i]), bytes_written=4096.0), deps)
    return g


def measure(fn, repeat: int):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, best, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ops", type=int, default=100_000)
    args = ap.parse_args()
    cases = [
        ("gpt3-175b forward", lambda: load_model("gpt3-175b", seq_len=2048)),
        ("gpt3-175b training, recompute none", lambda: load_model("gpt3-175b", training=True)),
        ("gpt3-175b training, selective", lambda: load_model("gpt3-175b", training=True, recompute="selective")),
        ("gpt3-175b training, full", lambda: load_model("gpt3-175b", training=True, recompute="full")),
        ("mixtral-8x7b training, selective",
         lambda: load_model("mixtral-8x7b", training=True, recompute="selective")),
        (f"synthetic {args.ops:,} ops", lambda: synthetic(args.ops)),
    ]
    rows = []
    graphs = {}
    for name, fn in cases:
        g, t, peak = measure(fn, args.repeat)
        graphs[name] = g
        rows.append((name, g.number_of_nodes(), g.number_of_edges(), t, peak))
    big = graphs[f"synthetic {args.ops:,} ops"]
    for name, fn in (("  critical_path", lambda: critical_path(big)),
                     ("  peak_activation_bytes", lambda: peak_activation_bytes(big)),
                     ("  total_flops", lambda: total_flops(big))):
        _, t, peak = measure(fn, args.repeat)
        rows.append((name + f" ({args.ops:,} ops)", big.number_of_nodes(), big.number_of_edges(), t, peak))
    print(f"{'case':52s} {'ops':>8s} {'edges':>8s} {'time_s':>8s} {'peak_MiB':>9s}")
    for name, n, e, t, peak in rows:
        print(f"{name:52s} {n:8d} {e:8d} {t:8.3f} {peak / 2**20:9.1f}")


if __name__ == "__main__":
    main()
