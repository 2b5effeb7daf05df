"""`capplan calibrate` and `capplan validate`: measure this device, then check the simulator on it."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

BACKEND_HELP = "auto (CuPy when a GPU is usable, else NumPy), cupy, or numpy"
STORE_HELP = "calibration store (SQLite); default: calibration.sqlite in the user data directory"
STAT_HELP = ("median (default) or min of the timed samples; min is the least-disturbed sample, "
             "steadier on a shared, busy machine")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
    app.command("validate")(validate_command)


def calibrate_command(
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    quick: bool = typer.Option(False, "--quick", help="fewer sizes and repeats (under a minute on a CPU)"),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    export: Optional[Path] = typer.Option(None, "--export", help="write the calibrated hardware profile "
                                          "YAML here (usable as cluster.hardware: FILE)"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated tests to run "
                                       "(launch, gemm, bmm, conv, copy, add, scale, triad, exp, sum, gelu, "
                                       "layernorm, softmax, maxpool, gap, h2d, d2h, p2p, allreduce)"),
    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help="extra hardware profile folder"),
    statistic: str = typer.Option("median", "--statistic", help=STAT_HELP + " (used by the fit and --export)"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="NumPy backend: BLAS threads. Default 1, "
                                          "timed in the thread's CPU time (reproducible on a shared "
                                          "machine); more threads are timed by the wall clock. "
                                          "validate reuses the count"),
    list_runs: bool = typer.Option(False, "--list", help="list the runs in the store and exit (no measuring)"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
) -> None:
    """Run microbenchmarks on this device, store them, fit efficiency curves, optionally export.

    The run is stored atomically: Ctrl-C or a crash leaves earlier runs intact and the
    partial run unused. Prints achieved vs peak per test and the fit's residuals.
    """
    from simulator.calibrate.run import calibrate

    if list_runs:
        _list_runs(store, as_json)
        return
    err = Console(stderr=True)
    tests = [t.strip() for t in only.split(",") if t.strip()] if only else None
    _check_statistic(statistic)
    try:
        with _progress(err, enabled=not as_json) as progress:
            outcome = calibrate(backend, quick=quick, store=store, export=export, only=tests,
                                progress=progress, profiles_dir=profiles_dir, statistic=statistic,
                                threads=threads)
    except KeyboardInterrupt:
        # click would turn this into a silent return; exit 130 with one line instead
        typer.echo("interrupted: the partial run is marked interrupted and never used; "
                   "earlier runs are kept", err=True)
        raise SystemExit(130) from None
    if as_json:
        typer.echo(json.dumps(_calibrate_json(outcome), indent=2))
        return
    if outcome.notice:
        err.print(outcome.notice)
    _render_calibration(Console(), outcome)


def _no_store_yet(store) -> Path | None:
    """The store's path when no store exists there yet (absent or empty file): reading must not create one."""
    from simulator.calibrate.store import default_store_path
    path = Path(store) if store is not None else default_store_path()
    return path if not path.exists() or (path.is_file() and path.stat().st_size == 0) else None


def _list_runs(store, as_json: bool) -> None:
    from simulator.calibrate.store import open_store
    path = _no_store_yet(store)
    if path is not None:
        runs = []
    else:
        with open_store(store) as st:
            runs = st.list_runs()
            path = st.path
    rows = [{"id": r.id, "backend": r.backend, "device": r.fingerprint.device, "started_at": r.started_at,
             "finished_at": r.finished_at, "quick": r.quick, "partial": r.partial,
             "status": "complete" if r.complete else ("interrupted" if r.finished_at else "incomplete")}
            for r in runs]
    if as_json:
        typer.echo(json.dumps({"store": str(path), "runs": rows}, indent=2))
        return
    table = Table(title=f"calibration runs in {path} (validate and --export use the newest complete, "
                        f"full run)")
    for col in ("id", "backend", "device", "started", "status", "quick", "partial"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["backend"], r["device"], r["started_at"], r["status"],
                      "yes" if r["quick"] else "", "yes" if r["partial"] else "")
    Console().print(table)


def _check_statistic(statistic: str) -> None:
    from simulator.errors import InputError
    if statistic not in ("median", "min"):
        raise InputError(f"unknown statistic {statistic!r}", field="--statistic", expected="median or min")


@contextmanager
def _progress(console: Console, enabled: bool):
    if not (enabled and console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)
        yield update


def _calibrate_json(o) -> dict:
    from simulator.calibrate.fit import residual_summary
    return {
        "run_id": o.run.id, "backend": o.run.backend, "quick": o.run.quick, "store": str(o.store_path),
        "started_at": o.run.started_at, "finished_at": o.run.finished_at, "wall_s": o.wall_s,
        "fingerprint": o.run.fingerprint.as_dict(), "notice": o.notice, "notes": o.notes,
        "base_profile": o.base.name, "profile": o.profile.name,
        "export": str(o.export_path) if o.export_path else None,
        "peak_flops_per_s": o.fit.peak_flops_per_s,
        "memory_bandwidth_bytes_per_s": o.fit.bandwidth_bytes_per_s,
        "launch_overhead_s": o.fit.launch_overhead_s,
        "measurements": [dict(m.model_dump(), flops_per_s=m.flops_per_s, bytes_per_s=m.bytes_per_s)
                         for m in o.run.measurements],
        "residuals": residual_summary(o.fit.residuals),
        "flags": o.fit.flags,
    }


