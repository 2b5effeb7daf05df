"""`capplan simulate`: JSON keys, trace file, overrides, and one-line errors (exit 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GPT3 = REPO / "scenarios" / "gpt3-175b-pretrain.yaml"
LLAMA = REPO / "scenarios" / "llama3-70b-pretrain.yaml"


def test_json_has_the_design_keys(cli):
    r = cli("simulate", GPT3, "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["parallelism"]["dp"] == 8
    assert d["memory"]["fits"] is True
    assert d["time_to_train_s"] > 0 and d["cost_usd"] > 0 and d["energy_kwh"] > 0
    assert d["provenance"]["profile"] == "a100-sxm4-80gb"


def test_terminal_summary_explains_the_step(cli):
    r = cli("simulate", LLAMA)
    assert r.code == 0, r
    for words in ("step time", "MFU", "pipeline bubble", "Memory per device", "time to train"):
        assert words in r.out


def test_trace_opens_as_chrome_trace(cli, tmp_path):
    out = tmp_path / "t.json"
    r = cli("simulate", GPT3, "--set", "workload.global_batch=128", "--trace", out, "--json")
    assert r.code == 0, r
    doc = json.loads(out.read_text())
    events = doc["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert {e["pid"] for e in slices} == set(range(16))
    assert {e["tid"] for e in slices} >= {0, 1}
    assert all(e["dur"] >= 0 and "ts" in e for e in slices)


def test_set_override_changes_the_result(cli):
    a = json.loads(cli("simulate", GPT3, "--json").out)
    b = json.loads(cli("simulate", GPT3, "--json", "--set", "parallelism.schedule=interleaved",
                       "--set", "parallelism.virtual_stages=2").out)
    assert b["parallelism"]["virtual_stages"] == 2
    assert b["breakdown"]["pipeline_bubble_s"] < a["breakdown"]["pipeline_bubble_s"]


def test_not_fitting_layout_warns_and_exits_zero(cli):
    r = cli("simulate", GPT3, "--set", "parallelism.tp=1", "--set", "parallelism.pp=8",
            "--set", "parallelism.sequence_parallel=false", "--set", "workload.recompute=none")
    assert r.code == 0, r
    assert "DOES NOT FIT" in r.out and "does not fit in memory" in r.out


@pytest.mark.parametrize("override,words", [
    ("parallelism.tp=7", "does not divide"),
    ("parallelism.dp=3", "tp*pp*dp*cp"),
    ("parallelism.pp=128", "layers"),
    ("workload.micro_batch=5", "micro_batch"),
    ("parallelism.schedule=zigzag", "parallelism.schedule"),
    ("parallelism.tpp=2", "is not a known field"),
    ("workload.global_batch=lots", "workload.global_batch"),
    ("cluster.hardware=a100-sxm5", "did you mean"),
])
def test_bad_input_is_one_line_exit_2(cli, override, words):
    r = cli("simulate", GPT3, "--set", override)
    assert r.code == 2, r
    assert words in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_missing_file_is_exit_2(cli, tmp_path):
    r = cli("simulate", tmp_path / "nope.yaml")
    assert r.code == 2 and "file not found" in r.err


def test_inference_workload_is_dispatched(cli, tmp_path):
    sc = tmp_path / "inf.yaml"
    sc.write_text("workload: {kind: inference, model: llama2-7b, prompt_tokens: 256, output_tokens: 32, batch: 4}\n"
                  "cluster: {hardware: a100-sxm4-80gb, devices: 1}\n")
    r = cli("simulate", sc, "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["kind"] == "inference" and d["prefill_s"] > 0 and d["decode_s_per_token"] > 0
    r = cli("simulate", sc, "--trace", tmp_path / "t.json")
    assert r.code == 2 and "only available for training" in r.err
