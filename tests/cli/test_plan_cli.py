"""`capplan plan`, `capplan whatif` and `capplan report` through the real entry point."""
from __future__ import annotations

import json
import time

import pytest
import yaml

SMALL = {
    "name": "small-bert",
    "workload": {"kind": "training", "model": "bert-base", "model_options": {"num_labels": 9}, "seq_len": 128,
                 "global_batch": 32, "micro_batch": 32, "optimizer": "adamw", "steps": 100},
    "cluster": {"hardware": "a100-sxm4-80gb", "devices": 1},
    "sweep": {"cluster.hardware": ["a100-sxm4-80gb", "h100-sxm5-80gb"], "cluster.devices": [1, 2],
              "parallelism": "auto"},
    "constraints": {"fits_memory": True},
    "objective": "cost_usd",
}


def write(tmp_path, data, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_plan_json_has_the_design_keys(cli, tmp_path):
    r = cli("plan", write(tmp_path, SMALL), "--json", "--top-k", "1")
    assert r.code == 0, r
    d = json.loads(r.out)
    for k in ("candidates_evaluated", "candidates_feasible", "wall_s", "best", "pareto", "report"):
        assert k in d
    assert d["candidates_evaluated"] > 10 and 0 < d["candidates_feasible"] <= d["candidates_evaluated"]
    best = d["best"]
    for k in ("step_time_s", "mfu", "time_to_train_s", "cost_usd", "energy_kwh", "memory", "breakdown"):
        assert k in best
    assert best["memory"]["fits"] is True
    assert best["plan_tier"] == "simulated"
    costs = [p["cost_usd"] for p in d["pareto"]]
    times = [p["time_to_train_s"] for p in d["pareto"]]
    assert times == sorted(times) and costs == sorted(costs, reverse=True)
    assert d["report"] == {}


def test_plan_out_writes_all_files_and_report_rerenders(cli, tmp_path):
    out = tmp_path / "rep"
    r = cli("plan", write(tmp_path, SMALL), "--out", out, "--json", "--top-k", "1")
    assert r.code == 0, r
    d = json.loads(r.out)
    names = {p.split("/")[-1] for p in d["report"].values()}
    assert names == {"report.html", "report.md", "candidates.csv", "candidates.json"}
    html = (out / "report.html").read_text()
    assert html.count("<img ") >= 3 and "data:image/png;base64," in html and "Pareto front" in html
    assert "src='http" not in html   # self-contained
    rows = (out / "candidates.csv").read_text().strip().splitlines()
    assert len(rows) == d["candidates_evaluated"] + 1
    md = (out / "report.md").read_text()
    assert "## Pareto front: cost versus time" in md
    for fmt, needle in (("md", "# Capacity plan: small-bert"), ("html", "<!DOCTYPE html>"), ("csv", "hardware,tier")):
        r2 = cli("report", out / "candidates.json", "--format", fmt)
        assert r2.code == 0 and needle in r2.out, (fmt, r2)
    assert cli("report", out / "candidates.json", "--format", "md").out == md
    # a saved `plan --json` renders too
    saved = tmp_path / "saved.json"
    saved.write_text(r.out)
    r3 = cli("report", saved, "--format", "md")
    assert r3.code == 0 and "Pareto front" in r3.out


def test_plan_terminal_summary(cli, tmp_path):
    r = cli("plan", write(tmp_path, SMALL), "--top-k", "0")
    assert r.code == 0, r
    assert "Capacity plan: small-bert" in r.out and "Pareto front" in r.out


def test_whatif_training_without_a_file(cli):
    r = cli("whatif", "--model", "llama3-70b", "--hardware", "h100-sxm5-80gb", "--devices", "1024",
            "--tokens", "15e12", "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    b = d["best"]
    assert b["hardware"] == "h100-sxm5-80gb" and b["devices"] == 1024
    steps = 15e12 / (1024 * 4096)
    assert b["time_to_train_s"] == pytest.approx(steps * b["step_time_s"], rel=1e-9)


def test_jointly_infeasible_constraints_exit_0_with_the_reason(cli, tmp_path):
    data = {**SMALL, "constraints": {"fits_memory": True, "max_devices": 1}}
    # find the fastest 1-device time, then ask for a deadline only 2 devices can meet
    r = cli("plan", write(tmp_path, {**data}), "--json", "--top-k", "0")
    t1 = json.loads(r.out)["best"]["time_to_train_s"]
    data["constraints"] = {"deadline_days": 0.6 * t1 / 86400, "max_devices": 1}
    r = cli("plan", write(tmp_path, data, "j.yaml"), "--json", "--top-k", "0")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["best"] is None and d["candidates_feasible"] == 0
    assert "deadline_days" in d["infeasible_reason"] and "max_devices" in d["infeasible_reason"]
    assert len(d["nearest"]) > 0


@pytest.mark.parametrize("change,needle", [
    ({"sweep": {"cluster.hardware": ["a100-sxm4-80gb", "h100-sxm9"]}}, "unknown"),
    ({"sweep": {"cluster.hardwar": ["a100-sxm4-80gb"]}}, "cluster.hardwar"),
    ({"sweep": {"cluster.devices": []}}, "empty list"),
    ({"sweep": {}}, "sweep is empty"),
    ({"constraints": {"budget_usd": 1e-6}}, "budget_usd"),
    ({"constraints": {"deadline_days": 1e-9}}, "deadline_days"),
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, change, needle):
    r = cli("plan", write(tmp_path, {**SMALL, **change}), "--top-k", "0")
    assert r.code == 2, r
    assert needle in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_unknown_hardware_suggests_close_names(cli, tmp_path):
    r = cli("plan", write(tmp_path, {**SMALL, "sweep": {"cluster.hardware": ["h100-sxm5-80"]}}))
    assert r.code == 2 and "h100-sxm5-80gb" in r.err


def test_unknown_executor_and_unreachable_dask(cli, tmp_path):
    p = write(tmp_path, SMALL)
    r = cli("plan", p, "--executor", "threads")
    assert r.code == 2 and "unknown executor" in r.err
    t0 = time.monotonic()
    r = cli("plan", p, "--executor", "dask=tcp://127.0.0.1:9", "--dask-timeout", "1")
    assert time.monotonic() - t0 < 20
    assert r.code == 2 and "cannot reach the Dask scheduler" in r.err and "within 1 s" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_scenario_without_sweep(cli, tmp_path):
    data = {k: v for k, v in SMALL.items() if k != "sweep"}
    r = cli("plan", write(tmp_path, data))
    assert r.code == 2 and "sweep" in r.err


def test_report_of_a_non_plan_file(cli, tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"step_time_s": 1.0}))
    r = cli("report", p, "--format", "md")
    assert r.code == 2 and "not a capplan plan result" in r.err
    r = cli("report", p, "--format", "pdf")
    assert r.code == 2


def test_whatif_serving_without_a_file(cli):
    r = cli("whatif", "--model", "llama2-7b", "--hardware", "a100-sxm4-80gb", "--hardware", "h100-sxm5-80gb",
            "--rate", "5", "--ttft-p99", "1", "--tpot-p99", "0.1", "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    b = d["best"]
    assert b["ttft_s"]["p99"] <= 1.0 and b["tpot_s"]["p99"] <= 0.1 and b["slo_attained"]
    assert b["usd_per_million_output_tokens"] > 0
    assert {p["hardware"] for p in d["pareto"]} <= {"a100-sxm4-80gb", "h100-sxm5-80gb"}


def test_whatif_needs_devices_for_training(cli):
    r = cli("whatif", "--model", "llama3-70b", "--hardware", "h100-sxm5-80gb", "--tokens", "1e12")
    assert r.code == 2 and "--devices" in r.err


def test_sweep_of_fixed_layouts_skips_invalid_points(cli, tmp_path):
    data = {k: v for k, v in SMALL.items()}
    data["sweep"] = {"parallelism.tp": [1, 5]}        # 5 does not divide BERT's 12 heads
    r = cli("plan", write(tmp_path, data), "--json", "--top-k", "0")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["candidates_evaluated"] == 1
    data["sweep"] = {"parallelism.tp": [5]}
    r = cli("plan", write(tmp_path, data, "bad.yaml"))
    assert r.code == 2 and "tp" in r.err
