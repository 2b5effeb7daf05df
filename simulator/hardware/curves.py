"""Evaluate a profile's efficiency curves (achieved fraction of peak vs problem size).

Curves are looked up by (op_class, dtype) with a fallback to dtype "any";
values are interpolated linearly in log10(size) and clamped at the ends.
Works on scalars and NumPy arrays alike (the analytic planner passes arrays).
"""
from __future__ import annotations

import numpy as np

from simulator.schema.hardware import CollectiveCurve, EfficiencyCurve, HardwareProfile


def find_curve(profile: HardwareProfile, op_class: str, dtype: str) -> EfficiencyCurve | None:
    """The most specific curve for op_class and dtype, or None when the profile has none."""
    fallback = None
    for curve in profile.efficiency:
        if curve.op_class != op_class:
            continue
        if curve.dtype == dtype:
            return curve
        if curve.dtype == "any" and fallback is None:
            fallback = curve
    return fallback


def interpolate_log(sizes, fractions, x):
    """Piecewise-linear interpolation in log10(x), clamped at the end points."""
    xs = np.log10(np.asarray(sizes, dtype=float))
    ys = np.asarray(fractions, dtype=float)
    return np.interp(np.log10(np.maximum(np.asarray(x, dtype=float), 1e-30)), xs, ys)


def efficiency(profile: HardwareProfile, op_class: str, dtype: str, size, default: float = 1.0):
    """Achieved fraction of peak for ops of `op_class`/`dtype` at `size` (FLOPs or bytes)."""
    curve = find_curve(profile, op_class, dtype)
    if curve is None:
        return np.full_like(np.asarray(size, dtype=float), default) if np.ndim(size) else default
    out = interpolate_log(curve.size, curve.efficiency, size)
    return out if np.ndim(size) else float(out)


def collective_fraction(curve: CollectiveCurve | None, message_bytes, default: float = 1.0):
    """Achieved bus-bandwidth fraction of a link tier for a message size."""
    if curve is None:
        return np.full_like(np.asarray(message_bytes, dtype=float), default) if np.ndim(message_bytes) else default
    out = interpolate_log(curve.message_bytes, curve.bus_bw_fraction, message_bytes)
    return out if np.ndim(message_bytes) else float(out)
