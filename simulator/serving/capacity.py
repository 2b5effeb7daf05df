"""Capacity search: the fewest replicas (and the tensor-parallel size per replica) that serve
the scenario's arrival rate within its SLOs, for each candidate hardware, with the cost per
million output tokens.

For each hardware and each tp that fits the model (powers of two within the
scale-up domain, dividing the heads), an analytic lower bound on the replica
count (offered work / one replica's best throughput) seeds a doubling search
then a bisection on the replica count, each step a full serving simulation
(`serve`) over a search horizon; the chosen count is confirmed over the
scenario's full duration. SLO attainment is assumed monotone in the replica
count (more replicas never hurt under the least-outstanding router). A tp whose
idle-replica latency already misses an SLO is reported infeasible with the
best achievable numbers.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from simulator.errors import InfeasibleError, InputError
from simulator.schema.inference import CapacityRow
from simulator.schema.scenario import Scenario
from simulator.serving.api import lower_bounds, serve, usd_per_hour, workload_of
from simulator.serving.inference import Replica, build_replica
from simulator.serving.lengths import mean_length

MAX_REPLICAS = 4096
SEARCH_REQUESTS = 3000        # the search horizon holds at least this many arrivals ...
SEARCH_MIN_S = 300.0          # ... and at least this many seconds (capped by the scenario duration)


def tp_candidates(rep_factory, arch, domain: int) -> list[int]:
    out, tp = [], 1
    while tp <= max(domain, 1):
        if arch.num_heads % tp == 0 and (arch.num_kv_heads % tp == 0 or tp % arch.num_kv_heads == 0):
            out.append(tp)
        tp *= 2
    return out


def _with(scenario: Scenario, **changes) -> Scenario:
    data = scenario.model_dump(mode="json", exclude={"sweep"}, exclude_none=True)
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return Scenario.model_validate(data)


def replica_rate_bound(rep: Replica, scenario: Scenario, kv_cap: int) -> float:
    """Requests/s one replica could at best sustain: full decode batches, prompts at full speed."""
    sv = scenario.serving
    p = mean_length(sv.prompt_tokens)
    o = 1.0 if rep.encoder_only else mean_length(sv.output_tokens)
    b = max(1, min(sv.scheduler.max_sequences, sv.scheduler.max_batch_tokens, int(kv_cap // (p + o))))
    s = rep.step
    step = float(s.linear_s(b) + s.comm_s(b) + s.head_s(b) + s.decode_attention_s(b * (p + o / 2), b))
    per_req_prefill = float(s.linear_s(p) + s.comm_s(p) + s.prefill_attention_s(p * (p + 1) / 2, p, p))
    return 1.0 / (per_req_prefill + (o - 1) * step / b) if o > 1 else 1.0 / per_req_prefill


def search_one(scenario: Scenario, hardware: str, tp: int, profiles_dir, base_dir, max_replicas: int) -> CapacityRow:
    """Fewest replicas of `hardware` at tensor-parallel size `tp` meeting the SLOs."""
    sv = scenario.serving
    sc = _with(scenario, cluster__hardware=hardware, parallelism__tp=tp, parallelism__pp=1, cluster__devices=1,
               serving__replicas=1)
    try:
        rep = build_replica(sc, profiles_dir)
    except InputError as exc:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, reason=exc.message)
    spec = sv.scheduler
    kv_cap = rep.kv_capacity_tokens(spec.max_batch_tokens, min(spec.max_sequences, spec.max_batch_tokens))
    if kv_cap <= 0 or rep.max_batch(int(mean_length(sv.prompt_tokens)), 1) == 0:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False,
                           reason=f"does not fit on {tp} x {hardware} (weights + workspace exceed memory)")
    w = workload_of(sc, rep, base_dir)
    bounds = lower_bounds(rep, w)
    best = {k: float(np.nanpercentile(v, 99)) for k, v in bounds.items() if np.any(~np.isnan(v))}
    for key, val in best.items():
        target = getattr(sv.slo, key)
        if target is not None and target < val:
            return CapacityRow(hardware=hardware, tp=tp, feasible=False, best_achievable=best,
                               kv_capacity_tokens_per_replica=kv_cap,
                               reason=f"{key} target {target:g} s is below the idle-replica p99 {val:.4g} s")
    rate = len(w) / sv.duration_s
    horizon = min(sv.duration_s, max(SEARCH_MIN_S, SEARCH_REQUESTS / max(rate, 1e-9)))
    lo = max(1, math.ceil(rate / replica_rate_bound(rep, sc, kv_cap)))
    runs = {"n": 0}

    def ok(n: int, duration: float):
        runs["n"] += 1
        r = serve(_with(sc, serving__replicas=n, serving__duration_s=duration), profiles_dir, base_dir,
                  replica=rep, check_slo=False)
        return r.slo_attained, r

    n, good = lo, None
    last_bad = lo - 1
    while n <= max_replicas:
        met, _ = ok(n, horizon)
        if met:
            good = n
            break
        last_bad, n = n, n * 2
    if good is None:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, simulations=runs["n"], best_achievable=best,
                           kv_capacity_tokens_per_replica=kv_cap,
                           reason=f"SLOs missed even with {last_bad} replicas")
    while good - last_bad > 1:
        mid = (good + last_bad) // 2
        met, _ = ok(mid, horizon)
        good, last_bad = (mid, last_bad) if met else (good, mid)
    met, result = ok(good, sv.duration_s)
    while not met and good < max_replicas:   # the full horizon can be stricter than the search one
        good += max(1, good // 4)
        met, result = ok(good, sv.duration_s)
    if not met:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, simulations=runs["n"],
                           reason=f"SLOs missed over the full duration with {good} replicas")
    return _row(hardware, tp, good, result, kv_cap, runs["n"], usd_per_hour(sc, rep, good * tp))


def _row(hardware, tp, replicas, r, kv_cap, sims, usd_h) -> CapacityRow:
    p99 = {c.metric: c.achieved_s for c in r.slo}
    return CapacityRow(
        hardware=hardware, tp=tp, feasible=True, replicas=replicas, devices=replicas * tp,
        ttft_p99_s=p99.get("ttft_p99_s", r.ttft_s.p99), tpot_p99_s=p99.get("tpot_p99_s", r.tpot_s.p99),
        e2e_p99_s=p99.get("e2e_p99_s", r.e2e_s.p99), throughput_requests_per_s=r.throughput_requests_per_s,
        output_tokens_per_s=r.output_tokens_per_s, goodput_fraction=r.goodput_fraction, usd_per_hour=usd_h,
        usd_per_million_output_tokens=(usd_h / (r.output_tokens_per_s * 3600.0) * 1e6)
        if (usd_h and r.output_tokens_per_s > 0) else None,
        kv_capacity_tokens_per_replica=kv_cap, simulations=sims, result=r)


def capacity_search(scenario: Scenario, hardware_names: list[str], profiles_dir: str | Path | None = None,
                    base_dir: str | Path | None = None, tp_options: list[int] | None = None) -> list[CapacityRow]:
    """Rows for every (hardware, tp) tried; `best_for_hardware` marks the cheapest feasible per hardware.

    Cheapest = lowest USD/hour when every option has a price, else fewest devices.
    """
    if scenario.serving is None:
        raise InputError("a capacity search needs a 'serving' section (rate and SLOs)", field="serving")
    if not hardware_names:
        raise InputError("no hardware to search", field="sweep.cluster.hardware", expected="one or more profile names")
    max_devices = scenario.constraints.max_devices
    rows: list[CapacityRow] = []
    from simulator.graph.build import load_arch
    from simulator.hardware.load import load_hardware
    arch = load_arch(scenario.workload.model, scenario.workload.model_options or None)
    if arch is None:
        raise InputError("serving needs a transformer model", field="workload.model")
    for hw in hardware_names:
        profile = load_hardware(hw, profiles_dir)
        domain = profile.scale_up.domain_size if (profile.scale_up and profile.scale_up.domain_size) else profile.devices_per_node
        tps = tp_options or tp_candidates(None, arch, domain)
        mine = []
        for tp in tps:
            cap = MAX_REPLICAS if not max_devices else max(1, max_devices // tp)
            mine.append(search_one(scenario, hw, tp, profiles_dir, base_dir, cap))
        feas = [r for r in mine if r.feasible]
        if feas:
            key = (lambda r: (r.usd_per_hour, r.devices)) if all(r.usd_per_hour for r in feas) else (lambda r: (r.devices, r.tp))
            best = min(feas, key=key)
            mine = [r.model_copy(update={"best_for_hardware": True}) if r is best else r for r in mine]
        rows.extend(mine)
    return rows


def best_rows(rows: list[CapacityRow]) -> list[CapacityRow]:
    return [r for r in rows if r.best_for_hardware]


def unreachable_error(rows: list[CapacityRow]) -> InfeasibleError:
    """One line explaining why no hardware met the SLOs, with the best achievable numbers."""
    parts = [f"{r.hardware} tp{r.tp}: {r.reason}" for r in rows if not r.feasible][:4]
    return InfeasibleError("no candidate meets the SLOs: " + "; ".join(parts), field="serving.slo")
