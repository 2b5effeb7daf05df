"""Self-validation: run bundled graphs for real and compare with the simulator's prediction.

For each case (simulator/calibrate/cases.py) the graph is executed op by op
(simulator/calibrate/execute.py) after warm-up passes; the measured time is
the median over `repeats` passes of the wall time of one whole forward pass
(CUDA events on a GPU). The prediction is the sum over the same ops of the
cost model's per-op time (simulator/cost/compute.op_time_s, the function the
simulator uses) on the calibrated profile of the latest complete run in the
store: one device runs the ops one after another, so the makespan is the sum.
error = predicted / measured - 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from simulator.calibrate.backends import resolve_backend
from simulator.calibrate.bench_numpy import blas_threads_limit
from simulator.calibrate.cases import CASES, build_case
from simulator.calibrate.execute import prepare
from simulator.calibrate.run import latest_profile
from simulator.cost.compute import op_time_s
from simulator.schema.hardware import HardwareProfile

WARMUP_PASSES = 2


@dataclass(frozen=True)
class CaseResult:
    name: str
    ops: int
    measured_s: float
    predicted_s: float
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def error(self) -> float:
        return self.predicted_s / self.measured_s - 1.0


@dataclass(frozen=True)
class ValidationReport:
    backend: str
    device: str
    run_id: int
    calibrated_at: str
    profile: str
    cases: list[CaseResult]
    notice: str | None = None
    statistic: str = "median"

    @property
    def mean_abs_error(self) -> float:
        return float(np.mean([abs(c.error) for c in self.cases]))

    @property
    def by_kind(self) -> dict[str, dict[str, float]]:
        """Per op kind over every case: ops, measured_s, predicted_s, error (predicted/measured - 1)."""
        return by_kind_summary(self.cases)

    def to_json(self) -> dict:
        return {
            "backend": self.backend, "device": self.device, "calibration_run": self.run_id,
            "calibrated_at": self.calibrated_at, "profile": self.profile, "statistic": self.statistic,
            "cases": [{"name": c.name, "ops": c.ops, "measured_s": c.measured_s,
                       "predicted_s": c.predicted_s, "error": c.error, "by_kind": c.by_kind}
                      for c in self.cases],
            "by_kind": self.by_kind,
            "mean_abs_error": self.mean_abs_error, "notice": self.notice,
        }


def by_kind_summary(cases: list[CaseResult]) -> dict[str, dict[str, float]]:
    """Sum each op kind's measured and predicted time over the cases (kinds sorted by name)."""
    out: dict[str, dict[str, float]] = {}
    for c in cases:
        for kind, row in c.by_kind.items():
            agg = out.setdefault(kind, {"ops": 0, "measured_s": 0.0, "predicted_s": 0.0})
            agg["ops"] += row["ops"]
            agg["measured_s"] += row["measured_s"]
            agg["predicted_s"] += row["predicted_s"]
    for agg in out.values():
        agg["error"] = agg["predicted_s"] / agg["measured_s"] - 1.0 if agg["measured_s"] > 0 else 0.0
    return dict(sorted(out.items()))


def by_kind_line(report: ValidationReport) -> str:
    """One line of per-op-kind errors, e.g. 'per op kind: matmul +0.4% (15 ops), norm +4.4% (2), ...'."""
    rows = report.by_kind
    return "per op kind: " + ", ".join(f"{k} {100 * r['error']:+.1f}% ({r['ops']})" for k, r in rows.items())


def predict_op_s(profile: HardwareProfile, attrs: dict) -> float:
    """The simulator's time for one op on one device (cost model, one launch)."""
    return float(op_time_s(profile, attrs["kind"], attrs["flops"],
                           attrs["bytes_read"] + attrs["bytes_written"], attrs["dtype"],
                           attrs.get("gemm_mnk")))


