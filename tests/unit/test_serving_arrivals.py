"""Arrival processes, length distributions and the trace reader."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.schema.scenario import Arrivals, LengthDist, Serving
from simulator.serving.arrivals import arrival_times, generate, read_trace
from simulator.serving.lengths import sample_lengths


def test_poisson_rate_and_exponential_gaps():
    t = arrival_times(Arrivals(kind="poisson", rate_per_s=50.0), 2000.0, np.random.default_rng(1))
    gaps = np.diff(t)
    assert abs(len(t) / 2000.0 - 50.0) < 1.0
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.03     # exponential: cv = 1
    assert t.min() >= 0 and t.max() < 2000.0


def test_gamma_has_the_requested_cv():
    t = arrival_times(Arrivals(kind="gamma", rate_per_s=20.0, cv=3.0), 5000.0, np.random.default_rng(2))
    gaps = np.diff(t)
    assert abs(1.0 / gaps.mean() - 20.0) < 1.0
    assert abs(gaps.std() / gaps.mean() - 3.0) < 0.2


def test_constant_rate():
    t = arrival_times(Arrivals(kind="constant", rate_per_s=4.0), 10.0, np.random.default_rng(0))
    assert np.allclose(np.diff(t), 0.25)
    assert len(t) == 39          # 0.25, 0.5, ... 9.75: the horizon itself is excluded


def test_lognormal_mean_and_clipping():
    x = sample_lengths(LengthDist(kind="lognormal", mean=300, max=2000), 200_000, np.random.default_rng(3))
    assert x.min() >= 1 and x.max() <= 2000
    assert abs(x.mean() / 300 - 1) < 0.05      # clipping at max trims the tail a little
    fixed = sample_lengths(128, 10, np.random.default_rng(0))
    assert (fixed == 128).all()


def test_same_seed_same_requests():
    s = Serving(arrivals={"kind": "poisson", "rate_per_s": 5}, prompt_tokens={"kind": "exponential", "mean": 100},
                duration_s=100)
    a = generate(s, np.random.default_rng(7))
    b = generate(s, np.random.default_rng(7))
    c = generate(s, np.random.default_rng(8))
    assert np.array_equal(a.t_s, b.t_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.t_s[:5], c.t_s[:5])


def test_trace_reads_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("timestamp_s,prompt_tokens,output_tokens\n0.0,10,5\n0.5,20,6\n\n1.5,30,7\n")
    w = read_trace(p)
    assert w.t_s.tolist() == [0.0, 0.5, 1.5] and w.prompt_tokens.tolist() == [10, 20, 30]


@pytest.mark.parametrize("row,line,what", [
    ("0.5,abc,6", 3, "prompt_tokens"),
    ("0.5,10", 3, "3 columns"),
    ("-1,10,5", 3, "timestamp_s"),
    ("0.5,10,0", 3, "output_tokens"),
    ("0.05,10,5", 3, "earlier"),
])
def test_trace_bad_rows_name_the_line(tmp_path, row, line, what):
    p = tmp_path / "bad.csv"
    p.write_text(f"timestamp_s,prompt_tokens,output_tokens\n0.1,10,5\n{row}\n")
    with pytest.raises(InputError) as exc:
        read_trace(p)
    assert f"line {line}" in str(exc.value) and what in str(exc.value) and "bad.csv" in str(exc.value)


def test_trace_bad_header(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("time,prompt,output\n0,1,1\n")
    with pytest.raises(InputError, match="line 1"):
        read_trace(p)


def test_zero_or_negative_rate_is_rejected_by_the_schema():
    from pydantic import ValidationError
    for rate in (0, -3):
        with pytest.raises(ValidationError):
            Arrivals(kind="poisson", rate_per_s=rate)
