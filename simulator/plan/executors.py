"""Executors: run independent planner tasks locally, on all cores, or on a Dask cluster.

Every task is a pure function of picklable inputs, results come back in task
order, and nothing depends on which worker ran what, so `local`,
`processes` and `dask` give identical results. Spec strings (CLI
`--executor`): `local` (default), `processes` (all cores, or `processes=N`),
`dask` (a LocalCluster on this machine) or `dask=ADDRESS` (an existing
scheduler, e.g. tcp://10.0.0.5:8786). Connecting to a scheduler waits at most
DASK_CONNECT_TIMEOUT_S seconds, then fails with one clear line.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from simulator.errors import InputError

DASK_CONNECT_TIMEOUT_S = 10.0
KINDS = ("local", "processes", "dask")


def parse_executor(spec: str | None) -> tuple[str, str | None]:
    """'dask=tcp://h:8786' -> ('dask', 'tcp://h:8786'); 'local' -> ('local', None)."""
    spec = (spec or "local").strip()
    kind, _, arg = spec.partition("=")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InputError(f"unknown executor '{spec}'", source="--executor",
                         expected="local, processes[=N], dask or dask=ADDRESS")
    arg = arg.strip() or None
    if kind == "processes" and arg is not None and not (arg.isdigit() and int(arg) > 0):
        raise InputError(f"'{spec}': the process count must be a positive integer", source="--executor",
                         expected="processes or processes=N")
    if kind == "local" and arg:
        raise InputError(f"'{spec}': local takes no argument", source="--executor", expected="local")
    return kind, arg


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], executor: str | None = "local",
              connect_timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> list:
    """fn(task) for every task, in task order, on the chosen executor."""
    kind, arg = parse_executor(executor)
    tasks = list(tasks)
    if not tasks:
        return []
    if kind == "local" or (kind == "processes" and len(tasks) == 1):
        return [fn(t) for t in tasks]
    if kind == "processes":
        return _run_processes(fn, tasks, int(arg) if arg else (os.cpu_count() or 1))
    return _run_dask(fn, tasks, arg, connect_timeout_s)


def _run_processes(fn, tasks, workers: int) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(tasks))), mp_context=ctx) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


def _dask_client(address: str | None, timeout_s: float):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("the dask executor needs dask.distributed", source="--executor",
                         expected="pip install 'capplan[distributed]'") from None
    import logging
    if address is None:
        cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1,
                               processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    if "://" not in address:
        address = f"tcp://{address}"
    try:
        return Client(address, timeout=f"{timeout_s}s"), None
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address} within "
                         f"{timeout_s:g} s ({reason[:120]})", source="--executor",
                         expected="a running dask scheduler address, or plain 'dask' for a local cluster") from None


def _run_dask(fn, tasks, address: str | None, timeout_s: float) -> list:
    client, cluster = _dask_client(address, timeout_s)
    try:
        futures = client.map(fn, tasks, pure=False)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
