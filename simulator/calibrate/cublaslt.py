"""fp8 (E4M3) GEMM through cuBLASLt, called with ctypes: CuPy wraps cuBLAS but not cuBLASLt.

Used only by the CuPy backend (bench_cupy.py) on compute capability 8.9+ (Ada,
Hopper, Blackwell). Hopper and Ada run fp8 only in the "TN" layout (cuBLASLt
docs, cublasLtMatmul, FP8 requirements): A transposed, B not, in cuBLAS'
column-major terms. For row-major operands a[m, k] and w[n, k] (the nn.Linear
weight layout) that is exactly

    out[m, n] (row-major, bf16) = a @ w.T
      cuBLAS: D(n x m, ld n) = op_T(A = w as k x n, ld k) @ op_N(B = a as k x m, ld k)

with fp32 accumulation (CUBLAS_COMPUTE_32F) and fp32 alpha/beta on the host.
Before an fp8 result is trusted, `self_check` compares a small product with
the same values multiplied in float64 on the host: a wrong enum or layout shows
up as a wrong answer there, not as a silently wrong timing.

Enum values and the heuristic-result layout are those of cublasLt.h
(CUDA 12/13): CUBLASLT_MATMUL_DESC_TRANSA = 3, _TRANSB = 4,
CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1, CUDA_R_8F_E4M3 = 28,
CUDA_R_16BF = 14, CUDA_R_32F = 0, CUBLAS_COMPUTE_32F = 68;
cublasLtMatmulHeuristicResult_t = {uint64 algo[8]; size_t workspaceSize;
int state; float wavesCount; int reserved[4]}.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

CUDA_R_32F, CUDA_R_16BF, CUDA_R_8F_E4M3 = 0, 14, 28
CUBLAS_COMPUTE_32F = 68
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
DESC_TRANSA, DESC_TRANSB = 3, 4
PREF_MAX_WORKSPACE_BYTES = 1
WORKSPACE_BYTES = 32 * 1024 * 1024
SONAMES = ("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so")


class LtError(RuntimeError):
    """A cuBLASLt call failed (status code in the message) or the library is missing."""


class _Algo(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64 * 8)]


class _Heuristic(ctypes.Structure):
    _fields_ = [("algo", _Algo), ("workspaceSize", ctypes.c_size_t), ("state", ctypes.c_int),
                ("wavesCount", ctypes.c_float), ("reserved", ctypes.c_int * 4)]


# ---- E4M3 values (host side, pure NumPy) -------------------------------------------------

def e4m3_to_float32(bits: np.ndarray) -> np.ndarray:
    """Decode OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities, S.1111.111 is NaN) to float32."""
    b = np.asarray(bits, dtype=np.uint8).astype(np.int32)
    sign = np.where(b & 0x80, -1.0, 1.0)
    exp = (b >> 3) & 0xF
    man = (b & 0x7).astype(np.float64)
    normal = (1.0 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = (man / 8.0) * 2.0 ** -6
    value = sign * np.where(exp == 0, subnormal, normal)
    value = np.where((b & 0x7F) == 0x7F, np.nan, value)
    return value.astype(np.float32)


def e4m3_table() -> np.ndarray:
    """The 24 E4M3 bit patterns with magnitude in [0.5, 1.5) and either sign (never zero), the
    same value range as harness.random_array, so fp8 operands look like the other dtypes'."""
    mags = [(6 << 3) | m for m in range(8)] + [(7 << 3) | m for m in range(4)]   # 0.5..0.9375, 1..1.375
    return np.array(mags + [0x80 | v for v in mags], dtype=np.uint8)


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bf16 stored as uint16 -> float32 (the top half of an IEEE float32)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def random_e4m3(xp, rng: np.random.Generator, shape) -> object:
    """Random E4M3 operand (uint8 storage) drawn on the array module's device from the seed."""
    n = int(np.prod(shape))
    table = xp.asarray(e4m3_table())
    if xp is np:
        idx = rng.integers(0, table.size, size=n)
    else:
        idx = xp.random.RandomState(int(rng.integers(0, 2**31 - 1))).randint(0, table.size, size=n)
    return table[idx].reshape(tuple(shape))


