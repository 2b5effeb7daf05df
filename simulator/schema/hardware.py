"""Hardware profile schema (DESIGN.md 3.4): one device per YAML file.

Human units are accepted in files ("80 GiB", "2039 GB/s", "312 TFLOPS",
"1.5 us") and parsed here into SI floats. Every number carries a source in
`sources`, keyed by the dotted field path (a test checks this).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator.schema.base import Bytes, BytesPerS, FlopsPerS, Frozen, Seconds, Watts

DType = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4"]
# Curve classes. Compute: matmul, conv, attention (size = FLOPs, fraction of the dtype's peak).
# memory: size = bytes moved, fraction of memory.bandwidth_bytes_per_s (the DRAM/HBM tier).
# Vector classes, keyed by the graph op kind they cost (calibrated profiles only so far):
# elementwise, norm, softmax, reduce, pooling: size = the op's FLOPs in the graph's convention,
# fraction of vector_flops_per_s[dtype]. cache: size = bytes, fraction of the memory bandwidth
# reached when the working set fits the last-level cache (recorded, not used by the cost model:
# an op-by-op model cannot know what is cache resident).
OpClass = Literal["matmul", "conv", "attention", "memory", "elementwise", "norm", "softmax",
                  "reduce", "pooling", "cache"]
# A calibrated curve may exceed 1 (a CPU cache outruns DRAM; a NumPy norm reaches more graph
# FLOPs per second than the GELU that sets the vector rate); datasheet curves stay in (0, 1].
MAX_CALIBRATED_FRACTION = 1000.0


class EfficiencyCurve(Frozen):
    """Achieved fraction of peak as a function of problem size.

    `size` is FLOPs per op for compute classes (matmul, conv, attention) and
    bytes moved for `memory`. Between points the fraction is interpolated
    linearly in log10(size); outside them it is clamped to the end points.

    Two optional refinements, written by `capplan calibrate` for a CPU and absent
    (defaults) in every datasheet profile:
    `index: intensity`: `size` is the op's arithmetic intensity instead, FLOPs per
    byte of its lowered-GEMM operands (a conv as its im2col GEMM, Chellapilla et al.
    2006): lowered GEMMs of one FLOP count but different shapes reach different
    fractions of peak, by operand reuse. `memory: serial`: the op's time is its
    compute time PLUS its memory time, not the larger of the two (a single CPU core
    packs GEMM operands from memory, then computes on the packed panels: Goto & van
    de Geijn 2008); `overlap` is the roofline max (GPUs overlap the two).
    """

    op_class: OpClass
    dtype: DType | Literal["any"] = "any"
    size: list[float] = Field(min_length=1)
    efficiency: list[float] = Field(min_length=1)
    origin: Literal["datasheet", "calibrated"] = "datasheet"
    source: str
    # Fixed per-call latency already folded into the curve, when known: the curve
    # then satisfies size / (peak * eff(size)) = size / (plateau * peak) + latency_s,
    # so a cost model that also adds launch_overhead_s counts that latency twice.
    latency_s: float | None = Field(default=None, ge=0)
    index: Literal["size", "intensity"] = "size"
    memory: Literal["overlap", "serial"] = "overlap"

    @model_validator(mode="after")
    def _check(self):
        if len(self.size) != len(self.efficiency):
            raise ValueError("size and efficiency must have the same number of points")
        if any(s <= 0 for s in self.size):
            raise ValueError("sizes must be positive")
        if any(b <= a for a, b in zip(self.size, self.size[1:])):
            raise ValueError("sizes must be strictly increasing")
        if self.origin == "datasheet" and any(not (0 < e <= 1.0) for e in self.efficiency):
            raise ValueError("efficiency must be in (0, 1] (a datasheet curve is a fraction of the peak)")
        if any(not (0 < e <= MAX_CALIBRATED_FRACTION) for e in self.efficiency):
            raise ValueError(f"efficiency must be in (0, {MAX_CALIBRATED_FRACTION:g}]")
        return self


class CollectiveCurve(Frozen):
    """Achieved bus bandwidth as a fraction of the tier's per-direction bandwidth vs message size.

    Datasheet curves are the bandwidth term of the alpha-beta model (DESIGN.md 4):
    the tier's per-step latency (`Link.latency_s`) was subtracted from each measured
    time, so ring all-reduce time 2(n-1)/n*S/(B*f(S)) + 2(n-1)*latency_s reproduces
    the measured nccl-tests time at every listed size (see simulator/hardware/derive.py).
    """

    message_bytes: list[float] = Field(min_length=1)
    bus_bw_fraction: list[float] = Field(min_length=1)
    source: str

    @model_validator(mode="after")
    def _check(self):
        if len(self.message_bytes) != len(self.bus_bw_fraction):
            raise ValueError("message_bytes and bus_bw_fraction must have the same number of points")
        if any(b <= a for a, b in zip(self.message_bytes, self.message_bytes[1:])):
            raise ValueError("message_bytes must be strictly increasing")
        if any(not (0 < f <= 2.0) for f in self.bus_bw_fraction):
            raise ValueError("bus_bw_fraction must be in (0, 2] (above 1 only with in-switch reduction)")
        return self


class Memory(Frozen):
    capacity_bytes: Bytes            # usable, not marketed
    bandwidth_bytes_per_s: BytesPerS
    l2_bytes: Bytes | None = None
    kind: str | None = None          # HBM3, GDDR6X, ...


class Link(Frozen):
    """One link tier: scale-up (NVLink/ICI inside a node or pod) or scale-out (network)."""

    kind: str
    bandwidth_bytes_per_s: BytesPerS     # per device, per direction
    latency_s: Seconds
    domain_size: int | None = Field(default=None, gt=0)   # devices reachable on this tier
    # switch: NVSwitch-like all-to-all; mesh: point-to-point full mesh (MI300X IF,
    # Gaudi RoCE); hybrid-cube-mesh: DGX-1 V100; torus: TPU ICI; pcie: host bus.
    topology: Literal["switch", "ring", "torus2d", "torus3d", "fat-tree", "pcie", "mesh",
                      "hybrid-cube-mesh"] = "switch"
    collective: CollectiveCurve | None = None


class Power(Frozen):
    """Board power. None where the vendor publishes none (TPU v5e/v5p/v6e): energy is then unknown."""

    # sanity bounds against unit slips (W for kW, a stray exponent): no single accelerator
    # board draws 100 kW or costs $100M (or $1M per hour); beyond them energy/cost overflow to inf
    tdp_w: Watts | None = Field(default=None, le=1e5)
    idle_w: Watts | None = Field(default=None, le=1e5)


class Price(Frozen):
    list_usd: float | None = Field(default=None, gt=0, le=1e8)
    list_date: str | None = None
    cloud_usd_per_hour: float | None = Field(default=None, gt=0, le=1e6)
    cloud_date: str | None = None


class Calibration(Frozen):
    """Present only in calibrated profiles: where the overlay came from."""

    date: str
    device: str
    fingerprint: dict[str, str] = Field(default_factory=dict)
    store_run_id: int | None = None


class HardwareProfile(Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    vendor: str
    kind: Literal["gpu", "tpu", "cpu", "accelerator"]
    architecture: str | None = None
    peak_flops_per_s: dict[DType, FlopsPerS]
    # Vector (non-tensor / SIMD / SIMT) arithmetic rate per dtype: what elementwise,
    # norm, softmax and reduction ops run at (NVIDIA "FP32" non-tensor, e.g. A100
    # 19.5 TFLOP/s; a CPU's measured NumPy ufunc rate). Optional: without it the
    # cost model bounds such ops by the fp32 peak (simulator/cost/compute.py).
    vector_flops_per_s: dict[DType, FlopsPerS] = Field(default_factory=dict)
    memory: Memory
    compute_units: int | None = Field(default=None, gt=0)   # SMs / cores / TensorCores
    launch_overhead_s: Seconds
    scale_up: Link | None = None
    scale_out: Link | None = None
    devices_per_node: int = Field(default=1, gt=0)
    power: Power = Power()
    price: Price = Price()
    efficiency: list[EfficiencyCurve] = Field(default_factory=list)
    provenance: Literal["datasheet", "calibrated"] = "datasheet"
    calibration: Calibration | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    notes: str | None = None

    @field_validator("peak_flops_per_s")
    @classmethod
    def _some_peak(cls, v):
        if not v:
            raise ValueError("at least one dtype peak is required")
        return v


class Cluster(Frozen):
    """A resolved cluster: one profile, device count, nodes and the two link tiers.

    Built by simulator.hardware.cluster.build_cluster from a scenario's cluster
    section (or a named cluster file). `scale_up_domain` is the number of devices
    one scale-up tier reaches (8 on an NVSwitch node, 72 on GB200 NVL72, a TPU
    slice on ICI), capped at `devices`.
    """

    name: str | None = None
    profile: HardwareProfile
    devices: int = Field(gt=0)
    devices_per_node: int = Field(gt=0)
    num_nodes: int = Field(gt=0)
    scale_up: Link | None = None
    scale_out: Link | None = None
    scale_up_domain: int = Field(gt=0)


class TierUse(Frozen):
    """Which link tier a collective group uses, and how it splits across tiers.

    `inner_size` group members share one scale-up domain; `outer_size` domains
    take part. A hierarchical collective runs over `inner_size` ranks on
    scale_up and `outer_size` ranks on scale_out (outer_size == 1: one tier).
    """

    tier: Literal["scale_up", "scale_out"]
    link: Link
    bandwidth_bytes_per_s: float
    latency_s: float
    collective: CollectiveCurve | None = None
    inner_size: int
    outer_size: int
    inner_link: Link | None = None
