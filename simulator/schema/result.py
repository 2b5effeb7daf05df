"""Training result (DESIGN.md 3.3): stable keys, SI units in the names.

Deterministic by construction: no timestamps or wall times; the same scenario
gives byte-identical JSON (`to_json`).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from simulator.schema.base import Frozen


class TrainingMemory(Frozen):
    weights_bytes_per_device: float
    gradients_bytes_per_device: float
    optimizer_bytes_per_device: float
    activations_bytes_per_device: float
    temporary_bytes_per_device: float = 0.0
    total_bytes_per_device: float
    capacity_bytes: float
    fits: bool
    worst_stage: int = 0


class TimeBreakdown(Frozen):
    compute_s: float
    exposed_comm_s: float
    pipeline_bubble_s: float
    optimizer_s: float


class Provenance(Frozen):
    profile: str
    profile_origin: Literal["datasheet", "calibrated"]
    model_source: str
    capplan_version: str
    engine: str = "simpy"


class StageSummary(Frozen):
    stage: int
    layers: int
    forward_s_per_microbatch: float
    backward_s_per_microbatch: float
    step_end_s: float
    memory_bytes: float


class TrainingResult(Frozen):
    kind: Literal["training"] = "training"
    name: str
    model: str
    hardware: str
    devices: int
    step_time_s: float
    tokens_per_step: float
    tokens_per_s: float
    tokens_per_s_per_device: float
    model_flops_per_step: float
    hardware_flops_per_step: float
    mfu: float
    hfu: float
    achieved_tflops_per_device: float
    memory: TrainingMemory
    breakdown: TimeBreakdown
    steps: float | None = None
    time_to_train_s: float | None = None
    device_hours: float | None = None
    cost_usd: float | None = None
    energy_kwh: float | None = None
    parallelism: dict[str, Any]
    stages: list[StageSummary] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    provenance: Provenance

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
