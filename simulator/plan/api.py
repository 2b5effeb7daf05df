"""`plan(scenario, executor="local", profiles_dir=None) -> PlanReport`: search, constrain, rank.

Training: the sweep's points (hardware x devices x any field) each expand into
layouts (`parallelism: auto`) that the vectorized analytic tier costs at once;
constraints and the objective pick the best, and the best few candidates
(top by objective, the cost/time Pareto front, the best per hardware and
device count) are re-simulated with the full SimPy engine, whose numbers then
replace the analytic ones. Serving: the serving capacity search runs per
hardware. Both tiers and the serving search are pure functions of their
inputs, run as tasks on the chosen executor, so every executor gives the
same report (only `wall_s` differs).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.hardware.cluster import resolve_cluster_name
from simulator.loading import read_mapping, validate
from simulator.plan import constraints as cons
from simulator.plan.executors import DASK_CONNECT_TIMEOUT_S, parse_executor
from simulator.plan.space import sweep_points
from simulator.schema.plan import PlanReport
from simulator.schema.scenario import Scenario

TOP_K = 3            # best feasible candidates re-simulated with the full engine
PARETO_SIMULATED = 4  # at most this many Pareto points re-simulated


def _as_scenario(scenario, overrides) -> tuple[Scenario, dict, str]:
    if isinstance(scenario, Scenario):
        return scenario, scenario.model_dump(mode="json", exclude_unset=True), scenario.name
    from simulator.loading import apply_overrides, parse_set_value, resolve_relative_paths
    path = Path(scenario)
    raw = read_mapping(path)
    plain = []
    for item in overrides or []:
        key, eq, value = item.partition("=")
        if eq and key.strip().startswith("sweep.") and isinstance(raw.get("sweep", {}), dict):
            # sweep axes are dotted paths themselves: sweep.cluster.hardware=[...] sets one axis
            raw.setdefault("sweep", {})[key.strip()[len("sweep."):]] = parse_set_value(value)
        else:
            plain.append(item)
    if plain:
        raw = apply_overrides(raw, plain)
    raw = resolve_relative_paths(raw, path.resolve().parent)
    return validate(Scenario, raw, str(path)), raw, str(path)


def plan(scenario, executor: str = "local", profiles_dir=None, *, overrides: list[str] | None = None,
         top_k: int = TOP_K, simulate_best: bool = True,
         connect_timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> PlanReport:
    """Search the scenario's sweep and return the plan report (see the module docstring).

    `scenario` is a Scenario or a path to a scenario file (then `overrides`
    are `--set path=value` strings). Raises InputError on bad input and
    InfeasibleError when one constraint alone cannot be met by any candidate.
    """
    parse_executor(executor)
    sc, raw, source = _as_scenario(scenario, overrides)
    if sc.sweep is None:
        raise InputError("a plan needs a 'sweep:' section", source=source, field="sweep",
                         expected="axes such as cluster.hardware: [...], cluster.devices: [...], parallelism: auto")
    start = time.perf_counter()
    pdir = str(profiles_dir) if profiles_dir else None
    points, auto = sweep_points(raw, sc, source, pdir)
    sc = resolve_cluster_name(sc, pdir, source)
    if sc.workload.kind == "inference" and sc.serving is not None:
        from simulator.plan.serving_plan import plan_serving
        report = plan_serving(sc, points, executor, pdir, source, connect_timeout_s)
    elif sc.workload.kind == "inference":
        raise InputError("an inference plan needs a 'serving:' section (rate and SLOs)", source=source,
                         field="serving", expected="serving: {arrivals: {rate_per_s: ...}, slo: {...}}")
    else:
        from simulator.plan.training_plan import plan_training
        report = plan_training(sc, points, auto, executor, pdir, source, connect_timeout_s,
                               top_k=top_k, simulate_best=simulate_best)
    wall = time.perf_counter() - start
    return report.model_copy(update={"wall_s": round(wall, 3), "executor": executor or "local"})


def nan_to_none(x: Any):
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    return x


LISTED_TOP = 10      # best candidates listed as full rows (besides the front and the best per group)


def _best_per_group(groups: np.ndarray, order_all: np.ndarray) -> list[int]:
    """First index of each group in `order_all` (best first), groups in first-seen order."""
    seen, out = set(), []
    for i in order_all:
        g = groups[i]
        if g not in seen:
            seen.add(g)
            out.append(int(i))
    return out


def finalize(name: str, kind: str, sc: Scenario, columns: dict, candidates_fn, results_fn, source: str,
             describe, groups, table_fn, extra: dict | None = None, base_mask=None) -> PlanReport:
    """Constraints, objective, Pareto front and listed candidates from merged columns (both kinds).

    `candidates_fn(indices, feasible, violated)` builds Candidate rows for the
    listed indices only (the best, the front, the nearest, the best of each
    `groups` value); `table_fn(feasible, violated)` returns every candidate as
    columns, for candidates.csv / candidates.json.
    """
    from simulator.plan.objectives import rank
    from simulator.plan.pareto import pareto_front
    n = len(columns["devices"])
    cons.check_possible(columns, sc.constraints, describe, source)
    feasible, violated = cons.feasibility(columns, sc.constraints)
    if base_mask is not None:
        feasible = feasible & base_mask
    order = rank(columns, sc.objective, kind, mask=feasible)
    order_all = np.concatenate([order, rank(columns, sc.objective, kind, mask=~feasible)])
    tcol = "time_to_train_s" if kind == "training" else "ttft_p99_s"
    feas_idx = np.flatnonzero(feasible)
    front = [int(i) for i in feas_idx[pareto_front(np.asarray(columns[tcol], float)[feas_idx],
                                                   np.asarray(columns["cost_usd"], float)[feas_idx])]]
    near_idx = [] if order.size else [int(i) for i in cons.nearest(columns, sc.constraints)]
    listed = sorted(set([int(i) for i in order[:LISTED_TOP]] + front + near_idx
                        + _best_per_group(np.asarray(groups, dtype=object), order_all)
                        + [int(i) for i in (extra or {}).pop("listed_extra", [])]))
    rows = dict(zip(listed, candidates_fn(listed, feasible, violated)))
    best = rows[int(order[0])] if order.size else None
    reason = None
    if best is None:
        reason = cons.explain(columns, sc.constraints, violated) if n else "the search space is empty"
    pareto_rows = [rows[i] for i in front]
    return PlanReport(
        name=name, kind=kind, objective=sc.objective, candidates_evaluated=n,
        candidates_feasible=int(feasible.sum()), best=results_fn(best) if best else None,
        best_candidate=best, pareto=[results_fn(c) for c in pareto_rows], pareto_candidates=pareto_rows,
        candidates=[rows[i] for i in listed], table=table_fn(feasible, violated),
        constraints=sc.constraints.model_dump(exclude_none=True),
        infeasible_reason=reason, nearest=[rows[i] for i in near_idx], **(extra or {}))
