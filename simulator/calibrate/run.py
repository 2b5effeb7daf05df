"""Calibrate end to end: pick a backend, measure, store atomically, fit, optionally export.

This is the library behind `capplan calibrate`; the CLI only renders. A run
is registered in the store before measuring and completed in one
transaction after; Ctrl-C marks it interrupted (its measurements are never
written), so the store keeps every earlier run and never uses a partial one.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from simulator.calibrate.backends import make_backend, resolve_backend
from simulator.calibrate.export import base_profile_name, calibrated_profile, write_profile
from simulator.calibrate.fit import FitResult, fit_run
from simulator.calibrate.harness import FULL, QUICK, Settings
from simulator.calibrate.store import default_store_path, open_store
from simulator.calibrate.suite import plan_suite, run_suite
from simulator.errors import InputError
from simulator.schema.calibration import CalibrationRun
from simulator.schema.hardware import HardwareProfile

SMOKE_ENV = "CAPPLAN_CALIBRATE_SMOKE"      # tests: tiny sweeps, a few repeats
SMOKE = Settings(warmup=1, repeats=3, min_sample_s=2e-4)
DEFAULT_CPU_THREADS = 1     # reproducible on shared machines: one core, timed in CPU time


@dataclass(frozen=True)
class Outcome:
    run: CalibrationRun
    fit: FitResult
    base: HardwareProfile
    profile: HardwareProfile
    store_path: Path
    notice: str | None
    notes: list[str]
    wall_s: float
    export_path: Path | None = None


def calibrate(backend: str = "auto", *, quick: bool = False, store: str | Path | None = None,
              export: str | Path | None = None, only: Iterable[str] | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              profiles_dir: str | Path | None = None, statistic: str = "median",
              threads: int | None = None) -> Outcome:
    """Run the microbenchmarks, store the run, fit it and (optionally) write the profile.

    `threads` sets the BLAS threads of the NumPy backend (recorded in the fingerprint;
    `validate` then uses the same count and clock). The default is one thread timed in
    the thread's CPU time, which other processes on a shared machine cannot inflate; with
    more threads the wall clock is used (and a busy machine is reported).
    """
    from simulator.calibrate.bench_numpy import blas_threads_limit
    from simulator.calibrate.fingerprint import busy_notice
    from simulator.calibrate.harness import steady_heap
    t0 = time.perf_counter()
    steady_heap()              # per-op temporaries reuse the heap, as in a long-running process
    name, notice = resolve_backend(backend)
    smoke = bool(os.environ.get(SMOKE_ENV))
    threads = threads or DEFAULT_CPU_THREADS
    busy = busy_notice() if threads > 1 else None
    with blas_threads_limit(threads if name == "numpy" else None):
        bk = make_backend(name, smoke=smoke)
        out = _calibrate(bk, name, notice, smoke, quick, store, export, only, progress,
                         profiles_dir, statistic, t0)
    if busy and name == "numpy":
        out.notes.insert(0, busy)
    return out


def _calibrate(bk, name, notice, smoke, quick, store, export, only, progress, profiles_dir,
               statistic, t0) -> Outcome:
    settings = SMOKE if smoke else (QUICK if quick else FULL)
    base = base_profile(bk.fingerprint, profiles_dir)        # fail before measuring, not after
    with open_store(store) as st:
        tasks = plan_suite(bk, quick=quick, settings=settings, only=only)
        if not tasks:
            raise InputError("no calibration test matches", field="--only",
                             expected="test names such as gemm, bmm, conv, copy, add, triad, launch")
        run_id = st.begin_run(bk.fingerprint, quick=quick, version=_version(), partial=bool(only))
        done = [0]

        def step(label: str) -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(tasks), label)
        try:
            failed: list[str] = []
            measurements = run_suite(tasks, step, failed)
        except BaseException:
            st.mark_interrupted(run_id)
            raise
        st.finish_run(run_id, measurements)
        run = st.get_run(run_id)
        store_path = st.path
    base, fit, profile = fit_stored_run(run, profiles_dir=profiles_dir, cache_bytes=bk.cache_bytes,
                                        base=base, statistic=statistic)
    path = write_profile(profile, export) if export is not None else None
    notes = list(bk.notes) + [f"test failed and was skipped: {f}" for f in failed]
    return Outcome(run, fit, base, profile, store_path, notice, notes,
                   time.perf_counter() - t0, path)


def base_profile(fingerprint, profiles_dir=None) -> HardwareProfile:
    """The datasheet/template profile a run of this device overlays."""
    from simulator.hardware.load import list_profiles, load_hardware
    return load_hardware(base_profile_name(fingerprint, list_profiles(profiles_dir)), profiles_dir)


def fit_stored_run(run: CalibrationRun, *, profiles_dir=None, cache_bytes: float | None = None,
                   base: HardwareProfile | None = None, statistic: str = "median"):
    """(base profile, fit, calibrated profile) for a stored run."""
    base = base or base_profile(run.fingerprint, profiles_dir)
    measured = run.backend == "numpy" or base.kind == "cpu"
    if cache_bytes is None:
        cache_bytes = _cache_from_fingerprint(run, base)
    units = None if run.backend == "numpy" else base.compute_units
    label = f"capplan calibrate run {run.id} ({run.finished_at}, {run.fingerprint.device})"
    fit = fit_run(run.measurements, base, measured_peaks=measured, large_bytes=4.0 * cache_bytes,
                  label=label, compute_units=units, statistic=statistic)
    return base, fit, calibrated_profile(base, fit, run)


def latest_profile(backend: str, store: str | Path | None = None, profiles_dir=None,
                   statistic: str = "median"):
    """(run, calibrated profile) of the newest complete run of `backend`; InputError if none.

    Only reads: a store that does not exist yet is reported, not created.
    """
    path = Path(store) if store is not None else default_store_path()
    if not path.is_dir() and (not path.exists() or path.stat().st_size == 0):
        raise InputError(f"no calibration store yet; run `capplan calibrate --backend {backend}` first",
                         source=str(path))
    with open_store(store) as st:
        run = st.latest_complete(backend)
        path = st.path
    if run is None:
        raise InputError(f"no complete {backend} calibration in the store; run `capplan calibrate "
                         f"--backend {backend}` first", source=str(path))
    return run, fit_stored_run(run, profiles_dir=profiles_dir, statistic=statistic)[2]


def _cache_from_fingerprint(run: CalibrationRun, base: HardwareProfile) -> float:
    f = run.fingerprint.fields
    for key in ("cache_L3_bytes", "l2_cache_bytes", "cache_L2_bytes"):
        if f.get(key):
            return float(f[key])
    return float(base.memory.l2_bytes or 32 * 2**20)


def _version() -> str:
    from simulator import __version__
    return __version__
