"""Gradient precision (Megatron-LM main_grad): fp32 buffer and DP reduction for bf16, fp16 for fp16.

Memory, the data-parallel gradient collective, the per-micro-batch accumulation
and the optimizer's gradient copy all follow `parallelism.grad_reduce_dtype`
(auto = fp32 for bf16/fp8, the training dtype otherwise), in the engine's
stage costs and in the planner's vectorized tier alike.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.cost import comm as C
from simulator.cost.memory import grad_dtype, grad_dtype_bytes, state_bytes
from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.parallel.costing import grad_accumulation_s, optimizer_time_s, stage_costs
from simulator.parallel.plan import resolve_plan
from simulator.plan import analytic
from simulator.plan.space import apply_layout, layouts
from simulator.schema.scenario import Scenario
from simulator.sim.api import simulate

ARCH = load_arch("megatron-22b")


@pytest.fixture(scope="module")
def a100():
    return load_hardware("a100-sxm4-80gb")


def scen(dtype="bf16", devices=32, global_batch=64, grad=None, **par):
    if grad is not None:
        par["grad_reduce_dtype"] = grad
    return Scenario.model_validate({
        "workload": {"model": "megatron-22b", "global_batch": global_batch, "micro_batch": 1, "seq_len": 2048,
                     "dtype": dtype, "recompute": "full", "tokens": 1e10},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": devices}, "parallelism": {"tp": 8, **par}})


def costs(sc, prof):
    plan = resolve_plan(sc, ARCH, 8)
    return plan, stage_costs(ARCH, plan, prof, sc.workload)


def test_auto_rule_follows_megatron():
    assert [grad_dtype(d) for d in ("bf16", "fp16", "fp8", "fp32", "tf32")] == ["fp32", "fp16", "fp32", "fp32", "fp32"]
    assert grad_dtype("bf16", "bf16") == "bf16" and grad_dtype("fp16", "fp32") == "fp32"
    assert grad_dtype_bytes("bf16") == 4.0 and grad_dtype_bytes("fp16") == 2.0


def test_state_bytes_gradient_buffer_and_zero2_shard():
    assert state_bytes(1e9, dtype_bytes=2, optimizer="adam", zero=0, dp=8, grad_bytes=4.0) == (2e9, 4e9, 12e9)
    assert state_bytes(1e9, dtype_bytes=2, optimizer="adam", zero=1, dp=8, grad_bytes=4.0)[1] == 4e9
    assert state_bytes(1e9, dtype_bytes=2, optimizer="adam", zero=2, dp=8, grad_bytes=4.0)[1] == 4e9 / 8


@pytest.mark.parametrize("zero", [0, 1, 2])
def test_bf16_gradient_memory_and_dp_bytes_are_twice_fp16(a100, zero):
    plan16, fp16 = costs(scen("fp16", zero=zero), a100)
    plan_b, bf16 = costs(scen("bf16", zero=zero), a100)
    assert plan_b.grad_reduce_dtype == "fp32" and plan16.grad_reduce_dtype == "fp16"
    for h, b in zip(fp16.devices, bf16.devices):
        assert b.memory.gradients == 2.0 * h.memory.gradients
        assert b.memory.weights == h.memory.weights and b.memory.optimizer == h.memory.optimizer
    for h, b in zip(fp16.chunks, bf16.chunks):
        assert b.grad_bytes == 2.0 * h.grad_bytes
    # the whole-buffer reduction is the collective of exactly those bytes (4 vs 2 per parameter)
    kind = "all_reduce" if zero == 0 else "reduce_scatter"
    group = C.group_of(plan_b.dp, 8, 8)
    tiers = C.tiers_from_profile(a100, 8)
    params = sum(c.grad_bytes for c in bf16.chunks if c.device == 0) / 4.0
    assert bf16.devices[0].reduce_total_s == pytest.approx(C.collective_s(kind, 4.0 * params, group, tiers), rel=1e-12)
    assert fp16.devices[0].reduce_total_s == pytest.approx(C.collective_s(kind, 2.0 * params, group, tiers), rel=1e-12)
    assert bf16.devices[0].reduce_total_s > fp16.devices[0].reduce_total_s


def test_zero2_shards_the_fp32_gradient_buffer(a100):
    _, z1 = costs(scen("bf16", zero=1), a100)
    _, z2 = costs(scen("bf16", zero=2), a100)
    assert z2.devices[0].memory.gradients == pytest.approx(z1.devices[0].memory.gradients / 4, rel=1e-12)   # dp = 4


def test_zero_parameter_all_gather_moves_16_bit_weights(a100):
    """Only the gradients are fp32: the distributed optimizer's parameter all-gather stays bf16."""
    _, auto = costs(scen("bf16", zero=1), a100)
    _, bf16 = costs(scen("bf16", grad="bf16", zero=1), a100)
    assert auto.devices[0].post_optimizer_s == bf16.devices[0].post_optimizer_s > 0
    assert auto.devices[0].reduce_total_s > bf16.devices[0].reduce_total_s


