"""`capplan serve SCENARIO.yaml`: serving simulation (arrivals, continuous batching, SLOs)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        scenario: Path = typer.Argument(..., help="scenario YAML with a 'serving:' section"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="override a field: path=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
        profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help="extra folder of hardware profiles"),
    ):
        """Simulate serving a model: TTFT/TPOT/e2e percentiles, throughput, goodput and SLOs."""
        from simulator.cli.simulate_cmd import load_resolved, warn_broken_profiles
        from simulator.errors import InputError
        from simulator.serving.api import serve
        from simulator.serving.limits import check_serve_size

        sc = load_resolved(scenario, list(set_ or []), profiles_dir)
        if sc.serving is not None:   # minutes of simulation are refused before any work
            check_serve_size(sc.serving, scenario.resolve().parent, str(scenario))
        try:
            result = serve(sc, profiles_dir=profiles_dir, base_dir=scenario.resolve().parent)
        except InputError as exc:   # name the scenario file when the library could not
            if exc.source is None:
                exc.source = str(scenario)
            raise
        warn_broken_profiles(profiles_dir)
        if as_json:
            typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
            return
        from rich.console import Console

        from simulator.report.terminal_inference import render_serving
        render_serving(result, Console())
