"""Serving-simulation speed: one simulated hour at 20 requests/s on 4 replicas (target < 10 s wall).

Llama-2-7B fp16 on A100-SXM4-80GB replicas behind a least-outstanding router,
Poisson arrivals, lognormal prompts (mean 512, max 4096) and outputs (mean 128,
max 1024), continuous batching with chunked prefill. Prints a table: wall and
CPU seconds, simulated events (arrivals + iterations) per wall second, and the
headline results so that a speed change that alters results is visible.

    /work/venv/bin/python benchmarks/bench_serving.py [--duration-s 3600] [--rate 20] [--replicas 4] [--pp 1]

With --pp N each replica is N pipeline stages run as N virtual engines; their
iterations step one by one through the stage reservations (no decode stretches),
so a pipelined hour costs more events.
"""
from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from simulator.schema.scenario import Scenario
from simulator.serving.api import serve


def scenario(duration_s: float, rate: float, replicas: int, pp: int = 1) -> Scenario:
    return Scenario.model_validate({
        "name": "bench-serving",
        "workload": {"kind": "inference", "model": "llama2-7b", "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": replicas * pp}, "parallelism": {"pp": pp},
        "serving": {"replicas": replicas, "arrivals": {"kind": "poisson", "rate_per_s": rate},
                    "prompt_tokens": {"kind": "lognormal", "mean": 512, "max": 4096},
                    "output_tokens": {"kind": "lognormal", "mean": 128, "max": 1024},
                    "duration_s": duration_s, "seed": 1,
                    "slo": {"ttft_p99_s": 1.0, "tpot_p99_s": 0.1}}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=3600.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--pp", type=int, default=1, help="pipeline stages per replica")
    args = ap.parse_args()
    sc = scenario(args.duration_s, args.rate, args.replicas, args.pp)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    r = serve(sc)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    t = Table(title=f"serving benchmark: {args.duration_s:g} s simulated, {args.rate:g} req/s, "
                    f"{args.replicas} replicas" + (f" of pp {args.pp}" if args.pp > 1 else ""))
    for col in ("wall s", "cpu s", "events", "events/s", "iterations", "requests", "TTFT p99", "TPOT p99", "target"):
        t.add_column(col, justify="right")
    t.add_row(f"{wall:.2f}", f"{cpu:.2f}", f"{r.events:,}", f"{r.events / wall:,.0f}", f"{r.counts.iterations:,}",
              f"{r.counts.arrived:,}", f"{r.ttft_s.p99 * 1e3:.1f} ms", f"{r.tpot_s.p99 * 1e3:.2f} ms",
              "ok (< 10 s)" if wall < 10 else "MISSED (>= 10 s)")
    Console(width=150).print(t)


if __name__ == "__main__":
    main()
