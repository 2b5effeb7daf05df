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
SEARCH_MIN_S = 120.0          # ... and at least this many seconds (capped by the scenario duration)
SEARCH_MAX_REQUESTS = 50_000  # ... but SEARCH_MIN_S shrinks so that one search run stays below this
CONFIRM_MAX_REQUESTS = 200_000   # the confirming run covers at most this many arrivals of the duration
# (limits.py: p99 TTFT moved 3% between 100k and 1M requests while the run took 14x longer; a
# search over thousands of requests per second would otherwise simulate millions per step)


def search_horizon_s(duration_s: float, rate_per_s: float) -> float:
    """Seconds each search step simulates: >= SEARCH_REQUESTS arrivals and SEARCH_MIN_S, the
    latter cut so that no step exceeds SEARCH_MAX_REQUESTS; never beyond the duration."""
    rate = max(rate_per_s, 1e-9)
    return min(duration_s, max(SEARCH_REQUESTS / rate, min(SEARCH_MIN_S, SEARCH_MAX_REQUESTS / rate)))


def confirm_horizon_s(duration_s: float, rate_per_s: float) -> float:
    """Seconds the confirming run simulates: the full duration up to CONFIRM_MAX_REQUESTS arrivals."""
    return min(duration_s, CONFIRM_MAX_REQUESTS / max(rate_per_s, 1e-9))


