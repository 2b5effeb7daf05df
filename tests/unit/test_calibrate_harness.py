"""Timing harness: sample batching, buffer rotation, random data, median of repeats."""
from __future__ import annotations

import numpy as np

from simulator.calibrate.harness import (Settings, choose_inner, gemm_flops, random_array,
                                         rotation_sets, time_call)


def test_choose_inner_makes_samples_long_enough():
    s = Settings(min_sample_s=1e-3, max_inner=1000)
    assert choose_inner(1e-5, s) == 100
    assert choose_inner(5e-3, s) == 1          # already long: one call per sample
    assert choose_inner(1e-9, s) == 1000       # capped


def test_rotation_exceeds_twice_the_cache_within_the_memory_limit():
    assert rotation_sets(1e6, 32e6, limit_bytes=1e9) == 16            # capped at max_sets
    assert rotation_sets(8e6, 32e6, limit_bytes=1e9) == 8             # 8 x 8 MB = 2 x 32 MB
    assert rotation_sets(100e6, 32e6, limit_bytes=1e9) == 1           # one set beyond cache
    assert rotation_sets(8e6, 32e6, limit_bytes=20e6) == 2            # limited by memory


def test_random_array_never_zero_and_deterministic():
    a = random_array(np, np.random.default_rng(3), (64, 64), np.float32)
    b = random_array(np, np.random.default_rng(3), (64, 64), np.float32)
    assert a.dtype == np.float32 and a.shape == (64, 64)
    assert np.all(np.abs(a) >= 0.5) and np.all(np.abs(a) < 1.5)
    assert (a > 0).any() and (a < 0).any()
    np.testing.assert_array_equal(a, b)


def test_time_call_takes_median_of_repeats_with_a_fake_timer():
    durations = iter([1e-3] + [1e-3, 9e-3, 2e-3, 3e-3, 5e-3])   # probe, then 5 samples
    calls = []

    def timer(run, inner, start):
        for i in range(start, start + inner):
            run(i)
        return next(durations) * inner

    t = time_call(calls.append, timer=timer, settings=Settings(warmup=2, repeats=5, min_sample_s=1e-4))
    assert t.inner == 1 and t.repeats == 5
    assert t.median_s == 3e-3 and t.min_s == 1e-3 and t.max_s == 9e-3
    assert calls[:2] == [0, 1]                     # warm-up calls come first
    assert len(set(calls[2:])) == len(calls[2:])   # every timed call gets its own buffer index


def test_gemm_flops():
    assert gemm_flops(2, 3, 4) == 48.0


def test_busy_notice_follows_the_measured_cpu_use(monkeypatch):
    from simulator.calibrate import fingerprint
    frac = fingerprint.others_cpu_fraction(0.05)
    assert frac is None or 0.0 <= frac <= 1.0
    monkeypatch.setattr(fingerprint, "others_cpu_fraction", lambda window_s=0.3: 0.6)
    assert "machine busy" in fingerprint.busy_notice()
    monkeypatch.setattr(fingerprint, "others_cpu_fraction", lambda window_s=0.3: 0.05)
    assert fingerprint.busy_notice() is None


def test_thread_timer_counts_only_this_threads_cpu_time():
    import time as _time
    from simulator.calibrate.harness import thread_timer, wall_timer
    assert thread_timer(lambda i: _time.sleep(0.02), 1, 0) < 0.01     # sleeping uses no CPU
    assert wall_timer(lambda i: _time.sleep(0.02), 1, 0) >= 0.02


def test_best_of_rounds_keeps_the_faster_round_in_first_order():
    from simulator.calibrate.suite import best_of_rounds
    from simulator.schema.calibration import Measurement

    def m(shape, t):
        return Measurement(test="gemm", op_class="matmul", dtype="fp32", shape=shape, flops=1.0, bytes=1.0,
                           duration_s=t, min_s=t, max_s=t, repeats=1)
    out = best_of_rounds([m("a", 2.0), m("b", 1.0), m("a", 1.5), m("b", 3.0)])
    assert [(x.shape, x.duration_s) for x in out] == [("a", 1.5), ("b", 1.0)]
