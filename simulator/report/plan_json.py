"""JSON of a plan: the `plan --json` keys of DESIGN.md 3.3 and, for files, every candidate."""
from __future__ import annotations

import json

from simulator.schema.plan import PlanReport

SUMMARY_KEYS = ("candidates_evaluated", "candidates_feasible", "wall_s", "best", "pareto", "report")


def plan_summary(report: PlanReport) -> dict:
    """The DESIGN.md 3.3 `plan --json` object (plus the reason when nothing is feasible)."""
    d = report.model_dump(mode="json")
    out = {k: d[k] for k in SUMMARY_KEYS}
    from simulator.report.plan_tables import top_candidates
    out.update({"name": report.name, "kind": report.kind, "objective": report.objective,
                "executor": report.executor, "infeasible_reason": report.infeasible_reason,
                "constraints": d["constraints"], "best_candidate": d["best_candidate"],
                "pareto_candidates": d["pareto_candidates"], "nearest": d["nearest"],
                "top_candidates": [c.model_dump(mode="json") for c in top_candidates(report, 10)],
                "prices": d["prices"], "tier_agreement": d["tier_agreement"], "notes": d["notes"]})
    return out


def render_json(report: PlanReport, *, full: bool = True) -> str:
    """Full report (re-loadable by `capplan report`) or the summary only."""
    if not full:
        return json.dumps(plan_summary(report), indent=2, allow_nan=False) + "\n"
    data = report.model_dump(mode="json", exclude={"table"})
    body = json.dumps(data, indent=1, allow_nan=False)
    # every candidate, one compact line per column
    cols = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, allow_nan=False, separators=(',', ':'))}"
                       for k, v in report.table.items())
    return body[:-2] + ',\n "table": {\n' + cols + "\n }\n}\n"


def load_report(data: dict, source: str) -> PlanReport:
    """A PlanReport from a full report (candidates.json) or a saved `plan --json` summary."""
    from simulator.errors import InputError
    from simulator.loading import validate
    if "candidates_evaluated" not in data or "objective" not in data:
        raise InputError("is not a capplan plan result", source=source,
                         expected="candidates.json from `capplan plan --out DIR`, or `capplan plan --json` output")
    if "candidates" not in data:   # a summary: keep the candidates it lists
        data = dict(data)
        seen, rows = set(), []
        for c in (data.pop("top_candidates", []) + list(data.get("pareto_candidates", []))
                  + list(data.get("nearest", []))):
            if c["id"] not in seen:
                seen.add(c["id"])
                rows.append(c)
        data["candidates"] = sorted(rows, key=lambda c: c["id"])
    return validate(PlanReport, data, source)
