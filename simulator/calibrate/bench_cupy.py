"""CuPy (CUDA GPU) backend of the calibration suite. Imported only when asked for.

GEMMs go through cuBLAS: fp32 (SIMT, CuPy compute type DEFAULT), tf32 (CuPy
COMPUTE_TYPE_TF32 on fp32 operands), fp16 (cupy.matmul -> cublasGemmEx with
tensor-op math), bf16 (cublasGemmEx on 16-bit storage with CUDA_R_16BF and
CUBLAS_COMPUTE_32F, as CuPy has no bfloat16 dtype), fp64 (DGEMM) and, on
compute capability 8.9+, fp8 E4M3 through cuBLASLt (calibrate/cublaslt.py,
ctypes; used only after a self-check against float64 passes). Timing uses CUDA
events around `inner` back-to-back calls after warm-up (median of repeats).
Extra device tests: host-to-device and device-to-host copies from pinned
memory, and with two or more GPUs peer-to-peer copies and NCCL all-reduce bus
bandwidth (busbw = 2(n-1)/n * bytes / time, the nccl-tests convention).
"""
from __future__ import annotations

import numpy as np

from simulator.calibrate.harness import Settings, QUICK, random_array, time_call
from simulator.calibrate.suite import Backend, Task, measurement
from simulator.schema.calibration import Fingerprint

CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF = 0, 2, 14


def _cupy():
    import cupy
    return cupy


def cuda_timer(run, inner: int, start: int) -> float:
    """Seconds for `inner` calls measured with CUDA events on the current stream."""
    cp = _cupy()
    begin, end = cp.cuda.Event(), cp.cuda.Event()
    begin.record()
    for i in range(start, start + inner):
        run(i)
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(begin, end) / 1e3


def cupy_clock(runs) -> tuple[float, list[float]]:
    """Run ops in order with an event after each: (total seconds, seconds per op)."""
    cp = _cupy()
    events = [cp.cuda.Event() for _ in range(len(runs) + 1)]
    events[0].record()
    for run, ev in zip(runs, events[1:]):
        run()
        ev.record()
    events[-1].synchronize()
    laps = [cp.cuda.get_elapsed_time(a, b) / 1e3 for a, b in zip(events, events[1:])]
    return float(sum(laps)), laps


def _attr(cp, name: int, device: int = 0) -> str:
    try:
        return str(cp.cuda.runtime.deviceGetAttribute(name, device))
    except Exception:  # noqa: BLE001 - attribute missing on this driver
        return ""


def cupy_fingerprint() -> Fingerprint:
    cp = _cupy()
    rt = cp.cuda.runtime
    props = rt.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    free, total = rt.memGetInfo()
    fields = {
        "sm_count": str(props.get("multiProcessorCount", "")),
        "compute_capability": f"{props.get('major', '')}.{props.get('minor', '')}",
        "sm_clock_khz": str(props.get("clockRate", "") or _attr(cp, 13)),          # cudaDevAttrClockRate
        "memory_clock_khz": str(props.get("memoryClockRate", "") or _attr(cp, 36)),
        "memory_bus_bits": str(props.get("memoryBusWidth", "") or _attr(cp, 37)),
        "l2_cache_bytes": str(props.get("l2CacheSize", "")),
        "memory_total_bytes": str(total),
        "device_count": str(rt.getDeviceCount()),
        "driver_version": str(rt.driverGetVersion()),
        "cuda_runtime_version": str(rt.runtimeGetVersion()),
        "cupy": cp.__version__,
        "numpy": np.__version__,
    }
    return Fingerprint(backend="cupy", device=name, fields=fields)


def _set_fp32_compute(tf32: bool) -> None:
    from cupy._core import _routines_linalg as linalg
    cp = _cupy()
    linalg.set_compute_type(cp.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)