def summary_rows(o) -> list[dict]:
    """One row per (test, dtype): best achieved rate and its fraction of the reference peak."""
    rows = []
    groups: dict[tuple[str, str], list] = {}
    for m in o.run.measurements:
        groups.setdefault((m.test, m.dtype), []).append(m)
    for (test, dtype), ms in groups.items():
        cls = ms[0].op_class
        if cls == "launch":
            rows.append({"test": test, "dtype": dtype, "sizes": len(ms), "best": f"{ms[0].duration_s * 1e6:.2f} us",
                         "at": ms[0].shape, "peak": "-", "fraction": None})
            continue
        if cls == "matmul":
            best = max(ms, key=lambda m: m.flops_per_s)
            peak = o.fit.peak_flops_per_s.get(dtype) or o.base.peak_flops_per_s.get(dtype)
            rate, text = best.flops_per_s, _flops(best.flops_per_s)
            ptext = _flops(peak) if peak else "-"
        else:
            best = max(ms, key=lambda m: m.bytes_per_s)
            peak = o.fit.bandwidth_bytes_per_s
            rate, text = best.bytes_per_s, f"{best.bytes_per_s / 1e9:.1f} GB/s"
            ptext = f"{peak / 1e9:.1f} GB/s"
        rows.append({"test": test, "dtype": dtype, "sizes": len(ms), "best": text, "at": best.shape,
                     "peak": ptext, "fraction": rate / peak if peak else None})
    return rows


def _flops(rate: float) -> str:
    return f"{rate / 1e12:.1f} TFLOP/s" if rate >= 1e12 else f"{rate / 1e9:.1f} GFLOP/s"


def _render_calibration(console: Console, o) -> None:
    from simulator.calibrate.fit import residual_summary
    fp = o.run.fingerprint
    console.print(f"[bold]Calibration run {o.run.id}[/] on {fp.device} (backend {o.run.backend}"
                  f"{', quick' if o.run.quick else ''}) in {o.wall_s:.1f} s; stored in {o.store_path}")
    table = Table(title="achieved vs peak (peak: " + ("measured best" if o.fit.measured_peaks
                                                      else f"datasheet {o.base.name}") + ")")
    for col in ("test", "dtype", "sizes", "best", "at", "peak", "% of peak"):
        table.add_column(col, justify="right" if col in ("sizes", "best", "peak", "% of peak") else "left")
    for r in summary_rows(o):
        frac = "-" if r["fraction"] is None else f"{100 * r['fraction']:.1f}%"
        table.add_row(r["test"], r["dtype"], str(r["sizes"]), r["best"], r["at"], r["peak"], frac)
    console.print(table)
    res = Table(title="fit residuals (fitted model time / measured - 1)")
    for col in ("curve", "points", "median |error|", "max |error|"):
        res.add_column(col)
    for name, s in residual_summary(o.fit.residuals).items():
        res.add_row(name, str(s["points"]), f"{100 * s['median_abs_error']:.1f}%",
                    f"{100 * s['max_abs_error']:.1f}%")
    console.print(res)
    for flag in o.fit.flags:
        console.print(f"[yellow]above peak:[/] {flag}")
    for note in o.notes:
        console.print(f"note: {note}")
    if o.export_path:
        console.print(f"calibrated profile written to {o.export_path} (cluster.hardware: {o.export_path})")


def validate_command(
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    repeats: int = typer.Option(11, "--repeats", min=1, help="timed passes per case (median taken)"),
    case: Optional[str] = typer.Option(None, "--case", help="comma-separated case names (default: all)"),
    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help="extra hardware profile folder"),
    statistic: str = typer.Option("median", "--statistic", help=STAT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
) -> None:
    """Run bundled graphs (MLP, transformer block, small CNN) for real on this device and compare
    the measured time with the simulator's prediction from the latest calibration.

    Needs a complete calibration of the chosen backend in the store: without one it says so
    and exits 2 (run `capplan calibrate --backend ...` first).
    """
    from simulator.calibrate.validate import validate

    names = [c.strip() for c in case.split(",") if c.strip()] if case else None
    _check_statistic(statistic)
    try:
        report = validate(backend, store=store, repeats=repeats, cases=names, profiles_dir=profiles_dir,
                          statistic=statistic)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    err = Console(stderr=True)
    if report.notice:
        err.print(report.notice)
    console = Console()
    console.print(f"[bold]Validation[/] on {report.device} (backend {report.backend}) against "
                  f"calibration run {report.run_id} ({report.calibrated_at})")
    table = Table()
    for col in ("case", "ops", "measured", "predicted", "error"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for c in report.cases:
        table.add_row(c.name, str(c.ops), f"{c.measured_s * 1e3:.3f} ms", f"{c.predicted_s * 1e3:.3f} ms",
                      f"{100 * c.error:+.1f}%")
    console.print(table)
    console.print(f"mean |error| {100 * report.mean_abs_error:.1f}% over {len(report.cases)} cases "
                  f"({report.statistic} of {repeats} passes)")
    from simulator.calibrate.validate import by_kind_line
    console.print(by_kind_line(report))
