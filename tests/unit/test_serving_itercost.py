"""Iteration-cost tables against the direct cost model, and decode stretches against stepping."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.schema.scenario import Scenario
from simulator.serving.api import workload_of
from simulator.serving.engine import run
from simulator.serving.inference import build_replica
from simulator.serving.itercost import TableCost
from simulator.serving.router import make_router
from simulator.serving.scheduler import Iteration, ReplicaScheduler, Seq

KV = 100_000


@pytest.fixture(scope="module")
def replica():
    sc = Scenario.model_validate({
        "workload": {"kind": "inference", "model": "llama2-7b", "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": 2},
        "serving": {"replicas": 2, "arrivals": {"kind": "poisson", "rate_per_s": 12},
                    "prompt_tokens": {"kind": "lognormal", "mean": 400, "max": 3000},
                    "output_tokens": {"kind": "lognormal", "mean": 100, "max": 800},
                    "duration_s": 60, "seed": 9}})
    return sc, build_replica(sc)


def _iteration(tokens_decode, ctx, chunk=0, offset=0):
    it = Iteration(tokens=tokens_decode + chunk, n_logits=tokens_decode, n_decode=tokens_decode,
                   decode_ctx=ctx)
    if chunk:
        s = Seq(0, 0.0, offset + chunk, 10)
        s.prompt, s.prefilled = offset + chunk, offset
        ReplicaScheduler._add_chunk(it, s, chunk)
    return it


@pytest.mark.parametrize("n,ctx,chunk,offset", [(1, 500, 0, 0), (37, 20_000, 0, 0), (200, 90_000, 0, 0),
                                                (0, 0, 2048, 0), (12, 6000, 1500, 3000), (150, 40_000, 6000, 100)])
def test_tables_match_the_direct_cost_model(replica, n, ctx, chunk, offset):
    _, rep = replica
    cost = TableCost(rep.step, 8192, 256, KV)
    it = _iteration(n, ctx, chunk, offset)
    assert cost(it) == pytest.approx(cost.direct(it), rel=2e-3)


def test_decode_run_sums_the_same_steps(replica):
    _, rep = replica
    cost = TableCost(rep.step, 8192, 256, KV)
    n, ctx = 40, 30_000
    first = cost.decode_only(n, ctx)
    steps, total = cost.decode_run(n, ctx, first, 500, float("inf"))
    by_step = first + sum(cost.decode_only(n, ctx + k * n) for k in range(1, 500))
    assert steps == 500 and total == pytest.approx(by_step, rel=1e-9)
    h = 0.4 * total
    s2, t2 = cost.decode_run(n, ctx, first, 500, h)
    cum = np.cumsum([first] + [cost.decode_only(n, ctx + k * n) for k in range(1, 500)])
    assert s2 == int(np.searchsorted(cum, h) + 1) and t2 >= h


class _Stepwise:
    """The same cost without `decode_run`: the engine then runs every iteration as its own event."""

    def __init__(self, cost):
        self.cost = cost

    def __call__(self, it):
        return self.cost(it)


@pytest.mark.parametrize("router", ["least_outstanding", "round_robin"])
def test_decode_stretches_reproduce_stepping(replica, router):
    sc, rep = replica
    w = workload_of(sc, rep, None)
    cost = TableCost(rep.step, 8192, 256, KV)
    out = []
    for c in (cost, _Stepwise(cost)):
        rec, _, _ = run(w, lambda: ReplicaScheduler(8192, 256, KV, True), 2, c, make_router(router), 60.0)
        out.append(rec)
    a, b = out
    both = ~np.isnan(a.finish_s)
    assert np.array_equal(both, ~np.isnan(b.finish_s))
    assert np.allclose(a.finish_s[both], b.finish_s[both], rtol=0, atol=1e-9)
    assert np.allclose(a.first_token_s[both], b.first_token_s[both], rtol=0, atol=1e-9)
