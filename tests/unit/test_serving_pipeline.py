"""Pipeline-parallel serving: virtual engines whose iterations overlap across the stages."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.schema.scenario import Scenario
from simulator.serving.api import serve
from simulator.serving.arrivals import Workload
from simulator.serving.engine import Pipeline, run
from simulator.serving.router import make_router
from simulator.serving.scheduler import ReplicaScheduler


def test_stages_are_reserved_first_come_first_served():
    pipe = Pipeline(2)
    assert pipe.reserve(0.0, 4.0) == 4.0          # stage 0 [0, 2], stage 1 [2, 4]
    assert pipe.reserve(0.0, 2.0) == 5.0          # waits for stage 0 until 2, stage 1 until 4
    assert pipe.reserve(10.0, 2.0) == 12.0        # an idle pipeline: the whole iteration, nothing more
    assert pipe.free_s == [11.0, 12.0]


def _run(stages, n=400, cost_s=0.01, duration_s=2.0):
    w = Workload(np.zeros(n), np.full(n, 8), np.full(n, 1000))     # everyone waits from t = 0
    sched = lambda: ReplicaScheduler(256, 16, 10**9, True)        # noqa: E731  16 sequences per engine
    return run(w, sched, 1, lambda it: cost_s, make_router("least_outstanding"), duration_s, stages=stages)


def test_a_saturated_pipeline_completes_stages_times_the_iterations():
    one, _, _ = _run(1)
    four, _, scheds = _run(4)
    assert len(scheds) == 4                       # one scheduler per virtual engine
    assert one.iterations == pytest.approx(200, abs=1)
    assert four.iterations == pytest.approx(4 * 200, abs=4)
    assert four.busy_s == pytest.approx(one.busy_s, rel=0.02)   # each stage busy all the time


def test_one_request_on_an_idle_pipeline_sees_the_whole_iteration():
    w = Workload(np.array([0.5]), np.array([8]), np.array([3]))
    sched = lambda: ReplicaScheduler(256, 16, 10**9, True)        # noqa: E731
    for stages in (1, 2, 4):
        rec, _, _ = run(w, sched, 1, lambda it: 0.1, make_router("round_robin"), 5.0, stages=stages)
        assert rec.first_token_s[0] == pytest.approx(0.6)
        assert rec.finish_s[0] == pytest.approx(0.8)


def _serving(pp, replicas, rate, duration_s=60.0):
    return Scenario.model_validate({
        "workload": {"kind": "inference", "model": "llama2-13b", "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": pp * replicas}, "parallelism": {"pp": pp},
        "serving": {"replicas": replicas, "arrivals": {"kind": "poisson", "rate_per_s": rate},
                    "prompt_tokens": 256, "output_tokens": 128, "duration_s": duration_s, "seed": 3}})


def test_two_stages_serve_about_as_much_as_two_replicas():
    # saturating load on two devices: in series the two stages would serve what one device does
    piped = serve(_serving(pp=2, replicas=1, rate=60.0))
    twice = serve(_serving(pp=1, replicas=2, rate=60.0))
    once = serve(_serving(pp=1, replicas=1, rate=60.0))
    assert piped.output_tokens_per_s > 0.8 * twice.output_tokens_per_s
    assert piped.output_tokens_per_s > 1.6 * once.output_tokens_per_s


def test_pipelined_serving_is_deterministic():
    a, b = (serve(_serving(pp=2, replicas=1, rate=30.0, duration_s=5.0)) for _ in range(2))
    assert a.model_dump() == b.model_dump()
