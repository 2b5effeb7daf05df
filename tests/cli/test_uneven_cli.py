"""Uneven pipeline stages (parallelism.first_stage_layers / last_stage_layers) through the real CLI."""
from __future__ import annotations

import json

import yaml

TINY = {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 14, "num_attention_heads": 16,
        "num_key_value_heads": 16, "intermediate_size": 2816, "vocab_size": 32000,
        "max_position_embeddings": 4096}
SCEN = {"name": "uneven", "workload": {"model": TINY, "seq_len": 2048, "global_batch": 64, "micro_batch": 1,
                                       "tokens": 1e9},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8},
        "parallelism": {"tp": 1, "pp": 4, "first_stage_layers": 3, "last_stage_layers": 3}}


def write(tmp_path, data):
    p = tmp_path / "u.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_simulate_json_reports_each_stage(cli, tmp_path):
    r = cli("simulate", write(tmp_path, SCEN), "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert [s["layers"] for s in d["stages"]] == [3, 4, 4, 3]
    assert d["parallelism"]["first_stage_layers"] == 3 and d["parallelism"]["last_stage_layers"] == 3
    assert d["memory"]["total_bytes_per_device"] == max(s["memory_bytes"] for s in d["stages"])


def test_simulate_terminal_output(cli, tmp_path):
    r = cli("simulate", write(tmp_path, SCEN))
    assert r.code == 0, r
    assert "step" in r.out.lower()
    assert "layers per stage: 3/4/4/3" in r.out
    even = {**SCEN, "parallelism": {"tp": 1, "pp": 2}}
    r = cli("simulate", write(tmp_path, even))
    assert r.code == 0 and "layers per stage" not in r.out       # only shown when stages differ


def test_bad_split_is_one_line_exit_2(cli, tmp_path):
    r = cli("simulate", write(tmp_path, SCEN), "--set", "parallelism.first_stage_layers=4")
    assert r.code == 2, r
    line = r.err.strip()
    assert "\n" not in line and "Traceback" not in r.err
    assert "parallelism.first_stage_layers" in line and "do not split evenly" in line


def test_zero_layers_refused_by_the_schema(cli, tmp_path):
    r = cli("simulate", write(tmp_path, SCEN), "--set", "parallelism.last_stage_layers=0")
    assert r.code == 2, r
    assert "parallelism.last_stage_layers" in r.err and "Traceback" not in r.err


def test_plan_sweeps_a_fixed_uneven_layout(cli, tmp_path):
    data = {**SCEN, "parallelism": {"tp": 1, "pp": 4, "last_stage_layers": 4},
            "sweep": {"parallelism.first_stage_layers": [2, 4]}, "objective": "step_time_s"}
    r = cli("plan", write(tmp_path, data), "--json", "--top-k", "1")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["candidates_evaluated"] == 2
    assert d["best"]["step_time_s"] > 0


def test_plan_auto_refuses_uneven_stages(cli, tmp_path):
    data = {**SCEN, "sweep": {"parallelism": "auto"}}
    r = cli("plan", write(tmp_path, data), "--json")
    assert r.code == 2, r
    assert "parallelism.first_stage_layers" in r.err and "even pipeline splits only" in r.err


def test_plan_labels_swept_edge_stages(cli, tmp_path):
    data = {**SCEN, "parallelism": {"tp": 1, "pp": 4, "last_stage_layers": 4},
            "sweep": {"parallelism.first_stage_layers": [2, 4]}, "objective": "step_time_s"}
    r = cli("plan", write(tmp_path, data), "--top-k", "1")
    assert r.code == 0, r
    assert "first2" in r.out and "first4" in r.out


def test_simulate_counted_embedding_interleaved(cli, tmp_path):
    data = {**SCEN, "parallelism": {"tp": 1, "pp": 4, "schedule": "interleaved", "virtual_stages": 4,
                                    "embedding_as_layer": True, "loss_as_layer": True}}
    r = cli("simulate", write(tmp_path, data), "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert [s["layers"] for s in d["stages"]] == [3, 4, 4, 3]
    bad = cli("simulate", write(tmp_path, data), "--set", "parallelism.virtual_stages=3")
    assert bad.code == 2 and "parallelism.embedding_as_layer" in bad.err and "\n" not in bad.err.strip()


def test_plan_auto_refuses_counted_embedding(cli, tmp_path):
    data = {**SCEN, "parallelism": {"tp": 1, "pp": 4, "embedding_as_layer": True}, "sweep": {"parallelism": "auto"}}
    r = cli("plan", write(tmp_path, data), "--json")
    assert r.code == 2, r
    assert "parallelism.embedding_as_layer" in r.err
