"""Markdown procurement report of a plan: answer first, then Pareto table, prices, caveats."""
from __future__ import annotations

from simulator.report.plan_tables import layout_label, num, summary_row, top_candidates
from simulator.schema.plan import PlanReport


def _table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return ["(none)"]
    head = list(rows[0])
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(r.get(h, "")).replace("|", "/") for h in head) + " |" for r in rows]
    return out


def _n(x, unit: str = "", scale: float = 1.0) -> str:
    """4 significant figures with thousands separators, or n/a when unknown."""
    if x is None:
        return "n/a"
    return f"{num(x / scale)}{unit}"


def _answer(report: PlanReport) -> list[str]:
    c = report.best_candidate
    if c is None:
        return [f"**No candidate meets the constraints.** {report.infeasible_reason or ''}".rstrip()]
    if report.kind == "serving":
        what = (f"**{c.hardware} x {c.devices}** ({layout_label(c)}): TTFT p99 {_n(c.ttft_p99_s, ' s')}, "
                f"TPOT p99 {_n(c.tpot_p99_s, ' s')}, {_n(c.cost_usd, ' USD')} per hour, "
                f"{_n(c.usd_per_million_tokens, ' USD')} per million output tokens.")
    else:
        mfu = "n/a" if c.mfu is None else f"{100 * c.mfu:.1f}%"
        what = (f"**{c.hardware} x {c.devices}** ({layout_label(c)}): step {_n(c.step_time_s, ' s')}, "
                f"MFU {mfu}, time to train {_n(c.time_to_train_s, ' days', 86400.0)}, "
                f"cost {_n(c.cost_usd, ' USD')}, energy {_n(c.energy_kwh, ' kWh')}, CO2 {_n(c.co2_kg, ' kg')}.")
    return [f"Best by `{report.objective}` (tier: {c.tier}): " + what]


def render_markdown(report: PlanReport, plot_files: dict[str, str] | None = None) -> str:
    """The report as Markdown; `plot_files` maps plot keys to image paths to link (optional)."""
    lines = [f"# Capacity plan: {report.name}", ""]
    lines += _answer(report) + [""]
    lines += [f"- kind: {report.kind}; objective: `{report.objective}`",
              f"- candidates evaluated: {report.candidates_evaluated}; feasible: {report.candidates_feasible}",
              "- constraints: " + (", ".join(f"{k} = {v}" for k, v in report.constraints.items()) or "none"), ""]
    if report.tier_agreement:
        ta = report.tier_agreement
        lines += [f"- analytic vs simulated step time on {int(ta.get('compared', 0))} candidates: "
                  f"max |error| {100 * ta.get('max_abs_rel_error', 0):.2f}%, "
                  f"mean {100 * ta.get('mean_abs_rel_error', 0):.2f}%", ""]
    if report.infeasible_reason and report.best_candidate is None:
        lines += ["## Nearest candidates", ""] + _table([summary_row(c) for c in report.nearest]) + [""]
    lines += ["## Pareto front: cost versus time", ""]
    lines += _table([summary_row(c) for c in report.pareto_candidates]) + [""]
    lines += ["## Top candidates", ""] + _table([summary_row(c) for c in top_candidates(report, 10)]) + [""]
    if report.prices:
        lines += ["## Prices and factors (with sources)", ""]
        lines += _table([{"hardware": p.hardware or "all", "item": p.item, "value": f"{p.value:g}",
                          "unit": p.unit, "source": p.source} for p in report.prices]) + [""]
    if plot_files:
        lines += ["## Plots", ""] + [f"![{k}]({v})" for k, v in plot_files.items()] + [""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    return "\n".join(lines)
