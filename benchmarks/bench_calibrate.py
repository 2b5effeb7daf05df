"""Calibration speed and achieved-vs-published ceilings.

    python benchmarks/bench_calibrate.py                  # time `calibrate --quick` (NumPy) here,
                                                          # then `validate` against it
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--ceilings", type=Path, default=DEFAULT_CSV)
    args = ap.parse_args(argv)
    if args.json:
        summarise(json.loads(args.json.read_text()), args.ceilings)
        return 0
    sys.path.insert(0, str(REPO))
    from simulator.calibrate.run import calibrate
    from simulator.calibrate.validate import validate
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = calibrate("numpy", quick=True, store=Path(tmp) / "s.sqlite")
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = validate("numpy", store=Path(tmp) / "s.sqlite")
        vwall = time.perf_counter() - t0
    print(f"calibrate --backend numpy --quick: {wall:.1f} s wall, {len(out.run.measurements)} measurements, "
          f"fp32 best {out.fit.peak_flops_per_s.get('fp32', 0) / 1e9:.1f} GFLOP/s, "
          f"large-array bandwidth {out.fit.bandwidth_bytes_per_s / 1e9:.1f} GB/s ({out.run.fingerprint.device})")
    print(f"validate --backend numpy: {vwall:.1f} s wall")
    print(f"{'case':20s} {'measured':>12s} {'predicted':>12s} {'error':>8s}")
    for c in report.cases:
        print(f"{c.name:20s} {c.measured_s * 1e3:9.2f} ms {c.predicted_s * 1e3:9.2f} ms {100 * c.error:+7.1f}%")
    print(f"{'mean |error|':20s} {'':>12s} {'':>12s} {100 * report.mean_abs_error:7.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
