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
