"""Inference predictions against published measurements: lmdeploy on A100-80GB, fp16.

Source: github.com/InternLM/lmdeploy docs/en/benchmark/a100_fp16.md @ 3e391df4
("Static Inference Benchmark", lmdeploy v0.1.0a1, A100-80G, CUDA 11.8). Batch-1
rows only: there the first-token latency (FTL, average) is the prefill and the
median per-token latency (the "50%(s)" column) is one decode step. Rows with
larger batches start their requests from concurrent client threads, so their
FTL and throughput include queueing and are not a single batch's timing.

Nothing is fitted to these rows; the model runs from the datasheet profile.
It is systematically optimistic by about 10% (the engine's per-step CPU work,
sampling and launch gaps are not modelled), which the tolerance covers.
"""
from __future__ import annotations

import pytest

from simulator.schema.scenario import Scenario
from simulator.serving.inference import simulate_inference

# model, tp, prompt tokens, measured FTL (s), measured median token latency (s)
ROWS = [
    ("llama2-7b", 1, 128, 0.022, 0.010),
    ("llama2-7b", 1, 2048, 0.139, 0.010),
    ("llama2-13b", 1, 128, 0.040, 0.017),
    ("llama2-13b", 1, 2048, 0.242, 0.019),
    ("llama2-70b", 4, 128, 0.074, 0.029),
    ("llama2-70b", 4, 2048, 0.402, 0.031),
]
TOLERANCE = 0.25


def _predict(model, tp, prompt):
    return simulate_inference(Scenario.model_validate({
        "workload": {"kind": "inference", "model": model, "prompt_tokens": prompt, "output_tokens": 128,
                     "batch": 1, "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": tp}, "parallelism": {"tp": tp}}))


@pytest.mark.parametrize("model,tp,prompt,ftl_s,token_s", ROWS)
def test_batch1_decode_step_within_tolerance(model, tp, prompt, ftl_s, token_s):
    r = _predict(model, tp, prompt)
    assert abs(r.decode_s_per_token / token_s - 1) < TOLERANCE, (r.decode_s_per_token, token_s)


@pytest.mark.parametrize("model,tp,prompt,ftl_s,token_s", [row for row in ROWS if row[2] >= 2048])
def test_batch1_long_prefill_within_tolerance(model, tp, prompt, ftl_s, token_s):
    # short prompts' FTL is dominated by engine overheads (128 tokens: ~10 ms of 22 ms measured)
    r = _predict(model, tp, prompt)
    assert abs(r.prefill_s / ftl_s - 1) < TOLERANCE, (r.prefill_s, ftl_s)


def test_mean_error_over_the_rows_is_small():
    errs = []
    for model, tp, prompt, ftl_s, token_s in ROWS:
        errs.append(abs(_predict(model, tp, prompt).decode_s_per_token / token_s - 1))
    assert sum(errs) / len(errs) < 0.15
