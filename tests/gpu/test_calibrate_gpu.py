"""The CuPy calibration path on a real GPU (skipped without one; see tests/conftest.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_cupy_is_usable_and_fingerprinted():
    from simulator.calibrate.backends import cupy_status, resolve_backend
    from simulator.calibrate.bench_cupy import cupy_fingerprint
    ok, why = cupy_status()
    assert ok, why
    assert resolve_backend("auto")[0] == "cupy"
    fp = cupy_fingerprint()
    assert fp.backend == "cupy" and int(fp.fields["sm_count"]) > 0
    assert fp.fields["driver_version"] and fp.fields["cupy"]


def test_bf16_gemm_via_gemm_ex_is_correct():
    import cupy as cp
    from simulator.calibrate.bench_cupy import CUDA_R_16BF, _gemm_ex_16
    rng = np.random.default_rng(0)
    a32 = rng.uniform(0.5, 1.5, (64, 96)).astype(np.float32)
    b32 = rng.uniform(0.5, 1.5, (96, 80)).astype(np.float32)
    to_bf16 = lambda x: cp.asarray((x.view(np.uint32) >> 16).astype(np.uint16))   # noqa: E731
    from_bf16 = lambda x: (cp.asnumpy(x).astype(np.uint32) << 16).view(np.float32)  # noqa: E731
    out = cp.empty((64, 80), dtype=cp.uint16)
    _gemm_ex_16(to_bf16(a32), to_bf16(b32), out, CUDA_R_16BF)
    ref = from_bf16(to_bf16(a32)) @ from_bf16(to_bf16(b32))
    np.testing.assert_allclose(from_bf16(out), ref, rtol=2e-2)


def test_tf32_mode_is_restored_after_a_tf32_gemm():
    import cupy as cp
    from cupy._core import _routines_linalg as linalg
    from simulator.calibrate.bench_cupy import _matmul
    a = cp.ones((128, 128), dtype=cp.float32)
    out = cp.empty_like(a)
    _matmul(a, a, out, "tf32")
    assert linalg.get_compute_type(cp.float32) == linalg.COMPUTE_TYPE_DEFAULT
    assert float(out[0, 0]) == 128.0


def test_conv_and_pool_kernels_match_numpy_on_the_gpu():
    import cupy as cp
    from simulator.calibrate import kernels as K
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((27, 4)).astype(np.float32)
    np.testing.assert_allclose(cp.asnumpy(K.conv2d(cp, cp.asarray(x), cp.asarray(w), 1, 1)),
                               K.conv2d(np, x, w, 1, 1), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(cp.asnumpy(K.pool2d(cp, cp.asarray(x), 3, 2, 1, "max")),
                               K.pool2d(np, x, 3, 2, 1, "max"))


def test_smoke_calibration_and_validation_on_the_gpu(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPPLAN_CALIBRATE_SMOKE", "1")
    store, out = tmp_path / "s.sqlite", tmp_path / "gpu.yaml"
    r = cli("calibrate", "--backend", "cupy", "--store", store, "--export", out, "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["backend"] == "cupy" and data["fingerprint"]["sm_count"]
    gemm = [m for m in data["measurements"] if m["test"] == "gemm"]
    assert gemm and all(m["duration_s"] > 0 for m in gemm)
    from simulator.hardware.load import load_hardware
    prof = load_hardware(str(out))
    assert prof.provenance == "calibrated" and prof.calibration.fingerprint["backend"] == "cupy"
    r = cli("validate", "--backend", "cupy", "--store", store, "--repeats", "2", "--case", "mlp", "--json")
    assert r.code == 0, r
    case = json.loads(r.out)["cases"][0]
    assert case["measured_s"] > 0 and case["predicted_s"] > 0


def _fp8_ready():
    import cupy as cp
    from simulator.calibrate import bench_cupy
    props = cp.cuda.runtime.getDeviceProperties(0)
    cc = (int(props["major"]), int(props["minor"]))
    if cc < (8, 9):
        pytest.skip(f"compute capability {cc}: no fp8 tensor cores")
    why = bench_cupy.fp8_status(cc, np.random.default_rng(0), [(128, 256, 512)])
    assert why is None, why
    return cp, bench_cupy


def test_fp8_gemm_through_cublaslt_is_correct_for_a_non_square_shape():
    cp, bench_cupy = _fp8_ready()
    from simulator.calibrate import cublaslt as L
    m, n, k = 128, 256, 512            # distinct sizes: a wrong leading dimension cannot hide
    rng = np.random.default_rng(7)
    a, w = L.random_e4m3(cp, rng, (m, k)), L.random_e4m3(cp, rng, (n, k))
    out = cp.empty((m, n), dtype=cp.uint16)
    bench_cupy._fp8_gemm(m, n, k)(a.data.ptr, w.data.ptr, out.data.ptr, cp.cuda.get_current_stream().ptr)
    cp.cuda.get_current_stream().synchronize()
    ref = L.e4m3_to_float32(cp.asnumpy(a)).astype(np.float64) @ L.e4m3_to_float32(cp.asnumpy(w)).T
    np.testing.assert_allclose(L.bf16_to_float32(cp.asnumpy(out)), ref, rtol=1e-2, atol=0.1)


def test_bf16_gemm_restores_the_handles_math_mode():
    import cupy as cp
    from cupy_backends.cuda.libs import cublas
    from simulator.calibrate.bench_cupy import CUDA_R_16BF, _gemm_ex_16
    handle = cp.cuda.device.get_cublas_handle()
    before = cublas.getMathMode(handle)
    x = cp.zeros((32, 32), dtype=cp.uint16)
    _gemm_ex_16(x, x, cp.empty_like(x), CUDA_R_16BF)
    assert cublas.getMathMode(handle) == before
