"""`simulate(scenario)`: one configuration, end to end (DESIGN.md 1).

scenario -> Cluster + TransformerArch -> ResolvedPlan -> stage costs (cost
model, once per distinct layer/stage) -> SimPy pipeline step -> Result.
Inference workloads are handed to `simulator.serving.inference`.
"""
from __future__ import annotations

from pathlib import Path

from simulator.cost.comm import tiers_from_cluster
from simulator.cost.compute import peak_flops
from simulator.errors import InputError
from simulator.parallel.costing import StageCosts, stage_costs
from simulator.parallel.plan import ResolvedPlan, resolve_plan
from simulator.schema.result import (Provenance, StageSummary, TimeBreakdown, TrainingMemory,
                                     TrainingResult)
from simulator.schema.scenario import Scenario
from simulator.sim.engine import PipelineRun, breakdown, simulate_pipeline

HOURS_PER_YEAR = 8766.0


def _as_scenario(scenario, overrides=None) -> tuple[Scenario, str]:
    if isinstance(scenario, Scenario):
        return scenario, f"scenario '{scenario.name}'"
    from simulator.loading import load_scenario
    return load_scenario(scenario, overrides or []), str(scenario)


def simulate(scenario, profiles_dir=None, *, overrides=None):
    """Simulate one scenario (a Scenario or a path): a TrainingResult or an inference result."""
    from simulator.hardware.cluster import resolve_cluster_name
    sc, source = _as_scenario(scenario, overrides)
    sc = resolve_cluster_name(sc, profiles_dir, source)   # a named cluster supplies the hardware
    if sc.workload.kind == "inference":
        from simulator.serving.inference import simulate_inference
        return simulate_inference(sc, profiles_dir=profiles_dir)
    return simulate_training(sc, profiles_dir, source=source)[0]


def prepare_training(sc: Scenario, profiles_dir=None, source: str | None = None):
    """Everything before the event simulation: cluster, arch, plan, stage costs."""
    from simulator.graph.build import load_arch, load_model, scenario_model_field
    from simulator.hardware.cluster import build_cluster
    source = source or f"scenario '{sc.name}'"
    wl = sc.workload
    try:
        cluster = build_cluster(sc.cluster, profiles_dir)
    except InputError as exc:
        raise InputError(exc.message, source=exc.source or source, field=exc.field or "cluster.hardware",
                         expected=exc.expected) from None
    try:
        arch = load_arch(wl.model, wl.model_options or None, wl.attention)
    except InputError as exc:
        raise InputError(exc.message, source=exc.source or source, field=scenario_model_field(exc),
                         expected=exc.expected) from None
    if arch is not None:
        from simulator.graph.build import warn_beyond_context
        warn_beyond_context(arch, wl.seq_len, source, "workload.seq_len")
    plan = resolve_plan(sc, arch, cluster.scale_up_domain, source)
    tiers = tiers_from_cluster(cluster)
    if arch is not None:
        costs = stage_costs(arch, plan, cluster.profile, wl, tiers)
    else:
        if plan.pp > 1:
            raise InputError("pipeline parallelism needs a transformer model (its layers are the stages)",
                             source=source, field="parallelism.pp", expected="1 for this model")
        from simulator.parallel.graph_costing import graph_stage_costs
        g = load_model(wl.model, seq_len=wl.seq_len, batch=wl.micro_batch, dtype=wl.dtype,
                       dims=wl.dims or None, options=wl.model_options or None)
        costs = graph_stage_costs(g, plan, cluster.profile, wl, tiers)
    return cluster, arch, plan, costs


def simulate_training(sc: Scenario, profiles_dir=None, *, source: str | None = None,
                      record: bool = False) -> tuple[TrainingResult, PipelineRun]:
    """Training step simulation; returns the result and the engine run (with trace events if `record`)."""
    from simulator.hardware.cluster import resolve_cluster_name
    sc = resolve_cluster_name(sc, profiles_dir, source)   # a named cluster supplies the hardware
    cluster, arch, plan, costs = prepare_training(sc, profiles_dir, source)
    # point-to-point and gradient traffic share a GPU's NIC when both leave the node
    p2p_crosses = plan.pp > 1 and plan.tp * plan.cp * plan.dp >= cluster.scale_up_domain
    dp_crosses = plan.dp > 1 and plan.tp * plan.cp * plan.dp > cluster.scale_up_domain
    run = simulate_pipeline(costs, record=record, nic_shared=p2p_crosses and dp_crosses)
    return build_result(sc, cluster, plan, costs, run), run


