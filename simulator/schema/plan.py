"""Planner output schema: one `Candidate` row per evaluated configuration, one `PlanReport`.

A candidate is flat on purpose (one CSV row each): the swept values, the
resolved layout, the timing and memory of the tier that evaluated it
(`tier`: analytic closed forms or the full simulation), the TCO numbers and
which constraints it violates. `PlanReport` carries the keys of DESIGN.md 3.3
for `plan --json` plus everything the renderers need. Every evaluated candidate
is kept in `table` (columns, for candidates.csv / candidates.json); only the
rows worth reading (best, Pareto front, nearest, best per hardware x devices)
are full `Candidate` models in `candidates`. It never holds a
timestamp, so the same inputs give the same report under every executor.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from simulator.schema.base import Frozen


class Candidate(Frozen):
    id: int
    kind: Literal["training", "serving"] = "training"
    tier: Literal["analytic", "simulated", "capacity"] = "analytic"
    hardware: str
    devices: int
    overrides: dict[str, Any] = Field(default_factory=dict)   # non-layout sweep values
    # layout (training) / replicas (serving)
    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    micro_batch: int = 1
    recompute: str = "none"
    zero: int = 0
    schedule: str = "1f1b"
    virtual_stages: int = 1
    sequence_parallel: bool = False
    replicas: int | None = None
    # timing
    step_time_s: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None
    compute_s: float | None = None
    exposed_comm_s: float | None = None
    pipeline_bubble_s: float | None = None
    optimizer_s: float | None = None
    time_to_train_s: float | None = None
    # serving
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    output_tokens_per_s: float | None = None
    # memory
    memory_bytes_per_device: float | None = None
    capacity_bytes: float | None = None
    fits: bool = True
    # TCO
    device_hours: float | None = None
    cost_usd: float | None = None
    energy_kwh: float | None = None
    co2_kg: float | None = None
    power_kw: float | None = None
    usd_per_million_tokens: float | None = None
    price_source: str | None = None
    # verdict
    feasible: bool = True
    violations: list[str] = Field(default_factory=list)
    note: str | None = None


class PriceLine(Frozen):
    """One price or factor used by the TCO model, with where it came from."""

    hardware: str | None = None
    item: str
    value: float
    unit: str
    source: str


class PlanReport(Frozen):
    name: str
    kind: Literal["training", "serving"] = "training"
    objective: str
    candidates_evaluated: int
    candidates_feasible: int
    wall_s: float = 0.0                       # stripped from golden files
    executor: str = "local"
    best: dict[str, Any] | None = None        # a result (DESIGN.md 3.3) of the best feasible candidate
    best_candidate: Candidate | None = None
    pareto: list[dict[str, Any]] = Field(default_factory=list)   # results on the cost/time front
    pareto_candidates: list[Candidate] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)    # listed rows (best, front, per group), id order
    table: dict[str, list[Any]] = Field(default_factory=dict)   # every candidate evaluated, as columns
    constraints: dict[str, Any] = Field(default_factory=dict)
    infeasible_reason: str | None = None      # set when nothing meets the constraints
    nearest: list[Candidate] = Field(default_factory=list)       # closest candidates then
    prices: list[PriceLine] = Field(default_factory=list)
    tier_agreement: dict[str, float] = Field(default_factory=dict)   # analytic vs simulated
    report: dict[str, str] = Field(default_factory=dict)             # paths written
    notes: list[str] = Field(default_factory=list)
