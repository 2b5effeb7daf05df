"""The planner's fast tier: step time, memory and MFU of every layout at once, in NumPy.

It consumes the same per-op and per-collective cost functions as the full
engine (`simulator.parallel.costing.stage_costs`: per-rank op lists of
parallel/transformer.py, cost/compute.op_time_s, cost/comm collectives,
cost/memory) and replaces only the event-by-event pipeline with a closed form
(`closed_form_step_s`):

    step = m * max_d W_d + (sum_d W_d - max_d W_d) / v + 2 (p - 1) * t_p2p
           + max_d (exposed DP reduction + optimizer + ZeRO all-gather)

W_d is rank d's busy time per micro-batch (its layers, the embedding on the
first and the head on the last rank, blocking sends). Every micro-batch passes
the bottleneck rank once; fill and drain pass once through the others (1F1B /
GPipe, Narayanan et al. 2021 section 2.2; interleaving divides that by v).
Structure gives the speed: one transformer layer is
costed once per distinct (tp, cp, sp, micro-batch, recompute, ep), with each
op position vectorized across those keys; pipeline, data-parallel and
optimizer terms are vectorized over all candidates. `evaluate_scalar` runs
`stage_costs` itself on one layout (used for fixed layouts and general graphs,
and by the tests that check the vectorized tier equals it).
"""
from __future__ import annotations

import numpy as np

from simulator.cost import comm as C
from simulator.cost.compute import MATMUL_KINDS, op_time_s, peak_flops
from simulator.cost.memory import embedding_params, grad_dtype_bytes, layer_params
from simulator.hardware.cluster import build_cluster
from simulator.parallel import transformer as T
from simulator.parallel.costing import (activation_dtype_bytes, closed_form_parts, layer_comm_s, pp_send_s,
                                        state_dtype_bytes)
from simulator.parallel.plan import is_uneven
from simulator.parallel.strategies import LoweringContext
from simulator.plan.space import RECOMPUTE

from simulator.plan.closed_form import (P2P_BLOCKING, _acc_fn, _exposed_queue, _grad_accumulation,  # noqa: F401 (re-exported)
                                        _grouped, _head_p, _memory, _tails, _unique_rows, closed_form_step_s,
                                        exposed_buckets_s, pipeline_work)


def model_arch(sc):
    from simulator.graph.build import load_arch
    return load_arch(sc.workload.model, sc.workload.model_options or None, sc.workload.attention)


def _dtypes(dtype: str) -> tuple[float, float]:
    """(weight, activation) bytes per element, as `costing.stage_costs` takes them."""
    return state_dtype_bytes(dtype), activation_dtype_bytes(dtype)


