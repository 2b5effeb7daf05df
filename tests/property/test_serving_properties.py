"""Invariants of the continuous-batching engine over random workloads and limits (hypothesis)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.serving.arrivals import Workload
from simulator.serving.engine import run
from simulator.serving.router import make_router
from simulator.serving.scheduler import ReplicaScheduler


@st.composite
def setups(draw):
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / draw(st.floats(0.5, 200.0)), n))
    prompts = rng.integers(1, draw(st.integers(2, 600)), n)
    outputs = rng.integers(1, draw(st.integers(2, 200)), n)
    return {
        "w": Workload(t, prompts.astype(np.int64), outputs.astype(np.int64)),
        "budget": draw(st.integers(1, 1024)), "max_seqs": draw(st.integers(1, 64)),
        "kv": draw(st.integers(50, 5000)), "chunked": draw(st.booleans()),
        "replicas": draw(st.integers(1, 3)), "router": draw(st.sampled_from(["round_robin", "least_outstanding"])),
        "horizon": draw(st.sampled_from([None, 0.5, 3.0])),
    }


class Checked:
    """Iteration cost that asserts the scheduler's limits on every iteration it is asked to time."""

    def __init__(self, scheds, budget, max_seqs):
        self.scheds, self.budget, self.max_seqs = scheds, budget, max_seqs

    def __call__(self, it):
        assert it.tokens > 0
        # a single whole prompt may exceed the budget only without chunking
        assert it.tokens <= self.budget or (len(it.chunks) == 1 and it.n_decode == 0)
        assert it.n_decode + len(it.chunks) <= self.max_seqs
        for s in self.scheds:
            assert s.kv_used + s.n_decoding <= s.kv_capacity
        return 1e-3 * (1 + it.tokens / 100) + 1e-6 * it.decode_ctx

    def decode_run(self, n, ctx, dt, limit, horizon):
        steps = 1
        while steps < limit and dt < horizon:
            ctx += n
            dt += 1e-3 * (1 + n / 100) + 1e-6 * ctx
            steps += 1
        return steps, dt


@settings(max_examples=60, deadline=None)
@given(setups())
def test_engine_invariants(s):
    w = s["w"]
    scheds = []

    def make():
        sch = ReplicaScheduler(s["budget"], s["max_seqs"], s["kv"], s["chunked"])
        scheds.append(sch)
        return sch
    horizon = s["horizon"] if s["horizon"] is not None else float(w.t_s[-1]) + 1e6
    rec, queue, _ = run(w, make, s["replicas"], Checked(scheds, s["budget"], s["max_seqs"]),
                        make_router(s["router"]), horizon)
    arrived = int(np.sum(w.t_s < horizon))
    done = ~np.isnan(rec.finish_s)
    in_flight = sum(len(x.running) + len(x.waiting) for x in scheds)
    assert arrived == int(done.sum()) + in_flight + rec.rejected            # nothing lost or counted twice
    assert np.all(rec.first_sched_s[done] >= rec.arrival_s[done])
    assert np.all(rec.first_token_s[done] > rec.first_sched_s[done])
    assert np.all(rec.finish_s[done] >= rec.first_token_s[done])
    single = done & (w.output_tokens == 1)
    assert np.array_equal(rec.finish_s[single], rec.first_token_s[single])  # one token: done at first token
    if s["horizon"] is None:                                                # drained: only rejects remain
        assert in_flight == 0
        assert rec.rejected == int(np.sum(w.prompt_tokens + w.output_tokens > s["kv"]))
    assert all(0 <= x <= arrived for x in queue["waiting"])
