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
