from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.loading import apply_overrides, load_scenario


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_overrides_are_typed_and_nested():
    out = apply_overrides({"parallelism": {"tp": 1}}, ["parallelism.tp=8", "parallelism.sequence_parallel=true",
                                                        "cluster.hardware=h100-sxm5-80gb"])
    assert out["parallelism"] == {"tp": 8, "sequence_parallel": True}
    assert out["cluster"] == {"hardware": "h100-sxm5-80gb"}


def test_override_without_equals_is_input_error():
    with pytest.raises(InputError, match="--set"):
        apply_overrides({}, ["parallelism.tp"])


def test_relative_profile_path_is_resolved_against_scenario_folder(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: x\n")
    p = _write(tmp_path, "workload: {model: gpt2}\ncluster: {hardware: mine.yaml}\n")
    sc = load_scenario(p)
    assert sc.cluster.hardware == str((tmp_path / "mine.yaml").resolve())


def test_profile_names_stay_names(tmp_path):
    p = _write(tmp_path, "workload: {model: gpt2}\ncluster: {hardware: a100-sxm4-80gb}\n")
    assert load_scenario(p).cluster.hardware == "a100-sxm4-80gb"


def test_unknown_field_names_file_and_field(tmp_path):
    p = _write(tmp_path, "workload: {model: gpt2, sequence: 3}\ncluster: {hardware: a100-sxm4-80gb}\n")
    with pytest.raises(InputError) as exc:
        load_scenario(p)
    assert str(p) in str(exc.value) and "workload.sequence" in str(exc.value)


def test_yaml_syntax_error_names_line(tmp_path):
    p = _write(tmp_path, "workload: {model: gpt2\ncluster: [\n")
    with pytest.raises(InputError, match="does not parse as YAML"):
        load_scenario(p)