def validate(backend: str = "auto", *, store: str | Path | None = None, repeats: int = 11,
             cases: Iterable[str] | None = None, profiles_dir=None, seed: int = 0,
             statistic: str = "median") -> ValidationReport:
    """Measure and predict every case with the latest calibration of the chosen backend.

    `statistic` (median or min over passes) is used for the measurement and, applied
    to the stored samples, for the calibration the prediction comes from.
    """
    from simulator.calibrate.fingerprint import busy_notice
    from simulator.calibrate.harness import steady_heap
    steady_heap()              # the heap state calibrate measured in (harness.steady_heap)
    name, notice = resolve_backend(backend)
    run, profile = latest_profile(name, store, profiles_dir, statistic)
    wall = name == "numpy" and run.fingerprint.fields.get("timer") != "thread_cpu"
    busy = busy_notice() if wall else None
    notice = "; ".join(x for x in (notice, busy) if x) or None
    xp, clock = _array_module(name, run.fingerprint.fields.get("timer", "wall"))
    scale = 8 if name == "cupy" else 1
    threads = int(run.fingerprint.fields.get("blas_threads", "0") or 0) if name == "numpy" else None
    names = list(cases) if cases else list(CASES)
    graphs = {case: build_case(case, scale) for case in names}
    with blas_threads_limit(threads):     # the thread count the calibration measured with
        results = _run_cases(graphs, profile, xp, clock, repeats, seed, statistic)
    return ValidationReport(name, run.fingerprint.device, run.id or 0, run.finished_at or "",
                            profile.name, results, notice, statistic)


def _run_cases(graphs, profile, xp, clock, repeats, seed, statistic) -> list[CaseResult]:
    """Warm up every case, then time them in interleaved rounds (case A, B, C, A, B, C, ...)
    so that a slow spell of a shared machine affects every case alike."""
    reduce = np.min if statistic == "min" else np.median
    steps = {name: prepare(g, xp, np.random.default_rng(seed)) for name, g in graphs.items()}
    for _ in range(WARMUP_PASSES):
        for st in steps.values():
            clock([s.run for s in st])
    samples: dict[str, list] = {name: [] for name in graphs}
    for _ in range(repeats):
        for name, st in steps.items():
            samples[name].append(clock([s.run for s in st]))
    return [_result(name, graphs[name], profile, steps[name], samples[name], reduce) for name in graphs]


def _result(name, g, profile, steps, samples, reduce) -> CaseResult:
    """Measured = the faster of two rounds (first and second half of the passes), each
    reduced by the statistic: the same estimator the calibration's compute tests use."""
    half = max(1, len(samples) // 2)
    rounds = [r for r in (samples[:half], samples[half:]) if r]
    totals, laps = min(((float(reduce([t for t, _ in r])), reduce(np.asarray([l for _, l in r]), axis=0))
                        for r in rounds), key=lambda x: x[0])
    by_kind: dict[str, dict[str, float]] = {}
    predicted = 0.0
    for step, measured in zip(steps, laps):
        p = predict_op_s(profile, g.nodes[step.node])
        predicted += p
        row = by_kind.setdefault(step.kind, {"ops": 0, "measured_s": 0.0, "predicted_s": 0.0})
        row["ops"] += 1
        row["measured_s"] += float(measured)
        row["predicted_s"] += p
    return CaseResult(name, len(steps), totals, predicted, by_kind)


def _array_module(name: str, timer: str):
    """Array module and pass clock matching how the calibration was timed."""
    if name == "cupy":
        from simulator.calibrate.bench_cupy import cupy_clock
        import cupy
        return cupy, cupy_clock
    return np, (thread_clock if timer == "thread_cpu" else wall_clock)


def _laps(runs, now) -> tuple[float, list[float]]:
    laps = []
    t0 = last = now()
    for run in runs:
        run()
        t = now()
        laps.append(t - last)
        last = t
    return last - t0, laps


def wall_clock(runs) -> tuple[float, list[float]]:
    """Run the ops in order: (total seconds, seconds of each op) by perf_counter laps."""
    import time
    return _laps(runs, time.perf_counter)


def thread_clock(runs) -> tuple[float, list[float]]:
    """As wall_clock, in this thread's CPU time (calibrations taken with one BLAS thread)."""
    import time
    return _laps(runs, time.thread_time)
