"""The largest run `capplan serve` starts: refused before any work, with the numbers that imply it.

The serving engine replays every request through SimPy (arrival, routing, each
continuous-batching iteration). Measured with `benchmarks/bench_serving.py`
(Llama-2-7B fp16, 4 A100 replicas, 20 requests/s, lognormal lengths; 2-core
machine shared with other work, 2026-12-01), wall / CPU / peak memory:
100k requests 5.9 s / 5.1 s / 84 MB; 1M 82 s / 55 s / 231 MB; 5M 424 s / 253 s /
891 MB; 20M (the schema's bound) 2,144 s / 1,217 s / 3.4 GB: linear, about 16-20k
requests per CPU-second. One million requests, about a minute, is the limit:
TTFT p99 is 223 / 217 / 217 / 216.5 ms at 100k / 1M / 5M / 20M requests, so a
longer horizon only costs time.
The planner's capacity search runs its own shorter horizons and is not bound here.
"""
from __future__ import annotations

from pathlib import Path

from simulator.errors import InputError
from simulator.schema.scenario import Serving

MAX_SERVED_REQUESTS = 1_000_000
# replicas are SimPy processes each: 100 requests took 2.5 s with 1,000 replicas, 9.3 s with
# 10,000 and 69 s with 100,000 (same machine); a million hung for many minutes
MAX_SERVED_REPLICAS = 10_000


def check_served_requests(serving: Serving, count: int | None = None,
                          limit: int | None = None, source: str | None = None) -> None:
    """Refuse a run of more than `limit` (default MAX_SERVED_REQUESTS) requests: rate x duration_s
    of a rate process, or `count` (the trace rows inside duration_s) of a trace."""
    limit = MAX_SERVED_REQUESTS if limit is None else limit
    arrivals = serving.arrivals
    if arrivals.kind != "trace" and arrivals.rate_per_s is not None:
        n = arrivals.rate_per_s * serving.duration_s
        if n > limit:
            raise InputError(
                f"serving.arrivals.rate_per_s x serving.duration_s = {arrivals.rate_per_s:g}/s x "
                f"{serving.duration_s:g} s = {n:,.0f} requests, more than `capplan serve` simulates: "
                f"at most {limit:,}, about a minute", source=source, field="serving.duration_s",
                expected=f"duration_s <= {limit / arrivals.rate_per_s:,.0f} s at this rate; "
                         "p99 latencies settle within tens of thousands of requests")
    elif count is not None and count > limit:
        raise InputError(f"the trace holds {count:,} requests within serving.duration_s = "
                         f"{serving.duration_s:g} s, more than `capplan serve` simulates: at most {limit:,}",
                         source=source, field="serving.duration_s",
                         expected=f"a duration_s that keeps at most {limit:,} trace rows")


def trace_rows_within(path: Path, duration_s: float) -> int:
    """Requests of a trace CSV that arrive before duration_s (a line count when that is small enough).

    The line count (header included) bounds the rows from above, so the rows are parsed
    only when it is beyond the limit; an unreadable trace counts 0 here and is reported
    by the simulation's own reader.
    """
    try:
        with open(path, "rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
    if lines <= MAX_SERVED_REQUESTS:
        return max(lines - 1, 0)
    from simulator.serving.arrivals import read_trace
    return int((read_trace(path).t_s < duration_s).sum())


def check_serve_size(serving: Serving, base_dir: Path | None, source: str | None = None) -> None:
    """`capplan serve`'s guard: refuse more than MAX_SERVED_REQUESTS requests (or
    MAX_SERVED_REPLICAS replicas) before any work."""
    if serving.replicas > MAX_SERVED_REPLICAS:
        raise InputError(f"{serving.replicas:,} replicas are more than `capplan serve` simulates: at most "
                         f"{MAX_SERVED_REPLICAS:,}", source=source, field="serving.replicas",
                         expected=f"at most {MAX_SERVED_REPLICAS:,} replicas; `capplan plan` finds the count "
                                  "that meets the SLOs")
    count = None
    if serving.arrivals.kind == "trace" and serving.arrivals.path:
        path = Path(serving.arrivals.path).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        count = trace_rows_within(path, serving.duration_s)
    check_served_requests(serving, count, source=source)
