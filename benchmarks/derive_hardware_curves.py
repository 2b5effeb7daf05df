"""Regenerate the datasheet efficiency and collective curves of the bundled profiles.

Reads benchmarks/hardware_curve_inputs.yaml (published ceilings with sources),
derives the curves with simulator/hardware/derive.py and rewrites the blocks
between `# >>> generated: KEY` and `# <<< generated: KEY` in each
hardware_profiles/<name>.yaml (KEY is efficiency, scale_up or scale_out).
Everything else in a profile is hand-written and left alone.

    /work/venv/bin/python benchmarks/derive_hardware_curves.py [--check] [NAME...]

--check exits 1 if any file would change (used by the tests' reproducibility check).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulator.hardware import derive  # noqa: E402
from simulator.units import parse_quantity  # noqa: E402

INPUTS = REPO / "benchmarks" / "hardware_curve_inputs.yaml"
PROFILES = REPO / "hardware_profiles"


def sweep_curve(sweep: dict) -> tuple[list[float], list[float], float]:
    """(message sizes, bandwidth fractions, per-step alpha) of one published sweep."""
    n = int(sweep["ranks"])
    link = parse_quantity(sweep["link"], "bytes_per_s")
    if "size_bytes" in sweep:
        sizes = [float(s) for s in sweep["size_bytes"]]
        times = [t * 1e-6 for t in sweep["time_us"]]
    else:
        sizes = [parse_quantity(s, "bytes") for s in sweep["size"]]
        times = list(derive.busbw_to_time_s(sizes, [b * 1e9 for b in sweep["busbw_GBps"]], n))
    lo = parse_quantity(sweep.get("alpha_min_size", 0), "bytes")
    keep = [i for i, s in enumerate(sizes) if s >= lo]
    alpha = derive.ring_alpha_s([sizes[i] for i in keep], [times[i] for i in keep], n,
                                points=int(sweep.get("alpha_points", 3 if len(keep) > 6 else 2)))
    fracs = derive.bandwidth_fractions([sizes[i] for i in keep], [times[i] for i in keep], n, link, alpha)
    return [sizes[i] for i in keep], fracs, alpha


def plateau_of(spec: dict, peak: float, specs: dict, peaks: dict | None = None) -> tuple[float, str]:
    """Plateau fraction and its source text for one dtype entry (`like` uses the other dtype's peak)."""
    if "like" in spec:
        other = spec["like"]
        base, base_src = plateau_of(specs[other], (peaks or {}).get(other, peak), specs, peaks)
        return base, f"{spec['source']} [{base_src}]"
    if "achieved" in spec:
        dim = "bytes_per_s" if "B/s" in str(spec["achieved"]) else "flops_per_s"
        achieved = parse_quantity(spec["achieved"], dim)
        frac = min(achieved / peak, 1.0)
        capped = " (measured above the datasheet peak; capped at 1.0)" if achieved > peak else ""
        return frac, f"{spec['source']}; plateau {achieved:.4g}/{peak:.4g} = {frac:.3f}{capped}"
    return float(spec["fraction"]), spec["source"]


def efficiency_block(raw: dict, entry: dict, inputs: dict) -> list[dict]:
    t0 = float(inputs["latency_floor"]["t0_s"])  # YAML 1.1 reads 2.6e-6 as a string
    t0_src = inputs["latency_floor"]["source"]
    cs, ms = inputs["sizes"]["compute_flops"], inputs["sizes"]["memory_bytes"]
    fsizes = derive.log_sizes(cs["lo"], cs["hi"], cs["count"])
    msizes = derive.log_sizes(ms["lo"], ms["hi"], ms["count"])
    peaks = {k: parse_quantity(v, "flops_per_s") for k, v in raw["peak_flops_per_s"].items()}
    curves = []
    matmul = entry.get("matmul", {})
    plateaus = {}
    for dtype, spec in matmul.items():
        if dtype not in peaks:
            raise SystemExit(f"{raw['name']}: matmul {dtype} has no peak_flops_per_s.{dtype}")
        plateaus[dtype] = plateau_of(spec, peaks[dtype], matmul, peaks)
    rule = f"eff(F) = c/(1 + c*peak*t0/F) with t0 = {t0 * 1e6:.2g} us ({t0_src})"
    for dtype, (c, src) in plateaus.items():
        curves.append(_curve("matmul", dtype, fsizes, derive.latency_falloff(c, peaks[dtype], t0, fsizes), t0,
                             f"plateau c = {c:.3f} from {src}; {rule}"))
    base = entry.get("conv_from")
    if base:
        c, src = plateaus[base]
        pts = derive.latency_falloff(c, peaks[base], t0, fsizes)
        for op in ("conv", "attention"):
            why = ("no published conv ceiling: convolutions run as implicit GEMM, so" if op == "conv" else
                   "no published attention-kernel ceiling: fused attention is GEMM-bound, so")
            curves.append(_curve(op, "any", fsizes, pts, t0,
                                 f"{why} the {base} matmul plateau c = {c:.3f} is used ({src}); {rule}"))
    mem = entry.get("memory")
    if mem:
        bw = parse_quantity(raw["memory"]["bandwidth_bytes_per_s"], "bytes_per_s")
        c, src = plateau_of(mem, bw, {})
        rule_m = rule.replace("peak", "bandwidth").replace("/F", "/bytes")
        curves.append(_curve("memory", "any", msizes, derive.latency_falloff(c, bw, t0, msizes), t0,
                             f"plateau c = {c:.3f} from {src}; {rule_m}"))
    return curves


def _curve(op, dtype, sizes, eff, t0, source):
    return {"op_class": op, "dtype": dtype, "origin": "datasheet", "latency_s": t0,
            "size": sizes, "efficiency": eff, "source": source}


def link_block(raw: dict, tier: str, spec: dict, inputs: dict) -> dict:
    sweep = inputs["sweeps"][spec["sweep"]]
    sizes, fracs, alpha = sweep_curve(sweep)
    src = sweep["source"].strip()
    if "plateau_achieved" in spec:
        link = parse_quantity(raw[tier]["bandwidth_bytes_per_s"], "bytes_per_s")
        target = parse_quantity(spec["plateau_achieved"], "bytes_per_s") / link
        fracs = derive.scaled_shape(fracs, target)
        src = (f"shape of {spec['sweep']} ({src}) rescaled so the largest message reaches "
               f"{target:.3f} of this tier: {spec['plateau_source']}")
    elif "plateau_fraction" in spec:
        fracs = derive.scaled_shape(fracs, float(spec["plateau_fraction"]))
        src = f"shape of {spec['sweep']} ({src}) rescaled to plateau {spec['plateau_fraction']}: {spec['plateau_source']}"
    if "analogue" in spec:
        src = f"ANALOGUE: {spec['analogue']}. {src}"
    latency_src = (f"per-step alpha of the ring all-reduce: intercept of the smallest messages of {spec['sweep']} "
                   f"divided by 2(n-1) (simulator/hardware/derive.py ring_alpha_s)")
    if "analogue" in spec:
        latency_src = f"ANALOGUE ({spec['analogue']}): {latency_src}"
    curve = {"message_bytes": sizes, "bus_bw_fraction": fracs,
             "source": f"{src}; alpha-beta bandwidth term after removing alpha (derive.bandwidth_fractions)"}
    return {"latency_s": float(f"{alpha:.4g}"), "collective": curve, "_latency_source": latency_src}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


def dump(obj, indent: int) -> list[str]:
    text = yaml.dump(obj, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=None, width=100000,
                     allow_unicode=True)
    return [(" " * indent + line) if line else line for line in text.splitlines()]


def replace_block(lines: list[str], key: str, new: list[str]) -> list[str]:
    start = next((i for i, ln in enumerate(lines) if ln.strip() == f"# >>> generated: {key}"), None)
    if start is None:
        raise SystemExit(f"missing marker '# >>> generated: {key}'")
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == f"# <<< generated: {key}")
    return lines[:start + 1] + new + lines[end:]


