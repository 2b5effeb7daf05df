"""CSV of every candidate of a plan (one row each, SI units in the column names)."""
from __future__ import annotations

import csv
import io

from simulator.schema.plan import PlanReport


def render_csv(report: PlanReport) -> str:
    """Rows of `report.table` (every candidate evaluated); floats already at 4 significant figures."""
    buf = io.StringIO()
    cols = list(report.table)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    if cols:
        w.writerows(zip(*[["" if v is None else v for v in report.table[c]] for c in cols]))
    return buf.getvalue()
