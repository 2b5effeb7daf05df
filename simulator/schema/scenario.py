"""Scenario file schema (DESIGN.md 3.2), validated by pydantic, JSON Schema exported.

A scenario names a workload (model, batch, dtype...), a cluster (hardware and
device count), a parallel layout, optional costs, and for `capplan serve` and
`capplan plan` a serving section, a sweep, constraints and an objective.
Cross-field layout checks (tp*pp*dp*cp == devices, heads divisible by tp, ...)
need the model and live in `parallel/`, not here.
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from simulator.schema.base import Frozen

_NUMBERS = {int, float, type(None)}


def _numeric(annotation) -> bool:
    """int, float, or an optional one (`int | None`): fields a YAML true/false must not fill."""
    if annotation in (int, float):
        return True
    return get_origin(annotation) in (Union, types.UnionType) and set(get_args(annotation)) <= _NUMBERS \
        and bool(set(get_args(annotation)) & {int, float})


class Section(Frozen):
    """A scenario section: also refuses inf and nan (`tokens: inf` is a typo, not a plan),
    and true/false for a number (pydantic would read `tp: true` as tp = 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value, info: ValidationInfo):
        if isinstance(value, bool) and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"{str(value).lower()} is not a number")
        return value


DType = Literal["fp32", "tf32", "bf16", "fp16", "fp8"]
WeightDType = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
KVDType = Literal["fp32", "bf16", "fp16", "fp8", "int8"]


class Workload(Section):
    kind: Literal["training", "inference"] = "training"
    # bundled name | path to config.json / .onnx | inline HF-style mapping
    model: Union[str, dict[str, Any]]
    seq_len: int = Field(default=2048, gt=0)
    global_batch: int = Field(default=1, gt=0)      # sequences (or images) per optimizer step
    micro_batch: int = Field(default=1, gt=0)
    dtype: DType = "bf16"
    recompute: Literal["none", "selective", "full"] = "none"
    # training's attention core: unfused (default; Megatron-LM 2021, the validation runs) or flash
    # (FlashAttention: no s^2 scores in memory). Serving always costs attention as one fused kernel.
    attention: Literal["unfused", "flash"] | None = None
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    tokens: float | None = Field(default=None, gt=0)   # total training tokens -> time to train
    steps: int | None = Field(default=None, gt=0)      # or a number of optimizer steps
    dims: dict[str, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)  # ONNX symbolic dims, e.g. {batch: 8}
    model_options: dict[str, Any] = Field(default_factory=dict)  # e.g. {num_labels: 9, image_size: 150}
    # inference
    prompt_tokens: int | None = Field(default=None, gt=0)
    output_tokens: int | None = Field(default=None, gt=0)
    batch: int | None = Field(default=None, gt=0)
    kv_dtype: KVDType | None = None
    weight_dtype: WeightDType | None = None         # weight-only quantization (int8/int4) or fp8

    @model_validator(mode="after")
    def _attention_is_a_training_choice(self):
        if self.kind == "inference" and self.attention == "unfused":
            raise ValueError("attention: unfused is not modelled for inference: serving costs attention "
                             "as one fused kernel (FlashAttention/PagedAttention, as vLLM and TensorRT-LLM run it); "
                             "leave 'attention' out or write flash")
        return self

    @model_validator(mode="after")
    def _one_amount_of_work(self):
        if self.tokens is not None and self.steps is not None:   # steps won silently
            raise ValueError("give the amount of work once: 'tokens' (total training tokens) or "
                             "'steps' (optimizer steps), not both")
        return self


MAX_DEVICES = 10_000_000


class Cluster(Section):
    """`hardware` (a profile) or `name` (a named cluster file), or both when they agree.

    A named cluster (hardware_profiles/clusters/NAME.yaml, `capplan hardware clusters`)
    supplies the hardware, devices_per_node, link overrides and, when `devices` is not
    written, its device count.
    """

    hardware: str | None = Field(default=None, description=(
        "hardware profile name (`capplan hardware list`) or path to a profile YAML; "
        "may be left out when `name` is a named cluster, which then supplies it"))
    # at most ten million: beyond the largest clusters built, and where layout search stays seconds
    devices: int = Field(default=1, gt=0, le=MAX_DEVICES, description=(
        "devices used; default 1, or the named cluster's size when `name` is a named cluster"))
    devices_per_node: int | None = Field(default=None, gt=0, description=(
        "devices per node; default from the named cluster, else from the profile"))
    name: str | None = Field(default=None, description=(
        "a named cluster (`capplan hardware clusters`, e.g. dgx-a100-superpod) supplying hardware, "
        "devices_per_node and link overrides; any other name is a label and needs `hardware`"))

    @model_validator(mode="after")
    def _hardware_or_name(self):
        if self.hardware is None and self.name is None:
            raise ValueError("a cluster needs 'hardware' (a profile name or file, see `capplan hardware "
                             "list`) or 'name' (a named cluster, see `capplan hardware clusters`)")
        return self


