"""Matplotlib figures of a plan report, returned as PNG bytes (Agg backend, no display).

Figures: cost versus time with the Pareto front, throughput per hardware,
step-time breakdown (stacked bars), memory per device against capacity, and
the scaling curve over device counts. Each figure uses the best feasible
candidate per group (or the best of all when none is feasible). PNG metadata
carrying the matplotlib version is dropped so that bytes depend only on data.
"""
from __future__ import annotations

import io
import math
from collections import OrderedDict

from simulator.schema.plan import Candidate, PlanReport

GIB = 2.0**30


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def _figure(title: str):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _key_time(report: PlanReport):
    return "ttft_p99_s" if report.kind == "serving" else "time_to_train_s"


def best_per(report: PlanReport, key) -> "OrderedDict[object, Candidate]":
    """Best candidate (by the objective, feasible first) per group key, groups in first-seen order."""
    from simulator.report.plan_tables import top_candidates
    out: OrderedDict = OrderedDict()
    for c in top_candidates(report, n=len(report.candidates)):
        out.setdefault(key(c), c)
    return OrderedDict(sorted(out.items(), key=lambda kv: str(kv[0])))


def pareto_plot(report: PlanReport) -> bytes | None:
    """Every candidate (from the table) in grey / blue, the front in red."""
    import numpy as np
    tcol = _key_time(report)
    t = report.table
    if tcol not in t or "cost_usd" not in t:
        return None
    x = np.array([np.nan if v is None else v for v in t[tcol]], dtype=float)
    y = np.array([np.nan if v is None else v for v in t["cost_usd"]], dtype=float)
    feas = np.array(t.get("feasible", [True] * len(x)), dtype=bool)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    unit = 86400.0 if report.kind == "training" else 1.0
    fig, ax = _figure("Cost versus time (Pareto front)")
    for mask, color, label in ((ok & ~feas, "#bbbbbb", "infeasible"), (ok & feas, "#4c72b0", "feasible")):
        if mask.any():
            ax.scatter(x[mask] / unit, y[mask], s=6, c=color, label=label, alpha=0.5, rasterized=True,
                       linewidths=0)
    front = sorted(report.pareto_candidates, key=lambda c: getattr(c, tcol) or 0)
    if front:
        ax.plot([getattr(c, tcol) / unit for c in front], [c.cost_usd for c in front], "o-", c="#dd3333",
                label="Pareto front")
    ax.set_xlabel("time to train (days)" if report.kind == "training" else "TTFT p99 (s)")
    ax.set_ylabel("cost (USD)" if report.kind == "training" else "cost (USD per hour)")
    if np.nanmax(y[ok]) / max(np.nanmin(y[ok]), 1e-9) > 50:
        ax.set_yscale("log")
    if np.nanmax(x[ok]) / max(np.nanmin(x[ok]), 1e-12) > 50:
        ax.set_xscale("log")
    ax.legend(fontsize=8)
    return _png(fig)


def throughput_plot(report: PlanReport) -> bytes | None:
    col = "output_tokens_per_s" if report.kind == "serving" else "tokens_per_s"
    best = best_per(report, lambda c: c.hardware)
    # per device, so clusters of different sizes compare; the bar says how many devices
    rows = [(f"{hw}\nx {c.devices}", getattr(c, col) / c.devices) for hw, c in best.items()
            if _finite(getattr(c, col)) and c.devices]
    if not rows:
        return None
    fig, ax = _figure(f"Throughput per device (best candidate by {report.objective} on each hardware)")
    ax.bar([r[0] for r in rows], [r[1] for r in rows], color="#55a868")
    ax.set_ylabel("output tokens/s per device" if report.kind == "serving" else "training tokens/s per device")
    ax.tick_params(axis="x", rotation=20)
    return _png(fig)


def breakdown_plot(report: PlanReport) -> bytes | None:
    best = best_per(report, lambda c: c.hardware)
    parts = [("compute_s", "compute"), ("exposed_comm_s", "exposed comm"),
             ("pipeline_bubble_s", "pipeline bubble"), ("optimizer_s", "optimizer")]
    rows = [(hw, c) for hw, c in best.items() if _finite(c.compute_s)]
    if not rows:
        return None
    fig, ax = _figure("Step-time breakdown (best candidate per hardware)")
    bottom = [0.0] * len(rows)
    for attr, label in parts:
        vals = [getattr(c, attr) or 0.0 for _, c in rows]
        ax.bar([hw for hw, _ in rows], vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("seconds per step")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=8)
    return _png(fig)


def memory_plot(report: PlanReport) -> bytes | None:
    best = best_per(report, lambda c: c.hardware)
    rows = [(hw, c) for hw, c in best.items() if _finite(c.memory_bytes_per_device)]
    if not rows:
        return None
    fig, ax = _figure("Memory per device (best candidate per hardware)")
    xs = list(range(len(rows)))
    ax.bar(xs, [c.memory_bytes_per_device / GIB for _, c in rows], color="#8172b2", label="needed")
    ax.scatter(xs, [(c.capacity_bytes or 0) / GIB for _, c in rows], marker="_", s=900, c="#dd3333",
               label="capacity")
    ax.set_xticks(xs, [hw for hw, _ in rows], rotation=20)
    ax.set_ylabel("GiB per device")
    ax.legend(fontsize=8)
    return _png(fig)


def scaling_plot(report: PlanReport) -> bytes | None:
    tcol = _key_time(report) if report.kind == "training" else "output_tokens_per_s"
    best = best_per(report, lambda c: (c.hardware, c.devices))
    series: dict[str, list] = {}
    for (hw, dev), c in best.items():
        if _finite(getattr(c, tcol)):
            series.setdefault(hw, []).append((dev, getattr(c, tcol)))
    if not series:
        return None
    fig, ax = _figure("Scaling over device counts (best layout each)")
    unit = 86400.0 if report.kind == "training" else 1.0
    for hw, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] / unit for p in pts], "o-", label=hw)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("devices")
    ax.set_ylabel("time to train (days)" if report.kind == "training" else "output tokens/s")
    ax.legend(fontsize=8)
    return _png(fig)


PLOTS = {
    "pareto": ("Cost versus time, Pareto front", pareto_plot),
    "throughput": ("Throughput per hardware", throughput_plot),
    "breakdown": ("Step-time breakdown", breakdown_plot),
    "memory": ("Memory per device", memory_plot),
    "scaling": ("Scaling over device counts", scaling_plot),
}


def all_plots(report: PlanReport) -> list[tuple[str, str, bytes]]:
    """(key, title, PNG bytes) for every plot the report has data for."""
    out = []
    for key, (title, fn) in PLOTS.items():
        png = fn(report)
        if png:
            out.append((key, title, png))
    return out
