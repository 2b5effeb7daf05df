"""Serving plans: the serving capacity search per sweep point, ranked and costed like training.

For each point of the sweep (one hardware, plus any other swept field) the
serving helper's `capacity_search` finds, per tensor-parallel size, the fewest
replicas meeting the SLOs; each (hardware, tp) row becomes a candidate. Costs
are per hour of serving at the scenario's arrival rate: `cost_usd` is USD per
hour (so `budget_usd` bounds the hourly cost), `energy_kwh` and `co2_kg` per
hour, and `usd_per_million_tokens` is per million output tokens. The SLOs of
`constraints:` are copied into `serving.slo` when the latter leaves them out.
"""
from __future__ import annotations

import numpy as np

from simulator.errors import InfeasibleError
from simulator.plan import tco as tco_mod
from simulator.plan.executors import run_tasks
from simulator.schema.plan import Candidate
from simulator.schema.scenario import Scenario

COLUMNS = ("devices", "tp", "replicas", "ttft_p99_s", "tpot_p99_s", "output_tokens_per_s", "cost_usd",
           "usd_per_million_tokens", "energy_kwh", "co2_kg", "power_kw", "device_hours", "fits", "row_ok")


def with_constraint_slos(sc: Scenario) -> Scenario:
    """serving.slo completed from constraints.ttft_p99_s / tpot_p99_s."""
    slo = sc.serving.slo.model_dump()
    for k in ("ttft_p99_s", "tpot_p99_s"):
        if slo.get(k) is None and getattr(sc.constraints, k) is not None:
            slo[k] = getattr(sc.constraints, k)
    data = sc.model_dump(mode="json", exclude={"sweep"})
    data["serving"]["slo"] = slo
    return Scenario.model_validate(data)


def capacity_task(args) -> list[dict]:
    """capacity_search for one sweep point (pure; any executor). Rows as JSON-able dicts."""
    from simulator.serving.capacity import capacity_search
    scen_json, pdir = args
    sc = Scenario.model_validate(scen_json)
    rows = capacity_search(sc, [sc.cluster.hardware], pdir)
    return [r.model_dump(mode="json", exclude={"result"}) for r in rows]


def _columns(rows: list[dict], scen: list[Scenario], profiles: dict) -> dict:
    n = len(rows)
    cols = {k: np.full(n, np.nan) for k in COLUMNS}
    for i, (r, sc) in enumerate(zip(rows, scen)):
        prof = profiles[r["hardware"]]
        devices = r["devices"] if r.get("devices") else r["tp"] * (r.get("replicas") or 1)
        cols["devices"][i] = devices
        cols["tp"][i] = r["tp"]
        cols["replicas"][i] = r.get("replicas") or np.nan
        cols["row_ok"][i] = 1.0 if r["feasible"] else 0.0
        cols["fits"][i] = 0.0 if (r.get("reason") or "").startswith("does not fit") else 1.0
        if not r["feasible"]:
            continue
        for k in ("ttft_p99_s", "tpot_p99_s", "output_tokens_per_s"):
            cols[k][i] = r[k] if r.get(k) is not None else np.nan
        t = tco_mod.tco(prof, sc.costs, devices, 3600.0)   # one hour of serving
        for k in ("cost_usd", "energy_kwh", "co2_kg", "power_kw", "device_hours"):
            cols[k][i] = float(t[k])
        tok_h = (r.get("output_tokens_per_s") or 0.0) * 3600.0
        cols["usd_per_million_tokens"][i] = cols["cost_usd"][i] / tok_h * 1e6 if tok_h > 0 else np.nan
    return cols


def _table(cols, rows, feasible, violated) -> dict:
    from simulator.plan.training_plan import sig_array
    n = len(rows)
    t = {"id": list(range(n)), "hardware": [r["hardware"] for r in rows]}
    for k in COLUMNS:
        if k in ("row_ok",):
            continue
        t[k] = sig_array(np.where(np.isfinite(cols[k]), cols[k], np.nan))
    t["feasible"] = np.asarray(feasible).tolist()
    t["reason"] = [r.get("reason") or "" for r in rows]
    names = list(violated)
    t["violations"] = [";".join(k for k in names if violated[k][i]) for i in range(n)]
    return t


