"""Adversarial bad input at the CLI: one `error:` line naming the file and field, exit 2.

Each case is something a user on a fresh machine can type; every one of them once gave a
traceback, an "internal error", a hang, ran out of memory, or a silently accepted value.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_scenarios import INFERENCE, TRAINING  # noqa: E402 (tests/cli is on sys.path)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "train.yaml").write_text(TRAINING)
    (tmp_path / "inf.yaml").write_text(INFERENCE)
    (tmp_path / "binary.csv").write_bytes(b"\x00\xff\xfe\x89PNG garbage")
    (tmp_path / "adir").mkdir()
    (tmp_path / "dup.yaml").write_text(TRAINING.replace("cluster: {hardware: a100-sxm4-80gb, devices: 8}",
                                                        "cluster: {hardware: a100-sxm4-80gb, devices: 8, devices: 16}"))
    (tmp_path / "cfg.json").write_text('{"model_type": "llama", "hidden_size": "abc", "num_hidden_layers": 2, '
                                       '"num_attention_heads": 4, "vocab_size": 100, "intermediate_size": 64}')
    return tmp_path


# (command line with {d} for the fixture folder, text the one error line must contain)
CASES = [
    # any exception the CLI did not expect used to crash its own handler (typer has no click.Exit)
    ("schema scenario --out {d}/adir", "adir"),
    ("schema scenario --out {d}/no/such/folder/s.json", "s.json"),
    ("simulate {d}/train.yaml --trace {d}/adir", "adir"),
    # a group without its subcommand printed "error: " and nothing else
    ("models", "missing a command"),
    ("hardware", "missing a command"),
    # 10**12 micro-batches per step: minutes, then out of memory
    ("simulate {d}/train.yaml --set workload.global_batch=1000000000000", "workload.micro_batch"),
    # 10**12 devices: the layout search never returned
    ("simulate {d}/train.yaml --set cluster.devices=1000000000000", "cluster.devices"),
    ("whatif -m gpt2 --hardware h100-sxm5-80gb --tokens 1e9 --devices 1000000000000", "cluster.devices"),
    # serving: rate x duration of 10**12 requests allocated 100+ GiB
    ("serve {d}/inf.yaml --set serving.arrivals.rate_per_s=1000000000", "serving"),
    ("serve {d}/inf.yaml --set serving.duration_s=1e12", "serving"),
    # fixed token counts below one: pydantic error escaped as an internal error, or 0.5 accepted
    ("serve {d}/inf.yaml --set serving.prompt_tokens=0", "serving.prompt_tokens"),
    ("serve {d}/inf.yaml --set serving.output_tokens=-5", "serving.output_tokens"),
    ("serve {d}/inf.yaml --set serving.output_tokens=0.5", "serving.output_tokens"),
    ("serve {d}/inf.yaml --set serving.prompt_tokens=abc", "serving.prompt_tokens'"),
    # no request at all: p99 latencies of 0 s and "goodput 100%"
    ("serve {d}/inf.yaml --set serving.arrivals.rate_per_s=1e-9", "serving.arrivals.rate_per_s"),
    ("serve {d}/inf.yaml --set serving.arrivals.kind=constant --set serving.arrivals.rate_per_s=1e-9",
     "serving.arrivals.rate_per_s"),
    # a negative seed reached numpy
    ("serve {d}/inf.yaml --set serving.seed=-1", "serving.seed"),
    ("simulate {d}/train.yaml --set seed=-1", "seed"),
    # a binary trace file: UnicodeDecodeError
    ("serve {d}/inf.yaml --set serving.arrivals.kind=trace --set serving.arrivals.path={d}/binary.csv",
     "serving.arrivals.path"),
    # inf is not a number of tokens, a price or a deadline
    ("whatif -m gpt2 --hardware h100-sxm5-80gb --tokens inf --devices 8", "workload.tokens"),
    ("simulate {d}/train.yaml --set costs.usd_per_kwh=.inf", "costs.usd_per_kwh"),
    # whatif: --tokens with --rate silently answered one of them; --devices 0 blamed global_batch
    ("whatif -m gpt2 --hardware h100-sxm5-80gb --tokens 1e9 --devices 8 --rate 3", "--rate"),
    ("whatif -m gpt2 --hardware h100-sxm5-80gb --tokens 1e9 --devices 0", "--devices"),
    # model_options: the field was reported as 'workload.nosuch'
    ("simulate {d}/train.yaml --set workload.model_options.nosuch=3", "workload.model_options.nosuch"),
    ("simulate {d}/inf.yaml --set workload.model_options.nosuch=3", "workload.model_options.nosuch"),
    # a bad field of a model config is named as in that file, not as 'workload.hidden_size'
    ("simulate {d}/train.yaml --set workload.model={d}/cfg.json", "cfg.json: field 'hidden_size'"),
    ("serve {d}/inf.yaml --set workload.model={d}/cfg.json", "cfg.json: field 'hidden_size'"),
    # an inline model is part of the scenario: workload.model.<field>
    ("simulate {d}/train.yaml --set workload.model={{model_type:llama}}", "field 'workload.model.model_type'"),
    # serving named an unknown model's field 'model'
    ("serve {d}/inf.yaml --set workload.model=nosuch", "inf.yaml: field 'workload.model'"),
    # a key written twice: YAML kept the last one silently
    ("simulate {d}/dup.yaml", "dup.yaml: field 'devices'"),
    # union members leaked pydantic's tags ('list[any]', '.float') into the field path
    ("plan {d}/train.yaml --set sweep.cluster.devices=3", "field 'sweep.cluster.devices'"),
    # schema validators' messages no longer start with pydantic's "Value error, "
    ("serve {d}/inf.yaml --set serving.arrivals.kind=gamma", "gamma arrivals need 'cv'"),
]


@pytest.mark.parametrize("line,needle", CASES, ids=[c[0].replace("{d}/", "")[:70] for c in CASES])
def test_bad_input_is_one_line_exit_2(cli, files, line, needle):
    r = cli(*line.format(d=files).split())
    assert r.code == 2, r
    errors = [ln for ln in r.err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error:"), r
    assert needle in errors[0], r
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert "Value error," not in r.err and "list[any]" not in r.err


def test_trace_onto_the_scenario_is_refused_and_the_scenario_kept(cli, files):
    scenario = files / "train.yaml"
    r = cli("simulate", str(scenario), "--trace", str(scenario))
    assert r.code == 2 and r.err.startswith("error:") and "--trace" in r.err, r
    assert scenario.read_text() == TRAINING


def test_listing_a_store_creates_nothing(cli, tmp_path):
    """`calibrate --list` on a missing or empty file reads: it used to write a SQLite store there."""
    empty = tmp_path / "notes.txt"
    empty.write_text("")
    missing = tmp_path / "missing.sqlite"
    for store in (empty, missing):
        r = cli("calibrate", "--store", str(store), "--list", "--json")
        assert r.code == 0, r
        assert json.loads(r.out)["runs"] == []
    assert empty.read_bytes() == b""
    assert not missing.exists()


def test_context_overrun_warns_on_stderr_json_stays_pure(cli, files):
    """A sequence beyond the model's positions is counted but said (on stderr), in simulate too."""
    for scenario, override in (("train.yaml", "workload.seq_len=4096"),
                               ("inf.yaml", "workload.prompt_tokens=4096")):
        r = cli("simulate", str(files / scenario), "--set", override, "--json")
        assert r.code == 0, r
        json.loads(r.out)
        assert "warning:" in r.err and "max_position_embeddings 1024" in r.err
