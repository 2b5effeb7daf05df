"""local, processes and dask give the same report (apart from wall time and the executor name)."""
from __future__ import annotations

import pytest

from simulator.errors import InputError
from simulator.plan.executors import parse_executor, run_tasks
from simulator.schema.scenario import Scenario

SMALL = Scenario.model_validate({
    "name": "exec", "workload": {"model": "bert-base", "seq_len": 128, "global_batch": 16, "micro_batch": 16,
                                 "steps": 10},
    "cluster": {"hardware": "a100-sxm4-80gb", "devices": 1},
    "sweep": {"cluster.hardware": ["a100-sxm4-80gb", "h100-sxm5-80gb"], "cluster.devices": [1, 2],
              "parallelism": "auto"}})


def _square(x):
    return x * x


def test_parse_executor():
    assert parse_executor("dask=10.0.0.1:8786") == ("dask", "10.0.0.1:8786")
    assert parse_executor("processes=3") == ("processes", "3")
    assert parse_executor(None) == ("local", None)
    for bad in ("threads", "processes=0", "local=4"):
        with pytest.raises(InputError):
            parse_executor(bad)


def test_run_tasks_keeps_order():
    assert run_tasks(_square, range(7), "processes=2") == [x * x for x in range(7)]


def _strip(report):
    return report.model_dump(mode="json", exclude={"wall_s", "executor"})


def test_same_report_under_every_executor():
    pytest.importorskip("dask.distributed")
    from simulator.plan.api import plan
    base = _strip(plan(SMALL, executor="local", top_k=1))
    assert base["candidates_evaluated"] > 0 and base["best"] is not None
    assert _strip(plan(SMALL, executor="processes", top_k=1)) == base
    assert _strip(plan(SMALL, executor="dask", top_k=1)) == base


def test_unreachable_dask_address_fails_within_the_timeout():
    pytest.importorskip("dask.distributed")
    import time
    t0 = time.monotonic()
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_tasks(_square, [1, 2], "dask=tcp://127.0.0.1:9", connect_timeout_s=1.0)
    assert time.monotonic() - t0 < 15