class Parallelism(Section):
    tp: int = Field(default=1, gt=0)
    pp: int = Field(default=1, gt=0)
    dp: int | None = Field(default=None, gt=0)      # derived as devices / (tp*pp*cp) when absent
    cp: int = Field(default=1, gt=0)
    ep: int = Field(default=1, gt=0)
    sequence_parallel: bool = False
    schedule: Literal["gpipe", "1f1b", "interleaved"] = "1f1b"
    virtual_stages: int = Field(default=1, gt=0)
    # uneven pipeline (Megatron-LM --decoder-first/last-pipeline-num-layers; Llama 3 405B: 7, 8 x 14, 7):
    # layers of the first / last stage; the others split the rest evenly (checked in parallel/plan.py)
    first_stage_layers: int | None = Field(default=None, gt=0)
    last_stage_layers: int | None = Field(default=None, gt=0)
    # or Megatron-Core --account-for-embedding/loss-in-pipeline-split: the embedding (loss + head) counts
    # as one layer of the split, so the first (last) model chunk holds one layer fewer (Llama 3 405B
    # interleaved: 126 + 2 = 16 stages x 8 chunks x 1 layer, the edge chunks embedding or head only)
    embedding_as_layer: bool = False
    loss_as_layer: bool = False
    zero: int = Field(default=0, ge=0, le=3)
    # PyTorch DDP's default bucket (Megatron-LM: 40M elements). At least 1 MiB: the simulation
    # times every bucket's collective, and byte-sized buckets made a step millions of them
    grad_bucket_bytes: float = Field(default=25 * 2**20, ge=2**20)
    overlap_grad_reduce: bool = True
    # dtype of the gradient buffer that is accumulated over micro-batches and reduced over dp;
    # auto = Megatron-LM's rule: fp32 main_grad for bf16 (and fp8), the training dtype otherwise
    grad_reduce_dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"


class Costs(Section):
    # upper bounds only catch unit slips and stray exponents (1e308 made costs inf): no device
    # rents for $1M an hour or costs $100M, no data centre has a PUE of 10, no grid emits 10 kg/kWh
    usd_per_device_hour: float | None = Field(default=None, gt=0, le=1e6)
    purchase_usd_per_device: float | None = Field(default=None, gt=0, le=1e8)
    amortization_years: float = Field(default=4.0, gt=0, le=100)
    hosting_usd_per_device_hour: float = Field(default=0.0, ge=0, le=1e6)
    power_usage_effectiveness: float = Field(default=1.2, ge=1.0, le=10)
    usd_per_kwh: float = Field(default=0.10, ge=0, le=1e3)
    grid_kg_co2_per_kwh: float = Field(default=0.4, ge=0, le=10)
    utilization_power_fraction: float = Field(default=0.8, gt=0, le=1.0)  # average draw / TDP while busy


# tokens of one request at most: 100x the longest context windows (~10M tokens), and far
# inside int64, so sampled lengths stay exact (1e308 became a garbage integer)
MAX_REQUEST_TOKENS = 1e9
# lognormal shape at most: sigma 5 is a coefficient of variation of ~270,000 already; beyond
# it exp() of a sample overflows (sigma 1e308 crashed)
MAX_LOGNORMAL_SIGMA = 5.0


class LengthDist(Section):
    kind: Literal["fixed", "lognormal", "uniform", "exponential"] = "fixed"
    mean: float = Field(gt=0, le=MAX_REQUEST_TOKENS)
    sigma: float | None = Field(default=None, gt=0, le=MAX_LOGNORMAL_SIGMA)   # lognormal shape; default derived
    min: float | None = Field(default=None, gt=0, le=MAX_REQUEST_TOKENS)
    max: float | None = Field(default=None, gt=0, le=MAX_REQUEST_TOKENS)


