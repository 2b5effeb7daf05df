"""Fit the memory tiers and the vector-class curves of a calibration run (see fit.py).

Memory, in two tiers. STREAM kernels (McCalpin 1995) whose working set fits the
last-level cache run several times faster than DRAM on a CPU (this machine:
~70 GB/s in L2/L3 against ~18 GB/s from DRAM). The cost model times ops one
by one and cannot know what is cache resident; in a real forward pass a big
GEMM's weights sweep the cache between two memory-bound ops, so the `memory`
curve it uses is the DRAM tier: the measurements whose working set exceeds the
cache, and below them the measured call overhead plus streaming at the
smallest DRAM point's rate, t(B) = t0 + B * (t1 - t0) / B1. The in-cache
measurements are kept, not clamped: they form the `cache` curve (fraction of
the DRAM bandwidth, above 1), flagged by fit._flags where they beat the
datasheet, with their own residuals. Without any beyond-cache measurement (a
tiny smoke sweep) one curve is fitted over every point, capped at 1.

Vector classes: each memory-class op kind with a microbenchmark of its own
(norm: kernels.layernorm, softmax: kernels.softmax, pooling: kernels.pool2d
max 2x2 and global average pooling, reduce: sum) gets a curve of graph FLOPs
(simulator.graph.ops conventions) per second as a fraction of the vector rate
(the GELU test), so cost.compute times it at its own rate; elementwise ops keep
the vector rate itself. Only where peaks are measured (a CPU): on a GPU these
kernels are memory bound and the datasheet vector rate stays.
"""
from __future__ import annotations

from simulator.calibrate.fit import MIN_EFF, Residual, merge_points
from simulator.hardware.curves import interpolate_log
from simulator.schema.calibration import Measurement
from simulator.schema.hardware import MAX_CALIBRATED_FRACTION, EfficiencyCurve

# microbenchmark -> the graph op kind (curve class) it measures
VECTOR_CLASS_TESTS = {"layernorm": "norm", "softmax": "softmax", "maxpool": "pooling", "gap": "pooling",
                      "sum": "reduce"}


def _clip(e: float, top: float = MAX_CALIBRATED_FRACTION) -> float:
    return float(min(top, max(MIN_EFF, e)))


def _merged(points: list[tuple[float, float]], top: float = MAX_CALIBRATED_FRACTION):
    points = sorted(points)
    sizes, effs = merge_points([s for s, _ in points], [e for _, e in points])
    return sizes, [_clip(e, top) for e in effs]


def _bytes_residuals(points: list[Measurement], curve: EfficiencyCurve, bw: float) -> list[Residual]:
    return [Residual(f"{curve.op_class}/{curve.dtype}", m.test, m.dtype, m.shape, m.duration_s,
                     m.bytes / (bw * float(interpolate_log(curve.size, curve.efficiency, m.bytes))))
            for m in points]


def memory_curves(stream: list[Measurement], bw: float, launch: float, cache_bytes: float, label: str,
                  ref: str) -> tuple[list[EfficiencyCurve], list[Residual]]:
    """The DRAM-tier `memory` curve and the in-cache `cache` curve (module doc), with residuals."""
    kernels = "copy/add/scale" + ("/triad" if any(m.test == "triad" for m in stream) else "")
    what = f"{label}: single-pass STREAM kernels ({kernels}), fraction of {ref} bandwidth"
    dram = [m for m in stream if m.bytes > cache_bytes]
    cached = [m for m in stream if m.bytes <= cache_bytes]
    if not dram or not cached:
        sizes, effs = _merged([(m.bytes, m.bytes / (bw * m.duration_s)) for m in stream], top=1.0)
        curve = EfficiencyCurve(op_class="memory", dtype="any", size=sizes, efficiency=effs,
                                origin="calibrated", source=what, latency_s=launch)
        return [curve], _bytes_residuals(stream, curve, bw)
    sizes, effs = _merged([(m.bytes, m.bytes / (bw * m.duration_s)) for m in dram])
    t1 = sizes[0] / (bw * effs[0])
    per_byte = (t1 - launch) / sizes[0] if t1 > launch else t1 / sizes[0]
    small = sorted({s for s in merge_points(sorted(m.bytes for m in cached), [1.0] * len(cached))[0]
                    if s < sizes[0]})
    memory = EfficiencyCurve(
        op_class="memory", dtype="any", size=small + sizes, origin="calibrated", latency_s=launch,
        efficiency=[_clip(b / (bw * (launch + per_byte * b))) for b in small] + effs,
        source=(f"{what}, DRAM tier: working sets above the {cache_bytes / 2**20:.0f} MiB last-level "
                f"cache; below {sizes[0] / 2**20:.1f} MiB the measured call overhead plus streaming at "
                f"that rate (in-cache measurements: the cache curve)"))
    csizes, ceffs = _merged([(m.bytes, m.bytes / (bw * m.duration_s)) for m in cached])
    cache = EfficiencyCurve(
        op_class="cache", dtype="any", size=csizes, efficiency=ceffs, origin="calibrated", latency_s=launch,
        source=(f"{what}, working sets within the {cache_bytes / 2**20:.0f} MiB last-level cache "
                f"(above 1: the cache outruns DRAM); recorded, not used by the op-by-op cost model"))
    return [memory, cache], _bytes_residuals(dram, memory, bw) + _bytes_residuals(cached, cache, bw)


def vector_class_curves(measurements: list[Measurement], vector: dict[str, float], launch: float,
                        label: str) -> tuple[list[EfficiencyCurve], list[Residual]]:
    """One curve per (op kind, dtype) with a microbenchmark: graph FLOPs / (vector rate * t)."""
    curves, residuals = [], []
    for op_class in sorted(set(VECTOR_CLASS_TESTS.values())):
        points = [m for m in measurements if VECTOR_CLASS_TESTS.get(m.test) == op_class and m.flops > 0]
        for dtype in sorted({m.dtype for m in points}):
            rate = vector.get(dtype) or vector.get("fp32")
            mine = [m for m in points if m.dtype == dtype]
            if not rate:
                continue
            sizes, effs = _merged([(m.flops, m.flops / (rate * m.duration_s)) for m in mine])
            tests = "/".join(sorted({m.test for m in mine}))
            curve = EfficiencyCurve(
                op_class=op_class, dtype=dtype, size=sizes, efficiency=effs, origin="calibrated",
                latency_s=launch,
                source=(f"{label}: {tests} microbenchmark (graph FLOPs per second), fraction of the "
                        f"measured vector rate vector_flops_per_s.{dtype}; times {op_class} ops in cost.compute"))
            curves.append(curve)
            residuals += [Residual(f"{op_class}/{dtype}", m.test, m.dtype, m.shape, m.duration_s,
                                   m.flops / (rate * float(interpolate_log(sizes, effs, m.flops))))
                          for m in mine]
    return curves, residuals
