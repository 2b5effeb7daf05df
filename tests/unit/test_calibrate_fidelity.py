"""Calibration fidelity on a CPU: memory tiers, vector-class curves, serial GEMM traffic, conv by
intensity. Synthetic devices with a known model are fitted, exported, and the simulator's own
op_time_s must give the measured times back (simulator/calibrate/fit.py, fit_vector.py,
simulator/cost/compute.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.calibrate.export import calibrated_profile
from simulator.calibrate.fit import fit_run, residual_summary
from simulator.cost.compute import gemm_intensity, op_time_s
from simulator.hardware.audit import missing_sources
from simulator.hardware.curves import find_curve
from simulator.hardware.load import list_profiles, load_hardware
from simulator.schema.calibration import CalibrationRun, Fingerprint, Measurement
from simulator.schema.hardware import EfficiencyCurve

DRAM = 16e9             # bytes/s beyond the cache
CACHE = 64e9            # bytes/s inside it (4x DRAM, as on the 2-core development VM)
LLC = 32e6              # last-level cache bytes
T0 = 1e-6               # call overhead
PEAK = 100e9            # GEMM compute ceiling
VEC = 2e9               # GELU rate (graph FLOPs per second)
FP = Fingerprint(backend="numpy", device="Test CPU", fields={"cpu_model": "Test CPU", "blas_threads": "1"})


def m(test, op_class, flops, nbytes, t, gemm=None, shape="s", batch=1):
    g = gemm or (None, None, None)
    return Measurement(test=test, op_class=op_class, dtype="fp32", shape=shape, flops=flops, bytes=nbytes,
                       duration_s=t, min_s=t, max_s=t, repeats=3, gemm_m=g[0], gemm_n=g[1], gemm_k=g[2],
                       batch=batch)


def gemm_eff(flops):
    return 0.95 / (1 + 3e6 / flops)


def conv_eff(ai):
    return 0.7 * ai / (ai + 10.0)


def device_run() -> list[Measurement]:
    """A CPU whose GEMMs pack operands from DRAM then compute (serial), whose convs run by
    intensity, whose cache is 4x faster than DRAM, with per-class vector rates."""
    ms = [m("launch", "launch", 0, 8, T0)]
    for mm, nn, kk in ((64, 64, 64), (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048),
                       (128, 2048, 2048), (128, 8192, 2048), (512, 768, 3072)):
        f, b = 2.0 * mm * nn * kk, 4.0 * (mm * kk + kk * nn + mm * nn)
        ms.append(m("gemm", "matmul", f, b, f / (PEAK * gemm_eff(f)) + b / DRAM, (mm, nn, kk)))
    for mm, nn, kk in ((32768, 16, 27), (8192, 32, 288), (2048, 64, 576), (512, 128, 1152)):
        f = 2.0 * mm * nn * kk
        ai = float(gemm_intensity((mm, nn, kk), "fp32"))
        ms.append(m("conv", "matmul", f, 4.0 * (mm * kk + mm * nn), f / (PEAK * conv_eff(ai)), (mm, nn, kk)))
    for nbytes in (1e4, 1e5, 1e6, 1e7, 1e8, 4e8):
        rate = CACHE if nbytes <= LLC else DRAM
        ms.append(m("add", "stream", nbytes / 12, nbytes, T0 + nbytes / rate, shape=f"b={nbytes:g}"))
    for n in (8192, 262144, 8388608):
        ms.append(m("gelu", "elementwise", 8.0 * n, 8.0 * n, 8.0 * n / VEC, shape=f"n={n}"))
    for test, op_class, per_elem, rate in (("layernorm", "norm", 7, 4e9), ("softmax", "softmax", 5, 1.5e9),
                                           ("maxpool", "pooling", 1, 1.2e9), ("gap", "pooling", 1, 1.2e9),
                                           ("sum", "reduction", 1, 3e9)):
        for n in (8192, 262144):
            f = per_elem * n
            ms.append(m(test, op_class, f, 8.0 * n, T0 + f / rate, shape=f"n={n}"))
    return ms


@pytest.fixture(scope="module")
def fitted():
    base = load_hardware("cpu-generic")
    run = CalibrationRun(id=5, backend="numpy", started_at="2026-12-01T09:00:00+00:00",
                         finished_at="2026-12-01T09:00:30+00:00", complete=True, fingerprint=FP,
                         measurements=device_run())
    fit = fit_run(run.measurements, base, measured_peaks=True, large_bytes=4 * LLC, label="run 5")
    return run, fit, calibrated_profile(base, fit, run)


def test_every_curve_reproduces_its_measurements(fitted):
    _, fit, prof = fitted
    summary = residual_summary(fit.residuals)
    for curve in ("matmul/fp32", "conv/fp32", "memory/any", "cache/any", "norm/fp32", "softmax/fp32",
                  "pooling/fp32", "reduce/fp32"):
        # (two GEMMs within x1.41 in FLOPs merge into one point: 1e-3, not exact)
        assert summary[curve]["max_abs_error"] < 1e-3, (curve, summary[curve])
    assert missing_sources(prof) == []


def test_cache_tier_is_kept_above_one_and_flagged_while_the_cost_model_uses_dram(fitted):
    run, fit, prof = fitted
    cache = find_curve(prof, "cache", "any")
    assert max(cache.efficiency) == pytest.approx(CACHE / DRAM, rel=0.05)      # 4x, not clamped to 1
    assert any("fits in the last-level cache" in f for f in fit.flags)
    assert fit.bandwidth_bytes_per_s == pytest.approx(4e8 / (T0 + 4e8 / DRAM))
    # the cost model times a 1 MB copy (in-cache in a microbenchmark) at the DRAM tier + overhead
    t = op_time_s(prof, "data_movement", 0.0, 1e6, "fp32")
    assert t == pytest.approx(T0 + 1e6 / DRAM, rel=1e-3)
    for x in run.measurements:
        if x.test == "add" and x.bytes > LLC:
            assert op_time_s(prof, "data_movement", 0.0, x.bytes, "fp32") == pytest.approx(x.duration_s, rel=1e-6)


def test_vector_classes_time_norm_softmax_pooling_reduce_at_their_own_rates(fitted):
    run, fit, prof = fitted
    assert prof.vector_flops_per_s["fp32"] == pytest.approx(VEC)
    kinds = {"layernorm": "norm", "softmax": "softmax", "maxpool": "pooling", "gap": "pooling", "sum": "reduce"}
    for x in run.measurements:
        if x.test in kinds:
            t = op_time_s(prof, kinds[x.test], x.flops, 1.0, "fp32")    # compute bound (tiny bytes)
            assert t == pytest.approx(x.duration_s, rel=1e-6), x.test
    # elementwise keeps the vector rate itself (no curve of its own)
    assert find_curve(prof, "elementwise", "fp32") is None
    assert op_time_s(prof, "elementwise", 8e6, 1.0, "fp32") == pytest.approx(8e6 / VEC)
    assert find_curve(prof, "norm", "fp32").efficiency[-1] > 1.0       # a norm beats the GELU rate


def test_serial_gemm_peak_and_shapes(fitted):
    run, fit, prof = fitted
    curve = find_curve(prof, "matmul", "fp32")
    assert curve.memory == "serial" and curve.index == "size"
    assert fit.peak_flops_per_s["fp32"] == pytest.approx(PEAK * gemm_eff(2.0 * 2048 ** 3))
    for x in run.measurements:
        if x.test == "gemm":
            t = op_time_s(prof, "matmul", x.flops, x.bytes, "fp32", (x.gemm_m, x.gemm_n, x.gemm_k))
            assert t == pytest.approx(x.duration_s, rel=1e-3), x.shape
    # at one FLOP count, the skinny GEMM (more operand bytes) takes longer than the square one
    sq = op_time_s(prof, "matmul", 2.0 * 1024 ** 3, 4.0 * 3 * 1024 ** 2, "fp32", (1024, 1024, 1024))
    skinny = op_time_s(prof, "matmul", 2.0 * 1024 ** 3, 4.0 * (64 * 16384 + 16384 * 1024 + 64 * 1024),
                       "fp32", (64, 1024, 16384))
    assert skinny > sq * 1.05


def test_conv_curve_is_indexed_by_im2col_intensity(fitted):
    run, fit, prof = fitted
    curve = find_curve(prof, "conv", "fp32")
    assert curve.index == "intensity" and curve.memory == "overlap"
    for x in run.measurements:
        if x.test == "conv":
            t = op_time_s(prof, "conv", x.flops, x.bytes, "fp32", (x.gemm_m, x.gemm_n, x.gemm_k))
            assert t == pytest.approx(x.duration_s, rel=1e-6), x.shape
    # one FLOP count, two channel counts: the 3-channel input conv (intensity ~5) is slower
    f = 2.0 * 16384 * 32 * 27
    thin = op_time_s(prof, "conv", f, 1e3, "fp32", (16384, 32, 27))
    wide = op_time_s(prof, "conv", f, 1e3, "fp32", (1024, 128, 216))
    assert thin > 1.5 * wide


def test_gpu_fit_keeps_the_plain_roofline():
    """Datasheet peaks (a GPU): no serial traffic, FLOP-indexed conv, no vector-class curves."""
    base = load_hardware("a100-sxm4-80gb")
    fit = fit_run(device_run(), base, measured_peaks=False, large_bytes=4 * LLC, label="r")
    for c in fit.curves:
        assert c.memory == "overlap" and c.index == "size", c.op_class
        assert c.op_class not in ("norm", "softmax", "pooling", "reduce")
    assert fit.peak_flops_per_s["fp32"] == base.peak_flops_per_s["fp32"]


def test_datasheet_profiles_are_untouched_by_the_refinements():
    """Goldens and training predictions cannot move: no bundled curve uses the new options."""
    for name in list_profiles():
        for c in load_hardware(name).efficiency:
            assert c.origin == "datasheet" and c.index == "size" and c.memory == "overlap", name
            assert c.op_class in ("matmul", "conv", "attention", "memory"), name
            assert all(0 < e <= 1 for e in c.efficiency), name


def test_schema_allows_above_one_only_for_calibrated_curves():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        EfficiencyCurve(op_class="memory", size=[1e6], efficiency=[3.0], source="s")
    c = EfficiencyCurve(op_class="cache", size=[1e6], efficiency=[3.0], source="s", origin="calibrated")
    assert c.efficiency == [3.0]
    with pytest.raises(ValueError):
        EfficiencyCurve(op_class="cache", size=[1e6], efficiency=[float("inf")], source="s",
                        origin="calibrated")


def test_serial_op_time_formula_and_arrays():
    base = load_hardware("cpu-generic")
    curve = EfficiencyCurve(op_class="matmul", dtype="fp32", size=[1e6, 1e9], efficiency=[0.5, 0.9],
                            source="s", origin="calibrated", memory="serial")
    mem = EfficiencyCurve(op_class="memory", size=[1e3, 1e9], efficiency=[0.1, 1.0], source="s",
                          origin="calibrated")
    prof = base.model_copy(update={"efficiency": [curve, mem], "compute_units": None})
    peak, bw = prof.peak_flops_per_s["fp32"], prof.memory.bandwidth_bytes_per_s
    t = op_time_s(prof, "matmul", 1e9, 1e7, "fp32", (1000, 500, 1000))
    assert t == pytest.approx(1e9 / (peak * 0.9) + 1e7 / bw)
    ts = op_time_s(prof, "matmul", np.array([1e9, 1e9]), np.array([1e7, 2e7]), "fp32", (1000, 500, 1000))
    assert ts[1] - ts[0] == pytest.approx(1e7 / bw)
