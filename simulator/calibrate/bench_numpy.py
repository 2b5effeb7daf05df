"""NumPy (CPU) backend of the calibration suite.

GEMM goes through NumPy's BLAS (OpenBLAS or MKL) in fp32 and fp64; fp16 is
not measured because NumPy has no fp16 BLAS (its fp16 matmul is a scalar loop
no framework would use). The STREAM-style kernels are single NumPy ufunc
calls; NumPy cannot fuse a triad, so `triad` takes two passes and is reported
but not used for the memory curve. The wall clock times the calls (NumPy is
synchronous). Sizes reach 4x the last-level cache so the DRAM plateau shows.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from simulator.errors import InputError

from simulator.calibrate.fingerprint import last_level_cache_bytes, numpy_fingerprint
from simulator.calibrate.harness import thread_timer, wall_timer
from simulator.calibrate.suite import Backend

_GEMM_DTYPES = {"fp32": np.float32, "fp64": np.float64}


def _matmul(a, b, out, dtype: str) -> None:
    np.matmul(a, b, out=out)


def _triad(a, b, c, s: float) -> None:
    np.multiply(c, s, out=a)
    np.add(a, b, out=a)


def _gemm_shapes(quick: bool) -> list[tuple[int, int, int]]:
    square = [64, 128, 256, 512, 1024, 2048] if quick else [32, 64, 128, 256, 384, 512, 768, 1024,
                                                            1536, 2048, 3072]
    # tokens x hidden-size shapes of DL layers (rows = batch*seq, cols/inner = widths): a grid of
    # 128/512 rows over BERT/GPT-2 widths (768, 3072 = 4x768) and 2048, plus skinny extremes
    grid = [(m, n, k) for m in (128, 512) for n, k in ((768, 768), (3072, 768), (768, 3072), (2048, 2048))]
    skinny = grid + [(16, 1024, 1024), (256, 4096, 1024), (1024, 256, 1024), (2048, 512, 128),
                     (512, 64, 2048)]
    if not quick:
        skinny += [(1, 4096, 4096), (64, 4096, 1024), (4096, 256, 1024), (2048, 2048, 512)]
    return [(n, n, n) for n in square] + skinny


def _bmm_shapes(quick: bool) -> list[tuple[int, int, int, int]]:
    """(batch*heads, m, n, k): attention score (s x s x d) and context (s x d x s) per head for
    the two common head sizes d = 64 (GPT-2, BERT) and 128 (Llama) at 128 and 256 tokens."""
    shapes = []
    for d in (64, 128):
        for seq in (128, 256):
            heads = 2048 // (d * 2) if quick else 4096 // (d * 2)
            shapes += [(heads, seq, seq, d), (heads, seq, d, seq)]
    if not quick:
        shapes += [(16, 512, 512, 64), (16, 512, 64, 512)]
    return shapes


def _conv_shapes(quick: bool) -> list[tuple[int, int, int, int, int, int]]:
    """(n, cin, h=w, cout, k, stride): a VGG-style ladder (Simonyan & Zisserman 2015: two 3x3
    convs per stage, width doubling as resolution halves) from 16 to 256 channels, plus a 1x1."""
    ladder = [(3, 64, 16), (16, 64, 16), (16, 32, 32), (32, 32, 32), (32, 16, 64), (64, 16, 64),
              (64, 8, 128), (128, 8, 128), (128, 4, 256)]
    batch = 8 if quick else 16
    shapes = [(batch, cin, hw, cout, 3, 1) for cin, hw, cout in ladder] + [(batch, 64, 16, 64, 1, 1)]
    if not quick:
        shapes += [(16, 3, 128, 64, 7, 2), (16, 256, 8, 64, 1, 1), (16, 256, 4, 512, 3, 1)]
    return shapes


def _stream_sizes(quick: bool) -> list[int]:
    llc_elems = last_level_cache_bytes() // 4
    base = [1 << 10, 1 << 13, 1 << 16, 1 << 18]
    big = [llc_elems // 4, llc_elems, 4 * llc_elems]
    if not quick:
        base = [1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 17, 1 << 18, 1 << 19]
        big = [llc_elems // 4, llc_elems // 2, llc_elems, 2 * llc_elems, 4 * llc_elems]
    return sorted(set(base + [max(1, n) for n in big]))


def _limit_bytes() -> float:
    try:
        import os
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 4 * 1024**3
    return float(min(avail / 4, 2 * 1024**3))


def _smoke_gemm(quick: bool) -> list[tuple[int, int, int]]:
    return [(32, 32, 32), (128, 128, 128), (16, 256, 128)]


def _smoke_bmm(quick: bool) -> list[tuple[int, int, int, int]]:
    return [(4, 32, 32, 16)]


def _smoke_conv(quick: bool) -> list[tuple[int, int, int, int, int, int]]:
    return [(2, 3, 16, 8, 3, 1)]


def _smoke_stream(quick: bool) -> list[int]:
    return [1 << 10, 1 << 14, 1 << 18]


@contextmanager
def blas_threads_limit(threads: int | None):
    """Run the block with the BLAS limited to `threads` (no change when None)."""
    if not threads:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise InputError("--threads needs the threadpoolctl package", field="--threads") from None
    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


def numpy_backend(*, smoke: bool = False) -> Backend:
    """The CPU backend; `smoke` shrinks every sweep to a few tiny sizes (for tests).

    With one BLAS thread every call runs on this thread, so the timer is the thread's
    CPU time (robust to other processes); with more threads it is the wall clock.
    """
    fp = numpy_fingerprint()
    single = fp.fields["blas_threads"] == "1"
    fp = fp.model_copy(update={"fields": {**fp.fields, "timer": "thread_cpu" if single else "wall"}})
    return Backend(
        name="numpy",
        xp=np,
        timer=thread_timer if single else wall_timer,
        fingerprint=fp,
        cache_bytes=float(last_level_cache_bytes()),
        limit_bytes=_limit_bytes(),
        gemm_dtypes=dict(_GEMM_DTYPES),
        matmul=_matmul,
        gemm_shapes=_smoke_gemm if smoke else _gemm_shapes,
        bmm_shapes=_smoke_bmm if smoke else _bmm_shapes,
        conv_shapes=_smoke_conv if smoke else _conv_shapes,
        stream_sizes=_smoke_stream if smoke else _stream_sizes,
        triad=_triad,
        triad_fused=False,
        notes=["fp16 GEMM not measured: NumPy has no fp16 BLAS",
               "triad takes two NumPy passes; the memory curve uses copy/add/scale"],
    )
