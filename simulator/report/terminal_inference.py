"""Rich terminal renderers for inference (one batch) and serving results."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from simulator.schema.inference import InferenceResult, ServingResult
from simulator.units import format_bytes, format_seconds


def _kv(title: str, rows: list[tuple[str, str]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t


def render_inference(result: InferenceResult, console: Console) -> None:
    """Latency, throughput and memory of one inference batch."""
    r, m, b = result, result.memory, result.breakdown
    par = ", ".join(f"{k}={v}" for k, v in r.parallelism.items())
    console.print(f"[bold]{r.name}[/]: {r.model} on {r.devices} x {r.hardware} ({par}), batch {r.batch}, "
                  f"prompt {r.prompt_tokens}, output {r.output_tokens} tokens, weights {r.weight_dtype}, "
                  f"KV {r.kv_dtype}")
    rows = [("prefill (TTFT)", format_seconds(r.prefill_s))]
    if not r.encoder_only:
        rows += [("decode per token", f"{format_seconds(r.decode_s_per_token)}  ({b.decode_bound}-bound)"),
                 ("  linear layers", format_seconds(b.decode_weights_s_per_token)),
                 ("  attention over KV", format_seconds(b.decode_attention_s_per_token)),
                 ("  communication", format_seconds(b.decode_comm_s_per_token))]
    rows += [("latency", format_seconds(r.latency_s)),
             ("tokens/s", f"{r.tokens_per_s:,.1f}" + (" (prompt tokens)" if r.encoder_only else " (output)")),
             ("requests/s", f"{r.requests_per_s:,.2f}")]
    console.print(_kv("Latency", rows))
    mem = [("weights", format_bytes(m.weights_bytes_per_device)),
           ("KV cache", format_bytes(m.kv_cache_bytes_per_device)),
           ("activations", format_bytes(m.activations_bytes_per_device)),
           ("total", f"{format_bytes(m.total_bytes_per_device)} of {format_bytes(m.capacity_bytes)}"
                     f" -> {'fits' if m.fits else '[red]DOES NOT FIT[/]'}")]
    if not r.encoder_only:
        mem += [("KV per token", f"{format_bytes(m.kv_bytes_per_token)} (model), "
                                 f"{format_bytes(m.kv_bytes_per_token_per_device)} per device")]
    mem += [("largest batch that fits", str(m.max_batch_that_fits))]
    console.print(_kv("Memory per device", mem))


def _pct_table(result: ServingResult) -> Table:
    t = Table(title="Latency", title_justify="left")
    for col in ("metric", "p50", "p90", "p99", "mean", "count"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for name, p in (("TTFT", result.ttft_s), ("TPOT", result.tpot_s),
                    ("end to end", result.e2e_s), ("queue wait", result.queue_wait_s)):
        t.add_row(name, *(format_seconds(v) for v in (p.p50, p.p90, p.p99, p.mean)), str(p.count))
    return t


def render_serving(result: ServingResult, console: Console) -> None:
    """Percentiles, throughput, SLO verdict, queue and counts of a serving simulation."""
    r, c = result, result.counts
    console.print(f"[bold]{r.name}[/]: {r.model} on {r.replicas} replicas x {r.devices_per_replica} "
                  f"{r.hardware} (tp={r.parallelism['tp']}, pp={r.parallelism['pp']}), {r.arrivals} arrivals "
                  f"at {r.offered_rate_per_s:.2f} req/s for {format_seconds(r.duration_s)} (seed {r.seed})")
    console.print(_pct_table(r))
    rows = [("throughput", f"{r.throughput_requests_per_s:.2f} req/s, {r.output_tokens_per_s:,.0f} output tokens/s"),
            ("goodput", f"{r.goodput_requests_per_s:.2f} req/s ({100 * r.goodput_fraction:.1f}% of requests)"),
            ("mean batch", f"{r.mean_batch_sequences:.1f} sequences, {r.mean_batch_tokens:.0f} tokens"),
            ("replica busy", f"{100 * r.busy_fraction:.1f}%"),
            ("KV capacity", f"{r.kv_capacity_tokens_per_replica:,} tokens per replica"),
            ("requests", f"{c.arrived} arrived, {c.completed} completed, {c.in_flight} in flight, "
                         f"{c.rejected} rejected, {c.preemptions} preemptions")]
    if r.usd_per_million_output_tokens is not None:
        rows.append(("cost", f"${r.usd_per_hour:,.2f}/h, ${r.usd_per_million_output_tokens:,.3f} per million output tokens"))
    if r.queue.waiting:
        rows.append(("queue (max)", f"{max(r.queue.waiting)} waiting, {max(r.queue.running)} running"))
    console.print(_kv("Throughput", rows))
    if r.slo:
        verdict = "[green]SLO met[/]" if r.slo_attained else "[red]SLO missed[/]"
        parts = [f"{s.metric} {format_seconds(s.achieved_s)} vs {format_seconds(s.target_s)} "
                 f"{'ok' if s.met else 'MISSED'}" for s in r.slo]
        console.print(f"{verdict}: " + "; ".join(parts))
