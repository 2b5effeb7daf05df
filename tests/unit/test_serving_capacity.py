"""Capacity search: the fewest replicas meeting the SLOs, per hardware and tp."""
from __future__ import annotations

import pytest

from simulator.schema.scenario import Scenario
from simulator.serving.api import serve
from simulator.serving.capacity import capacity_search


def _scenario(rate=24.0, slo=None, model="llama2-7b", duration=60.0):
    return Scenario.model_validate({
        "name": "cap", "workload": {"kind": "inference", "model": model, "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb"},
        "serving": {"arrivals": {"kind": "poisson", "rate_per_s": rate},
                    "prompt_tokens": {"kind": "lognormal", "mean": 500, "max": 3000},
                    "output_tokens": {"kind": "lognormal", "mean": 150, "max": 600},
                    "duration_s": duration, "seed": 4,
                    "slo": slo or {"ttft_p99_s": 0.5, "tpot_p99_s": 0.03}}})


def test_fewest_replicas_meet_the_slo_and_one_fewer_does_not():
    sc = _scenario()
    rows = capacity_search(sc, ["a100-sxm4-80gb"], tp_options=[1])
    (row,) = rows
    assert row.feasible and row.best_for_hardware and row.confirmed
    assert row.devices == row.replicas and row.replicas >= 2
    assert row.ttft_p99_s <= 0.5 and row.tpot_p99_s <= 0.03
    fewer = sc.model_copy(update={"serving": sc.serving.model_copy(update={"replicas": row.replicas - 1})})
    assert not serve(fewer).slo_attained
    assert row.usd_per_million_output_tokens == pytest.approx(
        row.usd_per_hour / (row.output_tokens_per_s * 3600) * 1e6)


def test_unreachable_slo_reports_the_best_achievable():
    rows = capacity_search(_scenario(slo={"tpot_p99_s": 1e-4}), ["a100-sxm4-80gb"], tp_options=[1, 2])
    assert all(not r.feasible for r in rows)
    assert all(r.best_achievable and r.best_achievable["tpot_p99_s"] > 1e-4 for r in rows)
    assert "below the idle-replica p99" in rows[0].reason


def test_model_too_big_for_small_tp_is_reported_not_raised():
    rows = capacity_search(_scenario(model="llama2-70b", rate=0.5, slo={"ttft_p99_s": 30.0}),
                           ["a100-sxm4-80gb"], tp_options=[1, 4])
    by_tp = {r.tp: r for r in rows}
    assert not by_tp[1].feasible and by_tp[1].reason.startswith("does not fit")
    assert by_tp[4].feasible and by_tp[4].replicas == 1


def test_unreachable_error_names_the_best_achievable_over_all_candidates():
    from simulator.serving.capacity import unreachable_error
    rows = capacity_search(_scenario(slo={"tpot_p99_s": 1e-4}), ["a100-sxm4-80gb", "h100-sxm5-80gb"],
                           tp_options=[1, 2])
    msg = unreachable_error(rows).one_line()
    best = min(r.best_achievable["tpot_p99_s"] for r in rows)
    assert "best achievable" in msg and f"{best:.4g}" in msg and "h100-sxm5-80gb tp2" in msg


def test_one_confirmed_best_per_hardware_with_fewest_devices():
    rows = capacity_search(_scenario(rate=12.0), ["a100-sxm4-80gb", "h100-sxm5-80gb"], tp_options=[1, 2])
    for hw in ("a100-sxm4-80gb", "h100-sxm5-80gb"):
        mine = [r for r in rows if r.hardware == hw]
        best = [r for r in mine if r.best_for_hardware]
        assert len(best) == 1 and best[0].confirmed
        confirmed = [r for r in mine if r.feasible and r.confirmed]
        assert best[0].devices == min(r.devices for r in confirmed)


def test_horizons_hold_enough_requests_but_never_millions_per_step():
    from simulator.serving import capacity as C
    assert C.search_horizon_s(3600, 20) == 150.0                 # 3000 arrivals: longer than 120 s
    assert C.search_horizon_s(3600, 100) == 120.0                # the 120 s floor
    assert C.search_horizon_s(3600, 10_000) * 10_000 == pytest.approx(C.SEARCH_MAX_REQUESTS)
    assert C.search_horizon_s(30, 1) == 30                       # never beyond the duration
    assert C.confirm_horizon_s(300, 10_000) * 10_000 == pytest.approx(C.CONFIRM_MAX_REQUESTS)
    assert C.confirm_horizon_s(300, 20) == 300


def test_a_confirmation_miss_bisects_back_to_the_fewest_replicas(monkeypatch):
    """Near saturation a short search can pick n that misses over the longer confirming run;
    the answer must then be the fewest replicas meeting the SLOs over that run, not n + n/4."""
    from simulator.serving import capacity as C
    from simulator.serving.inference import build_replica
    sc = _scenario(rate=2.0, duration=600.0)
    base = serve(sc.model_copy(update={"serving": sc.serving.model_copy(update={"duration_s": 20.0})}))
    calls = []

    def oracle(s, *a, **k):                  # meets the SLOs from 5 replicas over 120 s, 13 over 600 s
        calls.append((s.serving.replicas, s.serving.duration_s))
        need = 13 if s.serving.duration_s > 120 else 5
        return base.model_copy(update={"slo_attained": s.serving.replicas >= need})
    monkeypatch.setattr(C, "serve", oracle)
    rep = build_replica(sc)
    row = C._row("a100-sxm4-80gb", 1, 5, base, 1000, 4, 1.0, 120.0)
    out = C.confirm_row(row, sc, rep, None, None, max_replicas=64)
    assert out.confirmed and out.feasible and out.replicas == 13 and out.horizon_s == 600.0
    assert [n for n, _ in calls] == [5, 6, 7, 8, 10, 12, 15, 13]     # up by quarters, then bisect
