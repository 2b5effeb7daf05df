"""Choosing the array backend: `auto` takes CuPy when a GPU is usable, NumPy otherwise.

CuPy is imported only here and in bench_cupy.py / execute.py, and only when
asked for, so capplan works (and imports fast) on machines without it.
"""
from __future__ import annotations

from simulator.calibrate.suite import Backend
from simulator.errors import InputError

BACKENDS = ("auto", "cupy", "numpy")


def cupy_status() -> tuple[bool, str]:
    """(usable, why): CuPy importable, a CUDA device present, and a tiny kernel runs."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken install
        return False, f"CuPy is not installed or does not import ({type(exc).__name__}: {exc})"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # noqa: BLE001 - no driver, no device, CUDA mismatch
        return False, f"CuPy cannot reach a CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return False, "CuPy sees no CUDA device"
    try:
        value = float(cupy.arange(4, dtype=cupy.float32).sum())
        if value != 6.0:
            return False, f"CuPy computed a wrong result on the GPU ({value} != 6)"
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:  # noqa: BLE001 - e.g. NVRTC or cuBLAS missing
        return False, f"CuPy is installed but cannot run a kernel ({type(exc).__name__}: {exc})"
    return True, name


def resolve_backend(name: str) -> tuple[str, str | None]:
    """Backend name to use and a one-line notice for `auto` (InputError when cupy is unusable)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}", field="--backend", expected=", ".join(BACKENDS))
    if name == "numpy":
        return "numpy", None
    ok, why = cupy_status()
    if name == "cupy":
        if not ok:
            raise InputError(f"--backend cupy is not usable here: {why}", field="--backend",
                             expected="a machine with a CUDA GPU and a working CuPy, or --backend numpy")
        return "cupy", None
    if ok:
        return "cupy", f"backend auto: using CuPy on {why}"
    return "numpy", f"backend auto: no usable GPU ({why}); using NumPy on the CPU"


def make_backend(name: str, *, smoke: bool = False) -> Backend:
    """The Backend object for a resolved name ("numpy" or "cupy")."""
    if name == "cupy":
        from simulator.calibrate.bench_cupy import cupy_backend
        return cupy_backend(smoke=smoke)
    from simulator.calibrate.bench_numpy import numpy_backend
    return numpy_backend(smoke=smoke)
