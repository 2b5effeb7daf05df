"""Constraints: which candidates are feasible, what each one violates, and why none fit.

Each constraint is a limit on one candidate column (a value <= limit test) or,
for `fits_memory`, the memory-fit flag. Evaluation is vectorized over all
candidates. When nothing is feasible the planner explains it:

- a constraint that no candidate meets on its own is *impossible* for this
  search space: `check_possible` raises InfeasibleError (exit 2) naming it and
  the best value any candidate reaches;
- when every constraint alone is met by some candidate but never all together,
  the plan still succeeds (exit 0) and reports the binding constraints and the
  nearest candidates (smallest summed relative excess over the limits).
"""
from __future__ import annotations

import numpy as np

from simulator.errors import InfeasibleError
from simulator.schema.scenario import Constraints

# constraint field -> (candidate column, scale to the column's unit, label, unit)
LIMITS = {
    "deadline_days": ("time_to_train_s", 86400.0, "deadline", "days"),
    "budget_usd": ("cost_usd", 1.0, "budget", "USD"),
    "power_cap_kw": ("power_kw", 1.0, "power cap", "kW"),
    "max_devices": ("devices", 1.0, "device limit", "devices"),
    "ttft_p99_s": ("ttft_p99_s", 1.0, "TTFT p99 SLO", "s"),
    "tpot_p99_s": ("tpot_p99_s", 1.0, "TPOT p99 SLO", "s"),
}


def active_limits(constraints: Constraints, columns: dict) -> dict:
    """{field: (column, limit in column units)} for the constraints that are set and apply."""
    out = {}
    for field, (col, scale, _label, _unit) in LIMITS.items():
        value = getattr(constraints, field)
        if value is not None and col in columns:
            out[field] = (col, float(value) * scale)
    return out


def excess(columns: dict, constraints: Constraints) -> dict:
    """{constraint: relative excess >= 0 per candidate} (0 where met, inf where unknown)."""
    out = {}
    for field, (col, limit) in active_limits(constraints, columns).items():
        v = np.asarray(columns[col], dtype=float)
        rel = np.where(np.isfinite(v), np.maximum(v / limit - 1.0, 0.0), np.inf)
        out[field] = rel
    if constraints.fits_memory and "memory_bytes_per_device" in columns:
        mem = np.asarray(columns["memory_bytes_per_device"], dtype=float)
        cap = np.asarray(columns["capacity_bytes"], dtype=float)
        out["fits_memory"] = np.where(np.isfinite(mem), np.maximum(mem / cap - 1.0, 0.0), np.inf)
    return out


def feasibility(columns: dict, constraints: Constraints):
    """(feasible mask, {constraint: violated mask}) over all candidates."""
    ex = excess(columns, constraints)
    n = len(next(iter(columns.values()))) if columns else 0
    violated = {k: v > 0 for k, v in ex.items()}
    ok = np.ones(n, dtype=bool)
    for v in violated.values():
        ok &= ~v
    return ok, violated


def violations_of(i: int, violated: dict) -> list[str]:
    return [k for k, v in violated.items() if v[i]]


def nearest(columns: dict, constraints: Constraints, k: int = 5) -> np.ndarray:
    """Indices of the k candidates closest to feasible (smallest summed relative excess)."""
    ex = excess(columns, constraints)
    if not ex:
        return np.zeros(0, dtype=int)
    total = sum(ex.values())
    idx = np.arange(total.size)
    order = np.lexsort((idx, total))
    return order[np.isfinite(total[order])][:k]


def _best_value(field: str, columns: dict, constraints: Constraints) -> str:
    if field == "fits_memory":
        ratio = np.asarray(columns["memory_bytes_per_device"], float) / np.asarray(columns["capacity_bytes"], float)
        return f"smallest memory need is {np.nanmin(ratio):.2f}x the device capacity"
    col, scale, _label, unit = LIMITS[field]
    best = np.nanmin(np.asarray(columns[col], dtype=float)) / scale
    shown = f"{best:,.0f}" if abs(best) >= 1000 else f"{best:.4g}"
    return f"best any candidate reaches is {shown} {unit}"


def check_possible(columns: dict, constraints: Constraints, describe, source: str) -> None:
    """Raise InfeasibleError when one constraint alone is met by no candidate at all.

    `describe(i)` names candidate i (hardware x devices, layout) for the message.
    """
    ex = excess(columns, constraints)
    for field, rel in ex.items():
        if rel.size and not np.any(rel == 0):
            best = int(np.argmin(np.where(np.isfinite(rel), rel, np.inf)))
            limit = getattr(constraints, field)
            raise InfeasibleError(
                f"no candidate can meet {field} = {limit} ({_best_value(field, columns, constraints)},"
                f" by {describe(best)})", source=source, field=f"constraints.{field}",
                expected="a limit some candidate can meet, or a wider sweep")


def explain(columns: dict, constraints: Constraints, violated: dict) -> str:
    """One sentence: which constraints bind when no candidate meets all of them together."""
    n = len(next(iter(columns.values())))
    parts = [f"{k} fails for {int(v.sum())} of {n}" for k, v in violated.items() if v.any()]
    return ("no candidate meets all constraints together (each alone is met by some): "
            + "; ".join(parts) + ". Nearest candidates below; relax one of these constraints.")
