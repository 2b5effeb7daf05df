"""One failing microbenchmark is skipped and reported; it does not throw away the run."""
from __future__ import annotations

import pytest

from simulator.calibrate.harness import Timing
from simulator.calibrate.suite import Task, measurement, run_suite


def _ok(label):
    t = Timing(1e-3, 1e-3, 1e-3, 1, 1)
    return Task(label, lambda: measurement(label.split()[0], "stream", "fp32", label, 0.0, 8.0, t))


def _boom(label, exc):
    def run():
        raise exc
    return Task(label, run)


def test_a_failing_task_is_recorded_and_the_rest_still_run():
    failed: list[str] = []
    seen = []
    ms = run_suite([_ok("copy n=1"), _boom("gemm fp8 16x8192x8192", MemoryError("out of memory")),
                    _ok("add n=1")], progress=seen.append, failed=failed)
    assert [m.test for m in ms] == ["copy", "add"]
    assert failed == ["gemm fp8 16x8192x8192: MemoryError: out of memory"]
    assert len(seen) == 3                                      # the progress bar still reaches the end


def test_without_a_failure_list_or_when_all_fail_the_error_is_raised():
    with pytest.raises(RuntimeError, match="bad kernel"):
        run_suite([_ok("copy n=1"), _boom("x", RuntimeError("bad kernel"))])
    with pytest.raises(RuntimeError, match="no device"):
        run_suite([_boom("a", RuntimeError("no device")), _boom("b", RuntimeError("again"))], failed=[])


def test_ctrl_c_is_never_swallowed():
    with pytest.raises(KeyboardInterrupt):
        run_suite([_ok("copy n=1"), _boom("x", KeyboardInterrupt())], failed=[])


def test_calibrate_reports_a_skipped_test_in_its_notes(monkeypatch, tmp_path):
    from simulator.calibrate import kernels, run
    monkeypatch.setenv(run.SMOKE_ENV, "1")

    def broken_softmax(*a, **k):
        raise ValueError("softmax kernel missing on this device")
    monkeypatch.setattr("simulator.calibrate.suite.softmax", broken_softmax)
    out = run.calibrate("numpy", quick=True, store=tmp_path / "s.sqlite", only=["softmax", "copy", "gemm"])
    assert any("softmax" in n and "softmax kernel missing" in n for n in out.notes)
    assert {m.test for m in out.run.measurements} >= {"copy", "gemm"}
    assert kernels.softmax is not broken_softmax
