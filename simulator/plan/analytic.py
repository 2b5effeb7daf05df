"""The planner's fast tier: step time, memory and MFU of every layout at once, in NumPy.

It consumes the same per-op and per-collective cost functions as the full
engine (`simulator.parallel.costing.stage_costs`: per-rank op lists of
parallel/transformer.py, cost/compute.op_time_s, cost/comm collectives,
cost/memory) and replaces only the event-by-event pipeline with the closed
form of `costing.analytic_step_time_s`:

    step = m * max_d W_d + (p - 1) * max_chunk (f + b) + 2 (p - 1) * t_p2p
           + max_d (exposed DP reduction + optimizer + ZeRO all-gather)

(1F1B / GPipe bubble (p-1) chunk times, Narayanan et al. 2021; interleaving
divides the chunk by v). Structure gives the speed: one transformer layer is
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
from simulator.cost.memory import embedding_params, head_params, layer_params
from simulator.parallel import transformer as T
from simulator.parallel.strategies import LoweringContext, lower
from simulator.plan.space import RECOMPUTE, SCHEDULES
from simulator.units import dtype_bytes

_STATE_TENSORS = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}


def model_arch(sc):
    from simulator.graph.build import load_arch
    return load_arch(sc.workload.model, sc.workload.model_options or None)


def _dtypes(dtype: str) -> tuple[float, float]:
    e = float(dtype_bytes(dtype if dtype != "tf32" else "fp32"))
    e_act = max(2.0, e) if dtype != "fp8" else 2.0
    return e, e_act


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


def _unique_rows(*cols) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in cols], axis=1)
    keys, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return keys, inverse.reshape(-1)


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
        for c in lower(ctx):
            if c.scope not in ("layer_fwd", "layer_bwd"):
                continue
            g = c.group
            if c.kind in ("p2p", "p2p_ring"):
                t = c.count * C.p2p_s(c.size_bytes, tiers.scale_out if g.nodes > 1 else tiers.scale_up)
            else:
                t = c.count * C.collective_s(c.kind, c.size_bytes, g, tiers)
            fw = c.scope == "layer_fwd"
            arr = (hid_f if fw else hid_b) if c.overlap else (direct_f if fw else direct_b)
            arr[i] += t
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


def _grouped(fn, sizes: np.ndarray, *group_cols) -> np.ndarray:
    """fn(sizes_of_group, *group_key) over distinct group keys, scattered back."""
    out = np.zeros(sizes.shape)
    keys, inv = _unique_rows(*group_cols)
    for k, key in enumerate(keys):
        sel = inv == k
        out[sel] = fn(sizes[sel], *[int(x) for x in key])
    return out


def _optimizer_s(profile, local_params, e, optimizer):
    """Vectorized `costing.optimizer_time_s` (memory-bound mixed-precision optimizer step)."""
    states = 2 if optimizer in ("adam", "adamw") else 1
    per_param = 2 * e + 8.0 * states + 8.0 + (e if e < 4 else 0.0)
    nbytes = np.asarray(local_params, float) * per_param
    t = op_time_s(profile, "optimizer", np.zeros_like(nbytes), np.maximum(nbytes, 1.0), "fp32", launches=2)
    return np.where(nbytes > 0, t, 0.0)


def _memory(arch, wl, cols, m, e, first, last, stage, layers):
    """Vectorized `cost.memory.stage_memory` for one device position (first/last flags are arrays)."""
    tp, pp, dp, cp, ep = (cols[k].astype(float) for k in ("tp", "pp", "dp", "cp", "ep"))
    sp, zero, mb = cols["sequence_parallel"], cols["zero"], cols["micro_batch"].astype(float)
    rec = cols["recompute"]
    dense, expert = layer_params(arch)
    params = layers * (dense / tp + expert / (tp * ep)) + first * embedding_params(arch) / tp \
        + last * (1.0 - first * float(arch.tied_embeddings)) * head_params(arch) / tp
    weights, grads = params * e, params * e
    master = 4.0 if e < 4 else 0.0
    opt = params * (4.0 * _STATE_TENSORS.get(wl.optimizer, 2) + master)
    opt = np.where(zero >= 1, opt / dp, opt)
    grads = np.where(zero >= 2, grads / dp, grads)
    weights = np.where(zero >= 3, weights / dp, weights)
    s, h, a = wl.seq_len // cp, arch.hidden_size, max(e, 2.0)
    sbh = s * mb * h
    scale = a / 2.0
    mats = 3 if arch.gated_mlp else 2
    split = 8.0 * sbh + 2.0 * mats * s * mb * arch.ffn_hidden_size
    if arch.num_experts > 1:
        split = split + 2.0 * mats * s * mb * arch.ffn_hidden_size * (arch.experts_per_token - 1)
    repl = np.where(sp, 10.0 * sbh / tp, 10.0 * sbh)
    none_act = (split / tp + repl + 5.0 * arch.num_heads * s * s * mb / tp) * scale
    sel_act = (split / tp + repl) * scale
    full_act = 2.0 * sbh / np.where(sp, tp, 1.0) * scale
    per_layer = np.choose(rec, [none_act, sel_act, full_act])
    sched = cols["schedule"]
    v = cols["virtual_stages"].astype(float)
    base = np.minimum(m, pp - stage)
    flight = np.where(sched == SCHEDULES.index("gpipe"), m,
                      np.where((sched == SCHEDULES.index("interleaved")) & (v > 1),
                               base + (pp - 1 - stage) / v, base))
    acts = per_layer * layers * flight
    temp = np.where(rec == 2, none_act, 0.0)
    temp = temp + last * s * mb * arch.vocab_size / tp * (a + 4.0)
    temp = temp + np.where(zero >= 3, (dense + expert / ep) / tp * e, 0.0)
    return weights + grads + opt + acts + temp


def evaluate(sc, cols: dict, profile, arch, profiles_dir=None) -> dict:
    """Analytic columns for every layout in `cols` (see the module docstring)."""
    if arch is None or len(cols["tp"]) == 0:
        return evaluate_rows(sc, cols, profile, arch, profiles_dir)
    wl, par = sc.workload, sc.parallelism
    dpn = sc.cluster.devices_per_node or profile.devices_per_node
    tiers = C.tiers_from_profile(profile, dpn)
    e, e_act = _dtypes(wl.dtype)
    tp, pp, dp, cp, ep = (cols[k] for k in ("tp", "pp", "dp", "cp", "ep"))
    sp, mb, rec, zero, v = (cols[k] for k in ("sequence_parallel", "micro_batch", "recompute", "zero",
                                               "virtual_stages"))
    if np.any(arch.num_layers % (pp * v)):
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
    nl_chunk = nl_stage // v
    emb = E["emb_f"] + E["emb_b"] + E["emb_ar"]
    head = E["head_f"] + E["head_b"]
    single = pp == 1
    work = nl_stage * (lf + lb) + np.where(single, emb + head, np.maximum(emb, head))
    chunk = nl_chunk * (lf + lb) + np.where(pp * v == 1, emb + head, np.maximum(emb, head))
    m = wl.global_batch // (dp * mb)
    # point-to-point between stages (costing._pp_send_s)
    act = mb * wl.seq_len / cp * arch.hidden_size * e_act
    size = np.where(tp > 1, act / tp, act)
    crosses = tp * cp * dp >= dpn
    p2p = np.where(crosses, C.p2p_s(size, tiers.scale_out), C.p2p_s(size, tiers.scale_up))
    p2p = p2p + np.where((tp > 1) & ~sp, _grouped(lambda s, t: C.all_gather_s(s, t, tiers.scale_up),
                                                  act, tp), 0.0)
    p2p = np.where(pp > 1, p2p, 0.0)
    pipe = m * work + (pp - 1) * chunk + 2 * (pp - 1) * p2p
    tail, opt_s = _tails(arch, par, profile, tiers, dpn, cols, e, wl.optimizer, lpar, nl_stage)
    step = pipe + tail
    # memory: the first stage holds most in flight; the last holds the head and logits
    one = np.ones(len(tp))
    mem_first = _memory(arch, wl, cols, m, e, one, (pp == 1) * 1.0, 0, nl_stage)
    mem_last = _memory(arch, wl, cols, m, e, (pp == 1) * 1.0, one, pp - 1, nl_stage)
    mem = np.maximum(mem_first, mem_last)
    per_mb_gemm = arch.num_layers * L["gemm_f"] * tp * cp + E["head_gemm"] * tp * cp
    model_flops = 3.0 * per_mb_gemm * m * dp
    devices = tp * pp * dp * cp
    emb_c, head_c = E["emb_f"] + E["emb_b"], E["head_f"] + E["head_b"]
    compute = m * (nl_stage * (L["fwd_c"] + L["bwd_c"])
                   + np.where(single, emb_c + head_c, np.maximum(emb_c, head_c)))
    bubble = (pp - 1) * chunk + 2 * (pp - 1) * p2p
    return {"step_time_s": step, "compute_s": compute,
            "exposed_comm_s": np.maximum(step - compute - bubble - opt_s, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt_s,
            "memory_bytes_per_device": mem, "capacity_bytes": np.full(len(tp), profile.memory.capacity_bytes),
            "tokens_per_s": wl.global_batch * wl.seq_len / step,
            "mfu": model_flops / (step * devices * peak_flops(profile, wl.dtype))}


def _tails(arch, par, profile, tiers, dpn, cols, e, optimizer, lpar, nl_stage):
    """Per candidate: max over pipeline ranks of exposed DP reduction + optimizer + ZeRO gather."""
    tp, pp, dp, cp, zero = (cols[k] for k in ("tp", "pp", "dp", "cp", "zero"))
    n = len(tp)
    emb_p = embedding_params(arch) / tp
    head_p = np.where(arch.tied_embeddings & (pp * cols["virtual_stages"] == 1), 0.0, head_params(arch) / tp)
    first = (pp == 1) * 1.0
    positions = [(1.0, first, False), (first, 1.0, False), (0.0, 0.0, True)]   # (has embedding, has head): first, last, middle
    tail = np.zeros(n)
    opt_best = np.zeros(n)
    stride = tp * cp
    bucket = par.grad_bucket_bytes
    embed_sync = arch.tied_embeddings & (pp > 1)
    emb_bytes = emb_p * e
    cross = tp * cp * dp * (pp - 1) >= dpn
    for has_emb, has_head, middle in positions:
        params = nl_stage * lpar + has_emb * emb_p + has_head * head_p
        grad = params * e
        kind_ar = (zero == 0).astype(np.int64)

        def red(s, d, st, ar):
            if d <= 1:
                return np.zeros_like(s)
            return C.collective_s("all_reduce" if ar else "reduce_scatter", s, C.group_of(d, st, dpn), tiers)
        nb = np.maximum(1, np.ceil(grad / bucket))
        last_b = grad - bucket * (nb - 1)
        total = _grouped(red, grad, dp, stride, kind_ar)
        last_t = _grouped(red, last_b, dp, stride, kind_ar)
        post = np.where((zero >= 1) & (zero < 3) & (dp > 1),
                        _grouped(lambda s, d, st: C.collective_s("all_gather", s, C.group_of(d, st, dpn), tiers)
                                 if d > 1 else np.zeros_like(s), grad, dp, stride), 0.0)
        has_reduce = dp > 1
        sync_here = embed_sync & (np.asarray(has_emb + has_head) > 0)
        sync = np.zeros(n)
        if np.any(sync_here):
            g_x, g_n = C.Group(2, 1, 2), C.Group(2, 2, 1)
            sync = np.where(cross, C.collective_s("all_reduce", emb_bytes, g_x, tiers),
                            C.collective_s("all_reduce", emb_bytes, g_n, tiers))
        total = np.where(has_reduce, total, 0.0) + np.where(sync_here, sync, 0.0)
        if par.overlap_grad_reduce:
            reduce_s = np.where(sync_here, sync, np.where(has_reduce & (grad > 0), last_t, total))
        else:
            reduce_s = total
        valid = (pp > 2) if middle else np.ones(n, dtype=bool)
        opt_params = params / np.where(zero >= 1, dp, 1)
        opt_s = _optimizer_s(profile, opt_params, e, optimizer)
        t = np.where(valid, reduce_s + opt_s + post, 0.0)
        better = t > tail
        opt_best = np.where(better, opt_s, opt_best)
        tail = np.maximum(tail, t)
    return tail, opt_best


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
    """One layout via `costing.stage_costs` + `costing.analytic_step_time_s` (the reference)."""
    from simulator.parallel.costing import analytic_step_time_s, stage_costs
    from simulator.parallel.plan import resolve_plan
    dpn = sc.cluster.devices_per_node or profile.devices_per_node
    plan = resolve_plan(sc, arch, dpn)
    costs = stage_costs(arch, plan, profile, sc.workload)
    step = analytic_step_time_s(costs)
    mem = max(d.memory.total for d in costs.devices)
    opt = max(d.optimizer_s for d in costs.devices)
    m, p = plan.num_microbatches, plan.pp
    comp = max(sum(c.fwd_compute_s + c.bwd_compute_s for c in costs.chunks if c.device == d) for d in range(p))
    chunk_max = max(c.fwd_s + c.bwd_s for c in costs.chunks)
    bubble = (p - 1) * chunk_max + 2 * (p - 1) * costs.p2p_s
    return {"step_time_s": step, "compute_s": m * comp,
            "exposed_comm_s": max(step - m * comp - opt - bubble, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt, "memory_bytes_per_device": mem,
            "tokens_per_s": sc.workload.global_batch * sc.workload.seq_len / step,
            "mfu": costs.model_flops_per_step / (step * plan.devices * peak_flops(profile, sc.workload.dtype))}
