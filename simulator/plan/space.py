"""Search spaces: the `sweep:` axes of a scenario and the layouts of `parallelism: auto`.

`sweep_points` expands the non-layout axes (dotted scenario paths -> value
lists, e.g. cluster.hardware, cluster.devices, workload.micro_batch) into a
list of points, each a validated Scenario built with `loading.set_path` on the
raw mapping, so an unknown field or a bad value fails exactly as it would in
the file. `layouts` enumerates, as NumPy columns, every layout of
`parallelism: auto` that passes the structural rules of Megatron-LM
(Narayanan et al. 2021; Korthikanti et al. 2022):

- tp divides the attention heads and KV heads and stays inside the scale-up
  domain of the cluster (tensor-parallel all-reduces on the scale-out network are dominated);
- pp divides the layers; cp (context parallel) only for sequences >= 8192
  tokens; ep divides the experts and the data-parallel degree (MoE only);
- dp = devices / (tp*pp*cp) divides the global batch; the micro-batch (a power
  of two up to 64, or the whole per-replica batch when that is at most 64)
  divides the per-replica batch;
- recompute in {none, selective, full}; ZeRO stage 0..3 (> 0 only with dp > 1);
- schedule 1f1b or gpipe, and interleaved with v virtual stages when v divides
  the layers per stage and the micro-batch count is a multiple of pp;
- sequence parallelism on or off when tp > 1;
- even pipeline splits only: `parallelism: auto` refuses a scenario that sets
  first_stage_layers / last_stage_layers (a fixed uneven layout, or a sweep of
  those fields, is evaluated row by row through `parallel.costing`).

Everything is deterministic: axes keep file order, layouts a fixed order.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.hardware.cluster import resolve_cluster_name
from simulator.loading import set_path, validate
from simulator.parallel.plan import UNEVEN_FIELDS, is_uneven
from simulator.schema.scenario import Scenario

RECOMPUTE = ("none", "selective", "full")
SCHEDULES = ("1f1b", "gpipe", "interleaved")
MICRO_BATCHES = (1, 2, 4, 8, 16, 32, 64)
VIRTUAL_STAGES = (2, 4)
LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "ep", "micro_batch", "recompute", "zero", "schedule",
                 "virtual_stages", "sequence_parallel")


def sweep_axes(scenario: Scenario, source: str) -> tuple[dict[str, list], bool]:
    """(non-layout axes in file order, whether `parallelism: auto` is asked), validated shapes."""
    sweep = scenario.sweep
    if sweep is None:
        return {}, False
    if not sweep:
        raise InputError("the sweep is empty", source=source, field="sweep",
                         expected="at least one axis, e.g. cluster.hardware: [a100-sxm4-80gb, h100-sxm5-80gb]")
    axes, auto = {}, False
    for path, values in sweep.items():
        if values == "auto":
            if path != "parallelism":
                raise InputError("only 'parallelism' can be 'auto'", source=source, field=f"sweep.{path}",
                                 expected="a list of values")
            par = scenario.parallelism
            if is_uneven(par):
                field = next(k for k in UNEVEN_FIELDS if getattr(par, k) not in (None, False))
                raise InputError("'parallelism: auto' searches even pipeline splits only", source=source,
                                 field=f"parallelism.{field}",
                                 expected="first/last_stage_layers and embedding/loss_as_layer left out "
                                          "with parallelism: auto, or a fixed layout")
            auto = True
            continue
        if path == "parallelism":
            raise InputError("'parallelism' can only be swept as 'auto'", source=source, field="sweep.parallelism",
                             expected="auto, or sweep single fields such as parallelism.tp: [1, 2]")
        if not values:
            raise InputError("empty list of values", source=source, field=f"sweep.{path}",
                             expected="at least one value")
        axes[path] = list(values)
    return axes, auto


def sweep_points(raw: dict[str, Any], scenario: Scenario, source: str,
                 profiles_dir=None) -> tuple[list[tuple[dict, Scenario]], bool]:
    """Every combination of the sweep's axes as (overrides, Scenario), and the auto flag.

    Each point's named cluster (`cluster.name`, which may be an axis) fills in its hardware.
    """
    axes, auto = sweep_axes(scenario, source)
    base = copy.deepcopy(raw)
    base.pop("sweep", None)
    points = []
    for combo in itertools.product(*axes.values()):
        data = copy.deepcopy(base)
        overrides = dict(zip(axes, combo))
        for path, value in overrides.items():
            set_path(data, [k for k in path.split(".") if k], value)
        where = f"{source} (sweep {', '.join(f'{k}={v}' for k, v in overrides.items()) or 'base'})"
        points.append((overrides, resolve_cluster_name(validate(Scenario, data, where), profiles_dir, where)))
    return points, auto


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layouts(arch, devices: int, workload, scale_up_domain: int) -> dict:
    """Every valid layout for `devices` as NumPy columns (see the module docstring for the rules).

    `arch` is a TransformerArch or None (a CNN / general graph: data parallel only).
    """
    rows = []
    dom = max(1, scale_up_domain)
    gb, seq = workload.global_batch, workload.seq_len
    if arch is None:
        tps, pps, cps, eps, recs = [1], [1], [1], [1], ("none", "full")
    else:
        tps = [t for t in _divisors(devices) if arch.num_heads % t == 0
               and (arch.num_kv_heads % t == 0 or t % arch.num_kv_heads == 0) and t <= dom]
        pps = [p for p in _divisors(devices) if arch.num_layers % p == 0]
        cps = [c for c in (1, 2, 4, 8) if c == 1 or (seq >= 8192 and seq % (2 * c) == 0)]
        eps = [e for e in _divisors(arch.num_experts)] if arch.num_experts > 1 else [1]
        recs = RECOMPUTE
    n_layers = arch.num_layers if arch is not None else 1
    for tp, pp, cp in itertools.product(tps, pps, cps):
        if devices % (tp * pp * cp):
            continue
        dp = devices // (tp * pp * cp)
        if gb % dp:
            continue
        per_replica = gb // dp
        for ep in eps:
            if dp % ep:
                continue
            options = sorted(set(MICRO_BATCHES) | ({per_replica} if per_replica <= MICRO_BATCHES[-1] else set()))
            for mb in (m for m in options if per_replica % m == 0):
                m_count = per_replica // mb
                scheds = [("1f1b", 1)]
                if pp > 1:
                    scheds.append(("gpipe", 1))
                    scheds += [("interleaved", v) for v in VIRTUAL_STAGES
                               if (n_layers // pp) % v == 0 and m_count % pp == 0]
                for rec, zero, (sched, v), sp in itertools.product(
                        recs, range(4) if dp > 1 else (0,), scheds, (False, True) if tp > 1 else (False,)):
                    rows.append((tp, pp, dp, cp, ep, mb, RECOMPUTE.index(rec), zero,
                                 SCHEDULES.index(sched), v, sp))
    if not rows:
        return {f: np.zeros(0, dtype=int) for f in LAYOUT_FIELDS}
    a = np.array(rows, dtype=np.int64)
    cols = {f: a[:, i] for i, f in enumerate(LAYOUT_FIELDS)}
    cols["sequence_parallel"] = cols["sequence_parallel"].astype(bool)
    return cols


def fixed_layout(scenario: Scenario) -> dict:
    """The scenario's own layout as one-row columns (when the sweep has no `parallelism: auto`)."""
    par, wl = scenario.parallelism, scenario.workload
    dp = par.dp or max(1, scenario.cluster.devices // (par.tp * par.pp * par.cp))
    row = dict(tp=par.tp, pp=par.pp, dp=dp, cp=par.cp, ep=par.ep, micro_batch=wl.micro_batch,
               recompute=RECOMPUTE.index(wl.recompute), zero=par.zero, schedule=SCHEDULES.index(par.schedule),
               virtual_stages=par.virtual_stages, sequence_parallel=par.sequence_parallel)
    return {k: np.array([v], dtype=bool if k == "sequence_parallel" else np.int64) for k, v in row.items()}


def layout_overrides(cols: dict, i: int) -> dict[str, Any]:
    """Scenario overrides (dotted path -> value) that set layout row i."""
    return {
        "parallelism.tp": int(cols["tp"][i]), "parallelism.pp": int(cols["pp"][i]),
        "parallelism.dp": int(cols["dp"][i]), "parallelism.cp": int(cols["cp"][i]),
        "parallelism.ep": int(cols["ep"][i]), "workload.micro_batch": int(cols["micro_batch"][i]),
        "workload.recompute": RECOMPUTE[int(cols["recompute"][i])], "parallelism.zero": int(cols["zero"][i]),
        "parallelism.schedule": SCHEDULES[int(cols["schedule"][i])],
        "parallelism.virtual_stages": int(cols["virtual_stages"][i]),
        "parallelism.sequence_parallel": bool(cols["sequence_parallel"][i]),
    }


def apply_layout(scenario: Scenario, cols: dict, i: int, source: str = "plan") -> Scenario:
    """A copy of `scenario` with layout row i applied (validated)."""
    data = scenario.model_dump(mode="json", exclude={"sweep"})
    for path, value in layout_overrides(cols, i).items():
        set_path(data, path.split("."), value)
    return validate(Scenario, data, source)


def layout_label(c) -> str:
    """Short layout text of a candidate, e.g. "tp8/pp4/dp2 mb1 sp rc:selective 1f1b"."""
    if c.kind == "serving":
        return f"{c.replicas} x tp{c.tp}" if c.replicas else f"tp{c.tp}"
    parts = [f"tp{c.tp}", f"pp{c.pp}", f"dp{c.dp}"]
    if c.cp > 1:
        parts.append(f"cp{c.cp}")
    if c.ep > 1:
        parts.append(f"ep{c.ep}")
    s = "/".join(parts) + f" mb{c.micro_batch}"
    if c.sequence_parallel:
        s += " sp"
    if c.recompute != "none":
        s += f" rc:{c.recompute}"
    if c.zero:
        s += f" z{c.zero}"
    if c.pp > 1:
        s += f" {c.schedule}" + (f"x{c.virtual_stages}" if c.schedule == "interleaved" else "")
    # uneven edge stages swept as axes (a fixed uneven layout is the same for every candidate)
    edges = [f"{side}{c.overrides[f'parallelism.{side}_stage_layers']}" for side in ("first", "last")
             if c.overrides.get(f"parallelism.{side}_stage_layers") is not None]
    if edges:
        s += " " + "/".join(edges)
    return s
