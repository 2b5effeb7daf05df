"""Derive datasheet efficiency and collective curves from published ceilings (pure functions).

The bundled profiles' `efficiency:` curves and link `collective:` curves are
written into the YAML files as data; benchmarks/derive_hardware_curves.py calls
these functions to (re)generate them from /work/shared/reference numbers, so
every point is reproducible from a cited measurement.

Compute and memory curves (one fixed per-call latency t0 on top of a plateau):
    time(F) = F / (c * peak) + t0   =>   eff(F) = c / (1 + c * peak * t0 / F)
with c the best published achievable fraction (e.g. MAMF matmul, BabelStream
Triad) and t0 the kernel launch/latency floor. This is the roofline with a
fixed overhead (Williams et al., CACM 2009; overhead term as in Hockney's
r_inf / n_1/2 model, "The science of computer benchmarking", 1996).

Collective curves (alpha-beta, Hockney 1994; ring all-reduce of Patarasuk &
Yuan 2009 as used by NCCL): measured nccl-tests time t(S) of an n-rank ring
all-reduce is split into a per-step latency alpha (fitted as the intercept of
the smallest messages) and a bandwidth term whose achieved fraction is
    f(S) = (2(n-1)/n * S / B) / (t(S) - 2(n-1) * alpha),
so the cost model's 2(n-1)/n*S/(B*f(S)) + 2(n-1)*alpha reproduces t(S).
"""
from __future__ import annotations

import numpy as np


def log_sizes(lo: float, hi: float, count: int) -> list[float]:
    """`count` sizes evenly spaced in log10 between lo and hi (inclusive)."""
    lo, hi = float(lo), float(hi)
    return [float(f"{x:.3g}") for x in np.logspace(np.log10(lo), np.log10(hi), int(count))]


def latency_falloff(plateau: float, peak_per_s: float, t0_s: float, sizes) -> list[float]:
    """eff(F) = c / (1 + c*peak*t0/F): achieved fraction with a fixed per-call latency t0."""
    if not 0 < plateau <= 1:
        raise ValueError(f"plateau must be in (0, 1], got {plateau}")
    f = np.asarray(sizes, dtype=float)
    eff = plateau / (1.0 + plateau * peak_per_s * t0_s / f)
    return [max(float(f"{e:.4g}"), 1e-6) for e in eff]


def busbw_to_time_s(size_bytes, busbw_bytes_per_s, n: int):
    """nccl-tests convention: all-reduce busbw = algbw * 2(n-1)/n, algbw = S / t."""
    s = np.asarray(size_bytes, dtype=float)
    return s * (2.0 * (n - 1) / n) / np.asarray(busbw_bytes_per_s, dtype=float)


def ring_alpha_s(size_bytes, time_s, n: int, points: int = 3) -> float:
    """Per-step latency of a ring all-reduce: intercept of a line through the smallest
    `points` messages, divided by the 2(n-1) steps of the ring."""
    order = np.argsort(np.asarray(size_bytes, dtype=float))[:points]
    s = np.asarray(size_bytes, dtype=float)[order]
    t = np.asarray(time_s, dtype=float)[order]
    slope, intercept = np.polyfit(s, t, 1) if len(s) > 1 else (0.0, float(t[0]))
    intercept = min(max(float(intercept), 0.0), float(t.min()) * 0.999)
    return intercept / (2.0 * (n - 1))


def bandwidth_fractions(size_bytes, time_s, n: int, link_bytes_per_s: float,
                        alpha_s: float, cap: float = 2.0) -> list[float]:
    """Achieved bus-bandwidth fraction of the link once the alpha term is removed."""
    s = np.asarray(size_bytes, dtype=float)
    t = np.asarray(time_s, dtype=float)
    bw_time = 2.0 * (n - 1) / n * s / link_bytes_per_s
    rest = np.maximum(t - 2.0 * (n - 1) * alpha_s, 1e-12)
    frac = np.minimum(bw_time / rest, cap)
    return [max(float(f"{x:.4g}"), 1e-6) for x in frac]


def scaled_shape(fractions, target_plateau: float) -> list[float]:
    """Rescale an analogue curve so that its largest-size point equals `target_plateau`."""
    f = np.asarray(fractions, dtype=float)
    out = f * (target_plateau / f[-1])
    return [max(float(f"{x:.4g}"), 1e-6) for x in np.minimum(out, 2.0)]