def _ops_times(profile, op_lists: list[list[dict]], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Per key: (time of each op [K, n_ops], matmul-FLOP mask-weighted sum [K]) with op positions vectorized."""
    n_ops = len(op_lists[0])
    times = np.zeros((len(op_lists), n_ops))
    gemm = np.zeros(len(op_lists))
    for j in range(n_ops):
        col = [ops[j] for ops in op_lists]
        kind = col[0]["kind"]
        flops = np.array([o["flops"] for o in col], dtype=float)
        nbytes = np.array([o["bytes"] for o in col], dtype=float)
        mnk = None
        if col[0]["gemm_mnk"] is not None:
            mnk = tuple(np.array([o["gemm_mnk"][i] for o in col], dtype=float) for i in range(3))
        times[:, j] = op_time_s(profile, kind, flops, nbytes, dtype, mnk)
        if kind in MATMUL_KINDS:
            gemm += flops
    return times, gemm


def _layer_keys(arch, wl, profile, tiers, dpn, keys, e_act):
    """Per layer key (tp, cp, sp, mb, rec, ep): fwd/bwd compute, direct and hideable comm, GEMM FLOPs."""
    fwd_lists, rec_masks = [], []
    for tp, cp, sp, mb, rec, ep in keys:
        fwd = T.layer_forward_ops(arch, micro_batch=int(mb), seq_len=wl.seq_len, tp=int(tp), cp=int(cp),
                                  sequence_parallel=bool(sp), ep=int(ep), dtype_bytes=e_act)
        fwd_lists.append(fwd)
        policy = RECOMPUTE[rec]
        rec_masks.append([policy == "full" or (policy == "selective" and o["core"]) for o in fwd])
    t_f_ops, gf = _ops_times(profile, fwd_lists, wl.dtype)
    t_b_ops, _ = _ops_times(profile, [T.backward_ops(f) for f in fwd_lists], wl.dtype)
    mask = np.array(rec_masks, dtype=float)
    gemm_mask = np.array([[o["kind"] in MATMUL_KINDS for o in f] for f in fwd_lists], dtype=float)
    flops = np.array([[o["flops"] for o in f] for f in fwd_lists])
    out = {"fwd_c": t_f_ops.sum(1), "bwd_c": t_b_ops.sum(1) + (t_f_ops * mask).sum(1), "gemm_f": gf,
           "gemm_r": (flops * gemm_mask * mask).sum(1)}
    direct_f, direct_b, hid_f, hid_b = (np.zeros(len(keys)) for _ in range(4))
    for i, (tp, cp, sp, mb, rec, ep) in enumerate(keys):
        ctx = LoweringContext(arch=arch, tp=int(tp), pp=1, dp=1, cp=int(cp), ep=int(ep),
                              sequence_parallel=bool(sp), zero=0, recompute=RECOMPUTE[rec],
                              micro_batch=int(mb), seq_len=wl.seq_len, dtype_bytes=e_act, devices_per_node=dpn)
        direct_f[i], direct_b[i], hid_f[i], hid_b[i] = layer_comm_s(ctx, tiers)
    out.update(direct_f=direct_f, direct_b=direct_b, hid_f=hid_f, hid_b=hid_b)
    return out


def _edge_keys(arch, wl, profile, tiers, dpn, keys, e_act):
    """Per (tp, cp, sp, mb): embedding and head times fwd/bwd, the tp all-reduce, head GEMM FLOPs."""
    embs, heads = [], []
    for tp, cp, sp, mb in keys:
        kw = dict(micro_batch=int(mb), seq_len=wl.seq_len, tp=int(tp), cp=int(cp), sequence_parallel=bool(sp),
                  dtype_bytes=e_act)
        embs.append(T.embedding_ops(arch, **kw))
        heads.append(T.head_ops(arch, **kw))
    ef, _ = _ops_times(profile, embs, wl.dtype)
    eb, _ = _ops_times(profile, [T.backward_ops(x) for x in embs], wl.dtype)
    hf, hg = _ops_times(profile, heads, wl.dtype)
    hb, _ = _ops_times(profile, [T.backward_ops(x) for x in heads], wl.dtype)
    emb_ar = np.zeros(len(keys))
    for i, (tp, cp, sp, mb) in enumerate(keys):
        if tp > 1:
            act = mb * wl.seq_len / cp * arch.hidden_size * e_act
            emb_ar[i] = C.collective_s("all_reduce", act, C.group_of(int(tp), 1, dpn), tiers)
    return {"emb_f": ef.sum(1), "emb_b": eb.sum(1), "head_f": hf.sum(1), "head_b": hb.sum(1),
            "emb_ar": emb_ar, "head_gemm": hg}


def evaluate(sc, cols: dict, profile, arch, profiles_dir=None) -> dict:
    """Analytic columns for every layout in `cols` (see the module docstring)."""
    if arch is None or len(cols["tp"]) == 0:
        return evaluate_rows(sc, cols, profile, arch, profiles_dir)
    wl, par = sc.workload, sc.parallelism
    cluster = build_cluster(sc.cluster, profiles_dir)
    tiers = C.tiers_from_cluster(cluster)
    dpn = cluster.scale_up_domain
    e, e_act = _dtypes(wl.dtype)
    g = grad_dtype_bytes(wl.dtype, par.grad_reduce_dtype)
    tp, pp, dp, cp, ep = (cols[k] for k in ("tp", "pp", "dp", "cp", "ep"))
    sp, mb, rec, zero, v = (cols[k] for k in ("sequence_parallel", "micro_batch", "recompute", "zero",
                                               "virtual_stages"))
    if np.any(arch.num_layers % (pp * v)) or is_uneven(par):
        # uneven stages: row by row through costing.stage_costs + its closed form
        return evaluate_rows(sc, cols, profile, arch, profiles_dir)
    lkeys, linv = _unique_rows(tp, cp, sp, mb, rec, ep)
    L = {k: x[linv] for k, x in _layer_keys(arch, wl, profile, tiers, dpn, lkeys, e_act).items()}
    ekeys, einv = _unique_rows(tp, cp, sp, mb)
    E = {k: x[einv] for k, x in _edge_keys(arch, wl, profile, tiers, dpn, ekeys, e_act).items()}
    dense, expert = layer_params(arch)
    lpar = dense / tp + expert / (tp * ep)
    z3 = np.where((zero >= 3) & (dp > 1), _grouped(lambda s, d, st: C.collective_s(
        "all_gather", s, C.group_of(d, st, dpn), tiers), lpar * e_act, dp, tp * cp), 0.0)
    lf = L["fwd_c"] + L["direct_f"] + np.maximum(0.0, L["hid_f"] + z3 - L["fwd_c"])
    lb = L["bwd_c"] + L["direct_b"] + np.maximum(0.0, L["hid_b"] + z3 - L["bwd_c"])
    nl_stage = arch.num_layers // pp
    emb = E["emb_f"] + E["emb_b"] + E["emb_ar"]
    head = E["head_f"] + E["head_b"]
    single = pp == 1
    m = wl.global_batch // (dp * mb)
    # point-to-point between stages: costing.pp_send_s per distinct (tp, sp, crosses nodes)
    act = mb * wl.seq_len / cp * arch.hidden_size * e_act
    crosses = tp * cp * dp >= dpn
    p2p = _grouped(lambda a, t, s, x: pp_send_s(a, t, bool(s), bool(x), tiers), act, tp, sp, crosses)
    p2p = np.where(single, 0.0, p2p)
    layers = nl_stage * (lf + lb)
    acc_first, acc_last, acc_mid = _grad_accumulation(profile, wl.dtype, e, m, lpar, nl_stage // v, v, pp,
                                                      embedding_params(arch) / tp, _head_p(arch, tp, pp, v), g)
    w_first, w_last, w_mid = pipeline_work(layers, emb, head, p2p, pp, v, P2P_BLOCKING)
    w_first, w_last, w_mid = w_first + acc_first, w_last + acc_last, w_mid + acc_mid
    w_max = np.maximum(np.maximum(w_first, w_last), np.where(pp > 2, w_mid, 0.0))
    w_sum = np.where(single, w_first, w_first + w_last + np.maximum(pp - 2, 0) * w_mid)
    bubble = (w_sum - w_max) / v + 2 * (pp - 1) * p2p
    pipe = m * w_max + bubble
    acc = _acc_fn(profile, wl.dtype, e, m, g)
    emb_p, head_p = embedding_params(arch) / tp, _head_p(arch, tp, pp, v)
    mid_p = (nl_stage // v) * lpar
    chunk_b = (nl_stage // v) * lb
    one_chunk = pp * v == 1
    last_bwd = {   # backward of chunk 0 on the first, last and a middle rank (the last task of each)
        "first": chunk_b + E["emb_b"] + np.where(one_chunk, E["head_b"] + acc(mid_p + emb_p + head_p),
                                                  acc(mid_p + emb_p)),
        "last": np.where(pp == 1, 0.0, chunk_b + np.where(v == 1, E["head_b"] + acc(mid_p + head_p), acc(mid_p))),
        "middle": chunk_b + acc(mid_p)}
    last_bwd["last"] = np.where(pp == 1, last_bwd["first"], last_bwd["last"])
    tail, opt_s = _tails(arch, par, profile, tiers, dpn, cols, e, wl, lpar, nl_stage, last_bwd, g)
    step = pipe + tail
    # memory: the first stage holds most in flight; the last holds the head and logits
    one = np.ones(len(tp))
    mem_first = _memory(arch, wl, cols, m, e, one, (pp == 1) * 1.0, 0, nl_stage, g)
    mem_last = _memory(arch, wl, cols, m, e, (pp == 1) * 1.0, one, pp - 1, nl_stage, g)
    mem = np.maximum(mem_first, mem_last)
    per_mb_gemm = arch.num_layers * L["gemm_f"] * tp * cp + E["head_gemm"] * tp * cp
    model_flops = 3.0 * per_mb_gemm * m * dp
    devices = tp * pp * dp * cp
    emb_c, head_c = E["emb_f"] + E["emb_b"], E["head_f"] + E["head_b"]
    compute = m * (nl_stage * (L["fwd_c"] + L["bwd_c"])
                   + np.where(single, emb_c + head_c, np.maximum(emb_c, head_c)))
    return {"step_time_s": step, "compute_s": compute,
            "exposed_comm_s": np.maximum(step - compute - bubble - opt_s, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt_s,
            "memory_bytes_per_device": mem, "capacity_bytes": np.full(len(tp), profile.memory.capacity_bytes),
            "tokens_per_s": wl.global_batch * wl.seq_len / step,
            "mfu": model_flops / (step * devices * peak_flops(profile, wl.dtype))}


def evaluate_rows(sc, cols: dict, profile, arch, profiles_dir=None) -> dict:
    """Row by row through the training engine's own closed form (fixed layouts, general graphs)."""
    from simulator.plan.space import apply_layout
    n = len(cols["tp"])
    out = {k: np.full(n, np.nan) for k in ("step_time_s", "compute_s", "exposed_comm_s", "pipeline_bubble_s",
                                           "optimizer_s", "memory_bytes_per_device", "tokens_per_s", "mfu")}
    out["capacity_bytes"] = np.full(n, profile.memory.capacity_bytes)
    for i in range(n):
        r = evaluate_scalar(apply_layout(sc, cols, i), profile, arch, profiles_dir)
        for k, val in r.items():
            out[k][i] = val
    return out


def evaluate_scalar(sc, profile, arch, profiles_dir=None) -> dict:
    """One layout via the engine's own `prepare_training` + `costing.closed_form_parts` (the reference)."""
    from simulator.sim.api import prepare_training
    _cluster, _arch, plan, costs = prepare_training(sc, profiles_dir)
    pipe, bubble, tail, opt = closed_form_parts(costs)
    step = pipe + tail
    mem = max(d.memory.total for d in costs.devices)
    m, p = plan.num_microbatches, plan.pp
    comp = max(sum(c.fwd_compute_s + c.bwd_compute_s for c in costs.chunks if c.device == d) for d in range(p))
    return {"step_time_s": step, "compute_s": m * comp,
            "exposed_comm_s": max(step - m * comp - opt - bubble, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt, "memory_bytes_per_device": mem,
            "tokens_per_s": sc.workload.global_batch * sc.workload.seq_len / step,
            "mfu": costs.model_flops_per_step / (step * plan.devices * peak_flops(profile, sc.workload.dtype))}
