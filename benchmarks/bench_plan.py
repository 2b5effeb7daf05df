"""Planner search speed: a 22B GPT (hidden 6144, 48 layers, 64 heads; bundled `megatron-22b`)
on 64 A100-SXM4-80GB with `parallelism: auto`.

Prints, as a table: the candidates of the search space (tp, pp, dp, micro-batch,
recompute, ZeRO stage, schedule with virtual stages, sequence parallelism), the
wall time of the vectorized analytic tier over all of them (median of repeats,
one process, one core), candidates per second, and for comparison the rate of
the scalar path (the training engine's `stage_costs` + closed form, one
candidate at a time) and of the full SimPy engine on a sample. Target: at least
20,000 candidates per second per core for the analytic tier.

    python benchmarks/bench_plan.py [--repeats 5] [--sample 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.plan import analytic
from simulator.plan.space import apply_layout, layouts
from simulator.schema.scenario import Scenario

SCENARIO = {"name": "bench-22b", "workload": {"model": "megatron-22b", "seq_len": 2048, "global_batch": 512,
                                               "tokens": 300e9, "dtype": "bf16"},
            "cluster": {"hardware": "a100-sxm4-80gb", "devices": 64}}


def _pin_one_core() -> str:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return "pinned to 1 core"
    except (AttributeError, OSError):
        return "not pinned"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sample", type=int, default=40, help="candidates for the scalar and SimPy rates")
    args = ap.parse_args()
    pin = _pin_one_core()
    sc = Scenario.model_validate(SCENARIO)
    profile = load_hardware("a100-sxm4-80gb")
    arch = load_arch("megatron-22b")
    times, n = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        cols = layouts(arch, 64, sc.workload, 8)
        out = analytic.evaluate(sc, cols, profile, arch)
        times.append(time.perf_counter() - t0)
        n = len(cols["tp"])
    wall = statistics.median(times)
    rng = np.random.default_rng(0)
    sample = rng.choice(n, size=min(args.sample, n), replace=False)
    scen = [apply_layout(sc, cols, int(i)) for i in sample]
    analytic.evaluate_scalar(scen[0], profile, arch)   # warm the loaders' caches
    t0 = time.perf_counter()
    for s in scen:
        analytic.evaluate_scalar(s, profile, arch)
    scalar_rate = len(scen) / (time.perf_counter() - t0)
    from simulator.sim.api import simulate
    t0 = time.perf_counter()
    errs = []
    for i, s in zip(sample[:10], scen[:10]):
        r = simulate(s)
        errs.append(abs(out["step_time_s"][i] - r.step_time_s) / r.step_time_s)
    sim_rate = min(10, len(scen)) / (time.perf_counter() - t0)
    best = int(np.nanargmin(np.where(out["memory_bytes_per_device"] <= out["capacity_bytes"],
                                     out["step_time_s"], np.inf)))
    rows = [
        ("model / cluster", "megatron-22b (h 6144, 48 layers, 64 heads) on 64 x a100-sxm4-80gb"),
        ("candidates in the space", f"{n:,}"),
        ("analytic tier wall (median)", f"{wall * 1e3:.1f} ms ({pin})"),
        ("analytic candidates / s / core", f"{n / wall:,.0f}  (target >= 20,000)"),
        ("scalar stage_costs path / s", f"{scalar_rate:,.0f}"),
        ("full SimPy engine / s", f"{sim_rate:,.1f}"),
        ("analytic vs SimPy |error| (10 sampled)", f"max {100 * max(errs):.2f}%, mean {100 * np.mean(errs):.2f}%"),
        ("fastest layout that fits", f"tp{cols['tp'][best]} pp{cols['pp'][best]} dp{cols['dp'][best]} "
                                     f"mb{cols['micro_batch'][best]} step {out['step_time_s'][best]:.3f} s "
                                     f"MFU {100 * out['mfu'][best]:.1f}%"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}} | value")
    print("-" * width + "-+-" + "-" * 60)
    for k, v in rows:
        print(f"{k:<{width}} | {v}")


if __name__ == "__main__":
    main()
