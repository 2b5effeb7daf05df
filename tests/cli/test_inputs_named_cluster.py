"""A named cluster (hardware_profiles/clusters/*.yaml) supplies a scenario's hardware.

`cluster: {name: dgx-a100-superpod, devices: 16}` needs no `hardware`: the file gives
the profile, devices_per_node and link overrides (and the device count when `devices`
is left out). Contradictions and unknown names are one line, exit 2.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.errors import InputError, UnknownNameError
from simulator.hardware.cluster import build_cluster, resolve_cluster_name
from simulator.loading import validate
from simulator.schema.scenario import Scenario

BASE = """name: named
workload: {kind: training, model: gpt2, seq_len: 1024, global_batch: 64, micro_batch: 2, steps: 10}
parallelism: {tp: 2, pp: 2}
"""


def _write(tmp_path: Path, cluster: str, name: str = "s.yaml", extra: str = "") -> Path:
    p = tmp_path / name
    p.write_text(BASE + f"cluster: {cluster}\n" + extra)
    return p


def _sc(cluster: dict) -> Scenario:
    return validate(Scenario, {"workload": {"model": "gpt2"}, "cluster": cluster}, "t")


def test_the_named_cluster_supplies_hardware_and_node_size():
    sc = resolve_cluster_name(_sc({"name": "dgx-a100-superpod", "devices": 256}))
    assert (sc.cluster.hardware, sc.cluster.devices, sc.cluster.devices_per_node) == ("a100-sxm4-80gb", 256, 8)
    whole = resolve_cluster_name(_sc({"name": "aws-p5en-h200"}))
    assert (whole.cluster.hardware, whole.cluster.devices) == ("h200-sxm-141gb", 32)
    # the link overrides of the file still apply (400 Gb/s EFA per GPU, not the profile's default)
    c = build_cluster(whole.cluster)
    assert c.scale_out.bandwidth_bytes_per_s == pytest.approx(400e9 / 8)
    # no name: unchanged; a name that is no cluster file with hardware: a plain label
    plain = _sc({"hardware": "b200", "devices": 8, "name": "my lab"})
    assert resolve_cluster_name(plain) is plain


def test_neither_hardware_nor_name_is_one_line(cli, tmp_path):
    r = cli("simulate", _write(tmp_path, "{devices: 8}"))
    assert r.code == 2 and "field 'cluster'" in r.err and "hardware clusters" in r.err, r


def test_simulate_with_a_named_cluster_equals_the_spelled_out_cluster(cli, tmp_path):
    named = cli("simulate", _write(tmp_path, "{name: dgx-a100-superpod, devices: 16}"), "--json")
    spelled = cli("simulate", _write(tmp_path, "{hardware: a100-sxm4-80gb, devices: 16, devices_per_node: 8}",
                                     "b.yaml"), "--json")
    assert named.code == 0 and spelled.code == 0, (named, spelled)
    a, b = json.loads(named.out), json.loads(spelled.out)
    assert a["step_time_s"] == b["step_time_s"] and a["parallelism"]["dp"] == 4
    assert a["provenance"]["profile"] == "a100-sxm4-80gb"


def test_named_cluster_links_change_the_answer(cli, tmp_path):
    """rtx-4090-100gbe: 8 cards per host on one 100 GbE NIC, slower than a bare profile would say."""
    sc = _write(tmp_path, "{name: rtx-4090-100gbe, devices: 16}")
    r = cli("simulate", sc, "--json", "--set", "parallelism.tp=1")
    assert r.code == 0, r
    assert json.loads(r.out)["provenance"]["profile"] == "rtx-4090"
    assert json.loads(r.out)["breakdown"]["exposed_comm_s"] > 0


@pytest.mark.parametrize("cluster,needle", [
    ("{name: dgx-a100-superpod, hardware: h100-sxm5-80gb, devices: 16}",
     "field 'cluster.hardware': cluster 'dgx-a100-superpod' is built from 'a100-sxm4-80gb', not 'h100-sxm5-80gb'"),
    ("{name: dgx-a100-superpd, devices: 16}", "field 'cluster.name': unknown cluster 'dgx-a100-superpd'; "
                                              "did you mean dgx-a100-superpod?"),
    ("{name: aws-p5en-h200, devices: 64}", "field 'cluster.devices': cluster 'aws-p5en-h200' has 32 devices"),
])
@pytest.mark.parametrize("command", ["simulate", "plan"])
def test_contradictions_are_one_line(cli, tmp_path, cluster, needle, command):
    extra = "sweep: {parallelism: auto}\n" if command == "plan" else ""
    r = cli(command, _write(tmp_path, cluster, extra=extra))
    assert r.code == 2, r
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "s.yaml" in lines[0], r


def test_hardware_agreeing_with_the_cluster_is_accepted():
    sc = resolve_cluster_name(_sc({"name": "dgx-a100-superpod", "hardware": "a100-sxm4-80gb", "devices": 8}))
    assert sc.cluster.hardware == "a100-sxm4-80gb"
    with pytest.raises(UnknownNameError) as exc:
        resolve_cluster_name(_sc({"name": "nosuch-pod"}), source="x.yaml")
    assert exc.value.field == "cluster.name" and "x.yaml" in exc.value.one_line()


def test_plan_sweeps_named_clusters(cli, tmp_path):
    extra = ("workload: {kind: training, model: gpt2, seq_len: 1024, global_batch: 64, tokens: 1e8}\n"
             "sweep: {cluster.name: [dgx-a100-superpod, aws-p5en-h200], parallelism: auto}\n")
    p = tmp_path / "p.yaml"
    p.write_text("name: sweep-named\ncluster: {name: dgx-a100-superpod, devices: 16}\n" + extra)
    r = cli("plan", p, "--top-k", "0", "--json")
    assert r.code == 0, r
    assert not [n for n in json.loads(r.out)["notes"] if n.startswith("skipped")]
    from simulator.plan.api import plan
    report = plan(p, top_k=0, simulate_best=False)
    assert set(report.table["hardware"]) == {"a100-sxm4-80gb", "h200-sxm-141gb"}


def test_a_user_cluster_file_with_a_relative_profile_path(cli, tmp_path):
    from simulator.hardware.load import data_dir
    pdir = tmp_path / "profiles"
    (pdir / "clusters").mkdir(parents=True)
    (pdir / "gpu.yaml").write_text((data_dir() / "h100-sxm5-80gb.yaml").read_text())
    (pdir / "clusters" / "lab.yaml").write_text("name: lab\nhardware: ../gpu.yaml\ndevices: 8\ndevices_per_node: 4\n")
    r = cli("simulate", _write(tmp_path, "{name: lab}"), "--profiles-dir", pdir, "--json",
            "--set", "workload.global_batch=16")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["parallelism"]["devices"] == 8 and d["parallelism"]["devices_per_node"] in (4, 8)


def test_schema_documents_the_cluster_name():
    props = Scenario.model_json_schema()["$defs"]["Cluster"]["properties"]
    assert "named cluster" in props["name"]["description"]
    assert "left out" in props["hardware"]["description"]
    with pytest.raises(InputError):
        _sc({"devices": 4})
