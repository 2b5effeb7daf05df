"""Continuous-batching scheduler and engine: budgets, KV capacity, preemption, conservation."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.serving.arrivals import Workload
from simulator.serving.engine import run
from simulator.serving.router import make_router
from simulator.serving.scheduler import Iteration, ReplicaScheduler, Seq


def _workload(n, rate, prompt, output, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate, n))
    p = rng.integers(prompt[0], prompt[1] + 1, n)
    o = rng.integers(output[0], output[1] + 1, n)
    return Workload(t, p.astype(np.int64), o.astype(np.int64))


class Recorder:
    """A cost function that checks every iteration against the scheduler's limits."""

    def __init__(self, scheds_box, budget, max_seqs, step_s=0.01):
        self.box, self.budget, self.max_seqs, self.step_s = scheds_box, budget, max_seqs, step_s
        self.iterations: list[Iteration] = []

    def __call__(self, it: Iteration) -> float:
        self.iterations.append(it)
        return self.step_s * (1 + it.tokens / 1000.0)


def _run(w, *, budget=512, max_seqs=16, kv=4000, chunked=True, replicas=1, duration=None, router="round_robin"):
    made = []

    def make():
        s = ReplicaScheduler(budget, max_seqs, kv, chunked)
        made.append(s)
        return s
    cost = Recorder(made, budget, max_seqs)
    rec, queue, scheds = run(w, make, replicas, cost, make_router(router), duration or float(w.t_s[-1]) + 1e4)
    return rec, scheds, cost


@pytest.mark.parametrize("chunked", [True, False])
def test_every_request_completes_when_drained(chunked):
    w = _workload(300, 20.0, (10, 400), (1, 60))
    rec, scheds, cost = _run(w, chunked=chunked)
    assert rec.rejected == 0
    assert np.all(~np.isnan(rec.finish_s))
    ttft = rec.first_token_s - rec.arrival_s
    e2e = rec.finish_s - rec.arrival_s
    assert np.all(ttft > 0) and np.all(e2e >= ttft - 1e-12)
    assert all(not s.running and not s.waiting for s in scheds)


def test_budget_and_sequence_limits_hold_each_iteration():
    w = _workload(400, 50.0, (50, 900), (1, 80), seed=1)
    rec, scheds, cost = _run(w, budget=256, max_seqs=8, chunked=True)
    for it in cost.iterations:
        assert 0 < it.tokens <= 256
        assert it.n_decode + len(it.chunks) <= 8
        assert it.tokens == it.n_decode + sum(c for _, c in it.chunks)


def test_unchunked_prefill_runs_whole_prompts_without_decodes():
    w = _workload(200, 30.0, (50, 300), (2, 30), seed=2)
    rec, scheds, cost = _run(w, budget=512, chunked=False)
    for it in cost.iterations:
        if it.chunks:
            assert it.n_decode == 0
            assert all(seq.prompt == chunk for seq, chunk in it.chunks)


def test_small_kv_cache_preempts_and_still_finishes():
    w = _workload(120, 40.0, (100, 300), (50, 200), seed=3)
    rec, scheds, cost = _run(w, kv=1200, max_seqs=32)
    assert sum(s.preemptions for s in scheds) > 0
    assert np.all(~np.isnan(rec.finish_s))


def test_kv_never_overflows():
    s = ReplicaScheduler(256, 64, 1000, True)
    rng = np.random.default_rng(5)
    now = 0.0
    for i in range(60):
        s.submit(Seq(i, now, int(rng.integers(20, 200)), int(rng.integers(1, 100))))
    while True:
        it = s.plan(now)
        if it is None:
            break
        assert s.kv_used + it.n_decode <= 1000
        now += 0.01
        s.commit(it, now)
    assert not s.running and not s.waiting


def test_request_larger_than_kv_is_rejected_and_counted():
    w = Workload(np.array([0.0, 0.1]), np.array([50, 5000]), np.array([10, 10]))
    rec, scheds, _ = _run(w, kv=1000)
    assert rec.rejected == 1
    assert np.isnan(rec.finish_s[1]) and not np.isnan(rec.finish_s[0])


def test_conservation_when_stopped_mid_run():
    w = _workload(2000, 100.0, (100, 600), (20, 200), seed=4)
    rec, scheds, _ = _run(w, duration=10.0, replicas=2, router="least_outstanding")
    arrived = int(np.sum(w.t_s < 10.0))
    completed = int(np.sum(~np.isnan(rec.finish_s)))
    in_flight = sum(len(s.running) + len(s.waiting) for s in scheds)
    assert arrived == completed + in_flight + rec.rejected
    assert in_flight > 0


def test_round_robin_spreads_requests_evenly():
    pick = make_router("round_robin")
    reps = [object()] * 3
    assert [pick(reps) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_unknown_router_suggests_names():
    from simulator.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="least_outstanding"):
        make_router("least_outstandin")