# ---- the library ---------------------------------------------------------------------------

def load_library() -> ctypes.CDLL:
    """libcublasLt: already loaded by CuPy's cuBLAS (found by soname), else via cuda.pathfinder."""
    try:   # importing CuPy's cublas loads libcublasLt as its dependency
        from cupy_backends.cuda.libs import cublas  # noqa: F401
    except Exception:  # noqa: BLE001 - try the other ways below
        pass
    errors = []
    for name in SONAMES:
        try:
            return _declare(ctypes.CDLL(name))
        except OSError as exc:
            errors.append(str(exc))
    try:
        from cuda import pathfinder
        return _declare(ctypes.CDLL(pathfinder.load_nvidia_dynamic_lib("cublasLt").abs_path))
    except Exception as exc:  # noqa: BLE001 - no pathfinder, or it cannot find the library
        errors.append(f"{type(exc).__name__}: {exc}")
    raise LtError("libcublasLt not found (" + "; ".join(errors[-2:]) + ")")


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, vp, sz = ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_size_t
    sigs = {
        "cublasLtCreate": [p],
        "cublasLtDestroy": [vp],
        "cublasLtMatmulDescCreate": [p, ctypes.c_int, ctypes.c_int],
        "cublasLtMatmulDescDestroy": [vp],
        "cublasLtMatmulDescSetAttribute": [vp, ctypes.c_int, vp, sz],
        "cublasLtMatrixLayoutCreate": [p, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int64],
        "cublasLtMatrixLayoutDestroy": [vp],
        "cublasLtMatmulPreferenceCreate": [p],
        "cublasLtMatmulPreferenceDestroy": [vp],
        "cublasLtMatmulPreferenceSetAttribute": [vp, ctypes.c_int, vp, sz],
        "cublasLtMatmulAlgoGetHeuristic": [vp, vp, vp, vp, vp, vp, vp, ctypes.c_int,
                                           ctypes.POINTER(_Heuristic), ctypes.POINTER(ctypes.c_int)],
        "cublasLtMatmul": [vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp, vp,
                           ctypes.POINTER(_Algo), vp, sz, vp],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    return lib


def _check(status: int, call: str) -> None:
    if status != 0:
        raise LtError(f"{call} returned cuBLAS status {status}")


# ---- one GEMM shape --------------------------------------------------------------------------

@dataclass
class Fp8Gemm:
    """Descriptors, the chosen algorithm and the workspace for one (m, n, k) fp8 GEMM."""

    lib: ctypes.CDLL
    handle: ctypes.c_void_p
    m: int
    n: int
    k: int
    desc: ctypes.c_void_p
    layouts: tuple          # A (w), B (a), C/D (out)
    heuristic: _Heuristic
    workspace: object       # device buffer (cupy array)

    def __call__(self, a_ptr: int, w_ptr: int, out_ptr: int, stream_ptr: int) -> None:
        alpha, beta = ctypes.c_float(1.0), ctypes.c_float(0.0)
        la, lb, lc = self.layouts
        _check(self.lib.cublasLtMatmul(
            self.handle, self.desc, ctypes.byref(alpha), ctypes.c_void_p(w_ptr), la,
            ctypes.c_void_p(a_ptr), lb, ctypes.byref(beta), ctypes.c_void_p(out_ptr), lc,
            ctypes.c_void_p(out_ptr), lc, ctypes.byref(self.heuristic.algo),
            ctypes.c_void_p(self.workspace.data.ptr), WORKSPACE_BYTES, ctypes.c_void_p(stream_ptr)),
            "cublasLtMatmul")

    def close(self) -> None:
        for layout in self.layouts:
            self.lib.cublasLtMatrixLayoutDestroy(layout)
        self.lib.cublasLtMatmulDescDestroy(self.desc)


def create_handle(lib: ctypes.CDLL) -> ctypes.c_void_p:
    handle = ctypes.c_void_p()
    _check(lib.cublasLtCreate(ctypes.byref(handle)), "cublasLtCreate")
    return handle


def _set(lib, fn: str, obj, attr: int, value: ctypes._SimpleCData) -> None:
    _check(getattr(lib, fn)(obj, attr, ctypes.byref(value), ctypes.sizeof(value)), fn)


def _layout(lib, dtype: int, rows: int, cols: int, ld: int) -> ctypes.c_void_p:
    out = ctypes.c_void_p()
    _check(lib.cublasLtMatrixLayoutCreate(ctypes.byref(out), dtype, rows, cols, ld),
           "cublasLtMatrixLayoutCreate")
    return out


def plan_gemm(lib: ctypes.CDLL, handle, workspace, m: int, n: int, k: int) -> Fp8Gemm:
    """Descriptors for out[m, n] = a[m, k] @ w[n, k].T in fp8 E4M3 -> bf16, best heuristic algo;
    `workspace` is a device buffer of WORKSPACE_BYTES (shared by every shape: one stream)."""
    desc = ctypes.c_void_p()
    _check(lib.cublasLtMatmulDescCreate(ctypes.byref(desc), CUBLAS_COMPUTE_32F, CUDA_R_32F),
           "cublasLtMatmulDescCreate")
    _set(lib, "cublasLtMatmulDescSetAttribute", desc, DESC_TRANSA, ctypes.c_int32(CUBLAS_OP_T))
    _set(lib, "cublasLtMatmulDescSetAttribute", desc, DESC_TRANSB, ctypes.c_int32(CUBLAS_OP_N))
    layouts = (_layout(lib, CUDA_R_8F_E4M3, k, n, k), _layout(lib, CUDA_R_8F_E4M3, k, m, k),
               _layout(lib, CUDA_R_16BF, n, m, n))
    pref = ctypes.c_void_p()
    _check(lib.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)), "cublasLtMatmulPreferenceCreate")
    try:
        _set(lib, "cublasLtMatmulPreferenceSetAttribute", pref, PREF_MAX_WORKSPACE_BYTES,
             ctypes.c_uint64(WORKSPACE_BYTES))
        result, count = _Heuristic(), ctypes.c_int(0)
        la, lb, lc = layouts
        _check(lib.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1,
                                                  ctypes.byref(result), ctypes.byref(count)),
               "cublasLtMatmulAlgoGetHeuristic")
        if count.value < 1:
            raise LtError(f"cuBLASLt has no fp8 algorithm for {m}x{n}x{k}")
    finally:
        lib.cublasLtMatmulPreferenceDestroy(pref)
    return Fp8Gemm(lib, handle, m, n, k, desc, layouts, result, workspace)


def self_check(gemm_for, cp, rng: np.random.Generator, size: int = 256, tol: float = 1e-2) -> float:
    """Relative Frobenius error of one fp8 product against float64 on the host; raises LtError
    above `tol` (bf16 output rounding is ~4e-3)."""
    a = random_e4m3(cp, rng, (size, size))
    w = random_e4m3(cp, rng, (size, size))
    out = cp.empty((size, size), dtype=cp.uint16)
    gemm_for(size, size, size)(a.data.ptr, w.data.ptr, out.data.ptr, cp.cuda.get_current_stream().ptr)
    cp.cuda.get_current_stream().synchronize()
    ref = e4m3_to_float32(cp.asnumpy(a)).astype(np.float64) @ e4m3_to_float32(cp.asnumpy(w)).astype(np.float64).T
    got = bf16_to_float32(cp.asnumpy(out)).astype(np.float64)
    err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    if not err <= tol:
        raise LtError(f"fp8 self-check failed: relative error {err:.3g} > {tol} (layout or enum wrong)")
    return err
