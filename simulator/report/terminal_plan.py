"""Rich terminal summary of a plan: the answer, the Pareto table and the top candidates."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from simulator.report.plan_markdown import _answer
from simulator.report.plan_tables import terminal_row, top_candidates
from simulator.schema.plan import PlanReport


def _rich_table(title: str, rows: list[dict[str, str]]) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for h in (rows[0] if rows else {"(none)": ""}):
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    return t


def render_plan(report: PlanReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]Capacity plan: {report.name}[/bold] ({report.kind}, objective {report.objective}; "
                  f"{report.candidates_evaluated} candidates evaluated, {report.candidates_feasible} feasible, "
                  f"{report.wall_s:.2f} s on {report.executor})")
    for line in _answer(report):
        console.print(line.replace("**", ""), markup=False)
    if report.best_candidate is None and report.nearest:
        console.print(_rich_table("Nearest candidates", [terminal_row(c) for c in report.nearest]))
    console.print(_rich_table("Pareto front: cost versus time", [terminal_row(c) for c in report.pareto_candidates]))
    console.print(_rich_table("Top candidates", [terminal_row(c) for c in top_candidates(report, 8)]))
    if report.tier_agreement:
        ta = report.tier_agreement
        console.print(f"analytic vs simulated step time: max |error| {100 * ta.get('max_abs_rel_error', 0):.2f}% "
                      f"over {int(ta.get('compared', 0))} candidates")
    if report.report:
        console.print("wrote: " + ", ".join(report.report.values()))