def regenerate(name: str, entry: dict, inputs: dict) -> tuple[str, str]:
    path = PROFILES / f"{name}.yaml"
    old = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(old)
    lines = old.splitlines()
    lines = replace_block(lines, "efficiency", dump({"efficiency": efficiency_block(raw, entry, inputs)}, 0))
    for tier in ("scale_up", "scale_out"):
        if tier in entry:
            blk = link_block(raw, tier, entry[tier], inputs)
            src = blk.pop("_latency_source")
            marker = next(ln for ln in lines if ln.strip() == f"# >>> generated: {tier}")
            ind = len(marker) - len(marker.lstrip())
            lines = replace_block(lines, tier, dump(blk, ind))
            lines = replace_block(lines, f"{tier}.source", [f"  {tier}.latency_s: {json.dumps(src)}"])
    return old, "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    inputs = yaml.safe_load(INPUTS.read_text(encoding="utf-8"))
    changed = []
    for name, entry in inputs["profiles"].items():
        if args.names and name not in args.names:
            continue
        old, new = regenerate(name, entry, inputs)
        if old != new:
            changed.append(name)
            if not args.check:
                (PROFILES / f"{name}.yaml").write_text(new, encoding="utf-8")
    verb = "would change" if args.check else "rewrote"
    print(f"{verb}: {', '.join(changed) if changed else 'nothing'}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