def _gemm_ex_16(a, b, out, data_type: int) -> None:
    """Row-major out[m,n] = a[m,k] @ b[k,n] on 16-bit storage via cublasGemmEx (fp32 accumulate)."""
    cp = _cupy()
    from cupy_backends.cuda.libs import cublas
    m, k = a.shape
    n = b.shape[1]
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    handle = cp.cuda.device.get_cublas_handle()
    # CUDA 11+ takes a cublasComputeType_t here (CUBLAS_COMPUTE_32F = 68), older ones CUDA_R_32F
    compute = getattr(cublas, "CUBLAS_COMPUTE_32F", CUDA_R_32F)
    previous = cublas.getMathMode(handle)
    cublas.setMathMode(handle, cublas.CUBLAS_TENSOR_OP_MATH)
    try:   # column-major view: out^T = b^T a^T
        cublas.gemmEx(handle, cublas.CUBLAS_OP_N, cublas.CUBLAS_OP_N, n, m, k, one.ctypes.data,
                      b.data.ptr, data_type, n, a.data.ptr, data_type, k, zero.ctypes.data,
                      out.data.ptr, data_type, n, compute, cublas.CUBLAS_GEMM_DEFAULT_TENSOR_OP)
    finally:
        cublas.setMathMode(handle, previous)


def _matmul(a, b, out, dtype: str) -> None:
    cp = _cupy()
    if dtype == "fp8":
        _fp8_matmul(a, b)
        return
    if dtype == "bf16":
        _gemm_ex_16(a, b, out, CUDA_R_16BF)
        return
    if dtype == "tf32":
        _set_fp32_compute(True)
        try:
            cp.matmul(a, b, out=out)
        finally:                  # everything else (bmm, conv, validate) runs plain fp32
            _set_fp32_compute(False)
        return
    cp.matmul(a, b, out=out)


def _operand(rng, shape, dtype: str):
    """Random operands; bf16 as the top 16 bits of fp32 values, fp8 as E4M3 bit patterns
    (magnitudes in [0.5, 1.5) like every dtype, never zero)."""
    cp = _cupy()
    if dtype == "fp8":
        from simulator.calibrate.cublaslt import random_e4m3
        return random_e4m3(cp, rng, shape)
    if dtype == "bf16":
        f32 = random_array(cp, rng, shape, cp.float32)
        return (f32.view(cp.uint32) >> 16).astype(cp.uint16)
    store = {"fp16": np.float16, "fp64": np.float64}.get(dtype, np.float32)
    return random_array(cp, rng, shape, store)


_FP8: dict = {}          # "lib", "handle", "workspace", "self_check_error" once fp8 works here
_FP8_PLANS: dict = {}    # (m, n, k) -> Fp8Gemm
_FP8_OUT: dict = {}      # (m, n) -> the bf16 output buffer of the shape being measured (one at a time)


def _fp8_gemm(m: int, n: int, k: int):
    from simulator.calibrate.cublaslt import plan_gemm
    if (m, n, k) not in _FP8_PLANS:
        _FP8_PLANS[(m, n, k)] = plan_gemm(_FP8["lib"], _FP8["handle"], _FP8["workspace"], m, n, k)
    return _FP8_PLANS[(m, n, k)]


def _fp8_matmul(a, b) -> None:
    """fp8 GEMM of the suite's a[m, k] and b[k, n] buffers: b's bytes are read as w[n, k] (the
    TN layout Hopper needs), the same m x n x k work; the bf16 result goes to a buffer kept
    per shape (the suite's `out` has 1-byte storage)."""
    cp = _cupy()
    m, k = a.shape
    n = b.shape[1]
    if (m, n) not in _FP8_OUT:
        _FP8_OUT.clear()                        # one output buffer at a time (the sweep goes by shape)
        _FP8_OUT[(m, n)] = cp.empty((m, n), dtype=cp.uint16)
    out = _FP8_OUT[(m, n)]
    _fp8_gemm(m, n, k)(a.data.ptr, b.data.ptr, out.data.ptr, cp.cuda.get_current_stream().ptr)


