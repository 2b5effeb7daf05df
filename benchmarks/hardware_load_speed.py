"""Speed of loading hardware profiles and building clusters (prints a table; not part of the tests).

    /work/venv/bin/python benchmarks/hardware_load_speed.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.hardware import load  # noqa: E402
from simulator.hardware.cluster import build_cluster, tier_for_group  # noqa: E402
from simulator.schema.scenario import Cluster as ClusterSpec  # noqa: E402


def timed(fn, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    names = load.list_profiles()
    load._load_cached.cache_clear()
    cold = timed(lambda: [load.load_hardware(n) for n in names], 1) / len(names)
    warm = timed(lambda: [load.load_hardware(n) for n in names], 20) / len(names)
    spec = ClusterSpec(hardware="a100-sxm4-80gb", devices=1024)
    cluster = build_cluster(spec)
    rows = [
        ("load_hardware, first load (per profile)", cold),
        ("load_hardware, cached (per profile)", warm),
        ("build_cluster a100 x1024", timed(lambda: build_cluster(spec), 200)),
        ("tier_for_group (64 ranks, stride 8)", timed(lambda: tier_for_group(cluster, 64, 8), 2000)),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'operation':<{width}}  time")
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds * 1e6:9.1f} us")


if __name__ == "__main__":
    main()
