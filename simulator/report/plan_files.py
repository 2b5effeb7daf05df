"""Write a plan's files: report.html, report.md, candidates.csv, candidates.json (and render by format)."""
from __future__ import annotations

from pathlib import Path

from simulator.errors import InputError
from simulator.report.files import write_text_atomic
from simulator.report.plan_csv import render_csv
from simulator.report.plan_html import render_html
from simulator.report.plan_json import render_json
from simulator.report.plan_markdown import render_markdown
from simulator.schema.plan import PlanReport

# format name -> renderer (registry keyed by the `--format` string)
RENDERERS = {"md": render_markdown, "html": render_html, "csv": render_csv, "json": render_json}
FILES = {"html": "report.html", "md": "report.md", "csv": "candidates.csv", "json": "candidates.json"}


def render(report: PlanReport, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise InputError(f"unknown format '{fmt}'", field="--format", expected=", ".join(RENDERERS))
    return RENDERERS[fmt](report)


def write_report_files(report: PlanReport, out_dir: str | Path) -> tuple[PlanReport, dict[str, str]]:
    """Write every file into out_dir; returns the report with `report` paths filled in, and the paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder: {exc.strerror}", source=str(out), field="--out") from None
    paths = {fmt: str(out / name) for fmt, name in FILES.items()}
    report = report.model_copy(update={"report": paths})
    for fmt, path in paths.items():
        write_text_atomic(path, render(report, fmt), field="--out")
    return report, paths
