"""BLOOM-176B (Megatron-DeepSpeed, 384 A100s, Jean Zay): the logged iteration time within +-25%.

A run outside the Megatron-LM family, kept as an honest out-of-family check:
capplan prices Megatron-LM's kernels, scatter/gather point-to-point and
schedule, and predicts this DeepSpeed-pipeline run about 20% too fast (see
benchmarks/bloom176b.py for what it cannot express). The tolerance is what the
model achieves, not a target; the test also pins the sign so an improvement or
a regression shows up.
"""
from __future__ import annotations

import pytest

TOLERANCE = 0.25


@pytest.fixture(scope="module")
def table(benchmark_script):
    return benchmark_script("bloom176b").evaluate()


def test_bloom_iteration_time_within_tolerance_and_predicted_fast(table):
    (r,) = table
    assert abs(r["error"]) <= TOLERANCE, f"predicted {r['predicted_step_s']:.1f} s vs {r['published_step_s']:.1f} s"
    assert r["error"] < 0, "the model was optimistic for this run; a change of sign needs a look"
    assert r["fits"], f"BLOOM trained in 80 GB per GPU; model says {r['memory_gib']:.1f} GiB"