def test_accumulation_reads_the_new_grad_and_rewrites_the_buffer(a100):
    _, auto = costs(scen("bf16"), a100)        # 8 micro-batches per replica
    _, half = costs(scen("bf16", grad="bf16"), a100)
    for a, h in zip(auto.chunks, half.chunks):
        params = a.grad_bytes / 4.0
        extra = grad_accumulation_s(a100, params, 2.0, 4.0, "bf16") - grad_accumulation_s(a100, params, 2.0, 2.0, "bf16")
        assert extra > 0
        assert a.bwd_compute_s - h.bwd_compute_s == pytest.approx(extra, rel=1e-9)
        assert a.fwd_s == h.fwd_s


def test_fp32_main_grads_skip_the_optimizer_gradient_copy(a100):
    n = 1e9
    copy = optimizer_time_s(a100, n, 2.0, "adam", loss_scaled=False, grad_b=2.0)
    alias = optimizer_time_s(a100, n, 2.0, "adam", loss_scaled=False, grad_b=4.0)
    assert alias < copy
    assert optimizer_time_s(a100, n, 2.0, "adam") == optimizer_time_s(a100, n, 2.0, "adam", grad_b=2.0)


@pytest.mark.parametrize("dtype,grad", [("fp16", None), ("bf16", None), ("bf16", "bf16"), ("fp16", "fp32")])
def test_vectorized_tier_equals_scalar_for_each_gradient_dtype(a100, dtype, grad):
    sc = scen(dtype, grad=grad)
    cols = layouts(ARCH, 32, sc.workload, 8)
    out = analytic.evaluate(sc, cols, a100, ARCH)
    rng = np.random.default_rng(7)
    for i in rng.choice(len(cols["tp"]), 8, replace=False):
        ref = analytic.evaluate_scalar(apply_layout(sc, cols, int(i)), a100, ARCH)
        for k in ("step_time_s", "memory_bytes_per_device", "optimizer_s"):
            assert out[k][i] == pytest.approx(ref[k], rel=1e-9), (k, dtype, grad)


def test_vectorized_memory_differs_by_the_gradient_buffer(a100):
    """Same layouts, bf16 with fp32 vs bf16 gradients: memory differs by exactly 2 B per local parameter."""
    auto, half = scen("bf16"), scen("bf16", grad="bf16")
    cols = layouts(ARCH, 32, auto.workload, 8)
    a = analytic.evaluate(auto, cols, a100, ARCH)["memory_bytes_per_device"]
    h = analytic.evaluate(half, cols, a100, ARCH)["memory_bytes_per_device"]
    sel = (cols["zero"] < 2) & (cols["pp"] == 1)
    for i in np.flatnonzero(sel)[:10]:
        r4 = analytic.evaluate_scalar(apply_layout(auto, cols, int(i)), a100, ARCH)["memory_bytes_per_device"]
        r2 = analytic.evaluate_scalar(apply_layout(half, cols, int(i)), a100, ARCH)["memory_bytes_per_device"]
        assert a[i] - h[i] == pytest.approx(r4 - r2, rel=1e-9) and r4 > r2


