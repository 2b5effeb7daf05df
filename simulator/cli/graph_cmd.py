"""`capplan graph MODEL`: parameters, FLOPs and bytes per layer and in total."""
from __future__ import annotations

import json
import warnings
from typing import List, Optional

import typer

from simulator.errors import InputError


def parse_pairs(items: list[str], flag: str) -> dict:
    """["batch=8", "seq=128"] -> {"batch": 8, "seq": 128} (values read as YAML scalars)."""
    from simulator.loading import parse_set_value
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{item!r} is not key=value", source=flag, expected="NAME=VALUE, e.g. batch=8")
        out[key.strip()] = parse_set_value(raw)
    return out


def graph_summary(g) -> dict:
    """The `graph --json` document (DESIGN.md 3.3) of a built graph."""
    from simulator.graph import analysis as an
    from simulator.graph.training import hardware_flops, model_flops
    length, path = an.critical_path(g)
    return {
        "name": g.graph.get("name"), "source": g.graph.get("source"), "dtype": g.graph.get("dtype"),
        "batch": g.graph.get("batch"), "seq_len": g.graph.get("seq_len"),
        "training": bool(g.graph.get("training")), "recompute": g.graph.get("recompute"),
        "ops": g.number_of_nodes(),
        "params": an.total_params(g),
        "forward_flops": an.total_flops(g, "forward"),
        "training_flops": model_flops(g),
        "hardware_flops": hardware_flops(g),
        "total_bytes": an.total_bytes(g),
        "peak_activation_bytes": an.peak_activation_bytes(g),
        "critical_path_flops": length,
        "layers": an.layer_table(g),
        "warnings": list(g.graph.get("warnings", [])),
    }


def register(app: typer.Typer) -> None:
    @app.command("graph")
    def graph_cmd(
        model: str = typer.Argument(..., help="bundled name (capplan models list), config.json or .onnx path"),
        seq: Optional[int] = typer.Option(None, "--seq", help="sequence length (default: the model's context, at most 2048)"),
        batch: int = typer.Option(1, "--batch", help="sequences (or images) per pass"),
        dtype: str = typer.Option("bf16", "--dtype", help="fp32 | tf32 | bf16 | fp16 | fp8"),
        training: bool = typer.Option(False, "--training", help="add backward, recompute and optimizer ops"),
        recompute: str = typer.Option("none", "--recompute", help="none | selective | full (with --training)"),
        optimizer: str = typer.Option("adam", "--optimizer", help="adam | adamw | sgd | rmsprop"),
        dim: Optional[List[str]] = typer.Option(None, "--dim", help="bind an ONNX symbolic dim: NAME=N (repeatable)"),
        option: Optional[List[str]] = typer.Option(None, "--option", help="model option: KEY=VALUE, e.g. num_labels=9, image_size=150 (repeatable)"),
        all_layers: bool = typer.Option(False, "--all-layers", help="one table row per layer (default: identical layers share a row)"),
        as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
    ):
        """Build a model's computation graph and show params, FLOPs and bytes per layer and in total."""
        from simulator.graph.build import load_arch, load_model
        if seq is None:
            arch = load_arch(model) if not model.endswith(".onnx") else None
            seq = min(2048, arch.max_position_embeddings) if arch else 2048
        dims = parse_pairs(list(dim or []), "--dim")
        options = parse_pairs(list(option or []), "--option")
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            g = load_model(model, seq_len=seq, batch=batch, dtype=dtype, dims=dims, options=options,
                           training=training, recompute=recompute, optimizer=optimizer)
        summary = graph_summary(g)
        for w in summary["warnings"]:
            typer.echo(f"warning: {w}", err=True)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
            return
        _render(summary, collapse=not all_layers)


def collapse_layers(rows: list[dict]):
    """Runs of identical consecutive layers -> (label "L0-L95 (x96)", row, count)."""
    key = lambda r: (r["ops"], r["params"], r["forward_flops"], r["flops"], r["bytes"])  # noqa: E731
    i = 0
    while i < len(rows):
        j = i
        if rows[i]["layer"] is not None:
            while j + 1 < len(rows) and rows[j + 1]["layer"] is not None and key(rows[j + 1]) == key(rows[i]):
                j += 1
        n = j - i + 1
        yield (rows[i]["name"] if n == 1 else f"{rows[i]['name']}-{rows[j]['name']} (x{n})"), rows[i], n
        i = j + 1


def _render(s: dict, collapse: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulator.units import format_bytes, format_flops
    table = Table(title=f"{s['name']} ({s['source']}, {s['dtype']}, batch {s['batch']}"
                        + (f", seq {s['seq_len']}" if s["seq_len"] else "")
                        + (f", training, recompute {s['recompute']}" if s["training"] else "") + ")")
    for col in ("layer", "ops", "params", "fwd FLOP", "all FLOP", "bytes"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    rows = collapse_layers(s["layers"]) if collapse else ((r["name"], r, 1) for r in s["layers"])
    for name, r, count in rows:
        table.add_row(name, str(r["ops"]), _count(r["params"]), format_flops(r["forward_flops"]),
                      format_flops(r["flops"]), format_bytes(r["bytes"]))
    table.add_section()
    table.add_row("total", str(s["ops"]), _count(s["params"]), format_flops(s["forward_flops"]),
                  format_flops(sum(r["flops"] for r in s["layers"])), format_bytes(s["total_bytes"]),
                  style="bold")
    if collapse and any(c > 1 for _, _, c in collapse_layers(s["layers"])):
        table.caption = "rows Lx-Ly (xN): values of one layer; --all-layers shows each"
    console = Console()
    console.print(table)
    console.print(f"parameters: {s['params']:,}; training FLOPs (forward+backward, no recompute): {format_flops(s['training_flops'])}; "
                  f"with recompute: {format_flops(s['hardware_flops'])}; "
                  f"peak activations: {format_bytes(s['peak_activation_bytes'])}")


def _count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}" if n < 100 * scale else f"{n / scale:.1f}{unit}"
    return str(int(n))
