"""The CuPy backend's Python logic, run against a NumPy-backed stand-in for `cupy`.

No GPU here: this checks the suite wiring, CUDA-event timer, fingerprint and the
executor's use of the array API, so a GPU session does not fail on plumbing.
The real device path is tested in tests/gpu/.
"""
from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest


class _Event:
    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass


def _fake_cupy() -> types.ModuleType:
    cp = types.ModuleType("cupy")
    for name in dir(np):
        if not name.startswith("__"):
            setattr(cp, name, getattr(np, name))
    cp.__version__ = "0.0-fake"
    cp.asnumpy = np.asarray
    cp.random = types.SimpleNamespace(RandomState=np.random.RandomState)
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"Fake GPU", "multiProcessorCount": 4, "major": 7, "minor": 0,
                                       "clockRate": 1000000, "l2CacheSize": 4 << 20},
        memGetInfo=lambda: (2 << 30, 4 << 30), driverGetVersion=lambda: 12040,
        runtimeGetVersion=lambda: 12040, deviceGetAttribute=lambda a, d: 0)
    cp.cuda = types.SimpleNamespace(Event=_Event, runtime=runtime,
                                    get_elapsed_time=lambda a, b: (b.t - a.t) * 1e3)

    def elementwise_kernel(in_params, out_params, body, name):
        if name == "capplan_gelu":
            return lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

        def run(b, c, s, a):
            np.multiply(c, s, out=a)
            np.add(a, b, out=a)
        return run
    cp.ElementwiseKernel = elementwise_kernel
    return cp


@pytest.fixture
def fake_cupy(monkeypatch):
    cp = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    import simulator.calibrate.bench_cupy as bc
    monkeypatch.setattr(bc, "_TRIAD", None)
    from simulator.calibrate import kernels
    monkeypatch.setattr(kernels, "_FUSED", {})
    return cp


def test_cupy_suite_runs_end_to_end_on_the_stand_in(fake_cupy):
    from simulator.calibrate.bench_cupy import cupy_backend
    from simulator.calibrate.harness import Settings
    from simulator.calibrate.suite import plan_suite, run_suite
    bk = cupy_backend(smoke=True)
    assert bk.fingerprint.device == "Fake GPU" and bk.fingerprint.fields["sm_count"] == "4"
    assert set(bk.gemm_dtypes) == {"fp32", "fp64", "fp16"}          # cc 7.0: no tf32/bf16
    assert any("fp8" in n for n in bk.notes)
    bk.gemm_shapes = lambda quick: [(64, 64, 64), (32, 128, 64)]   # NumPy has no fp16 BLAS: keep small
    ms = run_suite(plan_suite(bk, quick=True, settings=Settings(warmup=1, repeats=2, min_sample_s=1e-4)))
    tests = {m.test for m in ms}
    assert {"launch", "gemm", "bmm", "conv", "copy", "triad"} <= tests
    assert all(m.duration_s > 0 for m in ms)
    assert any(m.op_class == "stream" and m.test == "triad" for m in ms)   # fused on a GPU


def test_cupy_clock_and_executor_on_the_stand_in(fake_cupy):
    from simulator.calibrate.bench_cupy import cupy_clock
    from simulator.calibrate.cases import build_case
    from simulator.calibrate.execute import prepare
    g = build_case("transformer-block")
    steps = prepare(g, fake_cupy, np.random.default_rng(0))
    total, laps = cupy_clock([s.run for s in steps])
    assert len(laps) == len(steps) and total == pytest.approx(sum(laps))
    from simulator.calibrate import kernels
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    np.testing.assert_allclose(kernels.gelu(fake_cupy, x), kernels.gelu(np, x.copy()), rtol=1e-5)


def test_gpu_fit_uses_the_matching_datasheet_profile(fake_cupy):
    from simulator.calibrate.export import match_gpu_profile
    from simulator.hardware.load import list_profiles
    assert match_gpu_profile("NVIDIA H200", list_profiles(), 150e9) == "h200-sxm-141gb"


def test_fp8_is_measured_only_when_cublaslt_works(fake_cupy, monkeypatch):
    from simulator.calibrate import bench_cupy, cublaslt
    rng = np.random.default_rng(0)
    assert "8.9+" in bench_cupy.fp8_status((8, 0), rng, [])          # A100: no fp8 tensor cores

    def missing():
        raise cublaslt.LtError("libcublasLt not found (test)")
    monkeypatch.setattr(bench_cupy, "_FP8", {})
    monkeypatch.setattr(cublaslt, "load_library", missing)
    why = bench_cupy.fp8_status((9, 0), rng, [(256, 256, 256)])
    assert why == "fp8 GEMM not measured: libcublasLt not found (test)"


def test_fp8_self_check_failure_keeps_fp8_out_of_the_sweep(fake_cupy, monkeypatch):
    from simulator.calibrate import bench_cupy, cublaslt
    monkeypatch.setattr(bench_cupy, "_FP8", {})
    monkeypatch.setattr(cublaslt, "load_library", lambda: object())
    monkeypatch.setattr(cublaslt, "create_handle", lambda lib: object())
    monkeypatch.setattr(cublaslt, "plan_gemm", lambda *a: pytest.fail("planned after a failed check"))
    monkeypatch.setattr(cublaslt, "self_check", lambda gemm_for, cp, rng: (_ for _ in ()).throw(
        cublaslt.LtError("fp8 self-check failed: relative error 1 > 0.01 (layout or enum wrong)")))
    props = fake_cupy.cuda.runtime.getDeviceProperties(0)
    monkeypatch.setattr(fake_cupy.cuda.runtime, "getDeviceProperties",
                        lambda i: {**props, "major": 9, "minor": 0})
    bk = bench_cupy.cupy_backend(smoke=True)
    assert "fp8" not in bk.gemm_dtypes and {"tf32", "bf16"} <= set(bk.gemm_dtypes)
    assert any("self-check failed" in n for n in bk.notes)
