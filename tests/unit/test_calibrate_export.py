"""Calibrated profile export: loads with load_hardware, works in a scenario, names its run."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from simulator.calibrate.export import (base_profile_name, calibrated_profile, match_gpu_profile,
                                        write_profile)
from simulator.calibrate.fit import fit_run
from simulator.hardware.load import list_profiles, load_hardware
from simulator.schema.calibration import CalibrationRun, Fingerprint, Measurement

FP = Fingerprint(backend="numpy", device="Test CPU (2 BLAS threads)",
                 fields={"cpu_model": "Test CPU", "blas_threads": "2", "memory_total_bytes": "8000000000",
                         "cache_L2_bytes": "524288", "cache_L3_bytes": "33554432"})


def run_with(measurements) -> CalibrationRun:
    return CalibrationRun(id=7, backend="numpy", started_at="2026-12-01T06:00:00+00:00",
                          finished_at="2026-12-01T06:00:30+00:00", complete=True, fingerprint=FP,
                          measurements=measurements)


def m(test, op_class, flops, nbytes, t, gemm=None):
    g = gemm or (None, None, None)
    return Measurement(test=test, op_class=op_class, dtype="fp32", shape="s", flops=flops, bytes=nbytes,
                       duration_s=t, min_s=t, max_s=t, repeats=3, gemm_m=g[0], gemm_n=g[1], gemm_k=g[2])


def synthetic():
    ms = [m("launch", "launch", 0, 8, 2e-6)]
    for n in (64, 256, 1024):
        f = 2.0 * n ** 3
        ms.append(m("gemm", "matmul", f, 12.0 * n * n, f / (80e9 * (1 - 64 / (n + 64))), (n, n, n)))
    for nbytes in (1e4, 1e6, 1e8, 4e8):
        ms.append(m("add", "stream", 0, nbytes, nbytes / 15e9 + 2e-6))
    return ms


def test_exported_profile_loads_and_names_its_calibration(tmp_path):
    base = load_hardware("cpu-generic")
    run = run_with(synthetic())
    fit = fit_run(run.measurements, base, measured_peaks=True, large_bytes=1.3e8, label="run 7")
    prof = calibrated_profile(base, fit, run)
    path = write_profile(prof, tmp_path / "cal.yaml")
    loaded = load_hardware(str(path))
    assert loaded == prof
    assert loaded.provenance == "calibrated" and loaded.name == "cpu-generic-calibrated"
    assert loaded.calibration.date == run.finished_at and loaded.calibration.device == FP.device
    assert loaded.calibration.fingerprint["blas_threads"] == "2" and loaded.calibration.store_run_id == 7
    # the CPU peak is the best GEMM compute rate, its operand traffic at the DRAM rate taken out
    gemms = [x for x in run.measurements if x.test == "gemm"]
    bw = fit.bandwidth_bytes_per_s
    assert loaded.peak_flops_per_s == {"fp32": pytest.approx(max(x.flops / (x.duration_s - x.bytes / bw)
                                                                 for x in gemms))}
    assert loaded.peak_flops_per_s["fp32"] > max(x.flops_per_s for x in gemms)
    assert loaded.memory.capacity_bytes == 8e9 and loaded.compute_units is None
    assert all(c.origin == "calibrated" for c in loaded.efficiency)
    # every numeric field that changed names its source
    for key in ("peak_flops_per_s.fp32", "memory.bandwidth_bytes_per_s", "launch_overhead_s",
                "efficiency.matmul.fp32", "efficiency.memory.any", "memory.capacity_bytes"):
        assert key in loaded.sources, key
    assert "peak_flops_per_s.fp64" not in loaded.sources    # template fp64 dropped (not measured)
    text = path.read_text()
    assert yaml.safe_load(text)["provenance"] == "calibrated"


def test_exported_profile_works_as_cluster_hardware_in_a_scenario(tmp_path):
    from simulator.hardware.cluster import build_cluster
    from simulator.schema.scenario import Cluster
    base = load_hardware("cpu-generic")
    run = run_with(synthetic())
    prof = calibrated_profile(base, fit_run(run.measurements, base, measured_peaks=True,
                                            large_bytes=1.3e8, label="r"), run)
    path = write_profile(prof, tmp_path / "cpu.yaml")
    cluster = build_cluster(Cluster(hardware=str(path), devices=1))
    assert cluster.profile.provenance == "calibrated"


def test_gpu_device_names_match_bundled_profiles():
    known = list_profiles()
    assert match_gpu_profile("NVIDIA H200", known, 150e9) == "h200-sxm-141gb"
    assert match_gpu_profile("NVIDIA A100-SXM4-80GB", known, 85e9) == "a100-sxm4-80gb"
    assert match_gpu_profile("NVIDIA A100-SXM4-40GB", known, 42e9) == "a100-sxm4-40gb"
    assert match_gpu_profile("NVIDIA H100 PCIe", known, 85e9) == "h100-pcie-80gb"
    assert match_gpu_profile("NVIDIA H100 80GB HBM3", known, 85e9) == "h100-sxm5-80gb"
    assert match_gpu_profile("Some Unknown Accelerator", known) is None
    gpu = Fingerprint(backend="cupy", device="NVIDIA H200", fields={"memory_total_bytes": "150000000000"})
    assert base_profile_name(gpu, known) == "h200-sxm-141gb"
    assert base_profile_name(FP, known) == "cpu-generic"


def test_write_profile_to_a_directory_is_an_input_error(tmp_path):
    from simulator.errors import InputError
    base = load_hardware("cpu-generic")
    run = run_with(synthetic())
    prof = calibrated_profile(base, fit_run(run.measurements, base, measured_peaks=True,
                                            large_bytes=1.3e8, label="r"), run)
    with pytest.raises(InputError):
        write_profile(prof, tmp_path)
    assert np.isfinite(prof.launch_overhead_s)
