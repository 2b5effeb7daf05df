"""`capplan hardware list | show | compare` through the real entry point."""
from __future__ import annotations

import json

import yaml

from simulator.hardware.load import profile_paths


def test_list_json_has_every_profile(cli):
    r = cli("hardware", "list", "--json")
    assert r.code == 0, r
    rows = json.loads(r.out)
    names = {row["name"] for row in rows}
    assert {"a100-sxm4-80gb", "h100-sxm5-80gb", "tpu-v5e", "cpu-generic"} <= names
    a100 = next(row for row in rows if row["name"] == "a100-sxm4-80gb")
    assert a100["bf16_flops_per_s"] == 312e12 and a100["tdp_w"] == 400


def test_list_table(cli):
    r = cli("hardware", "list")
    assert r.code == 0, r
    assert "h200-sxm-141gb" in r.out and "bf16 TFLOP/s" in r.out and "989" in r.out


def test_show_json_is_si_with_sources(cli):
    r = cli("hardware", "show", "a100-sxm4-80gb", "--json")
    assert r.code == 0, r
    p = json.loads(r.out)
    assert p["peak_flops_per_s"]["bf16"] == 312e12
    assert p["memory"]["capacity_bytes"] == 85_198_045_184
    assert p["memory"]["bandwidth_bytes_per_s"] == 2039e9
    assert "memory.capacity_bytes" in p["sources"]


def test_show_table_lists_fields_and_sources(cli):
    r = cli("hardware", "show", "h100-sxm5-80gb")
    assert r.code == 0, r
    assert "scale_up.bandwidth_bytes_per_s" in r.out and "450 GB/s" in r.out and "NVLink4" in r.out
    assert "efficiency curves" in r.out


def test_compare_prints_ratios(cli):
    r = cli("hardware", "compare", "a100-sxm4-80gb", "h100-sxm5-80gb", "rtx-4090", "tpu-v5e")
    assert r.code == 0, r
    assert "3.17x" in r.out          # H100 bf16 989 / A100 312
    assert "tpu-v5e" in r.out


def test_compare_json(cli):
    r = cli("hardware", "compare", "a100-sxm4-80gb", "h100-sxm5-80gb", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    bf16 = next(m for m in data["metrics"] if m["key"] == "bf16_flops_per_s")
    assert round(bf16["ratio_to_first"]["h100-sxm5-80gb"], 2) == 3.17


def test_unknown_name_one_line_exit_2(cli):
    r = cli("hardware", "show", "h100-sxm")
    assert r.code == 2
    assert "h100-sxm5-80gb" in r.err and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_compare_needs_two(cli):
    r = cli("hardware", "compare", "a100-sxm4-80gb")
    assert r.code == 2 and "at least two" in r.err


def test_profiles_dir_adds_user_profile(cli, tmp_path):
    data = yaml.safe_load(profile_paths()["rtx-4090"].read_text())
    data["name"] = "lab-4090"
    (tmp_path / "lab-4090.yaml").write_text(yaml.safe_dump(data))
    r = cli("hardware", "list", "--json", "--profiles-dir", str(tmp_path))
    assert r.code == 0, r
    assert "lab-4090" in {row["name"] for row in json.loads(r.out)}
    assert cli("hardware", "show", "lab-4090", "--profiles-dir", str(tmp_path)).code == 0


def test_bad_user_profile_is_one_line(cli, tmp_path):
    data = yaml.safe_load(profile_paths()["rtx-4090"].read_text())
    data["memory"]["capacity_bytes"] = "24 GiBs"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    r = cli("hardware", "show", str(path))
    assert r.code == 2
    line = r.err.strip()
    assert str(path) in line and "memory.capacity_bytes" in line and "\n" not in line


def test_schema_hardware(cli):
    r = cli("schema", "hardware")
    assert r.code == 0
    assert "peak_flops_per_s" in json.loads(r.out)["properties"]


def test_clusters(cli):
    r = cli("hardware", "clusters", "--json")
    assert r.code == 0, r
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["dgx-a100-superpod"]["num_nodes"] == 384
    assert rows["dgx-a100-superpod"]["scale_out_bandwidth_bytes_per_s"] == 25e9
    r = cli("hardware", "clusters")
    assert r.code == 0 and "rtx-4090-100gbe" in r.out
