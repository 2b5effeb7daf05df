"""workload.attention: flash runs the attention core as one fused kernel (no s^2 scores in memory)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.cost.compute import MATMUL_KINDS
from simulator.cost.memory import activation_bytes_per_layer
from simulator.graph.build import load_arch
from simulator.parallel import transformer as T
from simulator.schema.scenario import Scenario

KW = dict(micro_batch=1, seq_len=8192, tp=8, sequence_parallel=True, dtype_bytes=2.0)


def _ops(attention):
    return T.layer_forward_ops(load_arch("llama3-70b", attention=attention), **KW)


def test_flash_keeps_the_attention_flops_and_drops_the_score_traffic():
    unfused, flash = _ops("unfused"), _ops("flash")
    gemm = lambda ops: sum(o["flops"] for o in ops if o["kind"] in MATMUL_KINDS)   # noqa: E731
    assert gemm(flash) == pytest.approx(gemm(unfused))                  # same model FLOPs (MFU unchanged)
    (fa,) = [o for o in flash if o.get("flash")]
    s, heads = 8192, 64 // 8
    assert fa["bytes"] < 0.05 * 2.0 * heads * s * s                    # Q, K, V, O only: no s x s tensor
    assert not any("softmax" in o["name"] for o in flash)
    bwd = [o for o in T.backward_ops(flash) if o.get("flash")]
    assert len(bwd) == 1 and bwd[0]["flops"] == pytest.approx(2.5 * fa["flops"])   # 5 GEMMs vs 2
    assert T.recompute_ops(flash, "selective") == []                    # nothing left to replay


def test_flash_stores_no_attention_scores():
    kw = dict(seq_len=8192, micro_batch=1, tp=8, sequence_parallel=True)
    un, fl = load_arch("llama3-70b"), load_arch("llama3-70b", attention="flash")
    scores = 5.0 * un.num_heads * 8192 * 8192 / 8                        # Korthikanti 2022: 5 a s^2 b / t
    assert activation_bytes_per_layer(un, recompute="none", **kw) - activation_bytes_per_layer(
        un, recompute="selective", **kw) == pytest.approx(scores)
    lse = 4.0 * fl.num_heads * 8192 / 8                                  # fp32 log-sum-exp per query
    assert activation_bytes_per_layer(fl, recompute="none", **kw) - activation_bytes_per_layer(
        fl, recompute="selective", **kw) == pytest.approx(lse)


def _scenario(attention=None, **par):
    wl = {"model": "llama2-7b", "seq_len": 4096, "global_batch": 32, "micro_batch": 1, "steps": 10}
    if attention:
        wl["attention"] = attention
    return Scenario.model_validate({"name": "fa", "workload": wl,
                                    "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8},
                                    "parallelism": {"tp": 2, "pp": 2, **par}})


def test_simulated_flash_is_faster_and_smaller_and_the_analytic_tier_agrees():
    from simulator.hardware.load import load_hardware
    from simulator.plan import analytic
    from simulator.sim.api import simulate
    un, fl = simulate(_scenario()), simulate(_scenario("flash"))
    assert fl.step_time_s < un.step_time_s
    assert fl.memory.activations_bytes_per_device < 0.5 * un.memory.activations_bytes_per_device
    assert fl.model_flops_per_step == pytest.approx(un.model_flops_per_step)
    sc = _scenario("flash")
    ref = analytic.evaluate_scalar(sc, load_hardware("a100-sxm4-80gb"), analytic.model_arch(sc))
    assert abs(ref["step_time_s"] - fl.step_time_s) / fl.step_time_s < 0.05


def test_unfused_attention_is_refused_for_inference():
    base = {"name": "i", "workload": {"kind": "inference", "model": "llama2-7b", "prompt_tokens": 128,
                                      "output_tokens": 16, "attention": "unfused"},
            "cluster": {"hardware": "a100-sxm4-80gb", "devices": 1}}
    with pytest.raises(ValidationError, match="fused kernel"):
        Scenario.model_validate(base)
    base["workload"]["attention"] = "flash"
    Scenario.model_validate(base)
