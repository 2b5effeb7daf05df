"""Fit measurements into a profile's peaks, launch overhead and efficiency curves.

The cost model times one op as (DESIGN.md 4, simulator/cost/compute.op_time_s)
    t = max(flops / (peak * eff_c(flops)), bytes / (bw * eff_m(bytes)))
where a curve already embeds the per-call latency (EfficiencyCurve.latency_s;
the model adds launch_overhead_s only for ops without a curve), so a
measurement of duration t at size F gives the point
    eff(F) = F / (peak * wave * t)
(wave: the model's GEMM wave quantization, 1 on a CPU) and the fitted curve
reproduces the measurement under that same model; latency_s records the
measured launch overhead folded in. Points
closer than a factor 10**0.15 in size are merged (median), compute curves are
made non-decreasing in size (pool-adjacent-violators: a bigger GEMM never runs
at a lower fraction of peak in the model). Fractions are kept as measured,
above 1 too (a calibrated curve may beat the datasheet: such measurements are
flagged, not dropped). Residuals compare each measurement with the fitted
model.

Where peaks are measured (a CPU) the compute curves refine the plain roofline
(schema.hardware.EfficiencyCurve): GEMM and batched-GEMM curves are `memory:
serial` (one core packs operands from DRAM, then computes, Goto & van de Geijn
2008): t = F / (peak * eff(F)) + bytes / bw, so eff(F) = F / (peak * (t - bytes / bw));
the conv curve is indexed by the arithmetic intensity of its im2col GEMM
(compute.gemm_intensity), since convs of one FLOP count but different channel
counts run at very different rates. Memory and vector-class curves:
simulator/calibrate/fit_vector.py.

Peaks: on a CPU (and for a GPU without a datasheet profile) the reference is
measured: peak_flops_per_s[dtype] = best GEMM compute rate (with the operand
traffic removed on a CPU), bandwidth = best
large-array (working set >= 4x last-level cache) single-pass STREAM kernel,
vector_flops_per_s[dtype] = best rate of the GELU activation microbenchmark
(the rate memory-class ops are bounded by); the curves are then fractions of those. On a GPU with a datasheet profile the
curves are fractions of the datasheet peaks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.cost.compute import gemm_intensity, wave_efficiency
from simulator.hardware.curves import interpolate_log
from simulator.schema.calibration import Measurement
from simulator.schema.hardware import MAX_CALIBRATED_FRACTION, EfficiencyCurve, HardwareProfile

MERGE_DEX = 0.15          # points within 10**0.15 (x1.41) in size merge into one
MIN_EFF = 1e-4


@dataclass(frozen=True)
class Residual:
    curve: str            # "matmul/fp32", "memory/any", ...
    test: str
    dtype: str
    shape: str
    measured_s: float
    fitted_s: float

    @property
    def error(self) -> float:
        return self.fitted_s / self.measured_s - 1.0


@dataclass(frozen=True)
class FitResult:
    peak_flops_per_s: dict[str, float]
    bandwidth_bytes_per_s: float
    launch_overhead_s: float
    curves: list[EfficiencyCurve]
    residuals: list[Residual]
    flags: list[str]
    measured_peaks: bool
    sources: dict[str, str] = field(default_factory=dict)
    vector_flops_per_s: dict[str, float] = field(default_factory=dict)


def fit_run(measurements: list[Measurement], base: HardwareProfile, *, measured_peaks: bool,
            large_bytes: float, label: str, compute_units: int | None = None,
            statistic: str = "median") -> FitResult:
    """Turn one run's measurements into peaks, launch overhead and curves (see module doc).

    `statistic` picks each measurement's median (default) or minimum sample time;
    `compute_units` are the SMs of the profile the curves will live in: the cost
    model multiplies GEMM efficiency by wave quantization over them
    (simulator/cost/compute.py), so the fit divides it out of each point.
    """
    from simulator.calibrate.fit_vector import memory_curves, vector_class_curves
    u = compute_units
    if statistic == "min":   # refit on the least-disturbed samples (shared, noisy machines)
        measurements = [m.model_copy(update={"duration_s": m.min_s}) for m in measurements]
    launch = _launch(measurements, base)
    flags = _flags(measurements, base, large_bytes / 4.0)
    bw, sources = _bandwidth(measurements, base, measured_peaks, large_bytes, label)
    serial = bw if measured_peaks else None      # CPU: GEMM operand traffic adds to compute time
    peaks = _peaks(measurements, base, measured_peaks, label, serial, sources)
    vector = _vector_rates(measurements, measured_peaks, label, sources)
    curves, residuals = [], []

    def add(points, op_class, dtype, reference, source, units=None, serial_bw=None, intensity=False):
        """Fit one non-decreasing compute curve to `points`, keep it and its residuals."""
        model = CurveModel(reference, units, serial_bw, intensity)
        curve = _fit_curve(points, op_class, dtype, model, launch, source=source)
        curves.append(curve)
        residuals.extend(_residuals(points, curve, model))

    ref = _ref(measured_peaks)
    how = ", compute time after the operand traffic at the DRAM bandwidth (memory: serial)" if serial else ""
    for dtype in sorted({m.dtype for m in measurements if m.test == "gemm"}):
        if dtype not in peaks:
            continue
        add([m for m in measurements if m.test == "gemm" and m.dtype == dtype], "matmul", dtype,
            peaks[dtype], f"{label}: GEMM sweep, fraction of {ref} peak{how}", u, serial)
        conv = [m for m in measurements if m.test == "conv" and m.dtype == dtype]
        if conv:
            by = (" indexed by the arithmetic intensity of the im2col GEMM (FLOPs per operand byte)"
                  if measured_peaks else "")
            add(conv, "conv", dtype, peaks[dtype],
                f"{label}: convolution sweep (im2col + GEMM), fraction of {ref} GEMM peak{by}", u,
                intensity=measured_peaks)
    bmm = [m for m in measurements if m.test == "bmm"]
    if bmm and bmm[0].dtype in peaks:
        add(bmm, "attention", bmm[0].dtype, peaks[bmm[0].dtype],
            f"{label}: batched per-head GEMM sweep, fraction of {ref} peak{how}", u, serial)
    stream = [m for m in measurements if m.op_class == "stream"]
    if stream:
        got, res = memory_curves(stream, bw, launch, large_bytes / 4.0, label, ref)
        curves += got
        residuals += res
    got, res = vector_class_curves(measurements, vector, launch, label)
    curves += got
    residuals += res
    return FitResult(peaks, bw, launch, curves, residuals, flags, measured_peaks, sources, vector)


VECTOR_TESTS = ("gelu",)     # activation microbenchmarks that set vector_flops_per_s


def _vector_rates(measurements, measured: bool, label: str, sources: dict) -> dict[str, float]:
    """Vector rate per dtype: the best rate (graph FLOPs per second) of the activation
    microbenchmark over its sizes, where peaks are measured (a CPU: NumPy ufunc passes,
    1-3 GFLOP/s, far below the BLAS GEMM peak). With datasheet peaks (a GPU) the
    datasheet's vector rate stays: a GPU's activation kernel is memory bound, so its
    rate is not the vector ceiling."""
    if not measured:
        return {}
    out = {}
    for dtype in sorted({m.dtype for m in measurements if m.test in VECTOR_TESTS and m.flops > 0}):
        best = max((m for m in measurements if m.test in VECTOR_TESTS and m.dtype == dtype and m.flops > 0),
                   key=lambda m: m.flops_per_s)
        out[dtype] = best.flops_per_s
        sources[f"vector_flops_per_s.{dtype}"] = (
            f"{label}: best rate of the {best.test} activation microbenchmark (kernels.{best.test}; "
            f"FLOPs per element as simulator.graph.ops.PER_ELEMENT_FLOPS counts them) over its "
            f"sizes, at {best.shape}; bounds elementwise/norm/softmax/reduce ops in cost.compute")
    return out


def _ref(measured: bool) -> str:
    return "measured" if measured else "datasheet"


def _launch(measurements: list[Measurement], base: HardwareProfile) -> float:
    times = [m.duration_s for m in measurements if m.test == "launch"]
    return float(np.median(times)) if times else base.launch_overhead_s


def _bandwidth(measurements, base: HardwareProfile, measured: bool, large_bytes: float, label: str):
    """Memory bandwidth the memory curve is a fraction of (measured best, or the datasheet's)."""
    sources: dict[str, str] = {}
    stream = [m for m in measurements if m.op_class == "stream"]
    large = [m for m in stream if m.bytes >= large_bytes] or stream
    if measured and large:
        sources["memory.bandwidth_bytes_per_s"] = (
            f"{label}: best single-pass STREAM kernel (copy/add/scale; triad where fused) with a "
            f"working set >= {large_bytes / 2**20:.0f} MiB (4x last-level cache)")
        return max(m.bytes_per_s for m in large), sources
    return base.memory.bandwidth_bytes_per_s, sources


def _peaks(measurements, base: HardwareProfile, measured: bool, label: str, serial_bw: float | None,
           sources: dict) -> dict[str, float]:
    """Peaks the compute curves are fractions of: the best measured GEMM compute rate (after
    the operand traffic at `serial_bw`, where given), or the datasheet's."""
    peaks: dict[str, float] = {}
    for dtype in sorted({m.dtype for m in measurements if m.test == "gemm"}):
        gemms = [m for m in measurements if m.test == "gemm" and m.dtype == dtype]
        if measured or dtype not in base.peak_flops_per_s:
            peaks[dtype] = max(m.flops / compute_seconds(m, serial_bw) for m in gemms)
            sources[f"peak_flops_per_s.{dtype}"] = f"{label}: best measured GEMM rate" + (
                " with its operand traffic at the measured DRAM bandwidth taken out (memory: serial)"
                if serial_bw else "")
        else:
            peaks[dtype] = base.peak_flops_per_s[dtype]
    return peaks


def _flags(measurements: list[Measurement], base: HardwareProfile, cache_bytes: float) -> list[str]:
    """Measurements faster than the datasheet (or template) peak: a timing or datasheet error."""
    out = []
    for m in measurements:
        if m.op_class == "matmul" and m.dtype in base.peak_flops_per_s:
            peak = base.peak_flops_per_s[m.dtype]
            if m.flops_per_s > peak:
                out.append(f"{m.test} {m.dtype} {m.shape}: {m.flops_per_s / 1e12:.3g} TFLOP/s exceeds "
                           f"{base.name} peak {peak / 1e12:.3g} TFLOP/s")
        elif m.op_class == "stream" and m.bytes_per_s > base.memory.bandwidth_bytes_per_s:
            out.append(f"{m.test} {m.shape}: {m.bytes_per_s / 1e9:.3g} GB/s exceeds {base.name} memory "
                       f"bandwidth {base.memory.bandwidth_bytes_per_s / 1e9:.3g} GB/s"
                       + (" (working set fits in the last-level cache)" if m.bytes <= cache_bytes else ""))
    return out


def point_efficiency(size: float, duration_s: float, peak: float) -> float:
    """eff = size / (peak * t), kept within [MIN_EFF, MAX_CALIBRATED_FRACTION] (above 1 when
    the measurement beats the reference: real, flagged by _flags, not clamped away)."""
    return float(min(MAX_CALIBRATED_FRACTION, max(MIN_EFF, size / (peak * duration_s))))


def wave(m: Measurement, units: int | None) -> float:
    """The cost model's wave-quantization factor for a GEMM-like measurement (1 otherwise)."""
    if m.gemm_m is None or not units:
        return 1.0
    return float(wave_efficiency(m.gemm_m, m.gemm_n, m.batch, units))


SERIAL_FLOOR = 0.05     # compute keeps at least this share of a serial GEMM's measured time


def compute_seconds(m: Measurement, serial_bw: float | None) -> float:
    """The part of a measurement the compute curve explains: all of it, or (memory: serial)
    what is left after its operand bytes at the DRAM bandwidth."""
    if not serial_bw:
        return m.duration_s
    return max(m.duration_s - m.bytes / serial_bw, SERIAL_FLOOR * m.duration_s)


@dataclass(frozen=True)
class CurveModel:
    """How the cost model reads a compute curve: reference peak, SMs for wave quantization,
    serial operand traffic (bandwidth or None), and the curve's axis (FLOPs or intensity)."""

    peak: float
    units: int | None = None
    serial_bw: float | None = None
    intensity: bool = False

    def x(self, m: Measurement) -> float:
        if self.intensity and m.gemm_m is not None:
            return float(gemm_intensity((m.gemm_m, m.gemm_n, m.gemm_k), m.dtype))
        return m.size

    def efficiency(self, m: Measurement) -> float:
        return point_efficiency(m.flops, compute_seconds(m, self.serial_bw), self.peak * wave(m, self.units))

    def seconds(self, m: Measurement, eff: float) -> float:
        """The cost model's time for `m` at curve value `eff`."""
        t = m.flops / (self.peak * eff * wave(m, self.units))
        return t + (m.bytes / self.serial_bw if self.serial_bw else 0.0)


def _fit_curve(points: list[Measurement], op_class: str, dtype: str, model: CurveModel, launch: float,
               *, source: str) -> EfficiencyCurve:
    raw = sorted((model.x(m), model.efficiency(m)) for m in points)
    sizes, effs = merge_points([s for s, _ in raw], [e for _, e in raw])
    effs = [float(min(MAX_CALIBRATED_FRACTION, max(MIN_EFF, e))) for e in non_decreasing(effs)]
    return EfficiencyCurve(op_class=op_class, dtype=dtype, size=sizes, efficiency=effs,
                           origin="calibrated", source=source, latency_s=launch,
                           index="intensity" if model.intensity else "size",
                           memory="serial" if model.serial_bw else "overlap")


def merge_points(sizes: list[float], effs: list[float]) -> tuple[list[float], list[float]]:
    """Merge sorted points closer than MERGE_DEX in log10(size): geometric-mean size, median eff."""
    groups: list[list[int]] = []
    for i, s in enumerate(sizes):
        if groups and math.log10(s) - math.log10(sizes[groups[-1][0]]) < MERGE_DEX:
            groups[-1].append(i)
        else:
            groups.append([i])
    out_s = [float(10 ** np.mean([math.log10(sizes[i]) for i in g])) for g in groups]
    out_e = [float(np.median([effs[i] for i in g])) for g in groups]
    return out_s, out_e


def non_decreasing(values: list[float]) -> list[float]:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []     # [sum, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out += [s / c] * int(c)
    return out


def _residuals(points: list[Measurement], curve: EfficiencyCurve, model: CurveModel):
    out = []
    for m in points:
        eff = float(interpolate_log(curve.size, curve.efficiency, model.x(m)))
        out.append(Residual(f"{curve.op_class}/{curve.dtype}", m.test, m.dtype, m.shape,
                            m.duration_s, model.seconds(m, eff)))
    return out


def residual_summary(residuals: list[Residual]) -> dict[str, dict[str, float]]:
    """Per curve: points, median |error|, max |error| (fractions)."""
    out: dict[str, dict[str, float]] = {}
    for name in sorted({r.curve for r in residuals}):
        errs = np.abs([r.error for r in residuals if r.curve == name])
        out[name] = {"points": int(errs.size), "median_abs_error": float(np.median(errs)),
                     "max_abs_error": float(errs.max())}
    return out
