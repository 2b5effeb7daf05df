"""The SimPy pipeline engine and simulate() end to end (simulator/sim)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from simulator.cost.memory import MemoryBytes
from simulator.parallel.costing import ChunkCost, DeviceStep, StageCosts
from simulator.schema.scenario import Scenario
from simulator.sim.api import simulate, simulate_training
from simulator.sim.engine import breakdown, simulate_pipeline


def toy(p, m, f=1.0, b=2.0, p2p=0.0, schedule="1f1b", v=1, buckets=(), reduce_s=0.0, overlap=True, opt=0.0):
    chunks = tuple(ChunkCost(j, j % p, 1, f, 0.0, b, 0.0, 0.0) for j in range(p * v))
    mem = MemoryBytes(0, 0, 0, 0, 0)
    devs = tuple(DeviceStep(d, tuple(buckets), reduce_s, 0.0, opt, mem) for d in range(p))
    return StageCosts(p, v, m, schedule, overlap, chunks, devs, p2p, 0.0, 0.0)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_equal_stages_give_the_textbook_makespan(schedule):
    run = simulate_pipeline(toy(8, 32, schedule=schedule))
    assert run.makespan_s == pytest.approx((32 + 8 - 1) * 3.0)


def test_interleaving_shrinks_the_bubble_by_v():
    plain = simulate_pipeline(toy(4, 8, f=2.0, b=4.0))           # one chunk of 2 layers
    inter = simulate_pipeline(toy(4, 8, f=1.0, b=2.0, schedule="interleaved", v=2))
    bubble_plain = plain.makespan_s - 8 * 6.0
    bubble_inter = inter.makespan_s - 8 * 6.0
    assert bubble_inter == pytest.approx(bubble_plain / 2)


def test_overlapped_gradient_buckets_hide_behind_the_last_backward():
    buckets = (0.5,) * 4
    over = simulate_pipeline(toy(1, 4, buckets=buckets, reduce_s=2.0, overlap=True))
    after = simulate_pipeline(toy(1, 4, buckets=buckets, reduce_s=2.0, overlap=False))
    assert after.makespan_s == pytest.approx(4 * 3.0 + 2.0)
    assert over.makespan_s == pytest.approx(4 * 3.0 + 0.5)      # only the last bucket sticks out
    assert breakdown(over)["exposed_comm_s"] == pytest.approx(0.5)


def test_breakdown_adds_up_to_the_step():
    run = simulate_pipeline(toy(4, 8, p2p=0.1, buckets=(0.3, 0.3), reduce_s=0.6, opt=0.2))
    parts = breakdown(run)
    assert sum(parts.values()) == pytest.approx(run.makespan_s)
    assert parts["optimizer_s"] == pytest.approx(0.2)


def test_trace_records_every_task():
    run = simulate_pipeline(toy(2, 3, p2p=0.01), record=True)
    compute = [t for t in run.trace if t[1] == "compute"]
    assert len(compute) == 2 * 2 * 3
    assert {t[1] for t in run.trace} >= {"compute", "p2p"}


def scenario(**over):
    base = {"name": "t", "workload": {"model": "gpt3-175b", "seq_len": 2048, "global_batch": 256,
                                       "micro_batch": 1, "dtype": "bf16", "recompute": "selective",
                                       "tokens": 1e9},
            "cluster": {"hardware": "a100-sxm4-80gb", "devices": 256},
            "parallelism": {"tp": 8, "pp": 8, "sequence_parallel": True}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return Scenario.model_validate(base)


def test_simulate_returns_design_keys():
    r = simulate(scenario())
    d = json.loads(r.to_json())
    for key in ("step_time_s", "tokens_per_s", "tokens_per_s_per_device", "model_flops_per_step",
                "hardware_flops_per_step", "mfu", "hfu", "achieved_tflops_per_device", "time_to_train_s",
                "device_hours", "cost_usd", "energy_kwh", "parallelism", "provenance"):
        assert key in d
    for key in ("weights", "gradients", "optimizer", "activations", "total"):
        assert f"{key}_bytes_per_device" in d["memory"]
    assert set(d["breakdown"]) == {"compute_s", "exposed_comm_s", "pipeline_bubble_s", "optimizer_s"}
    assert 0.2 < r.mfu < 0.7 and r.hfu >= r.mfu
    assert r.parallelism["dp"] == 4
    assert r.time_to_train_s == pytest.approx(1e9 / (256 * 2048) * r.step_time_s)


def test_layout_that_does_not_fit_is_reported_not_accepted():
    r = simulate(scenario(parallelism={"tp": 1, "pp": 1, "sequence_parallel": False},
                          workload={"recompute": "none"}))
    assert r.memory.fits is False
    assert r.memory.total_bytes_per_device > r.memory.capacity_bytes
    assert any("does not fit" in w for w in r.warnings)


def test_energy_and_cost_follow_the_scenario():
    r = simulate(scenario(costs={"usd_per_device_hour": 2.0, "power_usage_effectiveness": 1.5}))
    assert r.cost_usd == pytest.approx(r.device_hours * 2.0)
    assert r.energy_kwh == pytest.approx(256 * 400 * 0.8 * r.time_to_train_s / 3600 * 1.5 / 1000)


def test_cnn_runs_data_parallel():
    sc = Scenario.model_validate({"workload": {"model": "resnet50", "global_batch": 256, "micro_batch": 32,
                                               "dtype": "bf16"},
                                  "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8}})
    r = simulate(sc)
    assert r.parallelism["dp"] == 8 and r.step_time_s > 0 and r.memory.fits


def test_engine_runs_each_distinct_stage_once_per_microbatch():
    res, run = simulate_training(scenario(), record=True)
    tasks = [t for t in run.trace if t[1] == "compute" and t[2][0] in "FB"]
    assert len(tasks) == 2 * res.parallelism["pp"] * res.parallelism["num_microbatches"]
