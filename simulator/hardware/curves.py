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
    """Piecewise power-law interpolation: log(fraction) linear in log(size), clamped at the ends.

    Interpolating in log-log space keeps time = size / (peak * fraction)
    non-decreasing in size between points whenever the points themselves are
    (local slope <= 1), and it is exact for the latency-bound regime
    fraction ~ size of the launch-floor curves c / (1 + c * peak * t0 / size).
    Linear interpolation of the fraction itself overstates it between points
    and can make a larger op cheaper than a smaller one.
    """
    xs = np.log(np.asarray(sizes, dtype=float))
    ys = np.log(np.asarray(fractions, dtype=float))
    return np.exp(np.interp(np.log(np.maximum(np.asarray(x, dtype=float), 1e-30)), xs, ys))


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