def _memory(costs: StageCosts, capacity: float) -> TrainingMemory:
    worst = max(costs.devices, key=lambda d: (d.memory.total, -d.device))
    m = worst.memory
    return TrainingMemory(weights_bytes_per_device=m.weights, gradients_bytes_per_device=m.gradients,
                          optimizer_bytes_per_device=m.optimizer, activations_bytes_per_device=m.activations,
                          temporary_bytes_per_device=m.temporary, total_bytes_per_device=m.total,
                          capacity_bytes=capacity, fits=m.total <= capacity, worst_stage=worst.device)


def _price_per_device_hour(profile, costs) -> tuple[float | None, bool]:
    """(USD per device-hour, electricity billed separately) following plan.tco's price rules."""
    if costs.purchase_usd_per_device is not None or (
            costs.usd_per_device_hour is None and profile.price.cloud_usd_per_hour is None
            and profile.price.list_usd is not None):
        price = costs.purchase_usd_per_device or profile.price.list_usd
        return price / (costs.amortization_years * HOURS_PER_YEAR) + costs.hosting_usd_per_device_hour, True
    if costs.usd_per_device_hour is not None:
        return costs.usd_per_device_hour, False
    return profile.price.cloud_usd_per_hour, False


def _training_totals(sc: Scenario, profile, step_time_s: float) -> dict:
    wl = sc.workload
    if wl.steps is not None:
        steps = float(wl.steps)
    elif wl.tokens is not None:
        steps = wl.tokens / (wl.global_batch * wl.seq_len)
    else:
        return {}
    time_s = steps * step_time_s
    devices = sc.cluster.devices
    hours = devices * time_s / 3600.0
    tdp = profile.power.tdp_w
    kwh = None if tdp is None else (devices * tdp * sc.costs.utilization_power_fraction * time_s / 3600.0
                                    * sc.costs.power_usage_effectiveness / 1000.0)
    rate, billed = _price_per_device_hour(profile, sc.costs)
    cost = None
    if rate is not None and not (billed and kwh is None):
        cost = hours * rate + (kwh * sc.costs.usd_per_kwh if billed else 0.0)
    return {"steps": steps, "time_to_train_s": time_s, "device_hours": hours, "cost_usd": cost,
            "energy_kwh": kwh}


def build_result(sc: Scenario, cluster, plan: ResolvedPlan, costs: StageCosts, run: PipelineRun) -> TrainingResult:
    from simulator import __version__
    profile = cluster.profile
    wl = sc.workload
    step = run.makespan_s
    tokens = float(wl.global_batch * wl.seq_len)
    peak = peak_flops(profile, wl.dtype) * plan.devices
    mem = _memory(costs, profile.memory.capacity_bytes)
    warnings = []
    if not mem.fits:
        warnings.append(f"does not fit in memory: {mem.total_bytes_per_device / 2**30:.1f} GiB needed per device "
                        f"(stage {mem.worst_stage}) but {mem.capacity_bytes / 2**30:.1f} GiB available")
    stages = []
    for d, dev in enumerate(costs.devices):
        mine = [c for c in costs.chunks if c.device == d]
        stages.append(StageSummary(stage=d, layers=sum(c.layers for c in mine),
                                   forward_s_per_microbatch=sum(c.fwd_s for c in mine),
                                   backward_s_per_microbatch=sum(c.bwd_s for c in mine),
                                   step_end_s=run.devices[d].step_end_s, memory_bytes=dev.memory.total))
    model_src = wl.model if isinstance(wl.model, str) else "inline model"
    return TrainingResult(
        name=sc.name, model=model_src, hardware=profile.name, devices=plan.devices,
        step_time_s=step, tokens_per_step=tokens, tokens_per_s=tokens / step,
        tokens_per_s_per_device=tokens / step / plan.devices,
        model_flops_per_step=costs.model_flops_per_step, hardware_flops_per_step=costs.hardware_flops_per_step,
        mfu=costs.model_flops_per_step / (step * peak), hfu=costs.hardware_flops_per_step / (step * peak),
        achieved_tflops_per_device=costs.model_flops_per_step / step / plan.devices / 1e12,
        memory=mem, breakdown=TimeBreakdown(**breakdown(run)), **_training_totals(sc, profile, step),
        parallelism=plan.as_dict(), stages=stages, warnings=warnings,
        provenance=Provenance(profile=profile.name, profile_origin=profile.provenance,
                              model_source=str(Path(model_src)) if isinstance(wl.model, str) else model_src,
                              capplan_version=__version__))
