"""`capplan hardware list | show NAME | compare NAME NAME... | clusters`: device profiles and clusters."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

PROFILES_DIR_HELP = "an extra folder of profile YAML files, searched before the bundled ones"


def _console():
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else 160)


def _fmt(value, unit: str) -> str:
    from simulator.hardware.summary import UNIT_SCALE
    if value is None:
        return "-"
    v = value / UNIT_SCALE.get(unit, 1.0)
    if unit in ("devices", "W"):
        return f"{v:.0f}"
    if unit == "USD":
        return f"${v:,.0f}"
    if unit == "USD/h":
        return f"${v:.2f}"
    return f"{v:,.1f}" if v >= 10 else f"{v:,.3g}"


def _warn(problems) -> None:
    """One `warning:` line per file that does not load (file, field, expected); stderr keeps --json pure."""
    for exc in problems:
        typer.echo(f"warning: {exc.one_line()} (skipped)", err=True)


def _list(profiles_dir: Optional[Path], as_json: bool) -> None:
    from simulator.hardware.load import load_all_checked
    from simulator.hardware.summary import summary_row
    profiles, broken = load_all_checked(profiles_dir)
    _warn(broken)
    rows = [summary_row(p) for p in profiles]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table
    table = Table(title="Hardware profiles (dense peaks; usable memory; links per direction)")
    for col, just in (("name", "left"), ("bf16 TFLOP/s", "right"), ("memory GiB", "right"),
                      ("bandwidth GB/s", "right"), ("scale-up link", "left"), ("link GB/s", "right"),
                      ("TDP W", "right"), ("price $/h", "right")):
        table.add_column(col, justify=just, style="bold" if col == "name" else None)
    for r in rows:
        bf16 = _fmt(r["bf16_flops_per_s"], "TFLOP/s")
        if r["bf16_flops_per_s"] is None and r["headline_flops_per_s"] is not None:
            bf16 = f"({r['headline_dtype']}) {_fmt(r['headline_flops_per_s'], 'TFLOP/s')}"
        table.add_row(r["name"], bf16, _fmt(r["memory_capacity_bytes"], "GiB"),
                      _fmt(r["memory_bandwidth_bytes_per_s"], "GB/s"), r["scale_up_kind"] or "-",
                      _fmt(r["scale_up_bandwidth_bytes_per_s"], "GB/s"), _fmt(r["tdp_w"], "W"),
                      _fmt(r["cloud_usd_per_hour"], "USD/h"))
    _console().print(table)


def _flatten(data, prefix=""):
    """(dotted path, value) for every scalar field, curves summarized elsewhere."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key in ("efficiency", "sources", "collective", "notes"):
            continue
        if isinstance(value, dict):
            yield from _flatten(value, path + ".")
        elif value is not None:
            yield path, value


def _show(name: str, profiles_dir: Optional[Path], as_json: bool) -> None:
    from simulator.hardware.audit import missing_sources
    from simulator.hardware.load import load_hardware
    p = load_hardware(name, profiles_dir)
    data = p.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table
    table = Table(title=f"{p.name} ({p.vendor} {p.architecture or ''}, {p.provenance})", show_lines=False)
    table.add_column("field", style="bold")
    table.add_column("value", justify="right")
    table.add_column("source", overflow="fold", max_width=90)
    for path, value in _flatten(data):
        table.add_row(path, _human(path, value), p.sources.get(path, ""))
    console = _console()
    console.print(table)
    curves = Table(title="efficiency curves (fraction of peak vs size)")
    for col in ("op class", "dtype", "origin", "small", "large", "source"):
        curves.add_column(col, overflow="fold", max_width=90 if col == "source" else None)
    for c in p.efficiency:
        curves.add_row(c.op_class, c.dtype, c.origin, f"{c.efficiency[0]:.3g} @ {c.size[0]:.0e}",
                       f"{c.efficiency[-1]:.3g} @ {c.size[-1]:.0e}", c.source)
    for tier in ("scale_up", "scale_out"):
        link = getattr(p, tier)
        if link is not None and link.collective is not None:
            cc = link.collective
            curves.add_row(f"{tier} collective", "-", "datasheet",
                           f"{cc.bus_bw_fraction[0]:.3g} @ {cc.message_bytes[0]:.0e} B",
                           f"{cc.bus_bw_fraction[-1]:.3g} @ {cc.message_bytes[-1]:.0e} B", cc.source)
    console.print(curves)
    if p.notes:
        console.print(f"notes: {p.notes}")
    missing = missing_sources(p)
    if missing:
        console.print(f"[yellow]numbers without a source: {', '.join(missing)}[/yellow]")


