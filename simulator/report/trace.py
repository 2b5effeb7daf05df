"""Chrome / Perfetto trace of one simulated training step (Trace Event Format, JSON).

One process per pipeline stage (pid = stage), one thread per device stream
(tid 0 compute, 1 point-to-point, 2 data-parallel reduction); complete events
("ph": "X") with microsecond timestamps. Opens in ui.perfetto.dev and
chrome://tracing. Deterministic: events sorted, no wall-clock data.
"""
from __future__ import annotations

import json
from pathlib import Path

STREAMS = {"compute": 0, "p2p": 1, "dp": 2}
STREAM_NAMES = {0: "compute (incl. tensor-parallel collectives)", 1: "pipeline send", 2: "data-parallel reduce"}


def trace_events(records: list[tuple], num_stages: int, label: str = "capplan") -> list[dict]:
    """Trace-event dicts from engine records (device, stream, name, start_s, dur_s[, args])."""
    events: list[dict] = []
    for stage in range(num_stages):
        events.append({"name": "process_name", "ph": "M", "pid": stage, "tid": 0,
                       "args": {"name": f"{label} stage {stage}"}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": stage, "tid": 0,
                       "args": {"sort_index": stage}})
        for tid, name in STREAM_NAMES.items():
            events.append({"name": "thread_name", "ph": "M", "pid": stage, "tid": tid, "args": {"name": name}})
    body = []
    for rec in records:
        device, stream, name, start_s, dur_s = rec[:5]
        cat = "forward" if name.startswith("F") else "backward" if name.startswith("B") else stream
        ev = {"name": name, "cat": cat, "ph": "X", "pid": device, "tid": STREAMS.get(stream, 3),
              "ts": round(start_s * 1e6, 3), "dur": round(dur_s * 1e6, 3)}
        if len(rec) > 5 and rec[5]:
            ev["args"] = rec[5]
        body.append(ev)
    body.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], e["name"]))
    return events + body


def write_trace(path: str | Path, records: list[tuple], num_stages: int, *, label: str = "capplan",
                metadata: dict | None = None) -> Path:
    """Write the trace JSON object ({"traceEvents": [...], "displayTimeUnit": "ms"})."""
    p = Path(path)
    doc = {"traceEvents": trace_events(records, num_stages, label), "displayTimeUnit": "ms",
           "otherData": metadata or {}}
    from simulator.report.files import write_text_atomic
    return write_text_atomic(p, json.dumps(doc, separators=(",", ":")) + "\n", field="--trace")
