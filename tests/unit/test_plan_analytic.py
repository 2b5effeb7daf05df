"""The analytic tier: equal to its scalar reference, and within 5% of the full SimPy engine."""
import numpy as np
import pytest

from simulator.graph.build import load_arch
from simulator.hardware.load import load_hardware
from simulator.plan import analytic
from simulator.plan.space import apply_layout, layouts
from simulator.schema.scenario import Scenario

SC = Scenario.model_validate({"name": "t", "workload": {"model": "megatron-22b", "global_batch": 128,
                                                         "seq_len": 2048, "tokens": 1e10},
                              "cluster": {"hardware": "a100-sxm4-80gb", "devices": 32}})


@pytest.fixture(scope="module")
def evaluated():
    arch = load_arch("megatron-22b")
    prof = load_hardware("a100-sxm4-80gb")
    cols = layouts(arch, 32, SC.workload, 8)
    return arch, prof, cols, analytic.evaluate(SC, cols, prof, arch)


def test_vectorized_tier_equals_scalar_reference(evaluated):
    arch, prof, cols, out = evaluated
    rng = np.random.default_rng(0)
    for i in rng.choice(len(cols["tp"]), 25, replace=False):
        ref = analytic.evaluate_scalar(apply_layout(SC, cols, int(i)), prof, arch)
        for k in ("step_time_s", "memory_bytes_per_device", "mfu", "optimizer_s", "pipeline_bubble_s"):
            assert out[k][i] == pytest.approx(ref[k], rel=1e-9), (k, {f: int(cols[f][i]) for f in cols})


def test_analytic_within_5_percent_of_simpy(evaluated):
    """On the best layouts (those a plan re-simulates) and a random sample of every schedule."""
    from simulator.sim.api import simulate
    arch, prof, cols, out = evaluated
    fits = out["memory_bytes_per_device"] <= out["capacity_bytes"]
    best = np.argsort(np.where(fits, out["step_time_s"], np.inf))[:6]
    rng = np.random.default_rng(1)
    picks = list(best) + list(rng.choice(len(cols["tp"]), 10, replace=False))
    for i in picks:
        sim = simulate(apply_layout(SC, cols, int(i))).step_time_s
        assert abs(out["step_time_s"][i] - sim) / sim < 0.05, {f: int(cols[f][i]) for f in cols}


def test_monotone_physics(evaluated):
    """More recompute never speeds up a layout; it never needs more memory."""
    arch, prof, cols, out = evaluated
    key = [k for k in cols if k != "recompute"]
    rows = {}
    for i in range(len(cols["tp"])):
        rows.setdefault(tuple(int(cols[k][i]) for k in key), {})[int(cols["recompute"][i])] = i
    checked = 0
    for group in rows.values():
        if 0 in group and 2 in group:
            a, b = group[0], group[2]
            assert out["step_time_s"][b] >= out["step_time_s"][a]
            assert out["memory_bytes_per_device"][b] <= out["memory_bytes_per_device"][a]
            checked += 1
    assert checked > 20


def test_bucket_queue_exposure():
    # the stream keeps up: only the last bucket is exposed
    assert analytic.exposed_buckets_s((1.0, 1.0, 0.5), last_bwd_s=9.0) == 0.5
    # the stream falls behind: the backlog is exposed (3 s of buckets, 1 s of backward hides 2/3 s)
    assert analytic.exposed_buckets_s((1.0, 1.0, 1.0), last_bwd_s=1.0) == 3.0 - 2.0 / 3.0
    vec = analytic._exposed_queue(np.array([3, 3]), np.array([1.0, 1.0]), np.array([0.5, 1.0]),
                                  np.zeros(2), np.zeros(2, bool), np.array([9.0, 1.0]))
    assert vec.tolist() == [0.5, 3.0 - 2.0 / 3.0]


@pytest.mark.parametrize("model,hw,devices,gb,seq", [
    ("mixtral-8x7b", "h100-sxm5-80gb", 32, 64, 4096),     # expert parallel
    ("llama3-70b", "h200-sxm-141gb", 64, 64, 8192),       # context parallel, grouped KV heads
    ("llama2-7b", "rtx-4090", 8, 32, 2048),               # PCIe card, no NVLink
])
def test_vectorized_equals_scalar_across_model_families(model, hw, devices, gb, seq):
    from simulator.hardware.cluster import build_cluster
    sc = Scenario.model_validate({"workload": {"model": model, "global_batch": gb, "seq_len": seq, "tokens": 1e10},
                                  "cluster": {"hardware": hw, "devices": devices}})
    arch, prof = load_arch(model), load_hardware(hw)
    cols = layouts(arch, devices, sc.workload, build_cluster(sc.cluster).scale_up_domain)
    out = analytic.evaluate(sc, cols, prof, arch)
    rng = np.random.default_rng(3)
    for i in rng.choice(len(cols["tp"]), 6, replace=False):
        ref = analytic.evaluate_scalar(apply_layout(sc, cols, int(i)), prof, arch)
        assert out["step_time_s"][i] == pytest.approx(ref["step_time_s"], rel=1e-9)
        assert out["memory_bytes_per_device"][i] == pytest.approx(ref["memory_bytes_per_device"], rel=1e-9)
