"""`capplan serve` refuses, before any work, a run of more requests than it simulates in about a minute."""
from __future__ import annotations

import pytest

import simulator.serving.api as serving_api
import simulator.serving.limits as limits
from simulator.errors import InputError
from simulator.loading import validate
from simulator.schema.scenario import Serving

from qa_scenarios import INFERENCE as INF  # noqa: E402 (tests/cli is on sys.path)


@pytest.fixture
def no_simulation(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the simulation started")
    monkeypatch.setattr(serving_api, "serve", refuse)


def test_rate_times_duration_beyond_the_limit_is_refused_before_work(cli, tmp_path, no_simulation):
    path = tmp_path / "inf.yaml"
    path.write_text(INF)
    r = cli("serve", path, "--set", "serving.duration_s=1e6", "--json")   # 5 M requests
    assert r.code == 2 and r.out == "", r
    line = r.err.strip()
    assert line.count("\n") == 0 and line.startswith("error:") and "inf.yaml" in line
    assert "field 'serving.duration_s'" in line and "serving.arrivals.rate_per_s" in line
    assert "5,000,000 requests" in line and f"{limits.MAX_SERVED_REQUESTS:,}" in line
    assert "duration_s <= 200,000 s" in line


def test_a_trace_beyond_the_limit_is_refused(cli, tmp_path, monkeypatch, no_simulation):
    monkeypatch.setattr(limits, "MAX_SERVED_REQUESTS", 100)
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp_s,prompt_tokens,output_tokens\n" + "".join(f"{i * 0.1:.1f},64,8\n" for i in range(150)))
    path = tmp_path / "inf.yaml"
    path.write_text(INF.replace("{kind: poisson, rate_per_s: 5}", "{kind: trace, path: t.csv}"))
    r = cli("serve", path)
    assert r.code == 2 and "the trace holds 150 requests" in r.err and "at most 100" in r.err, r
    # rows after duration_s do not count: 10 s keep 100 rows, which is allowed
    assert limits.trace_rows_within(trace, 10.0) == 100


def test_within_the_limit_runs(cli, tmp_path):
    path = tmp_path / "inf.yaml"
    path.write_text(INF)
    assert cli("serve", path, "--json").code == 0


def test_the_check_itself():
    sv = validate(Serving, {"arrivals": {"kind": "constant", "rate_per_s": 1000}, "duration_s": 1000}, "t")
    limits.check_served_requests(sv)                      # 1 M exactly: allowed
    with pytest.raises(InputError) as exc:
        limits.check_served_requests(sv, limit=999_999)
    assert exc.value.field == "serving.duration_s"