def _candidates(cols, idx, rows, points, owners, feasible, violated) -> list[Candidate]:
    from simulator.plan.api import nan_to_none
    from simulator.plan.constraints import violations_of
    out = []
    for i in idx:
        r = rows[i]
        v = violations_of(i, violated)
        if not r["feasible"]:
            v = ["slo"] + [x for x in v if x not in ("ttft_p99_s", "tpot_p99_s")]
        g = {k: nan_to_none(float(cols[k][i])) for k in COLUMNS}
        out.append(Candidate.model_construct(
            id=i, kind="serving", tier="capacity", hardware=r["hardware"], devices=int(cols["devices"][i]),
            overrides=points[owners[i]][0], tp=int(r["tp"]), pp=int(r.get("pp") or 1), dp=1, cp=1, ep=1,
            micro_batch=1, recompute="none", zero=0, schedule="1f1b", virtual_stages=1, sequence_parallel=False,
            replicas=r.get("replicas"), ttft_p99_s=g["ttft_p99_s"], tpot_p99_s=g["tpot_p99_s"],
            output_tokens_per_s=g["output_tokens_per_s"], cost_usd=g["cost_usd"], energy_kwh=g["energy_kwh"],
            co2_kg=g["co2_kg"], power_kw=g["power_kw"], device_hours=g["device_hours"],
            usd_per_million_tokens=g["usd_per_million_tokens"], fits=bool(cols["fits"][i]),
            feasible=bool(feasible[i]) and r["feasible"], violations=v, note=r.get("reason"),
            step_time_s=None, tokens_per_s=None, mfu=None, compute_s=None, exposed_comm_s=None,
            pipeline_bubble_s=None, optimizer_s=None, time_to_train_s=None, memory_bytes_per_device=None,
            capacity_bytes=None, price_source=None))
    return out


def _result_of(c: Candidate) -> dict:
    return {"hardware": c.hardware, "devices": c.devices, "tp": c.tp, "replicas": c.replicas,
            "ttft_s": {"p99": c.ttft_p99_s}, "tpot_s": {"p99": c.tpot_p99_s},
            "output_tokens_per_s": c.output_tokens_per_s, "usd_per_hour": c.cost_usd,
            "usd_per_million_output_tokens": c.usd_per_million_tokens, "energy_kwh_per_hour": c.energy_kwh,
            "slo_attained": c.feasible, "candidate_id": c.id, "plan_tier": c.tier}


def plan_serving(sc, points, executor, pdir, source, timeout):
    from simulator.plan.api import finalize
    from simulator.plan.training_plan import load_profile
    from simulator.serving.capacity import unreachable_error
    from simulator.schema.inference import CapacityRow
    profiles = {}
    for _, p in points:
        if p.cluster.hardware not in profiles:
            profiles[p.cluster.hardware] = load_profile(p.cluster.hardware, pdir, f"{source} sweep")
    scen = [with_constraint_slos(p) for _, p in points]
    parts = run_tasks(capacity_task, [(s.model_dump(mode="json"), pdir) for s in scen], executor, timeout)
    rows, owners = [], []
    for j, part in enumerate(parts):
        rows += part
        owners += [j] * len(part)
    if not any(r["feasible"] for r in rows):
        err = unreachable_error([CapacityRow.model_validate(r) for r in rows])
        raise InfeasibleError(err.message, source=source, field=err.field, expected=err.expected)
    cols = _columns(rows, [scen[j] for j in owners], profiles)
    # rows that cannot meet the SLOs count as violating them (excess inf in the SLO columns)
    prices = tco_mod.shared_price_lines(sc.costs)
    for prof in profiles.values():
        prices += tco_mod.price_lines(prof, sc.costs)

    def describe(i):
        return f"{rows[i]['hardware']} x {int(cols['devices'][i])} (tp{rows[i]['tp']})"

    ok_rows = cols["row_ok"] > 0
    for k in ("ttft_p99_s", "tpot_p99_s", "cost_usd"):
        cols[k] = np.where(ok_rows, cols[k], np.inf)
    notes = ["cost_usd, energy_kwh and co2_kg are per hour of serving at the scenario's arrival rate",
             "each row: the fewest replicas of that hardware and tensor-parallel size meeting the SLOs "
             "(serving capacity search, full serving simulations)"]
    report = finalize(sc.name, "serving", sc, cols,
                      lambda idx, f, v: _candidates(cols, idx, rows, points, owners, f, v),
                      _result_of, source, describe, [r["hardware"] for r in rows],
                      lambda f, v: _table(cols, rows, f, v),
                      extra={"prices": prices, "notes": notes}, base_mask=ok_rows)
    return report
