"""Single self-contained HTML report: the Markdown content as tables plus embedded PNG plots (base64)."""
from __future__ import annotations

import base64
import html

from simulator.report.plan_markdown import _answer
from simulator.report.plan_tables import summary_row, top_candidates
from simulator.report.plots import all_plots
from simulator.schema.plan import PlanReport

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}"""


def _table(rows) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = list(rows[0])
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(r.get(h, '')))}</td>" for h in head) + "</tr>")
    return "\n".join(out) + "</table>"


def _md_inline(text: str) -> str:
    import re
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def render_html(report: PlanReport) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Capacity plan: "
             f"{html.escape(report.name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Capacity plan: {html.escape(report.name)}</h1>"]
    parts += [f"<p>{_md_inline(line)}</p>" for line in _answer(report)]
    parts.append(f"<p>{report.kind} plan; objective <code>{html.escape(report.objective)}</code>; "
                 f"{report.candidates_evaluated} candidates evaluated, {report.candidates_feasible} feasible; "
                 f"constraints: {html.escape(', '.join(f'{k} = {v}' for k, v in report.constraints.items()) or 'none')}</p>")
    if report.infeasible_reason and report.best_candidate is None:
        parts += ["<h2>Nearest candidates</h2>", _table([summary_row(c) for c in report.nearest])]
    parts += ["<h2>Pareto front: cost versus time</h2>", _table([summary_row(c) for c in report.pareto_candidates])]
    parts += ["<h2>Top candidates</h2>", _table([summary_row(c) for c in top_candidates(report, 10)])]
    parts.append("<h2>Plots</h2>")
    for key, title, png in all_plots(report):
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<h3>{html.escape(title)}</h3><img alt='{key}' src='data:image/png;base64,{b64}'>")
    if report.prices:
        parts += ["<h2>Prices and factors (with sources)</h2>",
                  _table([{"hardware": p.hardware or "all", "item": p.item, "value": f"{p.value:g}", "unit": p.unit,
                           "source": p.source} for p in report.prices])]
    if report.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in report.notes] + ["</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)
