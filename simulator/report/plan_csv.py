"""CSV of every candidate of a plan (one row each, SI units in the column names)."""
from __future__ import annotations

import csv
import io
import json

from simulator.report.plan_tables import CSV_FIELDS, rounded_candidate
from simulator.schema.plan import PlanReport


def render_csv(report: PlanReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for c in report.candidates:
        row = rounded_candidate(c)
        row["overrides"] = json.dumps(row["overrides"], sort_keys=True)
        row["violations"] = ";".join(row["violations"])
        w.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_FIELDS})
    return buf.getvalue()
