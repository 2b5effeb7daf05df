"""Rich terminal summary of a training result: throughput, memory fit, where the time goes."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from simulator.schema.result import TrainingResult
from simulator.units import format_bytes, format_flops, format_seconds


def _kv(title: str, rows: list[tuple[str, str]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    for k, v in rows:
        t.add_row(k, v)
    return t


def _parallel_line(p: dict) -> str:
    parts = [f"tp {p['tp']}", f"pp {p['pp']}", f"dp {p['dp']}"]
    if p.get("cp", 1) > 1:
        parts.append(f"cp {p['cp']}")
    if p.get("ep", 1) > 1:
        parts.append(f"ep {p['ep']}")
    sched = p["schedule"] + (f" (v={p['virtual_stages']})" if p.get("virtual_stages", 1) > 1 else "")
    extra = [f"micro-batch {p['micro_batch']} x {p['num_microbatches']}", sched, f"recompute {p['recompute']}"]
    if p.get("sequence_parallel"):
        extra.append("sequence parallel")
    if p.get("zero"):
        extra.append(f"ZeRO-{p['zero']}")
    return ", ".join(parts) + "; " + ", ".join(extra)


def render_training(r: TrainingResult, console: Console) -> None:
    console.print(f"[bold]{r.name}[/bold]: {r.model} on {r.devices} x {r.hardware} "
                  f"({r.provenance.profile_origin} profile)")
    console.print(f"layout: {_parallel_line(r.parallelism)}")
    layers = [getattr(s, "layers", None) for s in r.stages]
    if layers and None not in layers and len(set(layers)) > 1:     # only for uneven pipelines
        console.print("layers per stage: " + "/".join(str(n) for n in layers))
    for w in r.warnings:
        console.print(f"[bold red]warning:[/bold red] {w}")
    console.print(_kv("Throughput", [
        ("step time", format_seconds(r.step_time_s)),
        ("tokens/s", f"{r.tokens_per_s:,.0f}"),
        ("tokens/s per device", f"{r.tokens_per_s_per_device:,.1f}"),
        ("MFU / HFU", f"{r.mfu:.1%} / {r.hfu:.1%}"),
        ("achieved per device", f"{r.achieved_tflops_per_device:.1f} TFLOP/s (model FLOPs)"),
        ("model FLOPs per step", format_flops(r.model_flops_per_step)),
    ]))
    b = r.breakdown
    total = max(r.step_time_s, 1e-30)
    console.print(_kv("Where the time goes (slowest stage)", [
        (name, f"{format_seconds(v)}  {v / total:6.1%}") for name, v in (
            ("compute", b.compute_s), ("exposed communication", b.exposed_comm_s),
            ("pipeline bubble", b.pipeline_bubble_s), ("optimizer", b.optimizer_s))
    ]))
    m = r.memory
    fit = "[green]fits[/green]" if m.fits else "[bold red]DOES NOT FIT[/bold red]"
    console.print(_kv(f"Memory per device (stage {m.worst_stage})", [
        ("weights", format_bytes(m.weights_bytes_per_device)),
        ("gradients", format_bytes(m.gradients_bytes_per_device)),
        ("optimizer state", format_bytes(m.optimizer_bytes_per_device)),
        ("activations", format_bytes(m.activations_bytes_per_device)),
        ("temporary", format_bytes(m.temporary_bytes_per_device)),
        ("total", f"{format_bytes(m.total_bytes_per_device)} of {format_bytes(m.capacity_bytes)}: {fit}"),
    ]))
    if r.time_to_train_s is not None:
        rows = [("steps", f"{r.steps:,.0f}"), ("time to train", format_seconds(r.time_to_train_s)),
                ("device-hours", f"{r.device_hours:,.0f}"),
                ("energy", f"{r.energy_kwh:,.0f} kWh" if r.energy_kwh is not None else "unknown (no TDP published)")]
        if r.cost_usd is None:
            cost = "no price known"
        else:
            cost = f"${r.cost_usd:,.0f}" if r.cost_usd >= 100 else f"${r.cost_usd:,.2f}"
        rows.append(("cost", cost))
        console.print(_kv("Training run", rows))
