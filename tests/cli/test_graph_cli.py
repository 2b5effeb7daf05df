"""`capplan models list` and `capplan graph`, including every kind of bad input (exit 2, one line)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import graph_onnx_models as om  # noqa: E402


def _one_line_error(r, *needles):
    assert r.code == 2, r
    assert "Traceback" not in r.err and r.out == ""
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1, r.err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_models_list_json(cli):
    r = cli("models", "list", "--json")
    assert r.code == 0, r
    rows = json.loads(r.out)
    by_name = {row["name"]: row for row in rows}
    assert by_name["llama2-7b"] == {"name": "llama2-7b", "family": "llama", "params": 6_738_415_616}
    assert by_name["resnet50"]["family"] == "cnn" and len(rows) >= 19


def test_models_list_table(cli):
    r = cli("models", "list")
    assert r.code == 0 and "gpt3-175b" in r.out and "mixtral-8x7b" in r.out


def test_graph_json_keys(cli):
    r = cli("graph", "gpt2", "--seq", "128", "--batch", "2", "--json")
    assert r.code == 0, r
    d = json.loads(r.out)
    assert d["params"] == 124_439_808
    assert d["training_flops"] == pytest.approx(3 * d["forward_flops"], rel=0.01)
    assert d["batch"] == 2 and d["seq_len"] == 128
    assert [row["name"] for row in d["layers"]][:2] == ["embed", "L0"]
    assert {"params", "forward_flops", "flops", "bytes", "ops", "layer"} <= set(d["layers"][1])


def test_graph_training_json(cli):
    r = cli("graph", "llama2-7b", "--seq", "256", "--training", "--recompute", "full", "--json")
    d = json.loads(r.out)
    assert r.code == 0 and d["training"] and d["recompute"] == "full"
    assert d["hardware_flops"] > d["training_flops"] > d["forward_flops"]


def test_graph_table(cli):
    r = cli("graph", "resnet50", "--batch", "4")
    assert r.code == 0, r
    assert "L15" in r.out and "total" in r.out and "25,557,032" in r.out


def test_graph_options_and_dims(cli, tmp_path):
    r = cli("graph", "vgg16", "--option", "image_size=150", "--option", "num_classes=2", "--json")
    assert r.code == 0 and json.loads(r.out)["params"] == 134_268_738
    path = om.transformer_block(tmp_path / "b.onnx")
    r8 = json.loads(cli("graph", str(path), "--dim", "batch=8", "--dim", "seq=32", "--json").out)
    r1 = json.loads(cli("graph", str(path), "--dim", "batch=1", "--dim", "seq=32", "--json").out)
    assert r8["forward_flops"] == pytest.approx(8 * r1["forward_flops"])


def test_graph_config_file(cli, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 256, "intermediate_size": 688,
                               "num_attention_heads": 8, "num_hidden_layers": 2, "vocab_size": 1000}))
    r = cli("graph", str(cfg), "--seq", "64", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["params"] == 2 * (4 * 256 * 256 + 3 * 256 * 688 + 2 * 256) + 2 * 1000 * 256 + 256


def test_unknown_operator_warning_on_stderr(cli, tmp_path):
    path = om.transformer_block(tmp_path / "b.onnx", extra_op="Hardmax")
    r = cli("graph", str(path), "--dim", "batch=1", "--dim", "seq=8", "--json")
    assert r.code == 0
    json.loads(r.out)
    assert r.err.count("warning:") == 1 and "Hardmax" in r.err


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100}


def test_bad_input_missing_file(cli, tmp_path):
    _one_line_error(cli("graph", str(tmp_path / "nope.json")), "nope.json", "file not found")
    _one_line_error(cli("graph", str(tmp_path / "nope.onnx")), "nope.onnx", "file not found")


def test_bad_input_unparsable(cli, tmp_path):
    _one_line_error(cli("graph", _write(tmp_path, "c.json", "{not json")), "c.json", "does not parse as JSON")
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\xff\xfe garbage")
    _one_line_error(cli("graph", str(bad)), "m.onnx", "ONNX")


def test_bad_input_unknown_model_type(cli, tmp_path):
    p = _write(tmp_path, "c.json", json.dumps(dict(GOOD, model_type="lama")))
    _one_line_error(cli("graph", p), "c.json", "model_type", "did you mean llama")


def test_bad_input_missing_field(cli, tmp_path):
    cfg = dict(GOOD)
    del cfg["n_head"]
    _one_line_error(cli("graph", _write(tmp_path, "c.json", json.dumps(cfg))), "c.json", "n_head", "missing")


def test_bad_input_non_positive_sizes(cli, tmp_path):
    p = _write(tmp_path, "c.json", json.dumps(dict(GOOD, n_embd=0)))
    _one_line_error(cli("graph", p), "c.json", "n_embd", "positive")
    _one_line_error(cli("graph", "gpt2", "--seq", "0"), "seq_len", "positive")
    _one_line_error(cli("graph", "gpt2", "--batch", "-3"), "batch", "positive")
    _one_line_error(cli("graph", "vgg16", "--option", "image_size=0"), "image_size")
    _one_line_error(cli("graph", "vgg16", "--option", "image_size=16"), "image_size", "too small")


def test_bad_input_cyclic_graph(cli, tmp_path):
    _one_line_error(cli("graph", str(om.cyclic(tmp_path / "cyc.onnx"))), "cyc.onnx", "cycle")


def test_bad_input_unknown_bundled_name(cli):
    _one_line_error(cli("graph", "lama2-7b"), "unknown model 'lama2-7b'", "llama2-7b")


def test_bad_input_misc(cli, tmp_path):
    _one_line_error(cli("graph", "gpt2", "--recompute", "some"), "recompute")
    _one_line_error(cli("graph", "gpt2", "--dim", "batch"), "--dim", "key=value")
    _one_line_error(cli("graph", "gpt2", "--dim", "batch=2"), "ONNX")
    _one_line_error(cli("graph", "gpt2", "--option", "num_labels=3"), "num_labels")
    _one_line_error(cli("graph", "bert-base", "--option", "colour=3"), "colour")
    _one_line_error(cli("graph", "gpt2", "--dtype", "fp7"), "fp7")
    p = _write(tmp_path, "c.json", json.dumps(dict(GOOD, n_head=5)))
    _one_line_error(cli("graph", p), "c.json", "divisible")
    _one_line_error(cli("graph", _write(tmp_path, "l.json", "[1, 2]")), "l.json", "object")


def test_identical_layers_share_a_row_unless_all_layers(cli):
    r = cli("graph", "llama2-7b", "--seq", "64")
    assert r.code == 0 and "L0-L31 (x32)" in r.out and "6,738,415,616" in r.out
    r = cli("graph", "llama2-7b", "--seq", "64", "--all-layers")
    assert r.code == 0 and "L31" in r.out and "(x32)" not in r.out


def test_bundled_name_wins_over_a_local_folder(cli, tmp_path, monkeypatch):
    (tmp_path / "gpt2").mkdir()
    monkeypatch.chdir(tmp_path)
    r = cli("graph", "gpt2", "--seq", "8", "--json")
    assert r.code == 0 and json.loads(r.out)["params"] == 124_439_808


def test_hf_checkout_folder_with_config_json(cli, tmp_path):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text(json.dumps(GOOD))
    r = cli("graph", str(tmp_path / "my-model"), "--seq", "8", "--json")
    assert r.code == 0 and json.loads(r.out)["params"] == 2 * (12 * 64 * 64 + 13 * 64) + 100 * 64 + 1024 * 64 + 128


def test_default_seq_is_the_models_context_capped_at_2048(cli):
    import json
    r = cli("graph", "bert-base", "--json")
    assert r.code == 0 and "warning" not in r.err
    assert json.loads(r.out)["seq_len"] == 512
    assert json.loads(cli("graph", "gpt3-175b", "--json").out)["seq_len"] == 2048
