"""Result schemas for inference (one batch through prefill and decode) and serving.

Keys follow DESIGN.md 3.3: SI units in the names. `InferenceResult` is what
`capplan simulate` prints for `workload.kind: inference`; `ServingResult` is
what `capplan serve` prints. Both dump to JSON with `model_dump(mode="json")`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.schema.base import Frozen


class InferenceMemory(Frozen):
    weights_bytes_per_device: float
    kv_cache_bytes_per_device: float
    activations_bytes_per_device: float
    total_bytes_per_device: float
    capacity_bytes: float
    fits: bool
    kv_bytes_per_token: float                 # whole model, all layers, K and V
    kv_bytes_per_token_per_device: float
    max_batch_that_fits: int                  # sequences of prompt+output tokens; 0 = weights alone do not fit
    kv_capacity_tokens_per_device: int        # tokens of KV that fit beside the weights


class InferenceBreakdown(Frozen):
    prefill_compute_s: float                  # matmuls + attention of the prompt
    prefill_comm_s: float                     # tensor/pipeline parallel communication in prefill
    decode_weights_s_per_token: float         # linear layers per decode step (weight reads dominate)
    decode_attention_s_per_token: float       # attention over the KV cache per decode step
    decode_comm_s_per_token: float
    decode_bound: Literal["memory", "compute", "none"]


class InferenceProvenance(Frozen):
    hardware: str
    hardware_provenance: str
    model: str
    capplan_version: str


class InferenceResult(Frozen):
    kind: Literal["inference"] = "inference"
    name: str
    model: str
    hardware: str
    devices: int
    parallelism: dict[str, int]               # tp, pp
    batch: int
    prompt_tokens: int
    output_tokens: int                        # 0 for encoder-only models (one forward, no decode)
    dtype: str
    weight_dtype: str
    kv_dtype: str
    encoder_only: bool
    prefill_s: float                          # time to first token of the batch
    decode_s_per_token: float                 # mean time of one decode step (one token per sequence)
    latency_s: float                          # prefill + all decode steps
    tokens_per_s: float                       # output tokens/s (prompt tokens/s for encoder-only)
    requests_per_s: float                     # batch / latency
    params: int
    memory: InferenceMemory
    breakdown: InferenceBreakdown
    provenance: InferenceProvenance


class Percentiles(Frozen):
    p50: float
    p90: float
    p99: float
    mean: float
    max: float
    count: int


class SLOCheck(Frozen):
    metric: str                               # ttft_p99_s, tpot_p99_s, e2e_p99_s
    target_s: float
    achieved_s: float
    met: bool


class QueueSamples(Frozen):
    t_s: list[float]
    waiting: list[int]                        # requests queued (all replicas)
    running: list[int]                        # sequences in a batch (all replicas)


class ServingCounts(Frozen):
    arrived: int
    completed: int
    in_flight: int                            # arrived, not completed at the end of the simulation
    rejected: int                             # prompt+output could never fit the KV cache
    preemptions: int
    iterations: int


class ServingResult(Frozen):
    kind: Literal["serving"] = "serving"
    name: str
    model: str
    hardware: str
    replicas: int
    devices_per_replica: int
    parallelism: dict[str, int]
    duration_s: float
    seed: int
    arrivals: str
    offered_rate_per_s: float
    ttft_s: Percentiles
    tpot_s: Percentiles
    e2e_s: Percentiles
    queue_wait_s: Percentiles                 # arrival -> first scheduled
    throughput_requests_per_s: float
    output_tokens_per_s: float
    slo_attained: bool                        # every stated SLO met and no request rejected (True when none stated)
    slo: list[SLOCheck]
    goodput_requests_per_s: float             # completed requests meeting every per-request SLO
    goodput_fraction: float
    queue: QueueSamples
    counts: ServingCounts
    kv_capacity_tokens_per_replica: int
    mean_batch_sequences: float
    mean_batch_tokens: float
    busy_fraction: float                      # time replicas spent running iterations
    usd_per_hour: float | None = None
    usd_per_million_output_tokens: float | None = None
    events: int = Field(default=0, ge=0)      # simulation events processed


class CapacityRow(Frozen):
    """One (hardware, tp) option of a serving capacity search: the fewest replicas meeting the SLOs."""

    hardware: str
    tp: int
    pp: int = 1
    feasible: bool
    best_for_hardware: bool = False           # the cheapest feasible layout of this hardware
    replicas: int | None = None
    devices: int | None = None
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    e2e_p99_s: float | None = None
    throughput_requests_per_s: float | None = None
    output_tokens_per_s: float | None = None
    goodput_fraction: float | None = None
    usd_per_hour: float | None = None
    usd_per_million_output_tokens: float | None = None
    kv_capacity_tokens_per_replica: int | None = None
    simulations: int = 0                      # serving simulations run for this row
    horizon_s: float | None = None            # simulated seconds behind the numbers (full duration when confirmed)
    confirmed: bool = False                   # re-run over the scenario's full duration
    reason: str | None = None                 # why infeasible
    best_achievable: dict[str, float] | None = None   # idle-replica p99 latencies, when an SLO is unreachable
    result: ServingResult | None = None       # the confirming simulation of the chosen replica count
