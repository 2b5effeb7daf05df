"""Latency percentiles rise with load (queueing), on the real cost model."""
from __future__ import annotations

from simulator.schema.scenario import Scenario
from simulator.serving.api import serve


def _run(rate: float):
    return serve(Scenario.model_validate({
        "workload": {"kind": "inference", "model": "llama2-7b", "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb"},
        "serving": {"arrivals": {"kind": "poisson", "rate_per_s": rate}, "prompt_tokens": 400,
                    "output_tokens": 100, "duration_s": 120, "seed": 5}}))


def test_percentiles_rise_with_load():
    rs = [_run(rate) for rate in (1.0, 6.0, 14.0)]
    for lo, hi in zip(rs, rs[1:]):
        assert hi.ttft_s.p99 > lo.ttft_s.p99
        assert hi.tpot_s.p50 > lo.tpot_s.p50           # bigger batches: slower steps
        assert hi.e2e_s.p90 > lo.e2e_s.p90
        assert hi.mean_batch_sequences > lo.mean_batch_sequences
