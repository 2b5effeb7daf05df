"""Loading profiles: names, paths, a user's folder, caching, and one-line errors for bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.errors import InputError, UnknownNameError
from simulator.hardware.load import data_dir, list_profiles, load_hardware, profile_paths


def _a100_raw() -> dict:
    return yaml.safe_load(profile_paths()["a100-sxm4-80gb"].read_text())


def _write(tmp_path: Path, data: dict, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_data_dir_finds_the_bundled_profiles():
    assert (data_dir("hardware_profiles") / "a100-sxm4-80gb.yaml").is_file()


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError) as err:
        load_hardware("a100-sxm-80gb")
    assert "a100-sxm4-80gb" in err.value.close_matches
    assert "did you mean" in str(err.value)


def test_load_by_path_and_cache(tmp_path):
    data = _a100_raw()
    data["name"] = "my-a100"
    path = _write(tmp_path, data)
    p1 = load_hardware(str(path))
    assert p1.name == "my-a100"
    assert load_hardware(path) is p1          # cached on (path, mtime)


def test_user_folder_is_searched_first(tmp_path):
    data = _a100_raw()
    data["name"] = "a100-sxm4-80gb"
    data["power"]["tdp_w"] = "500 W"
    _write(tmp_path, data, "a100-sxm4-80gb.yaml")
    data["name"] = "lab-gpu"
    _write(tmp_path, data, "lab-gpu.yaml")
    assert load_hardware("a100-sxm4-80gb", profiles_dir=tmp_path).power.tdp_w == 500
    assert load_hardware("a100-sxm4-80gb").power.tdp_w == 400
    assert "lab-gpu" in list_profiles(tmp_path) and "lab-gpu" not in list_profiles()


def test_missing_profiles_dir():
    with pytest.raises(InputError, match="profiles folder not found"):
        list_profiles("/nonexistent/folder")


@pytest.mark.parametrize("mutate,field,words", [
    (lambda d: d.pop("memory"), "memory", "required"),
    (lambda d: d["memory"].pop("capacity_bytes"), "memory.capacity_bytes", "required"),
    (lambda d: d["memory"].__setitem__("capacity_bytes", "80 GiBs"), "memory.capacity_bytes", "unit"),
    (lambda d: d["memory"].__setitem__("bandwidth_bytes_per_s", 0), "memory.bandwidth_bytes_per_s", "greater than 0"),
    (lambda d: d["peak_flops_per_s"].__setitem__("bf16", "-312 TFLOPS"), "peak_flops_per_s.bf16", "greater than 0"),
    (lambda d: d.__setitem__("memroy", {}), "memroy", "not a known field"),
    (lambda d: d["scale_up"].__setitem__("speed", 3), "scale_up.speed", "not a known field"),
])
def test_bad_file_names_file_and_field(tmp_path, mutate, field, words):
    data = _a100_raw()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as err:
        load_hardware(str(path))
    line = err.value.one_line()
    assert str(path) in line and f"'{field}'" in line and words in line
    assert "\n" not in line


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        load_hardware("./no/such/profile.yaml")


def test_unit_slips_in_power_and_price_are_refused_not_turned_into_inf(tmp_path):
    """1e308 W gave 'inf kWh' and a null energy in JSON; now one error names the field."""
    import pytest as _pytest
    from simulator.errors import InputError
    from simulator.hardware.load import load_hardware
    from simulator.loading import read_mapping
    import yaml
    from pathlib import Path
    base = read_mapping(Path(__file__).resolve().parents[2] / "hardware_profiles" / "a100-sxm4-80gb.yaml")
    for section, field, value in [("power", "tdp_w", "1e308 W"), ("price", "list_usd", 1e12),
                                  ("price", "cloud_usd_per_hour", 1e9)]:
        data = {**base, "name": "slip", section: {**base[section], field: value}}
        path = tmp_path / f"slip-{field}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        with _pytest.raises(InputError, match=f"{section}.{field}"):
            load_hardware(str(path))


def test_scenario_cost_inputs_beyond_any_real_price_are_refused():
    import pytest as _pytest
    from simulator.errors import InputError
    from simulator.loading import load_scenario
    from pathlib import Path
    scen = Path(__file__).resolve().parents[2] / "scenarios" / "gpt3-175b-pretrain.yaml"
    for override in ("costs.usd_per_device_hour=1e308", "costs.power_usage_effectiveness=50",
                     "costs.usd_per_kwh=1e9"):
        with _pytest.raises(InputError, match=override.split("=")[0]):
            load_scenario(scen, [override])
    load_scenario(scen, ["costs.usd_per_device_hour=98.32"])        # a real 8-GPU node price passes
