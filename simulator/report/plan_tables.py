"""Tables shared by every plan renderer: rows of candidates with rounded, unit-named columns.

Numbers are rounded to 4 significant figures here, once, so Markdown, CSV,
HTML and the terminal show the same values and golden files stay stable.
"""
from __future__ import annotations

import math

from simulator.plan.space import layout_label  # noqa: F401  (re-exported for renderers)
from simulator.schema.plan import Candidate, PlanReport
from simulator.units import format_bytes, format_seconds

CSV_FIELDS = [f for f in Candidate.model_fields if f not in ("overrides", "violations")] + ["overrides", "violations"]


def sig(x, digits: int = 4):
    """Round a float to `digits` significant figures (ints, None and NaN pass through)."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if not math.isfinite(x) or x == 0:
        return x
    return round(x, -int(math.floor(math.log10(abs(x)))) + digits - 1)


def num(x, digits: int = 4) -> str:
    """4 significant figures, thousands separators, never an exponent for everyday sizes."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    v = sig(float(x), digits)
    if abs(v) >= 10 ** digits or v == int(v):
        return f"{v:,.0f}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v))))) if v else 0
    return f"{v:,.{decimals}f}"


def _money(x):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"${num(x)}"


def _time(x):
    return "n/a" if x is None or not math.isfinite(x) else format_seconds(sig(x, 4))


def summary_row(c: Candidate) -> dict[str, str]:
    """Human-readable row (strings) for Markdown / HTML / terminal tables."""
    row = {"#": str(c.id), "hardware": c.hardware, "devices": str(c.devices), "layout": layout_label(c)}
    if c.kind == "serving":
        row.update({
            "TTFT p99": _time(c.ttft_p99_s), "TPOT p99": _time(c.tpot_p99_s),
            "out tok/s": num(c.output_tokens_per_s),
            "USD/h": _money(c.cost_usd), "USD/M tok": _money(c.usd_per_million_tokens)})
    else:
        row.update({
            "step": _time(c.step_time_s), "MFU": "n/a" if c.mfu is None else f"{100 * c.mfu:.1f}%",
            "time to train": _time(c.time_to_train_s), "cost": _money(c.cost_usd),
            "energy": "n/a" if c.energy_kwh is None else f"{num(c.energy_kwh)} kWh",
            "mem/device": "n/a" if c.memory_bytes_per_device is None else format_bytes(c.memory_bytes_per_device)})
    row["tier"] = c.tier
    row["ok"] = "yes" if c.feasible else "no: " + ", ".join(c.violations)
    return row


def rounded_candidate(c: Candidate) -> dict:
    """A candidate as a plain dict with floats rounded (for CSV and the golden files)."""
    d = c.model_dump(mode="json")
    return {k: sig(v) if isinstance(v, float) else v for k, v in d.items()}


def top_candidates(report: PlanReport, n: int = 10) -> list[Candidate]:
    """The best `n` candidates by the objective: the feasible ones first, in report order."""
    ranked = sorted(report.candidates, key=lambda c: (not c.feasible, _obj(c, report), c.id))
    return ranked[:n]


def _obj(c: Candidate, report: PlanReport) -> float:
    from_col = {"time_to_train_s": "ttft_p99_s" if c.kind == "serving" else "time_to_train_s",
                "step_time_s": "tpot_p99_s" if c.kind == "serving" else "step_time_s"}
    col = from_col.get(report.objective, report.objective)
    v = getattr(c, col, None)
    if col == "devices":
        v = c.devices
    return float("inf") if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def terminal_row(c: Candidate) -> dict[str, str]:
    """Narrow row for an 80-column terminal."""
    row = {"#": str(c.id), "hardware x n": f"{c.hardware} x {c.devices}", "layout": layout_label(c)}
    if c.kind == "serving":
        row.update({"TTFT p99": _time(c.ttft_p99_s), "USD/h": _money(c.cost_usd),
                    "USD/M tok": _money(c.usd_per_million_tokens)})
    else:
        row.update({"MFU": "n/a" if c.mfu is None else f"{100 * c.mfu:.0f}%", "time": _time(c.time_to_train_s),
                    "cost": _money(c.cost_usd)})
    row["ok"] = "yes" if c.feasible else "no"
    return row
