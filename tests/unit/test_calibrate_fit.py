"""Fitting: synthetic measurements from a known device model are recovered exactly."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.calibrate.fit import fit_run, merge_points, non_decreasing, point_efficiency
from simulator.cost.compute import op_time_s, wave_efficiency
from simulator.schema.calibration import Measurement
from simulator.schema.hardware import HardwareProfile

PEAK = 100e9
BW = 20e9
LAUNCH = 2e-6


def base_profile(kind="cpu", peak=1e12, bw=50e9, units=None) -> HardwareProfile:
    return HardwareProfile(name="test-dev", vendor="t", kind=kind, peak_flops_per_s={"fp32": peak},
                           memory={"capacity_bytes": 1e9, "bandwidth_bytes_per_s": bw},
                           launch_overhead_s=1e-6, power={"tdp_w": 10}, compute_units=units)


def true_eff(flops):
    """A device whose GEMMs reach 90% of peak above 1 GFLOP, less when small."""
    return 0.9 / (1 + 1e7 / flops)


def meas(test, op_class, size, t, gemm=None, batch=1, dtype="fp32"):
    flops, nbytes = (size, 1.0) if op_class == "matmul" else (0.0, size)
    m, n, k = gemm or (None, None, None)
    return Measurement(test=test, op_class=op_class, dtype=dtype, shape="s", flops=flops, bytes=nbytes,
                       duration_s=t, min_s=t * 0.9, max_s=t * 1.2, repeats=5, gemm_m=m, gemm_n=n,
                       gemm_k=k, batch=batch)


def synthetic_run():
    ms = [meas("launch", "launch", 8.0, LAUNCH)]
    for n in (32, 64, 128, 256, 512, 1024, 2048):
        f = 2.0 * n ** 3
        peak_rate = PEAK if n == 2048 else None
        t = f / (PEAK * true_eff(f) / true_eff(2.0 * 2048 ** 3)) + LAUNCH if peak_rate is None else f / PEAK + LAUNCH
        ms.append(meas("gemm", "matmul", f, t, gemm=(n, n, n)))
    for nbytes in (1e4, 1e5, 1e6, 1e7, 1e8, 4e8):
        ms.append(meas("add", "stream", nbytes, nbytes / (BW * 0.8) + LAUNCH))
    return ms


def test_measured_peaks_curves_and_zero_residuals():
    ms = synthetic_run()
    fit = fit_run(ms, base_profile(), measured_peaks=True, large_bytes=1e8, label="t")
    best = max(m.flops_per_s for m in ms if m.test == "gemm")
    assert fit.peak_flops_per_s["fp32"] == pytest.approx(best)
    assert fit.launch_overhead_s == LAUNCH
    bw_best = max(m.bytes_per_s for m in ms if m.op_class == "stream" and m.bytes >= 1e8)
    assert fit.bandwidth_bytes_per_s == pytest.approx(bw_best)
    curve = next(c for c in fit.curves if c.op_class == "matmul" and c.dtype == "fp32")
    assert curve.origin == "calibrated" and curve.latency_s == LAUNCH   # latency folded in
    assert all(b >= a for a, b in zip(curve.efficiency, curve.efficiency[1:]))   # monotone
    assert max(abs(r.error) for r in fit.residuals if r.curve == "matmul/fp32") < 1e-6


def test_fitted_profile_reproduces_measurements_through_the_cost_model():
    """The point of the fit: the simulator's own op_time_s gives back the measured times."""
    from simulator.calibrate.export import calibrated_profile
    from simulator.schema.calibration import CalibrationRun, Fingerprint
    ms = synthetic_run()
    base = base_profile()
    fit = fit_run(ms, base, measured_peaks=True, large_bytes=1e8, label="t")
    run = CalibrationRun(id=1, backend="numpy", started_at="2026-01-01T00:00:00+00:00",
                         finished_at="2026-01-01T00:01:00+00:00", complete=True,
                         fingerprint=Fingerprint(backend="numpy", device="cpu x"), measurements=ms)
    prof = calibrated_profile(base, fit, run)
    for m in ms:
        if m.test == "gemm":
            pred = op_time_s(prof, "matmul", m.flops, 0.0, "fp32", (m.gemm_m, m.gemm_n, m.gemm_k))
            assert pred == pytest.approx(m.duration_s, rel=1e-6)
        if m.test == "add" and m.bytes >= 1e6:
            assert op_time_s(prof, "elementwise", 0.0, m.bytes, "fp32") == pytest.approx(m.duration_s, rel=1e-6)


def test_gpu_fit_divides_out_wave_quantization():
    units = 132
    base = base_profile(kind="gpu", peak=1e15, bw=3e12, units=units)
    ms = [meas("launch", "launch", 8.0, LAUNCH)]
    for m_, n_ in ((128, 128), (1000, 1000), (4096, 4096), (8192, 8192)):
        f = 2.0 * m_ * n_ * 4096
        w = float(wave_efficiency(m_, n_, 1, units))
        ms.append(meas("gemm", "matmul", f, f / (1e15 * 0.8 * w), gemm=(m_, n_, 4096)))
    fit = fit_run(ms, base, measured_peaks=False, large_bytes=1e8, label="t", compute_units=units)
    assert fit.peak_flops_per_s["fp32"] == 1e15            # datasheet peak kept on a GPU
    curve = next(c for c in fit.curves if c.op_class == "matmul")
    np.testing.assert_allclose(curve.efficiency, 0.8, rtol=1e-9)


def test_flags_measurements_above_datasheet_peak():
    ms = [meas("gemm", "matmul", 2e9, 1e-3, gemm=(1000, 1000, 1000))]      # 2 TFLOP/s
    fit = fit_run(ms, base_profile(peak=1e12), measured_peaks=False, large_bytes=1e8, label="t")
    assert len(fit.flags) == 1 and "exceeds" in fit.flags[0]
    # flagged AND kept: a calibrated curve may say 2x the datasheet (the measurement is real)
    curve = next(c for c in fit.curves if c.op_class == "matmul")
    assert curve.origin == "calibrated" and curve.efficiency == [pytest.approx(2.0)]


def test_statistic_min_refits_on_the_fastest_samples():
    ms = synthetic_run()
    med = fit_run(ms, base_profile(), measured_peaks=True, large_bytes=1e8, label="t")
    fast = fit_run(ms, base_profile(), measured_peaks=True, large_bytes=1e8, label="t", statistic="min")
    assert fast.peak_flops_per_s["fp32"] == pytest.approx(med.peak_flops_per_s["fp32"] / 0.9)


def test_non_decreasing_and_merge():
    assert non_decreasing([0.1, 0.5, 0.3, 0.9]) == pytest.approx([0.1, 0.4, 0.4, 0.9])
    sizes, effs = merge_points([1e6, 1.2e6, 1e8], [0.2, 0.4, 0.9])
    assert len(sizes) == 2 and effs[0] == pytest.approx(0.3) and sizes[1] == 1e8
    assert point_efficiency(1e9, 1e-2, 1e11) == pytest.approx(1.0)
    assert point_efficiency(1e9, 2e-2, 1e11) == pytest.approx(0.5)
    assert point_efficiency(1e9, 1e-3, 1e11) == pytest.approx(10.0)   # faster than peak: kept
