"""`capplan models list`: the bundled model names, their family and parameter count."""
from __future__ import annotations

import json

import typer


def models_rows() -> list[dict]:
    """[{name, family, params, source}] for every bundled model (params counted from its graph)."""
    from simulator.graph.analysis import total_params
    from simulator.graph.build import bundled_entry, bundled_models, load_model
    rows = []
    for name in bundled_models():
        entry = bundled_entry(name)
        g = load_model(name, seq_len=1, batch=1)
        rows.append({"name": name, "family": entry["family"], "params": total_params(g),
                     "source": entry["source"]})
    return rows


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="Bundled models.", no_args_is_help=True)

    @models.command("list")
    def list_cmd(as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only")):
        """List the bundled models (usable as MODEL in `capplan graph` and in scenarios)."""
        rows = models_rows()
        if as_json:
            typer.echo(json.dumps([{k: r[k] for k in ("name", "family", "params")} for r in rows], indent=2))
            return
        from rich.console import Console
        from rich.table import Table
        table = Table(title="Bundled models")
        table.add_column("name", style="bold")
        table.add_column("family")
        table.add_column("params", justify="right")
        table.add_column("source", overflow="fold", max_width=60)
        for r in rows:
            table.add_row(r["name"], r["family"], _human(r["params"]), r["source"])
        Console().print(table)

    app.add_typer(models, name="models")


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))
