"""Calibration speed and achieved-vs-published ceilings.

    python benchmarks/bench_calibrate.py                  # time `calibrate --quick` (NumPy) here,
                                                          # then `validate` against it
    python benchmarks/bench_calibrate.py --runs 3         # three runs: medians per case and op kind
    python benchmarks/bench_calibrate.py --json cal.json  # summarise a `capplan calibrate --json` file
        [--ceilings ../shared/reference/microbench_ceilings.csv]

For a GPU run it prints the measured best GEMM per dtype and the best
large-array copy/triad next to the best published ceilings for that device
(microbench_ceilings.csv rows: MAMF for GEMM, the H200 memcpy sweep for HBM),
with the ratio measured / published.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO.parent / "shared" / "reference" / "microbench_ceilings.csv"
# Device-name keyword -> (category, dtype keyword) rows to compare with; "H200 is the same" as
# H100 SXM for bf16 MAMF per the table note in the CSV row.
MATCH = {
    "H200": {"bf16": ("NVIDIA H100 SXM", "bf16"), "fp8": ("NVIDIA H200 SXM", "fp8"),
             "hbm": ("H200 (SXM assumed, peak 4800)", "")},
    "H100": {"bf16": ("NVIDIA H100 SXM", "bf16"), "fp8": ("NVIDIA H100 SXM", "fp8"),
             "hbm": ("H100 (SKU not stated; if SXM peak 3350)", "")},
    "A100": {"bf16": ("NVIDIA A100 SXM", "bf16"), "hbm": ("NVIDIA A100-SXM4-80GB (Tursa)", "")},
}


def ceilings(path: Path, device: str) -> dict[str, tuple[float, str]]:
    """{'bf16': (TFLOP/s, source), 'hbm': (GB/s, source)} for a device name."""
    key = next((k for k in MATCH if k in device.upper()), None)
    if key is None or not path.exists():
        return {}
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    out = {}
    for what, (accel, dtype) in MATCH[key].items():
        for r in rows:
            cat_ok = (r["category"] == "gemm") if what != "hbm" else (r["category"] == "hbm_bandwidth")
            if cat_ok and r["accelerator"] == accel and dtype in r["dtype"]:
                out[what] = (float(r["value"]), f"{r['test']} [{r['source']}]")
                break
    return out


def summarise(data: dict, csv_path: Path) -> None:
    ms = data["measurements"]
    device = data["fingerprint"]["device"]
    ref = ceilings(csv_path, device)
    print(f"device: {device}  backend: {data['backend']}  run {data['run_id']}  wall {data['wall_s']:.1f} s")
    print(f"{'test':10s} {'dtype':6s} {'best':>14s} {'at':>22s} {'published':>12s} {'ratio':>7s}")
    for dtype in sorted({m["dtype"] for m in ms if m["test"] == "gemm"}):
        best = max((m for m in ms if m["test"] == "gemm" and m["dtype"] == dtype), key=lambda m: m["flops_per_s"])
        pub = ref.get(dtype)
        ratio = f"{best['flops_per_s'] / 1e12 / pub[0]:.3f}" if pub else "-"
        print(f"{'gemm':10s} {dtype:6s} {best['flops_per_s'] / 1e12:10.1f} TF/s {best['shape']:>22s} "
              f"{(f'{pub[0]:.1f}' if pub else '-'):>12s} {ratio:>7s}")
    big = max(m["bytes"] for m in ms if m["test"] in ("copy", "triad"))
    for test in ("copy", "add", "triad"):
        cands = [m for m in ms if m["test"] == test and m["bytes"] >= big / 8]
        if not cands:
            continue
        best = max(cands, key=lambda m: m["bytes_per_s"])
        pub = ref.get("hbm")
        ratio = f"{best['bytes_per_s'] / 1e9 / pub[0]:.3f}" if pub else "-"
        print(f"{test:10s} {'fp32':6s} {best['bytes_per_s'] / 1e9:10.1f} GB/s {best['shape']:>22s} "
              f"{(f'{pub[0]:.0f}' if pub else '-'):>12s} {ratio:>7s}")
    for what, (value, src) in ref.items():
        print(f"  published {what}: {value} ({src[:160]})")


def one_run():
    """calibrate --quick into a fresh store, then validate: (calibrate s, outcome, validate s, report)."""
    from simulator.calibrate.run import calibrate
    from simulator.calibrate.validate import validate
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = calibrate("numpy", quick=True, store=Path(tmp) / "s.sqlite")
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = validate("numpy", store=Path(tmp) / "s.sqlite")
        return wall, out, time.perf_counter() - t0, report


def by_kind(cases) -> dict[str, dict[str, float]]:
    """Per op kind over the cases: ops, measured_s, predicted_s, error (as validate's by_kind)."""
    out: dict[str, dict[str, float]] = {}
    for c in cases:
        for kind, row in c.by_kind.items():
            agg = out.setdefault(kind, {"ops": 0, "measured_s": 0.0, "predicted_s": 0.0})
            for key in agg:
                agg[key] += row[key]
    for agg in out.values():
        agg["error"] = agg["predicted_s"] / agg["measured_s"] - 1.0
    return dict(sorted(out.items()))


def print_runs(runs) -> None:
    import statistics as st
    from simulator.calibrate.fit import residual_summary
    med = st.median
    walls = [w for w, _, _, _ in runs]
    out = runs[-1][1]
    print(f"calibrate --backend numpy --quick: {med(walls):.1f} s wall (median of {len(runs)}: "
          f"{', '.join(f'{w:.1f}' for w in walls)}), {len(out.run.measurements)} measurements, "
          f"fp32 peak {out.fit.peak_flops_per_s.get('fp32', 0) / 1e9:.1f} GFLOP/s, "
          f"DRAM bandwidth {out.fit.bandwidth_bytes_per_s / 1e9:.1f} GB/s ({out.run.fingerprint.device})")
    print("fit residuals of the last run (fitted model time / measured - 1):")
    for name, r in residual_summary(out.fit.residuals).items():
        print(f"  {name:16s} {r['points']:3d} points  median |error| {100 * r['median_abs_error']:5.1f}%  "
              f"max {100 * r['max_abs_error']:5.1f}%")
    print(f"validate --backend numpy: {med([v for _, _, v, _ in runs]):.1f} s wall")
    print(f"{'case':20s} {'measured':>12s} {'predicted':>12s} {'error':>8s}   per run")
    reports = [r for _, _, _, r in runs]
    for i, c in enumerate(reports[0].cases):
        cs = [r.cases[i] for r in reports]
        errs = [c2.error for c2 in cs]
        print(f"{c.name:20s} {med([x.measured_s for x in cs]) * 1e3:9.2f} ms "
              f"{med([x.predicted_s for x in cs]) * 1e3:9.2f} ms {100 * med(errs):+7.1f}%   "
              + " ".join(f"{100 * e:+.1f}%" for e in errs))
    means = [r.mean_abs_error for r in reports]
    print(f"{'mean |error|':20s} {'':>12s} {'':>12s} {100 * med(means):7.1f}%   "
          + " ".join(f"{100 * m:.1f}%" for m in means))
    print("per op kind over the cases (median error of the runs):")
    kinds = [by_kind(r.cases) for r in reports]
    for kind in kinds[0]:
        rows = [k[kind] for k in kinds if kind in k]
        print(f"  {kind:18s} {rows[0]['ops']:3d} ops {med([x['measured_s'] for x in rows]) * 1e3:9.3f} ms "
              f"measured {med([x['predicted_s'] for x in rows]) * 1e3:9.3f} ms predicted "
              f"{100 * med([x['error'] for x in rows]):+7.1f}%")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--ceilings", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--runs", type=int, default=1, help="calibrate + validate this many times (medians)")
    args = ap.parse_args(argv)
    if args.json:
        summarise(json.loads(args.json.read_text()), args.ceilings)
        return 0
    sys.path.insert(0, str(REPO))
    print_runs([one_run() for _ in range(max(1, args.runs))])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