def _human(path: str, value) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    units = (("flops_per_s", "TFLOP/s", 1e12), ("capacity_bytes", "GiB", 2.0**30), ("l2_bytes", "MiB", 2.0**20),
             ("bytes_per_s", "GB/s", 1e9), ("latency_s", "us", 1e-6), ("overhead_s", "us", 1e-6),
             ("_w", "W", 1.0), ("usd_per_hour", "USD/h", 1.0), ("list_usd", "USD", 1.0))
    for marker, unit, scale in units:
        if marker in path:
            return f"{value / scale:,.4g} {unit}"
    return f"{value:,}"


def _compare(names: List[str], profiles_dir: Optional[Path], as_json: bool) -> None:
    from simulator.errors import InputError
    from simulator.hardware.load import load_hardware
    from simulator.hardware.summary import compare
    if len(names) < 2:
        raise InputError("compare needs at least two profile names", field="NAMES",
                         expected="e.g. capplan hardware compare a100-sxm4-80gb h100-sxm5-80gb")
    profiles = [load_hardware(n, profiles_dir) for n in names]
    rows = compare(profiles)
    if as_json:
        typer.echo(json.dumps({"profiles": [p.name for p in profiles], "metrics": rows}, indent=2))
        return
    from rich.table import Table
    table = Table(title=f"Hardware compared (ratios to {profiles[0].name})")
    table.add_column("metric", style="bold")
    table.add_column("unit")
    for p in profiles:
        table.add_column(p.name, justify="right")
    for r in rows:
        cells = []
        for p in profiles:
            v, x = r["values"][p.name], r["ratio_to_first"][p.name]
            text = _fmt(v, r["unit"])
            if p is not profiles[0] and x is not None:
                text += f" ({x:.2f}x)"
            cells.append(text)
        table.add_row(r["label"], r["unit"], *cells)
    _console().print(table)


def _clusters(profiles_dir: Optional[Path], as_json: bool) -> None:
    from simulator.errors import InputError
    from simulator.hardware.cluster import build_cluster, list_clusters
    rows, broken = [], []
    for name in list_clusters(profiles_dir):
        try:
            c = build_cluster(name, profiles_dir)
        except InputError as exc:   # a broken cluster file (or one naming a broken profile)
            broken.append(exc)
            continue
        rows.append({"name": name, "hardware": c.profile.name, "devices": c.devices,
                     "devices_per_node": c.devices_per_node, "num_nodes": c.num_nodes,
                     "scale_up_domain": c.scale_up_domain,
                     "scale_up_bandwidth_bytes_per_s": c.scale_up.bandwidth_bytes_per_s if c.scale_up else None,
                     "scale_out_kind": c.scale_out.kind if c.scale_out else None,
                     "scale_out_bandwidth_bytes_per_s": c.scale_out.bandwidth_bytes_per_s if c.scale_out else None})
    _warn(broken)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table
    table = Table(title="Named clusters (use as cluster: {name: NAME, devices: N} in a scenario; N defaults to all)")
    for col in ("name", "hardware", "devices", "nodes", "scale-up domain", "scale-out", "GB/s per device"):
        table.add_column(col, style="bold" if col == "name" else None)
    for r in rows:
        table.add_row(r["name"], r["hardware"], str(r["devices"]), str(r["num_nodes"]), str(r["scale_up_domain"]),
                      r["scale_out_kind"] or "-", _fmt(r["scale_out_bandwidth_bytes_per_s"], "GB/s"))
    _console().print(table)


def register(app: typer.Typer) -> None:
    hw = typer.Typer(help="Hardware profiles and clusters: list, show, compare, clusters.", no_args_is_help=True)

    @hw.command("list")
    def list_cmd(as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
                 profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP)):
        """List every profile: bf16 peak, memory, bandwidth, scale-up link, TDP, cloud price."""
        _list(profiles_dir, as_json)

    @hw.command("show")
    def show_cmd(name: str = typer.Argument(..., help="profile name (see `capplan hardware list`) or YAML path"),
                 as_json: bool = typer.Option(False, "--json", help="print the profile as JSON, SI units"),
                 profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP)):
        """Show every field of a profile with its source, and its efficiency curves."""
        _show(name, profiles_dir, as_json)

    @hw.command("compare")
    def compare_cmd(names: List[str] = typer.Argument(..., help="two or more profile names or paths"),
                    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
                    profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP)):
        """Compare profiles side by side, with ratios to the first one."""
        _compare(names, profiles_dir, as_json)

    @hw.command("clusters")
    def clusters_cmd(as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON only"),
                     profiles_dir: Optional[Path] = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP)):
        """List the named clusters (hardware_profiles/clusters/*.yaml, plus DIR/clusters)."""
        _clusters(profiles_dir, as_json)

    app.add_typer(hw, name="hardware")
