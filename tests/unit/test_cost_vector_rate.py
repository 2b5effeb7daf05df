"""Memory-class ops are bounded by the vector (non-tensor / SIMD) rate, not the GEMM peak.

simulator/cost/compute.vector_flops and op_time_s; the calibrated export carries the
measured rate (simulator/calibrate/fit._vector_rates, export.calibrated_profile).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from simulator.calibrate.export import calibrated_profile
from simulator.calibrate.fit import fit_run
from simulator.cost.compute import op_time_s, vector_flops
from simulator.hardware.audit import missing_sources
from simulator.hardware.load import list_profiles, load_hardware
from simulator.schema.calibration import CalibrationRun, Fingerprint, Measurement

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "hardware_datasheets.csv"


def _without_vector(p):
    return p.model_copy(update={"vector_flops_per_s": {}})


def test_intense_elementwise_op_is_bounded_by_the_vector_rate():
    base = load_hardware("cpu-generic")           # template GEMM peak 768 GFLOP/s fp32
    cpu = base.model_copy(update={"vector_flops_per_s": {"fp32": 2e9}})
    flops, nbytes = 1e9, 1e3                       # arithmetic intensity 1e6 FLOP/byte
    t = op_time_s(cpu, "elementwise", flops, nbytes, "fp32")
    assert t == pytest.approx(flops / 2e9, rel=1e-3)
    for kind in ("norm", "softmax", "reduce", "pooling"):   # every memory-class kind
        assert op_time_s(cpu, kind, flops, nbytes, "fp32") == pytest.approx(t)
    # a GEMM of the same FLOPs still uses the (much faster) GEMM peak
    assert op_time_s(cpu, "matmul", flops, nbytes, "fp32", (1000, 500, 1000)) < t / 50


def test_memory_bound_op_is_unchanged_by_the_vector_rate():
    cpu = load_hardware("cpu-generic")
    slow = cpu.model_copy(update={"vector_flops_per_s": {"fp32": 2e9}})
    flops, nbytes = 1e6, 8e8                       # 0.00125 FLOP/byte: bandwidth binds
    assert op_time_s(slow, "elementwise", flops, nbytes, "fp32") == pytest.approx(
        op_time_s(cpu, "elementwise", flops, nbytes, "fp32"))


def test_absent_field_falls_back_to_the_old_rule():
    cpu = load_hardware("cpu-generic")
    assert cpu.vector_flops_per_s == {}
    assert vector_flops(cpu, "fp32") == cpu.peak_flops_per_s["fp32"]
    assert op_time_s(cpu, "elementwise", 1e9, 1e3, "fp32") == pytest.approx(
        1e9 / cpu.peak_flops_per_s["fp32"], rel=1e-3)
    tpu = load_hardware("tpu-v4")                  # no fp32 peak, no vector rate: the dtype's peak
    assert tpu.vector_flops_per_s == {} and "fp32" not in tpu.peak_flops_per_s
    assert vector_flops(tpu, "bf16") == tpu.peak_flops_per_s["bf16"]


def test_dtype_lookup_then_fp32_vector_rate():
    p = load_hardware("cpu-generic").model_copy(update={"vector_flops_per_s": {"fp32": 2e9, "fp16": 5e9}})
    assert vector_flops(p, "fp16") == 5e9
    assert vector_flops(p, "bf16") == 2e9          # half types computed in fp32 registers
    gaudi3 = load_hardware("gaudi3")               # publishes only a BF16 vector rate
    assert vector_flops(gaudi3, "bf16") == pytest.approx(28.7e12)
    assert vector_flops(gaudi3, "fp32") == gaudi3.peak_flops_per_s["fp32"]


def test_vector_rate_vectorizes_over_arrays():
    cpu = load_hardware("cpu-generic").model_copy(update={"vector_flops_per_s": {"fp32": 2e9}})
    flops = np.array([1e9, 2e9, 0.0])
    nbytes = np.array([1e3, 1e3, 8e8])
    t = op_time_s(cpu, "elementwise", flops, nbytes, "fp32")
    assert t.shape == (3,)
    assert t[0] == pytest.approx(0.5, rel=1e-3) and t[1] == pytest.approx(1.0, rel=1e-3)
    assert t[2] == pytest.approx(op_time_s(cpu, "elementwise", 0.0, 8e8, "fp32"))


def test_nvidia_vector_rates_are_the_reference_non_tensor_fp32():
    rows = {r["name"]: r for r in csv.DictReader(REFERENCE.open(encoding="utf-8"))} if REFERENCE.exists() else {}
    checked = 0
    for name in list_profiles():
        p = load_hardware(name)
        assert missing_sources(p) == [], name
        if p.vendor != "NVIDIA":
            continue
        assert p.vector_flops_per_s, name
        # NVIDIA's datasheet FP32 is the CUDA-core rate, so the profile's two agree
        assert p.vector_flops_per_s["fp32"] == p.peak_flops_per_s["fp32"], name
        checked += 1
    assert checked >= 15
    if rows:
        assert load_hardware("a100-sxm4-80gb").vector_flops_per_s["fp32"] == pytest.approx(
            float(rows["NVIDIA A100 80GB SXM4"]["fp32_tflops"]) * 1e12)


def test_datasheet_vector_rate_leaves_nvidia_elementwise_times_unchanged():
    a100 = load_hardware("a100-sxm4-80gb")
    for kind, flops, nbytes, dtype in (("elementwise", 8e9, 4e9, "bf16"), ("softmax", 1e12, 1e3, "fp32")):
        assert op_time_s(a100, kind, flops, nbytes, dtype) == op_time_s(_without_vector(a100), kind, flops,
                                                                       nbytes, dtype)


# --- calibration: the exported profile carries the measured activation rate --------------------

FP = Fingerprint(backend="numpy", device="Test CPU", fields={"cpu_model": "Test CPU", "blas_threads": "1"})


def _m(test, op_class, flops, nbytes, t, gemm=None, shape="s"):
    g = gemm or (None, None, None)
    return Measurement(test=test, op_class=op_class, dtype="fp32", shape=shape, flops=flops, bytes=nbytes,
                       duration_s=t, min_s=t, max_s=t, repeats=3, gemm_m=g[0], gemm_n=g[1], gemm_k=g[2])


def _run():
    ms = [_m("launch", "launch", 0, 8, 1e-6)]
    for n in (64, 256, 1024):
        f = 2.0 * n ** 3
        ms.append(_m("gemm", "matmul", f, 12.0 * n * n, f / 50e9, (n, n, n)))
    for nbytes in (1e4, 1e6, 1e8):
        ms.append(_m("add", "stream", 0, nbytes, nbytes / 15e9 + 1e-6))
    # gelu: 8 FLOPs per element (graph convention); best rate 2.4 GFLOP/s at n=262144
    for n, rate in ((8192, 1.5e9), (262144, 2.4e9), (8388608, 1.2e9)):
        ms.append(_m("gelu", "elementwise", 8.0 * n, 8.0 * n, 8.0 * n / rate, shape=f"n={n}"))
    ms.append(_m("exp", "elementwise", 262144.0, 8.0 * 262144, 262144 / 0.6e9, shape="n=262144"))
    return CalibrationRun(id=3, backend="numpy", started_at="2026-12-01T06:00:00+00:00",
                          finished_at="2026-12-01T06:00:30+00:00", complete=True, fingerprint=FP,
                          measurements=ms)


def test_export_carries_the_measured_vector_rate():
    base, run = load_hardware("cpu-generic"), _run()
    fit = fit_run(run.measurements, base, measured_peaks=True, large_bytes=1e7, label="run 3")
    assert fit.vector_flops_per_s == {"fp32": pytest.approx(2.4e9)}
    prof = calibrated_profile(base, fit, run)
    assert prof.vector_flops_per_s == {"fp32": pytest.approx(2.4e9)}
    assert "gelu" in prof.sources["vector_flops_per_s.fp32"]
    assert "run 3" in prof.sources["vector_flops_per_s.fp32"]
    assert missing_sources(prof) == []
    # and the cost model uses it: an 8-FLOP/element activation on 1M cache-resident elements
    t = op_time_s(prof, "elementwise", 8.0 * 2**20, 1.0, "fp32")
    assert t == pytest.approx(8.0 * 2**20 / 2.4e9, rel=1e-3)


def test_datasheet_fit_keeps_the_datasheet_vector_rate():
    base, run = load_hardware("a100-sxm4-80gb"), _run()
    fit = fit_run(run.measurements, base, measured_peaks=False, large_bytes=1e7, label="run 3")
    assert fit.vector_flops_per_s == {}
    prof = calibrated_profile(base, fit, run)
    assert prof.vector_flops_per_s == base.vector_flops_per_s
    assert missing_sources(prof) == []