def fp8_status(compute_capability: tuple[int, int], rng: np.random.Generator,
               shapes: list[tuple[int, int, int]]) -> str | None:
    """None when fp8 GEMMs work here (cuBLASLt found, a handle made, the self-check passed and
    an algorithm found for every shape of the sweep), else why not, as a note for the run.
    Planning every shape up front keeps one unsupported shape from aborting the whole run."""
    if compute_capability < (8, 9):
        return "fp8 GEMM needs compute capability 8.9+: not measured"
    try:
        from simulator.calibrate.cublaslt import (WORKSPACE_BYTES, LtError, create_handle,
                                                  load_library, self_check)
        cp = _cupy()
        if "lib" not in _FP8:
            lib = load_library()
            _FP8.update(lib=lib, handle=create_handle(lib),
                        workspace=cp.empty(WORKSPACE_BYTES, dtype=cp.uint8))
        err = self_check(lambda m, n, k: _fp8_gemm(m, n, k), cp, rng)
        for m, n, k in shapes:
            _fp8_gemm(m, n, k)
    except (LtError, OSError, AttributeError) as exc:
        return f"fp8 GEMM not measured: {exc}"
    except Exception as exc:  # noqa: BLE001 - a CUDA error inside the check
        return f"fp8 GEMM not measured: {type(exc).__name__}: {exc}"
    _FP8["self_check_error"] = err
    return None


_TRIAD = None


def _triad(a, b, c, s: float) -> None:
    global _TRIAD
    cp = _cupy()
    if _TRIAD is None:
        _TRIAD = cp.ElementwiseKernel("float32 b, float32 c, float32 s", "float32 a", "a = b + s * c",
                                      "capplan_triad")
    _TRIAD(b, c, np.float32(s), a)


def _gemm_shapes(quick: bool):
    square = [256, 512, 1024, 2048, 4096, 8192] + ([] if quick else [6144, 12288, 16384])
    skinny = [(16, 8192, 8192), (128, 8192, 8192), (2048, 8192, 1024), (8192, 1024, 8192)]
    mamf = [(2048, 2048, 13312), (1024, 15360, 4096), (1280, 4096, 12032)]   # best published shapes
    return [(n, n, n) for n in square] + skinny + mamf


def _bmm_shapes(quick: bool):
    shapes = [(128, 1024, 1024, 128), (128, 1024, 128, 1024), (32, 2048, 2048, 128), (32, 2048, 128, 2048)]
    return shapes + ([] if quick else [(512, 512, 512, 64), (512, 512, 64, 512)])


def _conv_shapes(quick: bool):
    shapes = [(64, 3, 224, 64, 7, 2), (64, 64, 56, 64, 3, 1), (64, 128, 28, 128, 3, 1),
              (64, 256, 14, 256, 3, 1), (64, 256, 56, 64, 1, 1)]
    return shapes + ([] if quick else [(64, 512, 7, 512, 3, 1), (128, 64, 56, 64, 3, 1)])


def _stream_sizes(quick: bool):
    exps = range(10, 29, 3) if quick else range(10, 29, 2)      # 1 Ki .. 256 Mi fp32 elements
    return [1 << e for e in exps]


def _smoke_shapes(quick: bool):
    return [(256, 256, 256), (1024, 1024, 1024)]


def _extra_tasks(backend: Backend, quick: bool, rng, settings: Settings) -> list[Task]:
    global _SETTINGS
    _SETTINGS = settings
    sizes = [1 << 20, 1 << 24, 1 << 28] if quick else [1 << e for e in range(16, 31, 2)]
    tasks = [_copy_task(backend, "h2d", n) for n in sizes] + [_copy_task(backend, "d2h", n) for n in sizes]
    cp = _cupy()
    count = cp.cuda.runtime.getDeviceCount()
    if count >= 2:
        tasks += [_p2p_task(backend, n) for n in sizes]
        tasks += [_allreduce_task(backend, n, count) for n in sizes]
    return tasks


def _copy_task(backend: Backend, kind: str, nbytes: int) -> Task:
    def run():
        cp = _cupy()
        pinned = cp.cuda.alloc_pinned_memory(nbytes)
        host = np.frombuffer(pinned, dtype=np.uint8, count=nbytes)
        host[:] = 1
        dev = cp.empty(nbytes, dtype=cp.uint8)
        direction = 1 if kind == "h2d" else 2        # cudaMemcpyHostToDevice / DeviceToHost
        src, dst = (host.ctypes.data, dev.data.ptr) if kind == "h2d" else (dev.data.ptr, host.ctypes.data)
        stream = cp.cuda.get_current_stream()
        timing = time_call(lambda i: cp.cuda.runtime.memcpyAsync(dst, src, nbytes, direction, stream.ptr),
                           timer=backend.timer, settings=_SETTINGS)
        return measurement(kind, "transfer", "u8", f"bytes={nbytes}", 0.0, float(nbytes), timing)
    return Task(f"{kind} bytes={nbytes}", run)


