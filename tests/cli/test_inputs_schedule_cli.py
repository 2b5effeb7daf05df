"""`simulate --set` and `plan` sweeps with schedule / virtual_stages combinations (CLI)."""
from __future__ import annotations

import json

SCEN = """name: sched
workload: {kind: training, model: gpt2, seq_len: 1024, global_batch: 16, micro_batch: 2, steps: 10}
cluster: {hardware: a100-sxm4-80gb, devices: 8}
parallelism: {tp: 2, pp: 2}
"""


def test_simulate_interleaved_without_chunks_is_one_line(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCEN)
    r = cli("simulate", path, "--set", "parallelism.schedule=interleaved", "--json")
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and "field 'parallelism.virtual_stages'" in r.err and "s.yaml" in r.err
    r = cli("simulate", path, "--set", "parallelism.schedule=interleaved", "--set", "parallelism.virtual_stages=2",
            "--json")
    assert r.code == 0, r
    par = json.loads(r.out)["parallelism"]
    assert (par["schedule"], par["virtual_stages"]) == ("interleaved", 2)


def test_plan_sweep_skips_the_refused_points_and_says_so(cli, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(SCEN + "sweep:\n  parallelism.schedule: [1f1b, interleaved]\n"
                           "  parallelism.virtual_stages: [1, 2]\n")
    r = cli("plan", path, "--top-k", "0", "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["candidates_evaluated"] == 2          # 1f1b x 1 and interleaved x 2 only
    labels = {(c["schedule"], c["virtual_stages"]) for c in d["top_candidates"]}
    assert labels == {("1f1b", 1), ("interleaved", 2)}
    skipped = [n for n in d["notes"] if n.startswith("skipped")]
    assert len(skipped) == 2 and all("parallelism.virtual_stages" in n for n in skipped)
    # the terminal report says it too (on stderr), not only the JSON
    r = cli("plan", path, "--top-k", "0")
    assert r.code == 0 and r.err.count("warning: skipped") == 2, r
