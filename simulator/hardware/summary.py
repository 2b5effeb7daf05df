"""Plain-data summaries of profiles for `capplan hardware list/compare` (SI units, pure functions)."""
from __future__ import annotations

from simulator.schema.hardware import HardwareProfile


def headline_dtype(profile: HardwareProfile) -> str | None:
    """The 16-bit training dtype a device is usually compared on: bf16, else fp16, else fp32."""
    for dtype in ("bf16", "fp16", "fp32"):
        if dtype in profile.peak_flops_per_s:
            return dtype
    return next(iter(profile.peak_flops_per_s), None)


def summary_row(profile: HardwareProfile) -> dict:
    """One row of `hardware list`: name, peaks, memory, bandwidth, link, TDP, price (None = not published)."""
    up, out = profile.scale_up, profile.scale_out
    return {
        "name": profile.name,
        "vendor": profile.vendor,
        "kind": profile.kind,
        "bf16_flops_per_s": profile.peak_flops_per_s.get("bf16"),
        "headline_dtype": headline_dtype(profile),
        "headline_flops_per_s": profile.peak_flops_per_s.get(headline_dtype(profile)),
        "memory_capacity_bytes": profile.memory.capacity_bytes,
        "memory_bandwidth_bytes_per_s": profile.memory.bandwidth_bytes_per_s,
        "scale_up_kind": up.kind if up else None,
        "scale_up_bandwidth_bytes_per_s": up.bandwidth_bytes_per_s if up else None,
        "scale_up_domain_size": (up.domain_size if up else None),
        "scale_out_bandwidth_bytes_per_s": out.bandwidth_bytes_per_s if out else None,
        "tdp_w": profile.power.tdp_w,
        "cloud_usd_per_hour": profile.price.cloud_usd_per_hour,
        "list_usd": profile.price.list_usd,
        "provenance": profile.provenance,
    }


# (key, label, unit, getter): the metrics `hardware compare` puts side by side.
_METRICS = [
    ("fp32_flops_per_s", "FP32 peak", "TFLOP/s", lambda p: p.peak_flops_per_s.get("fp32")),
    ("tf32_flops_per_s", "TF32 peak", "TFLOP/s", lambda p: p.peak_flops_per_s.get("tf32")),
    ("bf16_flops_per_s", "BF16 peak (dense)", "TFLOP/s", lambda p: p.peak_flops_per_s.get("bf16")),
    ("fp16_flops_per_s", "FP16 peak (dense)", "TFLOP/s", lambda p: p.peak_flops_per_s.get("fp16")),
    ("fp8_flops_per_s", "FP8 peak (dense)", "TFLOP/s", lambda p: p.peak_flops_per_s.get("fp8")),
    ("int8_ops_per_s", "INT8 peak (dense)", "TOP/s", lambda p: p.peak_flops_per_s.get("int8")),
    ("memory_capacity_bytes", "memory (usable)", "GiB", lambda p: p.memory.capacity_bytes),
    ("memory_bandwidth_bytes_per_s", "memory bandwidth", "GB/s", lambda p: p.memory.bandwidth_bytes_per_s),
    ("scale_up_bandwidth_bytes_per_s", "scale-up link / dir", "GB/s",
     lambda p: p.scale_up.bandwidth_bytes_per_s if p.scale_up else None),
    ("scale_up_domain_size", "scale-up domain", "devices",
     lambda p: (p.scale_up.domain_size if p.scale_up else None)),
    ("scale_out_bandwidth_bytes_per_s", "scale-out / device / dir", "GB/s",
     lambda p: p.scale_out.bandwidth_bytes_per_s if p.scale_out else None),
    ("tdp_w", "TDP", "W", lambda p: p.power.tdp_w),
    ("cloud_usd_per_hour", "cloud price", "USD/h", lambda p: p.price.cloud_usd_per_hour),
    ("list_usd", "list price", "USD", lambda p: p.price.list_usd),
    ("headline_flops_per_s_per_w", "16-bit peak per watt", "TFLOP/s/W",
     lambda p: _ratio(p.peak_flops_per_s.get(headline_dtype(p)), p.power.tdp_w)),
    ("headline_flops_per_usd_hour", "16-bit peak per USD/h", "TFLOP/s per USD/h",
     lambda p: _ratio(p.peak_flops_per_s.get(headline_dtype(p)), p.price.cloud_usd_per_hour)),
]

# SI value -> display unit
UNIT_SCALE = {"TFLOP/s": 1e12, "TOP/s": 1e12, "GiB": 2.0**30, "GB/s": 1e9, "W": 1.0, "USD/h": 1.0,
              "USD": 1.0, "devices": 1.0, "TFLOP/s/W": 1e12, "TFLOP/s per USD/h": 1e12}


def _ratio(a, b):
    return a / b if a is not None and b else None


def compare(profiles: list[HardwareProfile]) -> list[dict]:
    """Metrics side by side: [{key, label, unit, values{name: SI value}, ratio_to_first{name: x}}].

    Ratios are value / value of the first profile (None where either is missing).
    Metrics no profile has are dropped.
    """
    rows = []
    first = profiles[0].name
    for key, label, unit, get in _METRICS:
        values = {p.name: get(p) for p in profiles}
        if all(v is None for v in values.values()):
            continue
        base = values[first]
        ratios = {n: (v / base if v is not None and base else None) for n, v in values.items()}
        rows.append({"key": key, "label": label, "unit": unit, "values": values, "ratio_to_first": ratios})
    return rows
