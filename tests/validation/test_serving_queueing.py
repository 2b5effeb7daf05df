"""Queueing closed forms: the serving engine against M/D/1 (Pollaczek-Khinchine).

With a fixed service time D, one sequence per batch and one output token (so
each request is exactly one iteration), Poisson arrivals at rate lambda give
a mean wait W = rho * D / (2 (1 - rho)), rho = lambda * D (Kleinrock,
Queueing Systems vol. 1, eq. 5.73 with deterministic service).
"""
from __future__ import annotations

import numpy as np
import pytest

from simulator.schema.scenario import Serving
from simulator.serving.arrivals import generate
from simulator.serving.engine import run
from simulator.serving.router import make_router
from simulator.serving.scheduler import ReplicaScheduler


def _md1_mean_wait(rho: float, service_s: float, seed: int) -> float:
    s = Serving(arrivals={"kind": "poisson", "rate_per_s": rho / service_s}, prompt_tokens=16, output_tokens=1,
                duration_s=60_000 * service_s / rho, seed=seed)
    w = generate(s, np.random.default_rng(seed))
    rec, _, _ = run(w, lambda: ReplicaScheduler(8192, 1, 10**9), 1, lambda it: service_s,
                    make_router("round_robin"), s.duration_s)
    done = ~np.isnan(rec.finish_s)
    assert np.allclose((rec.finish_s - rec.first_sched_s)[done], service_s)   # service is exactly D
    return float((rec.first_sched_s - rec.arrival_s)[done].mean())


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_md1_mean_wait_within_5_percent(rho):
    service = 0.2
    expected = rho * service / (2 * (1 - rho))
    got = _md1_mean_wait(rho, service, seed=11)
    assert abs(got - expected) / expected < 0.05, (got, expected)
