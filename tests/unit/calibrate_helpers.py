"""Shared by the calibrate tests: a CPU template profile folder independent of bundled data."""
from __future__ import annotations

from pathlib import Path

CPU_TEMPLATE = """\
name: cpu-generic
vendor: generic
kind: cpu
peak_flops_per_s: {fp32: 1 TFLOPS, fp64: 0.5 TFLOPS}
memory: {capacity_bytes: 16 GiB, bandwidth_bytes_per_s: 50 GB/s}
compute_units: 8
launch_overhead_s: 1 us
power: {tdp_w: 100 W}
sources: {peak_flops_per_s.fp32: t, peak_flops_per_s.fp64: t, memory.capacity_bytes: t,
  memory.bandwidth_bytes_per_s: t, compute_units: t, launch_overhead_s: t, power.tdp_w: t}
"""


def write_cpu_template(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu-generic.yaml").write_text(CPU_TEMPLATE)
    return folder
