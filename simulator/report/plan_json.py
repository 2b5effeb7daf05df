"""JSON of a plan: the `plan --json` keys of DESIGN.md 3.3 and, for files, every candidate."""
from __future__ import annotations

import json

from simulator.schema.plan import PlanReport

SUMMARY_KEYS = ("candidates_evaluated", "candidates_feasible", "wall_s", "best", "pareto", "report")


def plan_summary(report: PlanReport) -> dict:
    """The DESIGN.md 3.3 `plan --json` object (plus the reason when nothing is feasible)."""
    d = report.model_dump(mode="json")
    out = {k: d[k] for k in SUMMARY_KEYS}
    out.update({"name": report.name, "kind": report.kind, "objective": report.objective,
                "executor": report.executor, "infeasible_reason": report.infeasible_reason,
                "nearest": d["nearest"], "tier_agreement": d["tier_agreement"]})
    return out


def render_json(report: PlanReport, *, full: bool = True) -> str:
    """Full report (re-loadable by `capplan report`) or the summary only."""
    data = report.model_dump(mode="json") if full else plan_summary(report)
    return json.dumps(data, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"


def load_report(data: dict, source: str) -> PlanReport:
    from simulator.loading import validate
    return validate(PlanReport, data, source)