def tp_candidates(arch, domain: int) -> list[int]:
    """Powers of two up to the scale-up domain that split the heads (and KV heads) evenly."""
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
    """Requests/s one replica could at best sustain (an upper bound, so the replica count it
    implies is a lower bound): prompts prefilled in full token-budget batches, decodes in the
    largest batch the sequence limit and the KV cache allow."""
    sv = scenario.serving
    spec = sv.scheduler
    p = mean_length(sv.prompt_tokens)
    o = 1.0 if rep.encoder_only else mean_length(sv.output_tokens)
    s = rep.step
    bp = max(1.0, spec.max_batch_tokens // max(p, 1.0))
    tokens = bp * p
    pairs = bp * (p * p if rep.encoder_only else p * (p + 1) / 2)
    prefill = float(s.linear_s(tokens) + s.comm_s(tokens) + s.head_s(bp)
                    + s.prefill_attention_s(pairs, tokens, tokens)) / bp
    if o <= 1:
        return 1.0 / prefill
    b = max(1, min(spec.max_sequences, spec.max_batch_tokens, int(kv_cap // (p + o))))
    step = float(s.linear_s(b) + s.comm_s(b) + s.head_s(b) + s.decode_attention_s(b * (p + o / 2), b))
    return 1.0 / (prefill + (o - 1) * step / b)


def search_one(scenario: Scenario, hardware: str, tp: int, profiles_dir, base_dir, max_replicas: int,
               confirm: bool = False) -> CapacityRow:
    """Fewest replicas (<= max_replicas) of `hardware` at tensor-parallel size `tp` meeting the SLOs."""
    sv = scenario.serving
    sc = _with(scenario, cluster__hardware=hardware, parallelism__tp=tp, parallelism__pp=1, cluster__devices=1,
               serving__replicas=1)
    try:
        rep = build_replica(sc, profiles_dir)
    except InputError as exc:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, reason=exc.message)
    spec = sv.scheduler
    kv_cap = rep.kv_capacity_tokens(spec.max_batch_tokens, min(spec.max_sequences, spec.max_batch_tokens))
    w = workload_of(sc, rep, base_dir)
    longest = int(np.max(w.prompt_tokens + w.output_tokens)) if len(w) else 1
    if kv_cap < longest:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, kv_capacity_tokens_per_replica=max(kv_cap, 0),
                           reason=f"does not fit: the KV cache holds {max(kv_cap, 0)} tokens per replica, the "
                                  f"longest request needs {longest} (weights + workspace leave too little memory)")
    bounds = lower_bounds(rep, w)
    best = {k: float(np.nanpercentile(v, 99)) for k, v in bounds.items() if np.any(~np.isnan(v))}
    for key, val in best.items():
        target = getattr(sv.slo, key)
        if target is not None and target < val:
            return CapacityRow(hardware=hardware, tp=tp, feasible=False, best_achievable=best,
                               kv_capacity_tokens_per_replica=kv_cap,
                               reason=f"{key} target {target:g} s is below the idle-replica p99 {val:.4g} s")
    rate = len(w) / sv.duration_s
    horizon = search_horizon_s(sv.duration_s, rate)
    lo = max(1, math.ceil(rate / replica_rate_bound(rep, sc, kv_cap)))
    if lo > max_replicas:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, kv_capacity_tokens_per_replica=kv_cap,
                           reason=f"not searched: needs at least {lo} replicas, more than the {max_replicas} "
                                  "allowed (device limit, or a cheaper layout already found)")
    runs = {"n": 0}

    def attempt(n: int, duration: float):
        runs["n"] += 1
        r = serve(_with(sc, serving__replicas=n, serving__duration_s=duration), profiles_dir, base_dir,
                  replica=rep, check_slo=False)
        return r.slo_attained, r

    good, result, last_bad, n = None, None, lo - 1, lo
    while n <= max_replicas:
        met, r = attempt(n, horizon)
        if met:
            good, result = n, r
            break
        last_bad, n = n, (n * 2 if n * 2 <= max_replicas or n == max_replicas else max_replicas)
    if good is None:
        return CapacityRow(hardware=hardware, tp=tp, feasible=False, simulations=runs["n"], best_achievable=best,
                           kv_capacity_tokens_per_replica=kv_cap, horizon_s=horizon,
                           reason=f"SLOs missed even with {last_bad} replicas")
    while good - last_bad > 1:
        mid = (good + last_bad) // 2
        met, r = attempt(mid, horizon)
        if met:
            good, result = mid, r
        else:
            last_bad = mid
    row = _row(hardware, tp, good, result, kv_cap, runs["n"], usd_per_hour(sc, rep, good * tp), horizon)
    return confirm_row(row, sc, rep, profiles_dir, base_dir, max_replicas) if confirm else row


def confirm_row(row: CapacityRow, scenario: Scenario, rep: Replica, profiles_dir, base_dir,
                max_replicas: int) -> CapacityRow:
    """Re-run the chosen count over the full duration, up to CONFIRM_MAX_REQUESTS arrivals; if the
    longer run misses (a queue that grows slowly near saturation), add replicas by quarters until
    one meets the SLOs, then bisect back down to the fewest that do over that same horizon.
    The row's horizon_s says how long the confirming runs were."""
    sv = scenario.serving
    full = confirm_horizon_s(sv.duration_s, len(workload_of(scenario, rep, base_dir)) / sv.duration_s)
    if row.horizon_s is not None and row.horizon_s >= full:
        return row.model_copy(update={"confirmed": True})
    sims = [row.simulations or 0]

    def run(n: int):
        sims[0] += 1
        sc = _with(scenario, cluster__hardware=row.hardware, parallelism__tp=row.tp, parallelism__pp=1,
                   cluster__devices=1, serving__replicas=n, serving__duration_s=full)
        return sc, serve(sc, profiles_dir, base_dir, replica=rep, check_slo=False)

    n, bad, good = row.replicas, row.replicas - 1, None    # the search saw replicas - 1 miss
    while good is None:
        sc, r = run(n)
        if r.slo_attained:
            good = (n, sc, r)
        elif n >= max_replicas:
            return row.model_copy(update={"feasible": False, "simulations": sims[0],
                                          "reason": f"SLOs missed over the full duration with {n} replicas"})
        else:
            bad, n = n, min(max_replicas, n + max(1, n // 4))
    while good[0] - bad > 1:
        mid = (good[0] + bad) // 2
        sc, r = run(mid)
        if r.slo_attained:
            good = (mid, sc, r)
        else:
            bad = mid
    n, sc, r = good
    out = _row(row.hardware, row.tp, n, r, row.kv_capacity_tokens_per_replica, sims[0],
               usd_per_hour(sc, rep, n * row.tp), full)
    return out.model_copy(update={"confirmed": True})


def _row(hardware, tp, replicas, r, kv_cap, sims, usd_h, horizon_s) -> CapacityRow:
    p99 = {c.metric: c.achieved_s for c in r.slo}
    return CapacityRow(
        hardware=hardware, tp=tp, feasible=True, replicas=replicas, devices=replicas * tp,
        ttft_p99_s=p99.get("ttft_p99_s", r.ttft_s.p99), tpot_p99_s=p99.get("tpot_p99_s", r.tpot_s.p99),
        e2e_p99_s=p99.get("e2e_p99_s", r.e2e_s.p99), throughput_requests_per_s=r.throughput_requests_per_s,
        output_tokens_per_s=r.output_tokens_per_s, goodput_fraction=r.goodput_fraction, usd_per_hour=usd_h,
        usd_per_million_output_tokens=(usd_h / (r.output_tokens_per_s * 3600.0) * 1e6)
        if (usd_h and r.output_tokens_per_s > 0) else None,
        kv_capacity_tokens_per_replica=kv_cap, simulations=sims, horizon_s=horizon_s, result=r)


def capacity_search(scenario: Scenario, hardware_names: list[str], profiles_dir: str | Path | None = None,
                    base_dir: str | Path | None = None, tp_options: list[int] | None = None) -> list[CapacityRow]:
    """Rows for every (hardware, tp) tried; `best_for_hardware` marks the fewest-device (so cheapest,
    one price per device) feasible layout of each hardware, confirmed over the scenario's full
    duration. A larger tp is searched only below the best device count found so far.
    """
    if scenario.serving is None:
        raise InputError("a capacity search needs a 'serving' section (rate and SLOs)", field="serving")
    if not hardware_names:
        raise InputError("no hardware to search", field="sweep.cluster.hardware", expected="one or more profile names")
    from simulator.graph.build import load_arch
    from simulator.hardware.load import load_hardware
    arch = load_arch(scenario.workload.model, scenario.workload.model_options or None)
    if arch is None:
        raise InputError("serving needs a transformer model", field="workload.model")
    rows: list[CapacityRow] = []
    for hw in hardware_names:
        profile = load_hardware(hw, profiles_dir)
        up = profile.scale_up
        domain = up.domain_size if (up and up.domain_size) else profile.devices_per_node
        tps = tp_options or tp_candidates(arch, domain)
        rows.extend(_search_hardware(scenario, hw, tps, profiles_dir, base_dir))
    return rows


def _search_hardware(scenario: Scenario, hw: str, tps: list[int], profiles_dir, base_dir) -> list[CapacityRow]:
    """Search each tp under the device count to beat; confirm the best; repeat if confirming
    raised its count (a layout pruned against the short-horizon count may now win)."""
    max_devices = scenario.constraints.max_devices
    found: dict[int, tuple[CapacityRow, int]] = {}     # tp -> (row, replica cap it was searched with)
    beat: int | None = None                            # confirmed device count to beat
    for _ in range(len(tps) + 1):
        for tp in tps:
            cap = MAX_REPLICAS if not max_devices else max_devices // tp
            if beat is not None:
                cap = min(cap, (beat - 1) // tp)
            prev = found.get(tp)
            if cap < 1 or (prev is not None and (prev[0].feasible or prev[1] >= cap)):
                continue
            found[tp] = (search_one(scenario, hw, tp, profiles_dir, base_dir, cap), cap)
            if found[tp][0].feasible and (beat is None or found[tp][0].devices < beat):
                beat = found[tp][0].devices
        feasible = [r for r, _ in found.values() if r.feasible]
        if not feasible:
            break
        best = min(feasible, key=lambda r: (r.devices, r.tp))
        if best.confirmed:
            break
        sc = _with(scenario, cluster__hardware=hw, parallelism__tp=best.tp, parallelism__pp=1,
                   cluster__devices=1, serving__replicas=1)
        limit = MAX_REPLICAS if not max_devices else max_devices // best.tp
        confirmed = confirm_row(best, sc, build_replica(sc, profiles_dir), profiles_dir, base_dir, limit)
        found[best.tp] = (confirmed, found[best.tp][1])
        if confirmed.feasible:
            beat = confirmed.devices
    out = [found[tp][0] for tp in sorted(found)]
    feasible = [r for r in out if r.feasible and r.confirmed]
    winner = min(feasible, key=lambda r: (r.devices, r.tp)) if feasible else None
    return [r.model_copy(update={"best_for_hardware": r is winner}) for r in out]


def best_rows(rows: list[CapacityRow]) -> list[CapacityRow]:
    return [r for r in rows if r.best_for_hardware]


def unreachable_error(rows: list[CapacityRow]) -> InfeasibleError:
    """One line explaining why no hardware met the SLOs, with the best achievable numbers."""
    best: dict[str, tuple[float, str]] = {}
    for r in rows:
        for key, val in (r.best_achievable or {}).items():
            if key not in best or val < best[key][0]:
                best[key] = (val, f"{r.hardware} tp{r.tp}")
    parts = []
    if best:
        parts.append("best achievable on an idle replica: " + ", ".join(
            f"{k} {v:.4g} s ({where})" for k, (v, where) in sorted(best.items())))
    others = sorted({r.reason for r in rows if not r.feasible and not r.best_achievable and r.reason})
    parts += others[:2]
    return InfeasibleError("no candidate meets the SLOs; " + "; ".join(parts), field="serving.slo",
                           expected="looser SLO targets, more hardware options or a smaller model")
