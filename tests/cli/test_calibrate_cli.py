"""`capplan calibrate` / `capplan validate` through the real entry point (tiny sweeps)."""
from __future__ import annotations

import json

import pytest

from simulator.hardware.load import load_hardware


@pytest.fixture
def env(tmp_path, monkeypatch, cpu_template_profiles):
    monkeypatch.setenv("CAPPLAN_CALIBRATE_SMOKE", "1")      # tiny sweeps: seconds, not a minute
    return {"store": tmp_path / "cal.sqlite", "profiles": cpu_template_profiles, "tmp": tmp_path}


def test_calibrate_json_stores_a_run_and_exports_a_profile(cli, env):
    out = env["tmp"] / "cpu.yaml"
    r = cli("calibrate", "--backend", "numpy", "--quick", "--store", env["store"], "--export", out,
            "--profiles-dir", env["profiles"], "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["backend"] == "numpy" and data["run_id"] == 1 and data["export"] == str(out)
    tests = {m["test"] for m in data["measurements"]}
    assert {"launch", "gemm", "bmm", "conv", "copy", "add", "triad", "exp", "sum"} <= tests
    assert data["peak_flops_per_s"]["fp32"] > 0 and data["memory_bandwidth_bytes_per_s"] > 0
    assert "matmul/fp32" in data["residuals"] and data["fingerprint"]["blas_threads"]
    prof = load_hardware(str(out))
    assert prof.provenance == "calibrated" and prof.calibration.store_run_id == 1


def test_list_shows_complete_partial_and_interrupted_runs(cli, env):
    from simulator.calibrate.store import open_store
    from simulator.schema.calibration import Fingerprint
    fp = Fingerprint(backend="numpy", device="cpu")
    with open_store(env["store"]) as st:
        st.record_run(fp, [], quick=True)
        st.mark_interrupted(st.begin_run(fp, quick=False))
        st.begin_run(fp, quick=False)                       # killed: never finished
    r = cli("calibrate", "--list", "--store", env["store"], "--json")
    assert r.code == 0, r
    runs = json.loads(r.out)["runs"]
    assert [x["status"] for x in runs] == ["complete", "interrupted", "incomplete"]
    r = cli("calibrate", "--list", "--store", env["store"])
    assert r.code == 0 and "interrupted" in r.out


def test_calibrate_table_output(cli, env):
    r = cli("calibrate", "--backend", "numpy", "--store", env["store"], "--profiles-dir", env["profiles"],
            "--only", "launch,gemm,add")
    assert r.code == 0, r
    assert "achieved vs peak" in r.out and "gemm" in r.out and "fit residuals" in r.out
    assert "bmm" not in r.out


def test_validate_without_a_calibration_says_so(cli, env):
    r = cli("validate", "--backend", "numpy", "--store", env["store"], "--profiles-dir", env["profiles"])
    assert r.code == 2
    assert ("no complete numpy calibration" in r.err or "no calibration store yet" in r.err) and "capplan calibrate" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_validate_after_calibrate_reports_cases_and_mean(cli, env):
    assert cli("calibrate", "--backend", "numpy", "--store", env["store"], "--profiles-dir",
               env["profiles"], "--json").code == 0
    r = cli("validate", "--backend", "numpy", "--store", env["store"], "--profiles-dir", env["profiles"],
            "--repeats", "1", "--case", "mlp,cnn-small", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert [c["name"] for c in data["cases"]] == ["mlp", "cnn-small"]
    for c in data["cases"]:
        assert c["measured_s"] > 0 and c["predicted_s"] > 0
        assert c["error"] == pytest.approx(c["predicted_s"] / c["measured_s"] - 1)
    assert data["mean_abs_error"] == pytest.approx(sum(abs(c["error"]) for c in data["cases"]) / 2)
    r = cli("validate", "--backend", "numpy", "--store", env["store"], "--profiles-dir", env["profiles"],
            "--repeats", "1", "--case", "mlp")
    assert r.code == 0 and "mean |error|" in r.out


def test_cupy_without_a_gpu_is_one_line_exit_2(cli, env, monkeypatch):
    from simulator.calibrate import backends
    monkeypatch.setattr(backends, "cupy_status", lambda: (False, "CuPy sees no CUDA device"))
    for cmd in ("calibrate", "validate"):
        r = cli(cmd, "--backend", "cupy", "--store", env["store"])
        assert r.code == 2, r
        assert "--backend cupy is not usable here" in r.err and len(r.err.strip().splitlines()) == 1


def test_bad_store_file_is_exit_2_and_untouched(cli, env):
    bad = env["tmp"] / "notes.txt"
    bad.write_text("not a database\n")
    r = cli("calibrate", "--backend", "numpy", "--store", bad, "--profiles-dir", env["profiles"])
    assert r.code == 2 and "not a capplan calibration store" in r.err
    assert bad.read_text() == "not a database\n"


def test_bad_options_are_exit_2(cli, env):
    assert cli("calibrate", "--backend", "tpu", "--store", env["store"]).code == 2
    assert cli("calibrate", "--backend", "numpy", "--statistic", "mean", "--store", env["store"]).code == 2
    r = cli("validate", "--backend", "numpy", "--case", "mpl", "--store", env["store"])
    assert r.code == 2


def test_validate_with_a_missing_store_creates_nothing(cli, tmp_path):
    store = tmp_path / "sub" / "none.sqlite"
    r = cli("validate", "--backend", "numpy", "--store", store)
    assert r.code == 2 and "no calibration store yet" in r.err
    assert not store.exists() and not store.parent.exists()
