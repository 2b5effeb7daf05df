"""Roofline op times and GEMM wave quantization (simulator/cost/compute.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.cost.compute import op_time_s, peak_flops, wave_efficiency
from simulator.errors import InputError
from simulator.hardware.load import load_hardware


@pytest.fixture(scope="module")
def a100():
    return load_hardware("a100-sxm4-80gb")


def test_wave_quantization_counts_idle_sms():
    # 128x128 tiles: a 1280 x 1408 output is 10 x 11 = 110 tiles on 108 SMs -> 2 waves, 110/216
    assert wave_efficiency(1280, 1408, 1, 108, tiles=((128, 128),)) == pytest.approx(110 / 216)
    # exactly one full wave
    assert wave_efficiency(128 * 108, 128, 1, 108, tiles=((128, 128),)) == pytest.approx(1.0)
    # padding to the 16-wide MMA shape wastes work: m = 8 fills half of it
    assert wave_efficiency(8, 128, 1, 1, tiles=((128, 128),)) == pytest.approx(0.5)
    # a skinny GEMM with a long k is split along k to fill the SMs (split-K)
    assert wave_efficiency(128, 128, 1, 108, tiles=((128, 128),), k=65536) == pytest.approx(1.0)
    assert wave_efficiency(128, 128, 1, 108, tiles=((128, 128),)) == pytest.approx(1 / 108)


def test_wave_efficiency_vectorizes():
    out = wave_efficiency(np.array([1280, 128 * 108]), np.array([1408, 128]), 1, 108, tiles=((128, 128),))
    assert out.shape == (2,)
    assert out[1] == pytest.approx(1.0)


def test_big_gemm_is_compute_bound_near_curve_plateau(a100):
    m = n = k = 8192
    flops = 2.0 * m * n * k
    t = op_time_s(a100, "matmul", flops, 2.0 * 3 * m * n, "bf16", (m, n, k))
    achieved = flops / t / peak_flops(a100, "bf16")
    assert 0.6 < achieved <= 0.87   # below the MAMF plateau (0.869), above a poor shape


def test_elementwise_is_memory_bound(a100):
    size = 1e9
    t = op_time_s(a100, "elementwise", 1e8, size, "bf16")
    bw = size / t
    assert bw < a100.memory.bandwidth_bytes_per_s
    assert bw > 0.7 * a100.memory.bandwidth_bytes_per_s


def test_small_ops_pay_the_launch_floor(a100):
    # the curves embed the t0 = 2.6 us launch floor: tiny ops cost microseconds, not nanoseconds
    assert op_time_s(a100, "elementwise", 10, 1000, "bf16") >= 2e-6
    assert op_time_s(a100, "matmul", 2 * 16**3, 3 * 16 * 16 * 2, "bf16", (16, 16, 16)) >= 2e-6


def test_time_grows_with_work_and_accepts_arrays(a100):
    flops = np.array([1e9, 1e10, 1e11, 1e12])
    t = op_time_s(a100, "matmul", flops, flops / 100, "fp16")
    assert np.all(np.diff(t) > 0)


def test_missing_dtype_falls_back_or_raises(a100):
    assert peak_flops(a100, "fp8") == a100.peak_flops_per_s["bf16"]   # A100 has no fp8: runs as 16-bit
    stripped = a100.model_copy(update={"peak_flops_per_s": {"fp32": 1e12}})
    with pytest.raises(InputError):
        peak_flops(stripped, "bf16")
