"""`capplan plan SCENARIO.yaml` and `capplan whatif --model ... --hardware ...` (thin: options -> plan -> render)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from simulator.cli.simulate_cmd import warn_broken_profiles
from simulator.errors import InputError


def _progress(quiet: bool, text: str):
    """A spinner on an interactive terminal; nothing when piped or with --json."""
    import contextlib
    import sys
    if quiet or not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console
    return Console(stderr=True).status(text)


def _emit(report, out: Optional[Path], as_json: bool) -> None:
    from simulator.report.plan_files import write_report_files
    from simulator.report.plan_json import plan_summary
    if out is not None:
        report, _paths = write_report_files(report, out)
    if as_json:
        typer.echo(json.dumps(plan_summary(report), indent=2, allow_nan=False))
        return
    from rich.console import Console
    from simulator.report.terminal_plan import render_plan
    render_plan(report, Console())
    _warn_skipped(report.notes)
    if report.best_candidate is None:
        typer.echo(f"warning: {report.infeasible_reason}", err=True)


SKIPPED_SHOWN = 5   # sweep points skipped as invalid that the terminal lists one by one


def _warn_skipped(notes: list[str]) -> None:
    """Sweep points the plan skipped (an invalid layout, a cluster too big for its links) on stderr.

    The terminal report does not list notes, so without this a skipped point was silent there.
    """
    skipped = [n for n in notes if n.startswith("skipped ")]
    for note in skipped[:SKIPPED_SHOWN]:
        typer.echo(f"warning: {note}", err=True)
    if len(skipped) > SKIPPED_SHOWN:
        typer.echo(f"warning: ... and {len(skipped) - SKIPPED_SHOWN} more sweep points skipped "
                   "(all in the notes of --json and the report files)", err=True)


def whatif_scenario(model: str, hardware: List[str], devices: List[int], tokens: Optional[float],
                    seq: int, global_batch: Optional[int], dtype: str, rate: Optional[float],
                    ttft_p99: Optional[float], tpot_p99: Optional[float], prompt: int, output: int,
                    deadline_days: Optional[float], budget: Optional[float]) -> dict:
    """The in-memory scenario a what-if question stands for (training, or serving when --rate is given)."""
    if not hardware or (not devices and rate is None):
        raise InputError("a what-if needs --hardware and, for training, --devices", source="command line",
                         expected="e.g. --hardware h100-sxm5-80gb --devices 1024")
    if rate is not None and tokens is not None:
        raise InputError("--tokens (a training question) and --rate (a serving question) exclude each other",
                         source="command line", field="--rate", expected="one of --tokens or --rate")
    bad = [d for d in devices if d < 1]
    if bad:
        raise InputError(f"device count {bad[0]} is not positive", source="command line", field="--devices",
                         expected="a positive integer")
    devices = devices or [1]
    sweep: dict = {}
    if len(hardware) > 1:
        sweep["cluster.hardware"] = hardware
    if len(devices) > 1:
        sweep["cluster.devices"] = devices
    constraints = {k: v for k, v in (("deadline_days", deadline_days), ("budget_usd", budget),
                                     ("ttft_p99_s", ttft_p99), ("tpot_p99_s", tpot_p99)) if v is not None}
    base = {"name": f"whatif-{model}", "cluster": {"hardware": hardware[0], "devices": devices[0]},
            "constraints": constraints}
    if rate is not None:
        slo = {k: v for k, v in (("ttft_p99_s", ttft_p99), ("tpot_p99_s", tpot_p99)) if v is not None}
        base["workload"] = {"kind": "inference", "model": model, "dtype": dtype, "seq_len": prompt + output,
                            "prompt_tokens": prompt, "output_tokens": output}
        base["serving"] = {"arrivals": {"kind": "poisson", "rate_per_s": rate}, "prompt_tokens": prompt,
                           "output_tokens": output, "duration_s": 300, "slo": slo}
        base["objective"] = "usd_per_million_tokens"
        sweep.setdefault("cluster.hardware", hardware)
        sweep.pop("cluster.devices", None)   # the capacity search picks the device count
    else:
        if tokens is None:
            raise InputError("a training what-if needs --tokens (or --rate for serving)", source="command line",
                             field="--tokens", expected="total training tokens, e.g. 15e12")
        base["workload"] = {"kind": "training", "model": model, "tokens": tokens, "seq_len": seq,
                            "global_batch": global_batch or max(devices), "dtype": dtype}
        base["objective"] = "time_to_train_s"
        sweep["parallelism"] = "auto"
    base["sweep"] = sweep
    return base


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_command(
        scenario: Path = typer.Argument(..., help="scenario YAML with a sweep: section"),
        executor: str = typer.Option("local", "--executor", "-e",
                                     help="local | processes[=N] | dask | dask=ADDRESS (LocalCluster when no address)"),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="write report.html, report.md, candidates.csv, candidates.json here"),
        as_json: bool = typer.Option(False, "--json", help="print the plan summary as JSON only"),
        overrides: List[str] = typer.Option([], "--set", help="override a scenario field: path=value"),
        profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help="extra hardware profile folder"),
        top_k: int = typer.Option(3, "--top-k", min=0, help="best candidates re-simulated with the full engine"),
        dask_timeout: float = typer.Option(10.0, "--dask-timeout", min=0.1,
                                           help="seconds to wait for a Dask scheduler before giving up"),
    ):
        """Search the scenario's sweep under its constraints; write a procurement report.

        When no candidate meets every constraint together, the plan still exits 0 and names the
        binding constraints and the nearest candidates. A constraint that no candidate in the
        search space can meet on its own (e.g. a budget below the cheapest candidate) is bad
        input: one line, exit 2.
        """
        from simulator.plan.api import plan
        with _progress(as_json, f"planning {scenario.name} on {executor}"):
            report = plan(scenario, executor=executor, profiles_dir=profiles_dir, overrides=list(overrides),
                          top_k=top_k, simulate_best=top_k > 0, connect_timeout_s=dask_timeout)
        warn_broken_profiles(profiles_dir)
        _emit(report, out, as_json)

    @app.command("whatif")
    def whatif_command(
        model: str = typer.Option(..., "--model", "-m", help="bundled model name or config path"),
        hardware: List[str] = typer.Option([], "--hardware", help="profile name (repeat to compare)"),
        devices: List[int] = typer.Option([], "--devices", help="device count (repeat to compare)"),
        tokens: Optional[float] = typer.Option(None, "--tokens", help="training tokens, e.g. 15e12"),
        seq: int = typer.Option(4096, "--seq", min=1, help="training sequence length"),
        global_batch: Optional[int] = typer.Option(None, "--global-batch", min=1,
                                                   help="sequences per step (default: the device count)"),
        dtype: str = typer.Option("bf16", "--dtype"),
        rate: Optional[float] = typer.Option(None, "--rate", help="serving: requests per second (Poisson)"),
        ttft_p99: Optional[float] = typer.Option(None, "--ttft-p99", help="serving SLO: p99 time to first token, s"),
        tpot_p99: Optional[float] = typer.Option(None, "--tpot-p99", help="serving SLO: p99 time per output token, s"),
        prompt: int = typer.Option(512, "--prompt-tokens", min=1, help="serving: prompt length"),
        output: int = typer.Option(128, "--output-tokens", min=1, help="serving: answer length"),
        deadline_days: Optional[float] = typer.Option(None, "--deadline-days"),
        budget: Optional[float] = typer.Option(None, "--budget-usd"),
        as_json: bool = typer.Option(False, "--json", help="print the plan summary as JSON only"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the report files here"),
        executor: str = typer.Option("local", "--executor", "-e"),
        profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir"),
    ):
        """Quick what-if without a scenario file: best layout, time, cost (or serving capacity)."""
        from simulator.loading import validate
        from simulator.plan.api import plan
        from simulator.schema.scenario import Scenario
        data = whatif_scenario(model, hardware, devices, tokens, seq, global_batch, dtype, rate, ttft_p99,
                               tpot_p99, prompt, output, deadline_days, budget)
        sc = validate(Scenario, data, "command line")
        try:
            with _progress(as_json, f"what-if {model}"):
                report = plan(sc, executor=executor, profiles_dir=profiles_dir)
        except InputError as exc:   # the library could not name where the question came from
            if exc.source is None:
                exc.source = "command line"
            raise
        warn_broken_profiles(profiles_dir)
        _emit(report, out, as_json)