def test_result_reports_the_gradient_dtype():
    b = simulate(scen("bf16"))
    h = simulate(scen("fp16"))
    assert b.parallelism["grad_reduce_dtype"] == "fp32" and h.parallelism["grad_reduce_dtype"] == "fp16"
    assert b.memory.gradients_bytes_per_device == 2.0 * h.memory.gradients_bytes_per_device


def test_unknown_gradient_dtype_is_one_line_exit_2(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(scen("bf16").model_dump(mode="json")))
    r = cli("simulate", path, "--set", "parallelism.grad_reduce_dtype=fp64", "--json")
    assert r.code == 2
    assert "grad_reduce_dtype" in r.err and "Traceback" not in r.err


def test_fp8_planner_keeps_bf16_weights_and_fp32_grads_like_the_engine():
    """fp8 GEMMs on bf16 weights (2 B) and an fp32 gradient buffer, in both tiers."""
    prof = load_hardware("h100-sxm5-80gb")
    sc = Scenario.model_validate({
        "workload": {"model": "megatron-22b", "global_batch": 64, "seq_len": 2048, "dtype": "fp8", "tokens": 1e10},
        "cluster": {"hardware": "h100-sxm5-80gb", "devices": 32}})
    cols = layouts(ARCH, 32, sc.workload, 8)
    out = analytic.evaluate(sc, cols, prof, ARCH)
    for i in np.random.default_rng(11).choice(len(cols["tp"]), 6, replace=False):
        ref = analytic.evaluate_scalar(apply_layout(sc, cols, int(i)), prof, ARCH)
        assert out["memory_bytes_per_device"][i] == pytest.approx(ref["memory_bytes_per_device"], rel=1e-9)
        assert out["step_time_s"][i] == pytest.approx(ref["step_time_s"], rel=1e-9)


def test_cnn_graph_path_follows_the_gradient_dtype(a100):
    """Non-transformer graphs: fp32 gradient buffer under bf16, accumulated once per extra micro-batch."""
    from simulator.sim.api import prepare_training

    def cnn(dtype, grad=None, micro_batch=8):
        par = {"grad_reduce_dtype": grad} if grad else {}
        return Scenario.model_validate({"workload": {"model": "resnet50", "global_batch": 256,
                                                     "micro_batch": micro_batch, "dtype": dtype},
                                        "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8},
                                        "parallelism": par})
    _, _, _, b = prepare_training(cnn("bf16"))
    _, _, _, h = prepare_training(cnn("fp16"))
    assert b.devices[0].memory.gradients == 2.0 * h.devices[0].memory.gradients
    assert b.chunks[0].grad_bytes == 2.0 * h.chunks[0].grad_bytes
    _, _, _, auto = prepare_training(cnn("bf16"))
    _, _, _, half = prepare_training(cnn("bf16", "bf16"))
    params = auto.chunks[0].grad_bytes / 4.0
    extra = grad_accumulation_s(a100, params, 2.0, 4.0, "bf16") - grad_accumulation_s(a100, params, 2.0, 2.0, "bf16")
    assert auto.chunks[0].bwd_compute_s - half.chunks[0].bwd_compute_s == pytest.approx(extra, rel=1e-9)
    _, _, _, one = prepare_training(cnn("bf16", micro_batch=32))    # one micro-batch: nothing to accumulate
    _, _, _, one_half = prepare_training(cnn("bf16", "bf16", micro_batch=32))
    assert one.chunks[0].bwd_compute_s == one_half.chunks[0].bwd_compute_s
