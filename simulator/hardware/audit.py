"""Checks on a profile's provenance: every explicitly written number needs a `sources` entry."""
from __future__ import annotations

from pydantic import BaseModel

from simulator.schema.hardware import CollectiveCurve, EfficiencyCurve, HardwareProfile

_SKIP = {"sources", "efficiency", "calibration", "collective"}


def _numeric_paths(model: BaseModel, prefix: str = ""):
    for field in sorted(model.model_fields_set):
        if not prefix and field in _SKIP or field == "collective":
            continue
        value = getattr(model, field)
        path = f"{prefix}{field}"
        if isinstance(value, BaseModel):
            yield from _numeric_paths(value, path + ".")
        elif isinstance(value, dict):
            for key, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    yield f"{path}.{key}"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path


def missing_sources(profile: HardwareProfile) -> list[str]:
    """Dotted paths of numbers written in the profile without a `sources` entry.

    Efficiency and collective curves carry their own `source` (an empty one is
    reported as `efficiency.<op_class>.<dtype>` or `<tier>.collective`).
    """
    missing = [p for p in _numeric_paths(profile) if p not in profile.sources]
    for curve in profile.efficiency:
        if not _has_source(curve) and f"efficiency.{curve.op_class}.{curve.dtype}" not in profile.sources:
            missing.append(f"efficiency.{curve.op_class}.{curve.dtype}")
    for tier in ("scale_up", "scale_out"):
        link = getattr(profile, tier)
        if link is not None and link.collective is not None and not _has_source(link.collective):
            missing.append(f"{tier}.collective")
    return missing


def _has_source(curve: EfficiencyCurve | CollectiveCurve) -> bool:
    return bool(curve.source and curve.source.strip())
