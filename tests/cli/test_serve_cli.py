"""`capplan serve`: JSON keys, terminal output, and one-line errors (exit 2) for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

SCENARIO = {
    "name": "cli-serve",
    "workload": {"kind": "inference", "model": "llama2-7b", "dtype": "fp16"},
    "cluster": {"hardware": "a100-sxm4-80gb", "devices": 2},
    "serving": {"replicas": 2, "arrivals": {"kind": "poisson", "rate_per_s": 4},
                "prompt_tokens": 256, "output_tokens": 32, "duration_s": 30, "seed": 2,
                "slo": {"ttft_p99_s": 1.0, "tpot_p99_s": 0.1}},
}


def _write(tmp_path, data=SCENARIO, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def test_serve_json_has_the_contract_keys(cli, tmp_path):
    r = cli("serve", _write(tmp_path), "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert set(d[key]) >= {"p50", "p90", "p99"}
    for key in ("throughput_requests_per_s", "output_tokens_per_s", "slo_attained", "goodput_requests_per_s"):
        assert key in d
    assert d["counts"]["arrived"] == d["counts"]["completed"] + d["counts"]["in_flight"] + d["counts"]["rejected"]
    assert len(d["queue"]["t_s"]) == len(d["queue"]["waiting"]) > 10


def test_serve_terminal_output_and_set(cli, tmp_path):
    r = cli("serve", _write(tmp_path), "--set", "serving.scheduler.router=round_robin")
    assert r.code == 0, r
    assert "TTFT" in r.out and "TPOT" in r.out and "SLO met" in r.out


def _assert_one_line_error(r, *needles):
    assert r.code == 2, r
    assert "Traceback" not in r.err and r.err.strip().count("\n") == 0
    for n in needles:
        assert n in r.err, r.err


def test_zero_and_negative_rates(cli, tmp_path):
    p = _write(tmp_path)
    for rate in ("0", "-5"):
        _assert_one_line_error(cli("serve", p, "--set", f"serving.arrivals.rate_per_s={rate}"),
                               "serving.arrivals.rate_per_s")


def test_unmeetable_slo(cli, tmp_path):
    _assert_one_line_error(cli("serve", _write(tmp_path), "--set", "serving.slo.ttft_p99_s=0.001"),
                           "can never be met", "achieves only", "s.yaml")


def test_model_that_does_not_fit(cli, tmp_path):
    _assert_one_line_error(cli("serve", _write(tmp_path), "--set", "workload.model=llama2-70b"),
                           "does not fit", "even at batch 1")


def test_trace_with_bad_row(cli, tmp_path):
    (tmp_path / "trace.csv").write_text("timestamp_s,prompt_tokens,output_tokens\n0,10,5\n1,ten,5\n")
    data = json.loads(json.dumps(SCENARIO))
    data["serving"]["arrivals"] = {"kind": "trace", "path": "trace.csv"}
    _assert_one_line_error(cli("serve", _write(tmp_path, data)), "line 3", "prompt_tokens")


def test_missing_serving_section(cli, tmp_path):
    data = {k: v for k, v in SCENARIO.items() if k != "serving"}
    _assert_one_line_error(cli("serve", _write(tmp_path, data)), "serving")


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("name", ["chatbot-serving", "sentiment-monitoring", "recommendation-ranking"])
def test_bundled_serving_scenarios_run(cli, name):
    path = SCENARIOS / f"{name}.yaml"
    text = path.read_text()
    assert text.startswith("#") and "sweep:" in text and "constraints:" in text and "objective:" in text
    r = cli("serve", path, "--set", "serving.duration_s=10", "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["counts"]["completed"] > 0
    s = cli("simulate", path, "--json")
    assert s.code == 0, s
    assert json.loads(s.out)["latency_s"] > 0


def test_training_workload_is_refused(cli, tmp_path):
    data = json.loads(json.dumps(SCENARIO))
    data["workload"]["kind"] = "training"
    _assert_one_line_error(cli("serve", _write(tmp_path, data)), "workload.kind", "inference")
