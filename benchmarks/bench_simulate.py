"""Speed of the training simulation: one step of GPT-3 175B on 1024 A100s.

Layout: tp 8, pp 16, dp 8, 1F1B, global batch 1536, micro-batch 1 (192
micro-batches per pipeline). Prints, in one process and one run:
- wall time of the whole `simulate()` (cluster, model, plan, stage costs, engine, result),
- wall time and event rate of the SimPy engine alone,
- the raw SimPy event rate of a trivial timeout loop measured right here, for scale.
Target: under 0.5 s in process.

    python benchmarks/bench_simulate.py
"""
from __future__ import annotations

import time

import simpy

from simulator.schema.scenario import Scenario
from simulator.sim.api import prepare_training, simulate
from simulator.sim.engine import simulate_pipeline

SCENARIO = {
    "name": "bench-gpt3-175b",
    "workload": {"model": "gpt3-175b", "seq_len": 2048, "global_batch": 1536, "micro_batch": 1,
                 "dtype": "bf16", "recompute": "selective"},
    "cluster": {"hardware": "a100-sxm4-80gb", "devices": 1024},
    "parallelism": {"tp": 8, "pp": 16, "dp": 8, "schedule": "1f1b", "sequence_parallel": True},
}


def raw_simpy_rate(n: int = 200_000) -> float:
    """Events per second of a bare SimPy process yielding timeouts."""
    env = simpy.Environment()

    def loop():
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(loop())
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    sc = Scenario.model_validate(SCENARIO)
    simulate(sc)                                   # warm caches (profile/model loading)
    total_s = best_of(lambda: simulate(sc))
    _, _, _, costs = prepare_training(sc)
    run = simulate_pipeline(costs)
    engine_s = best_of(lambda: simulate_pipeline(costs))
    raw = raw_simpy_rate()
    result = simulate(sc)
    print(f"{'what':<44} {'value':>14}")
    print(f"{'simulate() wall time, in process':<44} {total_s * 1e3:11.1f} ms")
    print(f"{'  of which SimPy engine':<44} {engine_s * 1e3:11.1f} ms")
    print(f"{'engine events':<44} {run.events:14,d}")
    print(f"{'engine event rate':<44} {run.events / engine_s:11,.0f} /s")
    print(f"{'raw SimPy event rate (timeout loop)':<44} {raw:11,.0f} /s")
    print(f"{'simulated step time':<44} {result.step_time_s:12.3f} s")
    print(f"{'target < 0.5 s':<44} {'met' if total_s < 0.5 else 'MISSED':>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