class Arrivals(Section):
    kind: Literal["poisson", "gamma", "trace", "constant"] = "poisson"
    rate_per_s: float | None = Field(default=None, gt=0)
    # gamma: coefficient of variation, 0.001..100 (below, use kind constant; above, a handful of
    # bursts holds nearly every request; outside both the gamma shape 1/cv^2 overflowed)
    cv: float | None = Field(default=None, ge=1e-3, le=100.0)
    path: str | None = None                            # trace CSV: timestamp_s,prompt_tokens,output_tokens

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "trace" and not self.path:
            raise ValueError("a trace arrival process needs 'path'")
        if self.kind != "trace" and self.rate_per_s is None:
            raise ValueError(f"'{self.kind}' arrivals need 'rate_per_s' > 0")
        if self.kind == "gamma" and self.cv is None:
            raise ValueError("gamma arrivals need 'cv' (coefficient of variation) > 0")
        return self


class SchedulerSpec(Section):
    max_batch_tokens: int = Field(default=8192, gt=0)
    max_sequences: int = Field(default=256, gt=0)
    chunked_prefill: bool = True
    router: Literal["round_robin", "least_outstanding"] = "least_outstanding"


class SLO(Section):
    ttft_p99_s: float | None = Field(default=None, gt=0)
    tpot_p99_s: float | None = Field(default=None, gt=0)
    e2e_p99_s: float | None = Field(default=None, gt=0)


# a fixed token count per request: at least one token
TokenCount = Annotated[float, Field(ge=1, le=MAX_REQUEST_TOKENS)]


def _length_kind(value) -> str:
    """A mapping is a distribution, anything else a token count: only that member is tried, so the
    error names the distribution's own bad field. The tags read as pydantic's type tags, which
    errors.from_validation_error leaves out of the field path."""
    return "dict[LengthDist]" if isinstance(value, (dict, LengthDist)) else "float"


RequestLength = Annotated[Union[Annotated[TokenCount, Tag("float")], Annotated[LengthDist, Tag("dict[LengthDist]")]],
                          Discriminator(_length_kind)]
# generated requests (rate x duration) a scenario may ask for: a run of this many requests
# peaks at 3.4 GB and 20 CPU-minutes (benchmarks/bench_serving.py, 2026-12-01); beyond it a run
# exhausts memory instead of answering. The planner's capacity search simulates a shorter
# horizon; `capplan serve` itself stops at serving.limits.MAX_SERVED_REQUESTS (1M, ~1 minute).
MAX_GENERATED_REQUESTS = 20_000_000


class Serving(Section):
    replicas: int = Field(default=1, gt=0)
    arrivals: Arrivals
    prompt_tokens: RequestLength = 512
    output_tokens: RequestLength = 128
    duration_s: float = Field(default=600.0, gt=0)
    seed: int = Field(default=1, ge=0)
    scheduler: SchedulerSpec = SchedulerSpec()
    slo: SLO = SLO()

    @model_validator(mode="after")
    def _bounded(self):
        rate = self.arrivals.rate_per_s
        if self.arrivals.kind != "trace" and rate is not None and rate * self.duration_s > MAX_GENERATED_REQUESTS:
            raise ValueError(f"rate_per_s x duration_s = {rate * self.duration_s:.3g} requests is more than "
                             f"capplan generates (at most {MAX_GENERATED_REQUESTS:,}: shorten duration_s)")
        return self


class Constraints(Section):
    deadline_days: float | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0)
    fits_memory: bool = True
    power_cap_kw: float | None = Field(default=None, gt=0)
    max_devices: int | None = Field(default=None, gt=0)
    ttft_p99_s: float | None = Field(default=None, gt=0)
    tpot_p99_s: float | None = Field(default=None, gt=0)


Objective = Literal["cost_usd", "time_to_train_s", "energy_kwh", "step_time_s",
                    "usd_per_million_tokens", "devices", "co2_kg"]


class Scenario(Section):
    name: str = "scenario"
    description: str | None = None
    workload: Workload
    cluster: Cluster
    parallelism: Parallelism = Parallelism()
    costs: Costs = Costs()
    serving: Serving | None = None
    # dotted scenario path -> list of values, or 'parallelism: auto'
    sweep: dict[str, Union[list[Any], Literal["auto"]]] | None = None
    constraints: Constraints = Constraints()
    objective: Objective = "cost_usd"
    seed: int = Field(default=0, ge=0)
