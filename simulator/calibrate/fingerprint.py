"""Device fingerprints: what a calibration ran on, as plain strings.

CPU: model name, logical CPUs usable by this process, BLAS threads, cache
sizes (from /sys or lscpu-equivalent sysfs files), NumPy and BLAS versions.
GPU fingerprints are built in bench_cupy.py (name, SMs, clocks, driver, CUDA,
CuPy) from the CUDA runtime's device properties.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from simulator.schema.calibration import Fingerprint


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def blas_threads() -> int:
    """Threads the BLAS will use now: threadpoolctl's report, else the usual env vars, else
    one per usable CPU."""
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(max(counts))
    except Exception:  # noqa: BLE001 - threadpoolctl missing or unable to inspect
        pass
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return usable_cpus()


def cache_sizes_bytes() -> dict[str, int]:
    """Per-level data/unified cache sizes of CPU 0 from sysfs (empty where unavailable)."""
    out: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.exists():
        return out
    for index in sorted(base.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        out[f"L{level}"] = _parse_cache_size(size)
    return out


def _parse_cache_size(text: str) -> int:
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(text)


def last_level_cache_bytes(default: int = 32 * 1024**2) -> int:
    sizes = cache_sizes_bytes()
    return max(sizes.values()) if sizes else default


def physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: no dict mode
        return "unknown"


def numpy_fingerprint() -> Fingerprint:
    threads = blas_threads()
    caches = cache_sizes_bytes()
    fields = {
        "cpu_model": cpu_model(),
        "usable_cpus": str(usable_cpus()),
        "blas_threads": str(threads),
        "numpy": np.__version__,
        "blas": blas_name(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "memory_total_bytes": str(physical_memory_bytes()),
    }
    fields.update({f"cache_{k}_bytes": str(v) for k, v in caches.items()})
    return Fingerprint(backend="numpy", device=f"{cpu_model()} ({threads} BLAS threads)", fields=fields)


def _cpu_times() -> tuple[float, float] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat (None where unavailable)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)      # idle + iowait
    return idle, sum(values[:8])


def others_cpu_fraction(window_s: float = 0.3) -> float | None:
    """Fraction of the machine's CPU time used by other processes while this one sleeps."""
    import time
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window_s)
    second = _cpu_times()
    total = second[1] - first[1]
    if total <= 0:
        return None
    return max(0.0, 1.0 - (second[0] - first[0]) / total)


def busy_notice(threshold: float = 0.25) -> str | None:
    """A one-line warning when other processes already use the CPUs (sampled for 0.3 s from
    /proc/stat, else the 1-minute load average); None on a quiet machine."""
    cpus = usable_cpus()
    used = others_cpu_fraction()
    if used is None:
        try:
            used = os.getloadavg()[0] / cpus
        except (OSError, AttributeError):
            return None
    if used <= threshold:
        return None
    return (f"machine busy: other processes use {100 * min(used, 1.0):.0f}% of the {cpus} CPUs; "
            f"timings are inflated and noisy (measure on a quiet machine, or use --statistic min)")
