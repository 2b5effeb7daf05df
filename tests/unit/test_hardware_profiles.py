"""Bundled hardware profiles: every one loads, round-trips, has a source for every number,
and carries the published dense peaks and usable memory (issue 3)."""
from __future__ import annotations

import pytest

from simulator.hardware.audit import missing_sources
from simulator.hardware.load import list_profiles, load_hardware, profile_paths
from simulator.schema.hardware import HardwareProfile
from simulator.units import GIB

NAMES = list_profiles()


def test_a100_is_bundled():
    assert "a100-sxm4-80gb" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_profile_loads_and_round_trips(name):
    p = load_hardware(name)
    assert p.name == name, "file stem and `name:` must agree"
    again = HardwareProfile.model_validate(p.model_dump(mode="json"))
    assert again == p


@pytest.mark.parametrize("name", NAMES)
def test_every_number_has_a_source(name):
    assert missing_sources(load_hardware(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_curves_are_datasheet_and_cited(name):
    p = load_hardware(name)
    for curve in p.efficiency:
        assert curve.origin == "datasheet" and len(curve.source) > 20
    for link in (p.scale_up, p.scale_out):
        if link is not None and link.collective is not None:
            assert len(link.collective.source) > 20


def test_a100_80gb_usable_memory_is_79_3_gib():
    p = load_hardware("a100-sxm4-80gb")
    assert p.memory.capacity_bytes == 85_198_045_184
    assert round(p.memory.capacity_bytes / GIB, 1) == 79.3


def test_a100_matmul_plateau_is_the_mamf_ceiling():
    from simulator.hardware.curves import efficiency
    p = load_hardware("a100-sxm4-80gb")
    assert efficiency(p, "matmul", "bf16", 1e13) == pytest.approx(271.2 / 312, abs=0.002)
    # small GEMMs fall off: a 1 MFLOP GEMM is latency-bound
    assert efficiency(p, "matmul", "bf16", 1e6) < 0.01


def test_profile_paths_point_at_yaml_files():
    for name, path in profile_paths().items():
        assert path.stem == name and path.suffix in (".yaml", ".yml", ".json")


EXPECTED_PROFILES = {
    "a100-sxm4-40gb", "a100-sxm4-80gb", "a100-pcie-80gb", "h100-sxm5-80gb", "h100-pcie-80gb",
    "h200-sxm-141gb", "b200", "gb200", "l40s", "l4", "rtx-3090", "rtx-4090", "rtx-5090", "rtx-a6000",
    "v100-sxm2-32gb", "t4", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "mi250x", "mi300x", "gaudi2",
    "gaudi3", "cpu-generic",
}


def test_all_issue_profiles_are_bundled():
    assert EXPECTED_PROFILES <= set(NAMES)


# Published dense bf16 peaks in TFLOP/s (issue 3; vendor datasheets, sparse figures halved).
@pytest.mark.parametrize("name,tflops", [
    ("a100-sxm4-80gb", 312), ("a100-sxm4-40gb", 312), ("h100-sxm5-80gb", 989), ("h200-sxm-141gb", 989),
    ("rtx-4090", 165.2), ("tpu-v4", 275), ("tpu-v5e", 197), ("mi300x", 1307.4),
])
def test_dense_bf16_peaks(name, tflops):
    assert load_hardware(name).peak_flops_per_s["bf16"] == pytest.approx(tflops * 1e12, rel=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_peaks_are_dense_not_sparse(name):
    """fp8 is at most 2x bf16 and bf16 at most 2x tf32 on every device (a sparse figure would double)."""
    peaks = load_hardware(name).peak_flops_per_s
    if "bf16" in peaks and "fp8" in peaks:
        assert peaks["fp8"] <= 2.05 * peaks["bf16"]   # published figures round up to ~2.02x
    if "bf16" in peaks and "tf32" in peaks:
        assert peaks["tf32"] <= peaks["bf16"]


@pytest.mark.parametrize("name", sorted(EXPECTED_PROFILES - {"cpu-generic"}))
def test_curves_cover_matmul_and_memory(name):
    from simulator.hardware.curves import find_curve
    p = load_hardware(name)
    main = "bf16" if "bf16" in p.peak_flops_per_s else "fp16"
    assert find_curve(p, "matmul", main) is not None
    assert find_curve(p, "memory", "any") is not None
    assert find_curve(p, "conv", main) is not None
    for curve in p.efficiency:   # the latency fall-off: efficiency grows with size
        assert list(curve.efficiency) == sorted(curve.efficiency)


def test_usable_not_marketed_memory():
    assert round(load_hardware("h200-sxm-141gb").memory.capacity_bytes / GIB, 1) == 140.4
    assert load_hardware("b200").memory.capacity_bytes == 180e9
    assert load_hardware("a100-sxm4-40gb").memory.capacity_bytes == 42_405_855_232


def test_links_are_per_direction():
    assert load_hardware("h100-sxm5-80gb").scale_up.bandwidth_bytes_per_s == 450e9   # 900 bidirectional
    assert load_hardware("h100-sxm5-80gb").scale_out.bandwidth_bytes_per_s == 50e9   # 400 Gb/s NIC
    assert load_hardware("gb200").scale_up.domain_size == 72
    assert load_hardware("tpu-v5e").scale_up.topology == "torus2d"


def test_no_device_constant_in_python():
    """Hardware is data: datasheet numbers like 312e12 or 2039 GB/s never appear in simulator/ code."""
    import re
    from pathlib import Path
    pkg = Path(__file__).resolve().parents[2] / "simulator"
    pattern = re.compile(r"\b(312e12|989e12|2039e9|85198045184|2\.039e12|3\.35e12)\b")
    offenders = [str(p) for p in pkg.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_derived_curves_are_reproducible(benchmark_script):
    """benchmarks/derive_hardware_curves.py --check: the YAML curves equal what the script derives."""
    assert benchmark_script("derive_hardware_curves").main(["--check"]) == 0