def _p2p_task(backend: Backend, nbytes: int) -> Task:
    def run():
        cp = _cupy()
        with cp.cuda.Device(1):
            dst = cp.empty(nbytes, dtype=cp.uint8)
        src = cp.ones(nbytes, dtype=cp.uint8)
        stream = cp.cuda.get_current_stream()
        timing = time_call(lambda i: cp.cuda.runtime.memcpyPeerAsync(dst.data.ptr, 1, src.data.ptr, 0,
                                                                     nbytes, stream.ptr),
                           timer=backend.timer, settings=_SETTINGS)
        return measurement("p2p", "p2p", "u8", f"bytes={nbytes}", 0.0, float(nbytes), timing)
    return Task(f"p2p bytes={nbytes}", run)


def _allreduce_task(backend: Backend, nbytes: int, count: int) -> Task:
    def run():
        cp = _cupy()
        from cupy.cuda import nccl
        comms = nccl.NcclCommunicator.initAll(list(range(count)))
        bufs, streams = [], []
        for d in range(count):
            with cp.cuda.Device(d):
                bufs.append(cp.ones(nbytes // 4, dtype=cp.float32))
                streams.append(cp.cuda.Stream(non_blocking=True))

        def allreduce(_i):
            nccl.groupStart()
            for d, comm in enumerate(comms):
                comm.allReduce(bufs[d].data.ptr, bufs[d].data.ptr, nbytes // 4, nccl.NCCL_FLOAT32,
                               nccl.NCCL_SUM, streams[d].ptr)
            nccl.groupEnd()
            for s in streams:
                s.synchronize()
        from simulator.calibrate.harness import wall_timer
        timing = time_call(allreduce, timer=wall_timer, settings=_SETTINGS)
        bus_bytes = 2.0 * (count - 1) / count * nbytes
        return measurement("allreduce", "collective", "fp32", f"bytes={nbytes} ranks={count}", 0.0,
                           bus_bytes, timing)
    return Task(f"allreduce bytes={nbytes}", run)


_SETTINGS: Settings = QUICK


def cupy_backend(*, smoke: bool = False) -> Backend:
    """The GPU backend (device 0); `smoke` keeps only two GEMM sizes (for GPU tests)."""
    cp = _cupy()
    fp = cupy_fingerprint()
    free, _total = cp.cuda.runtime.memGetInfo()
    major, _, minor = fp.fields["compute_capability"].partition(".")
    cc = (int(major or 0), int(minor or 0))
    dtypes = {"fp32": np.float32, "fp64": np.float64, "fp16": np.float16}
    notes = []
    if cc >= (8, 0):
        dtypes.update(tf32=np.float32, bf16=np.uint16)
    else:
        notes.append("tf32/bf16 need compute capability 8.0+: not measured")
    sweep = _smoke_shapes(True) if smoke else sorted(set(_gemm_shapes(True) + _gemm_shapes(False)))
    why_not_fp8 = fp8_status(cc, np.random.default_rng(12345), sweep)
    if why_not_fp8 is None:
        dtypes["fp8"] = np.uint8
        notes.append(f"fp8 E4M3 GEMM via cuBLASLt (bf16 out, fp32 accumulate); self-check relative "
                     f"error {_FP8['self_check_error']:.1e}")
    else:
        notes.append(why_not_fp8)
    return Backend(
        name="cupy", xp=cp, timer=cuda_timer, fingerprint=fp,
        cache_bytes=float(fp.fields.get("l2_cache_bytes") or 50e6),
        limit_bytes=float(min(free * 0.5, 24e9)),
        gemm_dtypes=dtypes, matmul=_matmul,
        gemm_shapes=_smoke_shapes if smoke else _gemm_shapes,
        bmm_shapes=(lambda q: [(8, 256, 256, 64)]) if smoke else _bmm_shapes,
        conv_shapes=(lambda q: [(8, 16, 32, 32, 3, 1)]) if smoke else _conv_shapes,
        stream_sizes=(lambda q: [1 << 12, 1 << 16, 1 << 20]) if smoke else _stream_sizes,
        triad=_triad, triad_fused=True, operand=_operand, quick_secondary_max_flops=None,
        extra_tasks=None if smoke else _extra_tasks, notes=notes)
