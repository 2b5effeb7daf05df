"""`capplan report RESULT.json --format md|html|csv`: render a saved plan result again."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        result: Path = typer.Argument(..., help="candidates.json from `plan --out`, or saved `plan --json` output"),
        fmt: str = typer.Option("md", "--format", "-f", help="md | html | csv | json"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to this file instead of stdout"),
    ):
        """Render a saved plan result as Markdown, a self-contained HTML page, or CSV."""
        from simulator.loading import read_mapping
        from simulator.report.plan_files import render
        from simulator.report.plan_json import load_report
        report = load_report(read_mapping(result), str(result))
        text = render(report, fmt)
        if out is not None:
            from simulator.report.files import write_text_atomic
            write_text_atomic(out, text, field="--out")
            typer.echo(f"wrote {out}")
        else:
            typer.echo(text, nl=False)
