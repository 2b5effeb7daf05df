"""The curve derivations reproduce the measurements they come from."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.hardware import derive


def test_latency_falloff_reaches_plateau_and_has_fixed_overhead():
    peak, t0, c = 312e12, 2.6e-6, 0.869
    sizes = [1e6, 1e9, 1e13]
    eff = derive.latency_falloff(c, peak, t0, sizes)
    assert eff[-1] == pytest.approx(c, abs=1e-3)
    # time = F/(peak*eff) equals F/(c*peak) + t0 at every size
    for f, e in zip(sizes, eff):
        assert f / (peak * e) == pytest.approx(f / (c * peak) + t0, rel=0.01)


def test_bandwidth_fractions_reproduce_ring_times():
    n, link, alpha, frac = 8, 300e9, 3e-6, 0.78
    sizes = np.array([1e5, 1e7, 1e9])
    times = 2 * (n - 1) / n * sizes / (link * frac) + 2 * (n - 1) * alpha
    assert derive.ring_alpha_s(sizes, times, n, points=2) == pytest.approx(alpha, rel=1e-6)
    fr = derive.bandwidth_fractions(sizes, times, n, link, alpha)
    assert fr == pytest.approx([frac] * 3, abs=1e-3)


def test_busbw_convention():
    # nccl-tests: busbw = algbw * 2(n-1)/n; 8 GPUs, 1 GB at busbw 175 GB/s -> algbw 100 GB/s -> 10 ms
    assert float(derive.busbw_to_time_s(1e9, 175e9, 8)) == pytest.approx(0.01)


def test_scaled_shape_hits_target():
    assert derive.scaled_shape([0.1, 0.5, 0.8], 0.4)[-1] == pytest.approx(0.4)
