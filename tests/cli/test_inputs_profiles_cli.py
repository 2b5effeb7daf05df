"""Broken profile files in a user's --profiles-dir are said, not silently skipped.

`hardware list` warns (one line per file: file, field, expected) and lists the rest;
a scenario that does not use the broken file runs and warns; one that uses it fails
with the file's own error, not "unknown name"; a broken cluster file is a warning in
`hardware clusters`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simulator.hardware.load import data_dir

SCEN = """name: p
workload: {kind: training, model: gpt2, seq_len: 512, global_batch: 8, micro_batch: 1, steps: 1}
cluster: {hardware: my-gpu, devices: 1}
"""


@pytest.fixture
def pdir(tmp_path: Path) -> Path:
    d = tmp_path / "profiles"
    d.mkdir()
    shutil.copy(data_dir() / "a100-sxm4-80gb.yaml", d / "my-gpu.yaml")
    (d / "no-kind.yaml").write_text("name: no-kind\nvendor: x\n")
    (d / "bad-yaml.yaml").write_text("name: [unclosed\n")
    (tmp_path / "s.yaml").write_text(SCEN)
    return d


def _warnings(err: str) -> list[str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert all(ln.startswith("warning:") for ln in lines), err
    return lines


def test_hardware_list_warns_per_broken_file_and_lists_the_rest(cli, pdir):
    r = cli("hardware", "list", "--profiles-dir", pdir, "--json")
    assert r.code == 0, r
    names = {row["name"] for row in json.loads(r.out)}
    assert "a100-sxm4-80gb" in names and "h100-sxm5-80gb" in names and len(names) >= 20
    warns = _warnings(r.err)
    assert len(warns) == 2
    assert any("no-kind.yaml" in w and "field 'kind'" in w for w in warns)
    assert any("bad-yaml.yaml" in w and "does not parse as YAML at line" in w for w in warns)
    r = cli("hardware", "list", "--profiles-dir", pdir)
    assert r.code == 0 and "my-gpu" not in r.err and len(_warnings(r.err)) == 2


def test_scenario_not_using_the_broken_file_runs_and_warns(cli, pdir):
    r = cli("simulate", pdir.parent / "s.yaml", "--profiles-dir", pdir, "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["step_time_s"] > 0
    assert len(_warnings(r.err)) == 2 and "no-kind.yaml" in r.err


@pytest.mark.parametrize("name,needle", [("no-kind", "no-kind.yaml: field 'kind'"),
                                         ("bad-yaml", "bad-yaml.yaml")])
def test_scenario_using_the_broken_file_fails_with_its_own_error(cli, pdir, name, needle):
    r = cli("simulate", pdir.parent / "s.yaml", "--profiles-dir", pdir, "--set", f"cluster.hardware={name}")
    assert r.code == 2, r
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r
    assert "unknown" not in lines[0]


def test_hardware_clusters_warns_on_a_broken_cluster_file(cli, pdir):
    (pdir / "clusters").mkdir()
    (pdir / "clusters" / "mine.yaml").write_text("name: mine\nhardware: nosuch-gpu\ndevices: 8\n")
    (pdir / "clusters" / "typo.yaml").write_text("name: typo\nhardware: my-gpu\ndevcies: 8\n")
    r = cli("hardware", "clusters", "--profiles-dir", pdir, "--json")
    assert r.code == 0, r
    assert "dgx-a100-superpod" in {row["name"] for row in json.loads(r.out)}
    warns = [w for w in _warnings(r.err) if "clusters" in w]
    assert len(warns) == 2
    assert any("mine.yaml" in w and "field 'hardware'" in w and "nosuch-gpu" in w for w in warns)
    assert any("typo.yaml" in w and "field 'devices'" in w for w in warns)


def test_a_broken_user_cluster_is_said_by_simulate_and_plan(cli, pdir):
    (pdir / "no-kind.yaml").unlink()
    (pdir / "bad-yaml.yaml").unlink()
    (pdir / "clusters").mkdir()
    (pdir / "clusters" / "lab.yaml").write_text("name: lab\nhardware: my-gpu\ndevices: 8\n"
                                                "scale_up: {analogue: nosuch-gpu}\n")
    scen = pdir.parent / "s.yaml"
    r = cli("simulate", scen, "--profiles-dir", pdir, "--json")
    assert r.code == 0 and _warnings(r.err) and "lab.yaml: field 'scale_up.analogue'" in r.err, r
    plan = pdir.parent / "p.yaml"
    plan.write_text(SCEN.replace("steps: 1", "tokens: 1e6") + "sweep: {parallelism: auto}\n")
    r = cli("plan", plan, "--profiles-dir", pdir, "--json", "--top-k", "0")
    assert r.code == 0 and "lab.yaml: field 'scale_up.analogue'" in r.err, r
    r = cli("simulate", scen, "--profiles-dir", pdir, "--set", "cluster.hardware=null", "--set", "cluster.name=lab")
    assert r.code == 2 and r.err.count("error:") == 1 and "lab.yaml: field 'scale_up.analogue'" in r.err, r


def test_plan_and_whatif_using_the_broken_file_name_it(cli, pdir):
    plan = pdir.parent / "p.yaml"
    plan.write_text(SCEN.replace("steps: 1", "tokens: 1e6").replace("my-gpu", "no-kind")
                    + "sweep: {parallelism: auto}\n")
    r = cli("plan", plan, "--profiles-dir", pdir)
    assert r.code == 2 and "no-kind.yaml: field 'kind'" in r.err, r
    r = cli("whatif", "-m", "gpt2", "--hardware", "no-kind", "--devices", "8", "--tokens", "1e9",
            "--profiles-dir", pdir)
    assert r.code == 2 and "no-kind.yaml: field 'kind'" in r.err, r
