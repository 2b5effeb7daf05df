"""Inference costing of one batch: KV bytes, memory fit, quantization, parallelism, encoders."""
from __future__ import annotations

import pytest

from simulator.errors import InfeasibleError
from simulator.graph.build import load_arch
from simulator.schema.scenario import Scenario
from simulator.serving.inference import simulate_inference


def _scenario(**wl):
    cluster = wl.pop("cluster", {"hardware": "a100-sxm4-80gb", "devices": 1})
    par = wl.pop("parallelism", {})
    base = {"kind": "inference", "model": "llama2-7b", "prompt_tokens": 512, "output_tokens": 64,
            "batch": 1, "dtype": "fp16"}
    base.update(wl)
    return Scenario.model_validate({"workload": base, "cluster": cluster, "parallelism": par})


def test_kv_bytes_per_token_formula():
    r = simulate_inference(_scenario(model="llama2-70b", parallelism={"tp": 4}, cluster={"hardware": "a100-sxm4-80gb", "devices": 4}))
    a = load_arch("llama2-70b")
    assert r.memory.kv_bytes_per_token == 2 * a.num_layers * a.num_kv_heads * a.head_dim * 2
    # GQA with 8 KV heads over tp=4: two KV heads per device
    assert r.memory.kv_bytes_per_token_per_device == 2 * a.num_layers * 2 * a.head_dim * 2
    assert r.memory.kv_cache_bytes_per_device == pytest.approx((512 + 64) * r.memory.kv_bytes_per_token_per_device)


def test_latency_is_prefill_plus_decode_steps():
    r = simulate_inference(_scenario())
    assert r.latency_s == pytest.approx(r.prefill_s + 63 * r.decode_s_per_token)
    assert r.tokens_per_s == pytest.approx(64 / r.latency_s)
    assert r.breakdown.decode_bound == "memory"


def test_larger_batch_raises_throughput_and_kv():
    r1 = simulate_inference(_scenario(batch=1))
    r16 = simulate_inference(_scenario(batch=16))
    assert r16.tokens_per_s > 8 * r1.tokens_per_s          # decode is weight-read bound: batching is nearly free
    assert r16.memory.kv_cache_bytes_per_device == pytest.approx(16 * r1.memory.kv_cache_bytes_per_device)


def test_max_batch_fits_and_one_more_does_not():
    r = simulate_inference(_scenario())
    m = r.memory
    b = m.max_batch_that_fits
    assert b > 1
    at = simulate_inference(_scenario(batch=b)).memory
    over = simulate_inference(_scenario(batch=b + 1)).memory
    assert at.fits and not over.fits


@pytest.mark.parametrize("wdtype,ratio", [("int8", 0.5), ("int4", 0.25)])
def test_weight_only_quantization_shrinks_weights_and_decode(wdtype, ratio):
    base = simulate_inference(_scenario())
    q = simulate_inference(_scenario(weight_dtype=wdtype))
    # layer matmul weights shrink; embeddings, head and norms stay in fp16
    assert q.memory.weights_bytes_per_device < base.memory.weights_bytes_per_device * (ratio + 0.1)
    assert q.decode_s_per_token < base.decode_s_per_token * (ratio + 0.2)
    # prefill stays compute-bound in fp16, plus converting every weight once per 64 rows (cost.dequant)
    assert base.prefill_s < q.prefill_s < 1.4 * base.prefill_s


def test_kv_dtype_fp8_halves_the_cache():
    base = simulate_inference(_scenario(batch=8))
    q = simulate_inference(_scenario(batch=8, kv_dtype="fp8"))
    assert q.memory.kv_cache_bytes_per_device == pytest.approx(base.memory.kv_cache_bytes_per_device / 2)
    assert q.memory.max_batch_that_fits > base.memory.max_batch_that_fits


def test_tensor_parallel_splits_weights_and_adds_comm():
    one = simulate_inference(_scenario())
    two = simulate_inference(_scenario(parallelism={"tp": 2}, cluster={"hardware": "a100-sxm4-80gb", "devices": 2}))
    assert two.memory.weights_bytes_per_device == pytest.approx(one.memory.weights_bytes_per_device / 2, rel=0.01)
    assert two.breakdown.decode_comm_s_per_token > 0 and one.breakdown.decode_comm_s_per_token == 0
    assert two.decode_s_per_token < one.decode_s_per_token


def test_pipeline_parallel_splits_layers():
    one = simulate_inference(_scenario())
    two = simulate_inference(_scenario(parallelism={"pp": 2}, cluster={"hardware": "a100-sxm4-80gb", "devices": 2}))
    assert two.memory.kv_cache_bytes_per_device == pytest.approx(one.memory.kv_cache_bytes_per_device / 2)
    assert two.memory.weights_bytes_per_device < 0.6 * one.memory.weights_bytes_per_device
    # one batch passes both stages in turn: pipelining saves memory, not latency
    assert two.latency_s >= one.latency_s
    assert two.latency_s == pytest.approx(one.latency_s, rel=0.05)


def test_encoder_only_is_one_forward():
    r = simulate_inference(_scenario(model="bert-base", prompt_tokens=128, batch=32))
    assert r.encoder_only and r.output_tokens == 0
    assert r.decode_s_per_token == 0 and r.latency_s == r.prefill_s
    assert r.memory.kv_cache_bytes_per_device == 0


def test_model_too_large_for_one_device_is_infeasible():
    with pytest.raises(InfeasibleError, match="does not fit.*even at batch 1"):
        simulate_inference(_scenario(model="llama2-70b"))


def test_bad_tp_is_an_input_error():
    from simulator.errors import InputError
    with pytest.raises(InputError, match="does not divide"):
        simulate_inference(_scenario(parallelism={"tp": 3}, cluster={"hardware": "a100-sxm4-80gb", "devices": 3}))
