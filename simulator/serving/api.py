"""`serve(scenario)`: simulate a serving deployment and summarize it (DESIGN.md 3.3 serving keys).

Replicas (tp*pp devices each) sit behind a router; each runs the
continuous-batching scheduler with iteration times from the cost model. The
simulation runs `serving.duration_s` seconds of arrivals; latency percentiles
are over requests that finished (TTFT: that got a first token). SLO checks also
count requests still waiting at the end with their waiting time so far (a lower
bound), so an overloaded system cannot pass by leaving its slowest requests
unfinished; a rejected request (longer than the KV cache) fails the SLO too.

A replica with pipeline parallelism (pp > 1) runs pp virtual engines, each
with its own scheduler and 1/pp of the KV cache, whose iterations overlap
across the stages (`engine.Pipeline`), as vLLM schedules pipeline parallelism.
Modelling limits: prefix caching and speculative decoding are not modelled.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import InfeasibleError, InputError
from simulator.schema.inference import (Percentiles, QueueSamples, ServingCounts, ServingResult,
                                        SLOCheck)
from simulator.schema.scenario import Scenario
from simulator.serving.arrivals import Workload, generate
from simulator.serving.engine import run
from simulator.serving.inference import Replica, build_replica, not_fitting_error
from simulator.serving.itercost import TableCost
from simulator.serving.router import make_router
from simulator.serving.scheduler import ReplicaScheduler

SLO_FIELDS = ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s")


def serve(scenario: Scenario | str | Path, profiles_dir: str | Path | None = None,
          base_dir: str | Path | None = None, replica: Replica | None = None,
          check_slo: bool = True) -> ServingResult:
    """Run the serving simulation of `scenario` (which must have a `serving:` section).

    `scenario` may be a path to a scenario file; a trace path inside it is then
    relative to the file (else to `base_dir`, else to the working directory).
    `check_slo` raises InfeasibleError first when an SLO is below what an idle
    replica achieves.
    """
    if not isinstance(scenario, Scenario):
        from simulator.loading import load_scenario
        path = Path(scenario)
        scenario = load_scenario(path)
        base_dir = base_dir or path.resolve().parent
    from simulator.hardware.cluster import resolve_cluster_name
    scenario = resolve_cluster_name(scenario, profiles_dir)    # a named cluster supplies the hardware
    sv = scenario.serving
    if scenario.workload.kind != "inference":
        raise InputError(f"serving needs an inference workload (got kind '{scenario.workload.kind}')",
                         field="workload.kind", expected="inference")
    if sv is None:
        raise InputError("the scenario has no 'serving' section", field="serving",
                         expected="serving: {replicas, arrivals, prompt_tokens, output_tokens, slo, ...}")
    rep = replica or build_replica(scenario, profiles_dir)
    per_replica = rep.step.tp * rep.step.pp
    devices = scenario.cluster.devices
    if devices not in (1, sv.replicas * per_replica):
        raise InputError(f"cluster.devices = {devices} but {sv.replicas} replicas of tp*pp = {per_replica} "
                         f"devices need {sv.replicas * per_replica}", field="cluster.devices",
                         expected=f"{sv.replicas * per_replica} (or leave it out)")
    sched_spec = sv.scheduler
    max_running = min(sched_spec.max_sequences, sched_spec.max_batch_tokens)
    kv_cap = rep.kv_capacity_tokens(sched_spec.max_batch_tokens, max_running)
    w = workload_of(scenario, rep, base_dir)
    if len(w) == 0:   # percentiles of no request would read 0 s and meet every SLO
        rate = sv.arrivals.rate_per_s if sv.arrivals.kind != "trace" else None
        raise InputError(f"no request arrives within duration_s = {sv.duration_s:g} s"
                         + (f" at {rate:g} requests/s" if rate is not None else ""),
                         field="serving.arrivals" + (".rate_per_s" if rate is not None else ".path"),
                         expected="rate_per_s x duration_s (or trace rows inside duration_s) of at least a few requests")
    if kv_cap <= 0 or rep.max_batch(int(np.min(w.prompt_tokens)) if len(w) else 1, 1) == 0:
        raise not_fitting_error(rep, int(np.min(w.prompt_tokens)) if len(w) else 1, 1,
                                f" with max_batch_tokens={sched_spec.max_batch_tokens}")
    if check_slo:
        check_slo_reachable(scenario, rep, w)
    cost = TableCost(rep.step, sched_spec.max_batch_tokens, max_running, kv_cap,
                     bidirectional=rep.encoder_only)
    # an encoder attends bidirectionally: its prompt cannot be split into causal chunks
    chunked = sched_spec.chunked_prefill and not rep.encoder_only
    pp = rep.step.pp          # virtual engines per replica, each with its share of the KV cache
    rec, queue, scheds = run(
        w, lambda: ReplicaScheduler(sched_spec.max_batch_tokens, sched_spec.max_sequences, kv_cap // pp, chunked),
        sv.replicas, cost, make_router(sched_spec.router), sv.duration_s, stages=pp)
    return summarize(scenario, rep, w, rec, queue, scheds, kv_cap)


def workload_of(scenario: Scenario, rep: Replica, base_dir: str | Path | None) -> Workload:
    """The requests to replay (encoder-only models emit one result per request: output 1)."""
    sv = scenario.serving
    w = generate(sv, np.random.default_rng(sv.seed), Path(base_dir) if base_dir else None)
    if rep.encoder_only:
        w = Workload(w.t_s, w.prompt_tokens, np.ones_like(w.output_tokens))
    return w


def lower_bounds(rep: Replica, w: Workload) -> dict[str, np.ndarray]:
    """Per-request latency on an idle replica: no request can do better than this."""
    s = rep.step
    p = w.prompt_tokens.astype(float)
    pairs = p * p if rep.encoder_only else p * (p + 1) / 2.0
    ttft = s.linear_s(p) + s.comm_s(p) + s.head_s(1.0) + s.prefill_attention_s(pairs, p, p)
    step = s.linear_s(1.0) + s.comm_s(1.0) + s.head_s(1.0) + s.decode_attention_s(p + 1.0, 1.0)
    out = w.output_tokens.astype(float)
    return {"ttft_p99_s": ttft, "tpot_p99_s": np.where(out > 1, step, np.nan),
            "e2e_p99_s": ttft + (out - 1) * step}


def check_slo_reachable(scenario: Scenario, rep: Replica, w: Workload) -> None:
    """InfeasibleError when an SLO is below the p99 of the idle-replica latencies (never met)."""
    slo = scenario.serving.slo
    if not len(w):
        return
    bounds = lower_bounds(rep, w)
    best = {k: float(np.nanpercentile(v, 99)) if np.any(~np.isnan(v)) else 0.0 for k, v in bounds.items()}
    for key in SLO_FIELDS:
        target = getattr(slo, key)
        if target is not None and target < best[key]:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in best.items())
            raise InfeasibleError(
                f"SLO {key} = {target:g} s can never be met by {rep.model_name} on {rep.profile.name} "
                f"(tp={rep.step.tp}, pp={rep.step.pp}): even an idle replica achieves only {shown} s",
                field=f"serving.slo.{key}", expected="a target at or above the best achievable value, "
                "more tensor parallelism, or faster hardware")


def percentiles(x: np.ndarray) -> Percentiles:
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Percentiles(p50=0.0, p90=0.0, p99=0.0, mean=0.0, max=0.0, count=0)
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return Percentiles(p50=float(p50), p90=float(p90), p99=float(p99), mean=float(x.mean()),
                       max=float(x.max()), count=int(x.size))


def summarize(scenario: Scenario, rep: Replica, w: Workload, rec, queue, scheds, kv_cap: int) -> ServingResult:
    sv = scenario.serving
    dur = sv.duration_s
    done = ~np.isnan(rec.finish_s)
    out = w.output_tokens.astype(float)
    ttft = rec.first_token_s - rec.arrival_s
    e2e = np.where(done, rec.finish_s - rec.arrival_s, np.nan)
    tpot = np.where(done & (out > 1), (rec.finish_s - rec.first_token_s) / np.maximum(out - 1, 1), np.nan)
    wait = rec.first_sched_s - rec.arrival_s
    # SLO view: unfinished requests count with what they have waited so far (a lower bound)
    pending = np.maximum(dur - rec.arrival_s, 0.0)
    censored = {"ttft_p99_s": np.where(np.isnan(ttft), pending, ttft),
                "tpot_p99_s": tpot, "e2e_p99_s": np.where(done, e2e, pending)}
    checks, ok_mask = [], done.copy()
    for key in SLO_FIELDS:
        target = getattr(sv.slo, key)
        if target is None:
            continue
        vals = censored[key]
        finite = vals[~np.isnan(vals)]
        if key == "tpot_p99_s" and not np.any(out > 1):
            continue                    # no request streams more than one token: TPOT does not apply
        achieved = float(np.percentile(finite, 99)) if finite.size else float("inf")
        checks.append(SLOCheck(metric=key, target_s=target, achieved_s=achieved, met=achieved <= target))
        ok_mask &= np.nan_to_num(vals, nan=0.0) <= target
    n = len(w)
    completed = int(done.sum())
    out_tokens = float(out[done].sum())
    devices = sv.replicas * rep.step.tp * rep.step.pp
    usd_h = usd_per_hour(scenario, rep, devices)
    tok_s = out_tokens / dur
    iters = max(rec.iterations, 1)
    return ServingResult(
        name=scenario.name, model=rep.model_name, hardware=rep.profile.name, replicas=sv.replicas,
        devices_per_replica=rep.step.tp * rep.step.pp, parallelism={"tp": rep.step.tp, "pp": rep.step.pp},
        duration_s=dur, seed=sv.seed, arrivals=sv.arrivals.kind,
        offered_rate_per_s=n / dur, ttft_s=percentiles(ttft), tpot_s=percentiles(tpot), e2e_s=percentiles(e2e),
        queue_wait_s=percentiles(wait), throughput_requests_per_s=completed / dur, output_tokens_per_s=tok_s,
        slo_attained=all(c.met for c in checks) and (completed > 0 or n == 0) and rec.rejected == 0, slo=checks,
        goodput_requests_per_s=float(ok_mask.sum()) / dur,
        goodput_fraction=float(ok_mask.sum()) / n if n else 1.0,
        queue=QueueSamples(t_s=[float(t) for t in queue["t_s"]], waiting=queue["waiting"], running=queue["running"]),
        counts=ServingCounts(arrived=n, completed=completed, in_flight=n - completed - rec.rejected,
                             rejected=rec.rejected, preemptions=sum(s.preemptions for s in scheds),
                             iterations=rec.iterations),
        kv_capacity_tokens_per_replica=int(min(kv_cap, 10**12)),
        mean_batch_sequences=rec.batch_seqs / iters, mean_batch_tokens=rec.batch_tokens / iters,
        busy_fraction=min(rec.busy_s / (sv.replicas * dur), 1.0),
        usd_per_hour=usd_h,
        usd_per_million_output_tokens=(usd_h / (tok_s * 3600.0) * 1e6) if (usd_h and tok_s > 0) else None,
        events=rec.events)


def usd_per_hour(scenario: Scenario, rep: Replica, devices: int) -> float | None:
    """Rental price of the deployment: scenario costs, else the profile's cloud price."""
    per = scenario.costs.usd_per_device_hour or rep.profile.price.cloud_usd_per_hour
    return per * devices if per else None
