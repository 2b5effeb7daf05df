"""Request arrival processes: Poisson, gamma (bursty, with a coefficient of variation),
constant rate, or a trace CSV of `timestamp_s,prompt_tokens,output_tokens`.

Arrival times are drawn up front as a NumPy array from a seeded Generator, so
the SimPy arrival process only replays them (fast and reproducible).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import InputError
from simulator.schema.scenario import Arrivals, Serving
from simulator.serving.lengths import sample_lengths


@dataclass(frozen=True)
class Workload:
    """Requests to replay: arrival time, prompt and output lengths (parallel arrays)."""

    t_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.t_s.shape[0])


def interarrival_times(spec: Arrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` gaps between arrivals for a rate process (mean 1/rate).

    Gamma gaps with shape k = 1/cv^2 and scale 1/(rate k) have mean 1/rate and
    coefficient of variation cv (cv = 1 is Poisson, cv > 1 is bursty).
    """
    rate = _rate(spec)
    if spec.kind == "poisson":
        return rng.exponential(1.0 / rate, size=n)
    if spec.kind == "gamma":
        k = 1.0 / spec.cv**2
        return rng.gamma(k, 1.0 / (rate * k), size=n)
    if spec.kind == "constant":
        return np.full(n, 1.0 / rate)
    raise InputError(f"'{spec.kind}' is not a rate process", field="serving.arrivals.kind")


def _rate(spec: Arrivals) -> float:
    rate = spec.rate_per_s
    if rate is None or not math.isfinite(rate) or rate <= 0:
        raise InputError(f"arrival rate must be a positive number (got {rate!r})",
                         field="serving.arrivals.rate_per_s")
    return float(rate)


def arrival_times(spec: Arrivals, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival instants in [0, duration_s) of a rate process."""
    rate = _rate(spec)
    expected = rate * duration_s
    chunk = int(expected + 6.0 * math.sqrt(expected) * max(1.0, spec.cv or 1.0) + 16)
    times = np.cumsum(interarrival_times(spec, chunk, rng))
    while times[-1] < duration_s:   # rare: draw more until past the horizon
        more = np.cumsum(interarrival_times(spec, chunk, rng)) + times[-1]
        times = np.concatenate([times, more])
    return times[times < duration_s]


def generate(serving: Serving, rng: np.random.Generator, base_dir: Path | None = None) -> Workload:
    """The requests of a serving section: trace replay, or a rate process with sampled lengths."""
    spec = serving.arrivals
    if spec.kind == "trace":
        path = Path(spec.path)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        w = read_trace(path)
        keep = w.t_s < serving.duration_s
        return Workload(w.t_s[keep], w.prompt_tokens[keep], w.output_tokens[keep])
    arrival_rng, prompt_rng, output_rng = rng.spawn(3)
    t = arrival_times(spec, serving.duration_s, arrival_rng)
    n = t.shape[0]
    prompts = sample_lengths(serving.prompt_tokens, n, prompt_rng, "serving.prompt_tokens")
    outputs = sample_lengths(serving.output_tokens, n, output_rng, "serving.output_tokens")
    return Workload(t, prompts, outputs)


TRACE_COLUMNS = ("timestamp_s", "prompt_tokens", "output_tokens")


def read_trace(path: Path) -> Workload:
    """Read a trace CSV (header `timestamp_s,prompt_tokens,output_tokens`); rows sorted by time.

    A bad row raises InputError with its line number.
    """
    if not path.exists():
        raise InputError("trace file not found", source=str(path), field="serving.arrivals.path")
    try:
        t, p, o = _read_rows(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"is not a readable text CSV ({type(exc).__name__})", source=str(path),
                         field="serving.arrivals.path", expected="a UTF-8 CSV: " + ",".join(TRACE_COLUMNS)) from None
    if not t:
        raise InputError("trace has no requests", source=str(path))
    return Workload(np.asarray(t, float), np.asarray(p, np.int64), np.asarray(o, np.int64))


def _read_rows(path: Path) -> tuple[list[float], list[int], list[int]]:
    """The parsed rows of a trace CSV, checked line by line."""
    t, p, o = [], [], []
    with path.open(newline="", encoding="utf-8-sig") as fh:   # -sig: a BOM (Excel export) is not part of the header
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != list(TRACE_COLUMNS):
            raise InputError(f"line 1: header must be {','.join(TRACE_COLUMNS)} (got {header!r})",
                             source=str(path))
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            ts, pt, ot = _parse_row(row, line, path)
            if t and ts < t[-1]:
                raise InputError(f"line {line}: timestamp_s {ts:g} is earlier than the previous row "
                                 f"({t[-1]:g}); rows must be sorted by time", source=str(path))
            t.append(ts), p.append(pt), o.append(ot)
    return t, p, o


def _parse_row(row: list[str], line: int, path: Path) -> tuple[float, int, int]:
    if len(row) < 3:
        raise InputError(f"line {line}: expected 3 columns {','.join(TRACE_COLUMNS)}, got {len(row)}",
                         source=str(path))
    try:
        ts = float(row[0])
    except ValueError:
        raise InputError(f"line {line}: timestamp_s {row[0]!r} is not a number", source=str(path)) from None
    if not math.isfinite(ts) or ts < 0:
        raise InputError(f"line {line}: timestamp_s must be >= 0 (got {row[0]!r})", source=str(path))
    counts = []
    for name, cell in zip(TRACE_COLUMNS[1:], row[1:3]):
        try:
            v = int(cell)
        except ValueError:
            raise InputError(f"line {line}: {name} {cell!r} is not an integer", source=str(path)) from None
        if v <= 0:
            raise InputError(f"line {line}: {name} must be a positive integer (got {v})", source=str(path))
        counts.append(v)
    return ts, counts[0], counts[1]
