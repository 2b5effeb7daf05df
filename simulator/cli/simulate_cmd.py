"""`capplan simulate SCENARIO.yaml`: one configuration, training or inference."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def warn_broken_profiles(profiles_dir) -> None:
    """Each profile or cluster file of the user's --profiles-dir that does not load is said on stderr.

    Called after a run succeeded, so a scenario that uses the broken file gets its one error line only.
    """
    from simulator.hardware.cluster import broken_user_clusters
    from simulator.hardware.load import broken_user_profiles
    for exc in broken_user_profiles(profiles_dir) + broken_user_clusters(profiles_dir):
        typer.echo(f"warning: {exc.one_line()} (not loaded)", err=True)


def load_resolved(scenario: Path, overrides: list[str], profiles_dir):
    """The scenario file with its --set overrides, a named cluster's hardware filled in."""
    from simulator.hardware.cluster import resolve_cluster_name
    from simulator.loading import load_scenario
    return resolve_cluster_name(load_scenario(scenario, overrides), profiles_dir, str(scenario))


def _simulate(sc, scenario: Path, profiles_dir, trace: Optional[Path]):
    from simulator.errors import InputError
    try:
        if sc.workload.kind == "inference":
            if trace:
                raise InputError("--trace is only available for training workloads", source="--trace")
            from simulator.serving.inference import simulate_inference
            return simulate_inference(sc, profiles_dir=profiles_dir), None
        from simulator.sim.api import simulate_training
        return simulate_training(sc, profiles_dir, source=str(scenario), record=trace is not None)
    except InputError as exc:   # name the scenario file when the library could not
        if exc.source is None:
            exc.source = str(scenario)
        raise


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        scenario: Path = typer.Argument(..., help="scenario YAML (workload, cluster, parallelism, costs)"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="override a field: path=value (repeatable)"),
        as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
        trace: Optional[Path] = typer.Option(None, "--trace", help="write a Chrome/Perfetto trace of one step"),
        profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help="extra folder of hardware profiles"),
    ):
        """Simulate one training step (or an inference request) and explain where the time goes."""
        from rich.console import Console

        from simulator.loading import refuse_overwriting_input

        refuse_overwriting_input(trace, "--trace", scenario)
        sc = load_resolved(scenario, list(set_ or []), profiles_dir)
        result, run = _simulate(sc, scenario, profiles_dir, trace)
        warn_broken_profiles(profiles_dir)
        if sc.workload.kind == "inference":
            if as_json:
                typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
                return
            from simulator.report.terminal_inference import render_inference
            render_inference(result, Console())
            return
        if trace:
            from simulator.report.trace import write_trace
            write_trace(trace, run.trace, result.parallelism["pp"], label=result.name,
                        metadata={"scenario": str(scenario), "step_time_s": result.step_time_s})
        if as_json:
            typer.echo(result.to_json())
            return
        from simulator.report.terminal_training import render_training
        console = Console()
        render_training(result, console)
        if trace:
            console.print(f"trace written to {trace} (open in ui.perfetto.dev)")
