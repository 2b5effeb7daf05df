"""Calibration records: one microbenchmark measurement, a device fingerprint, a run.

A run is what `capplan calibrate` stores (simulator/calibrate/store.py): the
fingerprint of the device it ran on, when, which backend, and every
measurement. Fitting (simulator/calibrate/fit.py) turns a run's measurements
into efficiency curves of a calibrated hardware profile.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.schema.base import Frozen

Backend = Literal["numpy", "cupy"]
Statistic = Literal["median", "min"]
# What a measurement characterises: `matmul` and `stream` feed the compute and memory
# curves; `norm`, `softmax`, `pooling`, `reduction` (and the GELU `elementwise` test) the
# vector-class curves and rate; launch sets launch_overhead_s; the others are reported.
MeasureClass = Literal["matmul", "stream", "elementwise", "reduction", "norm", "softmax",
                       "pooling", "launch", "transfer", "p2p", "collective"]


class Measurement(Frozen):
    """One timed microbenchmark at one size: the median of `repeats` samples."""

    test: str                              # gemm, copy, add, triad, exp, sum, launch, h2d, ...
    op_class: MeasureClass
    dtype: str
    shape: str                             # "m x n x k" for GEMMs, "n=..." for vectors
    flops: float = Field(ge=0)             # useful FLOPs of one call (0 for data movement)
    bytes: float = Field(ge=0)             # bytes moved by one call (STREAM counting)
    duration_s: float = Field(gt=0)        # median over repeats, per call
    min_s: float = Field(gt=0)
    max_s: float = Field(gt=0)
    repeats: int = Field(gt=0)
    inner: int = Field(default=1, gt=0)    # calls per timed sample (small ops are batched)
    gemm_m: int | None = None              # GEMM-like tests: the (m, n, k) of one GEMM and
    gemm_n: int | None = None              # how many of them one call runs (batched GEMM)
    gemm_k: int | None = None
    batch: int = Field(default=1, gt=0)

    def seconds(self, statistic: str = "median") -> float:
        """Per-call time by `statistic`: median (default) or min (least disturbed sample)."""
        return self.min_s if statistic == "min" else self.duration_s

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.duration_s

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.duration_s

    @property
    def size(self) -> float:
        """The efficiency-curve size axis: FLOPs for compute, bytes moved otherwise."""
        return self.flops if self.op_class == "matmul" else self.bytes


class Fingerprint(Frozen):
    """What identifies the device and software a run measured (all values are strings)."""

    backend: Backend
    device: str                            # e.g. "AMD EPYC (2 threads)", "NVIDIA H200"
    fields: dict[str, str] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "device": self.device, **self.fields}


class CalibrationRun(Frozen):
    """A stored calibration run; `complete` only once every measurement is written."""

    id: int | None = None
    backend: Backend
    started_at: str                        # ISO 8601 UTC
    finished_at: str | None = None
    quick: bool = False
    partial: bool = False                  # only some tests (--only): never used as the latest
    complete: bool = False
    capplan_version: str = ""
    fingerprint: Fingerprint
    measurements: list[Measurement] = Field(default_factory=list)
