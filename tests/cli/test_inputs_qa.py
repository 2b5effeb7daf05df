"""Second QA pass over the commands: bad input that gave a traceback, a hang or a silently
wrong answer, now one `error:` line naming the file and the field, exit 2.

Also inputs that must keep working: a scenario written as JSON (by suffix, or inside a .yaml
file) and one with a UTF-8 byte-order mark.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_scenarios import INFERENCE, TRAINING  # noqa: E402 (tests/cli is on sys.path)


@pytest.fixture
def d(tmp_path: Path) -> Path:
    (tmp_path / "train.yaml").write_text(TRAINING)
    (tmp_path / "inf.yaml").write_text(INFERENCE)
    return tmp_path


CASES = [
    # pydantic reads true as 1: `tp: true` silently ran tp = 1
    (["simulate", "train.yaml", "--set", "parallelism.tp=true"], "field 'parallelism.tp': true is not a number"),
    (["simulate", "train.yaml", "--set", "cluster.devices=false"], "field 'cluster.devices'"),
    (["serve", "inf.yaml", "--set", "serving.duration_s=true"], "field 'serving.duration_s'"),
    # 1-byte gradient buckets: hundreds of millions of collectives, the step never finished
    (["simulate", "train.yaml", "--set", "parallelism.grad_bucket_bytes=1"], "field 'parallelism.grad_bucket_bytes'"),
    # tokens and steps both: steps won silently
    (["simulate", "train.yaml", "--set", "workload.tokens=1e9"], "field 'workload': give the amount of work once"),
    # a negative ONNX dimension was accepted
    (["simulate", "train.yaml", "--set", "workload.dims.batch=-1"], "field 'workload.dims.batch'"),
    # 1e308 tokens became a garbage integer: 87 requests "running" forever, no error
    (["serve", "inf.yaml", "--set", "serving.prompt_tokens=1e308"], "field 'serving.prompt_tokens'"),
    (["serve", "inf.yaml", "--set", "serving.prompt_tokens={kind: lognormal, mean: 1e308}"],
     "field 'serving.prompt_tokens.mean'"),
    (["serve", "inf.yaml", "--set", "serving.output_tokens={kind: exponential, mean: 1e300}"],
     "field 'serving.output_tokens.mean'"),
    # lognormal sigma 1e308: OverflowError; the error named the union's first member, not sigma
    (["serve", "inf.yaml", "--set", "serving.prompt_tokens={kind: lognormal, mean: 100, sigma: 1e308}"],
     "field 'serving.prompt_tokens.sigma'"),
    # gamma cv 1e308: OverflowError; 1e-300: ZeroDivisionError
    (["serve", "inf.yaml", "--set", "serving.arrivals.kind=gamma", "--set", "serving.arrivals.cv=1e308"],
     "field 'serving.arrivals.cv'"),
    (["serve", "inf.yaml", "--set", "serving.arrivals.kind=gamma", "--set", "serving.arrivals.cv=1e-300"],
     "field 'serving.arrivals.cv'"),
    # a million replicas: many minutes of SimPy processes for 100 requests
    (["serve", "inf.yaml", "--set", "serving.replicas=1000000"], "field 'serving.replicas'"),
    # the error of a what-if named no source
    (["whatif", "-m", "gpt2", "--hardware", "h100-sxm5-80gb", "--rate", "1e-300"],
     "command line: field 'serving.arrivals.rate_per_s'"),
]


@pytest.mark.parametrize("args,needle", CASES, ids=[" ".join(c[0])[:70] for c in CASES])
def test_bad_input_is_one_line_exit_2(cli, d, args, needle):
    r = cli(*[str(d / a) if a.endswith(".yaml") else a for a in args])
    assert r.code == 2, r
    errors = [ln for ln in r.err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error:"), r
    assert needle in errors[0], r
    assert "Traceback" not in r.err and "internal error" not in r.err and "more problems" not in r.err


@pytest.mark.parametrize("name,text", [
    ("train.json", json.dumps({"name": "qa", "workload": {"model": "gpt2", "seq_len": 1024, "global_batch": 16,
                                                          "micro_batch": 2, "steps": 10},
                               "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8},
                               "parallelism": {"tp": 2, "pp": 2}})),
    ("json-inside.yaml", None),
    ("bom.yaml", "\ufeff" + TRAINING),
])
def test_json_and_bom_scenarios_work(cli, d, name, text):
    if text is None:   # JSON is YAML: a .yaml file holding JSON
        text = (d / "train.json").read_text() if (d / "train.json").exists() else json.dumps(
            {"workload": {"model": "gpt2", "seq_len": 1024, "global_batch": 16, "micro_batch": 2, "steps": 10},
             "cluster": {"hardware": "a100-sxm4-80gb", "devices": 8}, "parallelism": {"tp": 2, "pp": 2}})
    (d / name).write_text(text, encoding="utf-8")
    r = cli("simulate", d / name, "--json")
    assert r.code == 0, r
    ref = json.loads(cli("simulate", d / "train.yaml", "--json").out)
    assert json.loads(r.out)["step_time_s"] == ref["step_time_s"]


def test_true_for_a_boolean_field_still_works(cli, d):
    r = cli("simulate", d / "train.yaml", "--set", "parallelism.sequence_parallel=true", "--json")
    assert r.code == 0 and json.loads(r.out)["parallelism"]["sequence_parallel"] is True, r


def test_a_yaml_alias_bomb_is_refused_not_expanded(cli, d):
    """Eight levels of ten-fold aliases: 10^8 values; `plan` hung walking them."""
    levels = ["l0: &l0 [0,0,0,0,0,0,0,0,0,0]"] + [
        f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 8)]
    (d / "bomb.yaml").write_text(TRAINING + "sweep:\n  cluster.devices: [8]\n  workload.model_options.junk:\n"
                                 "    - {" + ", ".join(levels) + "}\n")
    r = cli("plan", d / "bomb.yaml")
    assert r.code == 2 and "bomb.yaml: expands to" in r.err and "YAML aliases" in r.err, r
    # a few aliases are fine
    (d / "alias.yaml").write_text("workload: &w {model: gpt2, seq_len: 512, global_batch: 8, steps: 1}\n"
                                  "cluster: {hardware: a100-sxm4-80gb}\n")
    assert cli("simulate", d / "alias.yaml", "--json").code == 0
