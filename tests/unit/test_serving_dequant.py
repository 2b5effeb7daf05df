"""Weight-only quantization: dequantization work on the vector units (cost.dequant) in serving costs."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulator.cost.dequant import conversions, dequant_flops_per_weight, dequant_s
from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.schema.scenario import Scenario
from simulator.serving.inference import simulate_inference
from simulator.serving.stepcost import _rows_s, build_step_model

PROFILES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "hardware_profiles").glob("*.yaml"))


def test_instruction_counts_of_the_tensorrt_llm_converters():
    # (convert + scale) lane instructions x 2 FLOP-equivalents each
    assert dequant_flops_per_weight("int4", "fp16") == pytest.approx(2 * (9 / 8 + 0.5))
    assert dequant_flops_per_weight("int4", "bf16") == pytest.approx(2 * (11 / 8 + 0.5))
    assert dequant_flops_per_weight("int8", "fp16") == pytest.approx(2 * (1 + 0.5))
    assert dequant_flops_per_weight("int8", "bf16") == pytest.approx(2 * (10 / 4 + 0.5))
    for unquantized in ("fp16", "bf16", "fp8", "fp32"):
        assert dequant_flops_per_weight(unquantized, "fp16") == 0.0


def test_each_weight_is_converted_once_per_64_rows():
    assert conversions(np.array([1, 16, 64, 65, 128, 4096])).tolist() == [1, 1, 1, 2, 2, 64]
    p = load_hardware("a100-sxm4-80gb")
    one = dequant_s(p, 1e9, 1, 3.25, "fp16")
    assert one == pytest.approx(1e9 * 3.25 / 19.5e12)         # the A100's FP32 vector rate
    assert dequant_s(p, 1e9, 64, 3.25, "fp16") == one
    assert dequant_s(p, 1e9, 640, 3.25, "fp16") == pytest.approx(10 * one)


def _gpu_models(name, wdtype=None):
    p = load_hardware(name)
    dtype = "bf16" if "bf16" in p.peak_flops_per_s else "fp16"
    return build_step_model(load_arch("llama2-7b"), p, dtype=dtype, weight_dtype=wdtype)


@pytest.mark.parametrize("name", PROFILES)
def test_int4_batch1_decode_is_still_faster_than_fp16(name):
    if load_hardware(name).kind == "cpu":
        pytest.skip("no fp16/bf16 peak")
    t16, t8, t4 = (float(_gpu_models(name, w).linear_s(1)) for w in (None, "int8", "int4"))
    assert t4 < t8 < t16
    assert t4 < 0.6 * t16          # every published int4 decode is well under fp16's time


def _knee(step, rows):
    """First batch whose layer time exceeds 1.25x the batch-1 time (leaving the memory-bound plateau)."""
    m = np.arange(1, 1025, dtype=float)
    t = _rows_s(step.profile, rows, m)
    return int(m[np.argmax(t > 1.25 * t[0])])


@pytest.mark.parametrize("name", ["a100-sxm4-80gb", "h100-sxm5-80gb", "b200"])
def test_large_batch_int4_turns_compute_bound_earlier(name):
    fp16, int4 = _gpu_models(name), _gpu_models(name, "int4")
    no_dequant = tuple(replace(r, dequant_flops=0.0) for r in int4.layer_ops)
    assert _knee(int4, int4.layer_ops) < _knee(int4, no_dequant) < _knee(fp16, fp16.layer_ops)


def test_memory_traffic_stays_at_the_quantized_size():
    # int4: half a byte per weight plus an fp16 scale and a 4-bit zero per group of 128 (AWQ/GPTQ format)
    int4, int8 = _gpu_models("a100-sxm4-80gb", "int4"), _gpu_models("a100-sxm4-80gb", "int8")
    rows4 = [r for r in int4.layer_ops if r.dequant_flops]
    rows8 = [r for r in int8.layer_ops if r.dequant_flops]
    assert rows4 and all(r.weight_bytes == pytest.approx((0.5 + 2.5 / 128) * r.weight_elements) for r in rows4)
    assert rows8 and all(r.weight_bytes == pytest.approx(1.0 * r.weight_elements) for r in rows8)


def test_decode_bound_label_counts_the_dequantization():
    def bound(wdtype, batch):
        sc = Scenario.model_validate({
            "workload": {"kind": "inference", "model": "llama2-7b", "prompt_tokens": 16, "output_tokens": 8,
                         "batch": batch, "dtype": "fp16", "weight_dtype": wdtype},
            "cluster": {"hardware": "a100-sxm4-80gb", "devices": 1}})
        return simulate_inference(sc).breakdown.decode_bound
    assert bound(None, 24) == "memory" and bound("int4", 1) == "memory"
    # batch 24: tensor-core time 1.0 ms < int4 weight + KV reads 2.0 ms; + 1.1 ms of conversion
    assert bound("int4", 24) == "compute"
