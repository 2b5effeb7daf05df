"""Timing harness shared by the NumPy and CuPy backends.

Method (as in STREAM, nccl-tests and mamf-finder): warm up, then take the
median of several timed samples; a sample batches `inner` calls so that it
lasts well above the timer's resolution; data is random (never zeros, so no
zero-skipping or denormal shortcuts) and, where asked, operands rotate over
several buffer sets whose total footprint exceeds the last-level cache, so
caches do not flatter the numbers. The timer is pluggable: the thread's CPU
time for single-threaded NumPy (other processes on a shared machine cannot
inflate it), the wall clock for multi-threaded BLAS, CUDA events on a GPU
(simulator/calibrate/bench_cupy.py). The suite measures each compute test in
two rounds far apart in time and keeps the faster one (suite.best_of_rounds).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Per-call seconds: median, min and max over `repeats` samples of `inner` calls."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    inner: int


@dataclass(frozen=True)
class Settings:
    """How hard to measure: warm-up calls, timed samples, shortest sample."""

    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 2e-3
    max_inner: int = 20000


QUICK = Settings(warmup=1, repeats=5, min_sample_s=2e-3)
FULL = Settings(warmup=3, repeats=9, min_sample_s=4e-3)


class Timer(Protocol):
    def __call__(self, run: Callable[[int], object], inner: int, start: int) -> float:
        """Seconds for `inner` calls run(start), run(start+1), ... (all work finished)."""


def wall_timer(run: Callable[[int], object], inner: int, start: int) -> float:
    """CPU timer: perf_counter around the calls (NumPy calls are synchronous)."""
    t0 = time.perf_counter()
    for i in range(start, start + inner):
        run(i)
    return time.perf_counter() - t0


def thread_timer(run: Callable[[int], object], inner: int, start: int) -> float:
    """CPU timer for single-threaded work: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID).

    Time the OS gives to other processes is not counted, so a busy shared machine
    does not inflate the numbers; only valid when all work runs on this thread
    (NumPy ufuncs, and BLAS limited to one thread).
    """
    t0 = time.thread_time()
    for i in range(start, start + inner):
        run(i)
    return time.thread_time() - t0


def time_call(run: Callable[[int], object], *, timer: Timer = wall_timer,
              settings: Settings = QUICK) -> Timing:
    """Time `run(i)` (i indexes rotating buffers): warm-up, calibrate `inner`, median of repeats."""
    for i in range(settings.warmup):
        run(i)
    probe = max(timer(run, 1, settings.warmup), 1e-9)
    inner = choose_inner(probe, settings)
    samples = []
    start = settings.warmup + 1
    for _ in range(settings.repeats):
        samples.append(timer(run, inner, start) / inner)
        start += inner
    arr = np.asarray(samples)
    return Timing(float(np.median(arr)), float(arr.min()), float(arr.max()), settings.repeats, inner)


def choose_inner(probe_s: float, settings: Settings) -> int:
    """Calls per sample so that one sample lasts at least settings.min_sample_s."""
    return int(min(settings.max_inner, max(1, math.ceil(settings.min_sample_s / probe_s))))


def rotation_sets(bytes_per_set: float, cache_bytes: float, *, limit_bytes: float,
                  max_sets: int = 16) -> int:
    """Buffer sets to rotate over so their footprint is >= 2x the last-level cache.

    One set when a single set already exceeds it; never more than fit `limit_bytes`.
    """
    if bytes_per_set <= 0:
        return 1
    want = math.ceil(2.0 * cache_bytes / bytes_per_set)
    fit = int(limit_bytes // bytes_per_set)
    return int(max(1, min(want, fit, max_sets)))


def random_array(xp, rng: np.random.Generator, shape, dtype) -> object:
    """Uniform magnitudes in [0.5, 1.5) with random signs: never zero, no denormals, no overflow.

    Deterministic from the seeded Generator: NumPy draws on the host; for another
    array module (CuPy) the Generator seeds that module's own generator so large
    arrays are drawn on the device.
    """
    shape = tuple(shape)
    n = int(np.prod(shape)) if shape else 1
    if xp is np:
        values = rng.random(n, dtype=np.float32)
        values += 0.5
        values[rng.integers(0, 2, size=n, dtype=np.int8) == 0] *= -1.0
        return values.reshape(shape).astype(dtype, copy=False)
    dev = xp.random.RandomState(int(rng.integers(0, 2**31 - 1)))
    values = dev.uniform(0.5, 1.5, size=n).astype(xp.float32)
    values *= dev.randint(0, 2, size=n).astype(xp.float32) * 2 - 1
    return values.reshape(shape).astype(dtype)


def gemm_flops(m: int, n: int, k: int) -> float:
    """Useful FLOPs of C[m,n] = A[m,k] @ B[k,n]: one multiply and one add per term."""
    return 2.0 * m * n * k


# glibc mallopt parameters (malloc.h) and the largest dynamic mmap threshold on 64-bit
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
STEADY_MMAP_THRESHOLD_BYTES = 32 * 2**20
_STEADY: list[bool] = []


def steady_heap() -> bool:
    """Put the C heap in its long-running steady state for the rest of the process (glibc only).

    A long-running process (a training loop) reuses freed heap blocks for its per-op
    temporaries: glibc's dynamic mmap threshold rises to the size of freed blocks, up to
    32 MiB. A fresh process instead maps, zero-fills and page-faults every temporary
    above 128 KiB on each call (a NumPy layernorm over 1 MiB: ~480 page faults, 1.6 ms
    instead of 0.45 ms on a 2-core VM), and how many depends on what ran before in the
    process. calibrate and validate pin the threshold at 32 MiB and stop trimming the
    heap, so both measure ops as a steady process runs them. Returns whether it applied.
    """
    if _STEADY:
        return _STEADY[0]
    ok = False
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 8 * STEADY_MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        ok = False
    _STEADY.append(ok)
    return ok
