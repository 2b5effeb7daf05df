"""Calibrated profile: the datasheet (or template) profile overlaid with a run's fit.

The result is a complete hardware profile YAML (provenance: calibrated, with
`calibration.date`, `calibration.device`, the fingerprint and the store run
id), so it loads with `load_hardware(path)` and works as `cluster.hardware:
FILE` in any scenario. Measured fields replace the base profile's; every
replaced field gets a source naming the run.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from simulator.calibrate.fit import FitResult
from simulator.errors import InputError
from simulator.schema.calibration import CalibrationRun, Fingerprint
from simulator.schema.hardware import Calibration, HardwareProfile

CPU_TEMPLATE = "cpu-generic"


def base_profile_name(fingerprint: Fingerprint, known: list[str]) -> str:
    """The bundled profile a run overlays: cpu-generic for NumPy, the matching GPU otherwise."""
    if fingerprint.backend == "numpy":
        return CPU_TEMPLATE
    match = match_gpu_profile(fingerprint.device, known,
                              float(fingerprint.fields.get("memory_total_bytes", "0") or 0))
    return match or CPU_TEMPLATE


def match_gpu_profile(device: str, known: list[str], memory_bytes: float = 0.0) -> str | None:
    """Profile whose name tokens best match a CUDA device name ("NVIDIA H200" -> h200-sxm-141gb).

    The first name token (the model, e.g. h200, a100) must appear in the device
    name; more matching tokens win; a "pcie" profile only matches a PCIe name;
    ties go to the closest memory size in GB when the name states one.
    """
    tokens = set(re.findall(r"[a-z0-9]+", device.lower()))
    best, best_score = None, 0.0
    for name in known:
        parts = name.split("-")
        if parts[0] not in tokens or ("pcie" in parts) != ("pcie" in tokens):
            continue
        score = sum(p in tokens for p in parts) * 10.0
        gb = [int(p[:-2]) for p in parts if re.fullmatch(r"\d+gb", p)]
        if gb and memory_bytes > 0:
            score -= abs(gb[0] - memory_bytes / 1e9) / 100.0
        if score > best_score:
            best, best_score = name, score
    return best


def calibrated_profile(base: HardwareProfile, fit: FitResult, run: CalibrationRun) -> HardwareProfile:
    """Overlay `fit` (from `run`) on `base` and return the calibrated profile."""
    fp = run.fingerprint
    label = f"capplan calibrate run {run.id} ({run.finished_at or run.started_at}, {fp.device})"
    data = base.model_dump()
    sources = dict(base.sources)
    if fit.measured_peaks:
        for key in [k for k in sources if k.startswith("peak_flops_per_s.") or k.startswith("efficiency.")]:
            del sources[key]
        data["peak_flops_per_s"] = dict(fit.peak_flops_per_s)
        data["efficiency"] = []
    else:
        data["peak_flops_per_s"] = {**base.peak_flops_per_s, **fit.peak_flops_per_s}
    measured = {(c.op_class, c.dtype) for c in fit.curves}
    data["efficiency"] = [c for c in data["efficiency"] if (c["op_class"], c["dtype"]) not in measured]
    data["efficiency"] += [c.model_dump() for c in fit.curves]
    for c in fit.curves:
        sources[f"efficiency.{c.op_class}.{c.dtype}"] = c.source
    data["vector_flops_per_s"] = {**base.vector_flops_per_s, **fit.vector_flops_per_s}
    data["memory"]["bandwidth_bytes_per_s"] = fit.bandwidth_bytes_per_s
    data["launch_overhead_s"] = fit.launch_overhead_s
    sources["launch_overhead_s"] = f"{label}: median time of one tiny call/kernel"
    sources.update(fit.sources)
    if fp.backend == "numpy":
        _cpu_fields(data, sources, fp, label)
    data.update(
        name=_name(base.name), provenance="calibrated", sources=sources,
        calibration=Calibration(date=run.finished_at or run.started_at, device=fp.device,
                                fingerprint=fp.as_dict(), store_run_id=run.id).model_dump(),
        notes=_notes(base, fit, label))
    return HardwareProfile.model_validate(data)


def _cpu_fields(data: dict, sources: dict, fp: Fingerprint, label: str) -> None:
    """Facts of this CPU from the fingerprint; no GPU-style wave quantization on a CPU."""
    data["vendor"] = fp.fields.get("cpu_model", data["vendor"]).split()[0]
    data["architecture"] = fp.fields.get("cpu_model", data.get("architecture"))
    data["compute_units"] = None
    data["memory"]["kind"] = None                       # the template's guess, not measured
    sources.pop("memory.kind", None)
    mem = fp.fields.get("memory_total_bytes")
    if mem and float(mem) > 0:
        data["memory"]["capacity_bytes"] = float(mem)
        sources["memory.capacity_bytes"] = f"{label}: physical memory of this machine (sysconf)"
    l2 = fp.fields.get("cache_L2_bytes")
    if l2:
        data["memory"]["l2_bytes"] = float(l2)
        sources["memory.l2_bytes"] = f"{label}: L2 cache size from sysfs"
    sources.pop("compute_units", None)


def _name(base: str) -> str:
    return base if base.endswith("-calibrated") else f"{base}-calibrated"


def _notes(base: HardwareProfile, fit: FitResult, label: str) -> str:
    how = ("peaks and bandwidth are this machine's measured best (GEMM rate; large-array STREAM), "
           "curves are fractions of them" if fit.measured_peaks else
           "curves are fractions of the datasheet peaks and bandwidth")
    return f"Calibrated overlay of {base.name} by {label}: {how}. Base notes: {base.notes or '-'}"


def write_profile(profile: HardwareProfile, path: str | Path) -> Path:
    """Write the profile as YAML (SI floats), atomically (temporary file + rename)."""
    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory", source=str(p), field="--export", expected="a file path")
    text = ("# Calibrated hardware profile written by `capplan calibrate --export`.\n"
            "# Usable as `cluster.hardware: <this file>` in a scenario.\n"
            + yaml.safe_dump(profile.model_dump(mode="json", exclude_none=True), sort_keys=False))
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the calibrated profile: {exc}", source=str(p), field="--export") from None
    return p
