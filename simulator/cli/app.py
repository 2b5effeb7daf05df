"""The `capplan` typer application: registers one module per command group.

Commands are thin: they declare options, call the library, and render. Errors
the user can fix (`InputError`) print one line and exit 2; anything else is an
internal error, exit 1 (set CAPPLAN_DEBUG=1 for the traceback).
"""
from __future__ import annotations

import importlib
import os

import typer

from simulator.errors import InputError

# One entry per command module in simulator/cli/; each exposes register(app).
COMMAND_MODULES = [
    "simulator.cli.models_cmd",
    "simulator.cli.graph_cmd",
    "simulator.cli.hardware_cmd",
    "simulator.cli.schema_cmd",
    "simulator.cli.simulate_cmd",
    "simulator.cli.serve_cmd",
    "simulator.cli.calibrate_cmd",
    "simulator.cli.plan_cmd",
    "simulator.cli.report_cmd",
]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="capplan",
        help="Compute-efficiency simulator and capacity planner for deep-learning workloads.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback(invoke_without_command=True)
    def _root(ctx: typer.Context, version: bool = typer.Option(False, "--version", help="print the version and exit")):
        """Compute-efficiency simulator and capacity planner for deep-learning workloads."""
        if version:
            from simulator import __version__
            typer.echo(f"capplan {__version__}")
            raise typer.Exit(0)
        if ctx.invoked_subcommand is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(0)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:   # command module not written yet
                continue
            raise
        module.register(app)
    return app


def _click_module():
    """The click that typer runs on: vendored as typer._click in new typer, plain click before."""
    try:
        from typer import _click
        return _click
    except ImportError:
        import click
        return click


def _exit_abort_types(click) -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Exit and Abort classes of typer and of its click (vendored click has none of its own)."""
    import typer.exceptions as texc
    exits = tuple(c for c in (getattr(texc, "Exit", None), getattr(click.exceptions, "Exit", None)) if c)
    aborts = tuple(c for c in (getattr(texc, "Abort", None), getattr(click.exceptions, "Abort", None)) if c)
    return exits, aborts


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Library warnings reach the user as one plain line on stderr, not file:line noise."""
    typer.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    import warnings
    warnings.showwarning = _show_warning
    app = build_app()
    try:
        # standalone_mode=False: click returns typer.Exit codes instead of exiting
        rv = app(args=argv, standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc.one_line()}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 0)
    except Exception as exc:  # noqa: BLE001 - the one place internal errors are rendered
        click = _click_module()
        if isinstance(exc, click.exceptions.UsageError):
            message = exc.format_message().strip()
            if type(exc).__name__ == "NoArgsIsHelpError" or not message:
                message = "missing a command (see the list above)"   # the help went to stdout
            typer.echo(f"error: {message}", err=True)
            return 2
        exit_types, abort_types = _exit_abort_types(click)
        if isinstance(exc, exit_types):
            return getattr(exc, "exit_code", 0)
        if isinstance(exc, abort_types):
            typer.echo("aborted", err=True)
            return 130
        if isinstance(exc, OSError) and getattr(exc, "filename", None):
            # a file we were asked to write (or read) that the OS refused: the user's to fix
            typer.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)
            return 2
        if os.environ.get("CAPPLAN_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set CAPPLAN_DEBUG=1 for details)", err=True)
        return 1
    return rv if isinstance(rv, int) else 0



if __name__ == "__main__":
    raise SystemExit(main())
