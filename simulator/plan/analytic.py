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
from simulator.cost.memory import embedding_params, head_params, layer_params
from simulator.hardware.cluster import build_cluster
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
    """(distinct rows of the stacked integer columns, sorted; inverse index), via one mixed-radix key."""
    code = np.zeros(len(np.asarray(cols[0])), dtype=np.int64)
    for c in cols:
        vals, inv = np.unique(np.asarray(c, dtype=np.int64), return_inverse=True)
        code = code * len(vals) + inv.reshape(-1)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    stacked = np.stack([np.asarray(c, dtype=np.int64)[first] for c in cols], axis=1)
    return stacked, inverse.reshape(-1)


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


def _p2p_blocking_default() -> bool:
    import dataclasses
    from simulator.parallel.costing import StageCosts
    f = {x.name: x for x in dataclasses.fields(StageCosts)}.get("p2p_blocking")
    return bool(f.default) if f is not None else False


P2P_BLOCKING = _p2p_blocking_default()


def pipeline_work(layers, emb, head, p2p, pp, v, blocking: bool):
    """Per-micro-batch busy time of the first, last and a middle pipeline rank.

    The first rank adds the embedding, the last the head (both on one rank when
    pp == 1). With blocking point-to-point (Megatron-LM 2021: the sender waits
    for its transfer) each rank also pays its sends: 2v per micro-batch, one
    fewer on the first and on the last rank.
    """
    single = pp == 1
    w_first = layers + emb + np.where(single, head, 0.0)
    w_last = layers + head + np.where(single, emb, 0.0)
    w_mid = layers + 0.0
    if blocking:
        w_first = w_first + np.where(single, 0.0, (2 * v - 1) * p2p)
        w_last = w_last + np.where(single, 0.0, (2 * v - 1) * p2p)
        w_mid = w_mid + 2 * v * p2p
    return w_first, w_last, w_mid


def closed_form_step_s(costs) -> float:
    """The planner's closed form on a `StageCosts` (the scalar reference of the vectorized tier).

    step = m * max_d W_d + (sum_d W_d - max_d W_d) / v + 2 (p-1) t_p2p + max_d tail_d:
    in 1F1B and GPipe every micro-batch passes the bottleneck rank once
    (m * max W), and the fill and drain cost one pass through the other ranks
    (Narayanan et al. 2021, section 2.2: bubble (p-1)/m of the ideal time for
    equal stages), shrunk by v with interleaving. W_d includes blocking sends.
    """
    m, p, v = costs.num_microbatches, costs.pp, costs.virtual_stages
    work = []
    for d in range(p):
        w = sum(c.fwd_s + c.bwd_s for c in costs.chunks if c.device == d)
        if getattr(costs, "p2p_blocking", False) and p > 1:
            w += (2 * v - (d == 0) - (d == p - 1)) * costs.p2p_s
        work.append(w)
    pipe = m * max(work) + (sum(work) - max(work)) / v + 2 * (p - 1) * costs.p2p_s
    tail = 0.0
    for d, dev in enumerate(costs.devices):
        if costs.overlap_grad_reduce and dev.bucket_s:
            last_bwd = next(c.bwd_s for c in costs.chunks if c.device == d and c.index == d)
            red = exposed_buckets_s(dev.bucket_s, last_bwd)
        else:
            red = dev.reduce_total_s
        tail = max(tail, red + dev.optimizer_s + dev.post_optimizer_s)
    return pipe + tail


def exposed_buckets_s(bucket_s, last_bwd_s: float) -> float:
    """Reduction time left after the last backward when its buckets queue FIFO on one stream.

    Bucket k of n becomes ready at (k+1)/n of the last backward (duration D);
    a FIFO stream then finishes at max_k(ready_k + sum_{j>=k} t_j), so the
    exposed part is max_k(sum_{j>=k} t_j - D (n-1-k)/n): the last bucket alone
    when the stream keeps up, the whole backlog when it does not.
    """
    n = len(bucket_s)
    suffix = 0.0
    best = 0.0
    for k in range(n - 1, -1, -1):
        suffix += bucket_s[k]
        best = max(best, suffix - last_bwd_s * (n - 1 - k) / n)
    return best


def _head_p(arch, tp, pp, v):
    """Head parameters on the last chunk (none extra when tied and the model is one chunk)."""
    return np.where(arch.tied_embeddings & (pp * v == 1), 0.0, head_params(arch) / tp)


def _acc_fn(profile, dtype, e, m):
    """Per-micro-batch gradient accumulation time of a chunk with `params` local parameters."""
    def acc(params):
        params = np.asarray(params, float)
        t = op_time_s(profile, "elementwise", np.maximum(params, 1.0), 3.0 * np.maximum(params, 1.0) * e, dtype)
        return np.where((m > 1) & (params > 0), t, 0.0)
    return acc


def _exposed_queue(nb, full_t, last_t, sync_t, has_sync, last_bwd):
    """Vectorized `exposed_buckets_s` for buckets [full]*(nb-1) + [last] (+ [sync]).

    The objective is linear in k over the run of equal buckets, so its maximum
    is at k = 0 or at one of the last three positions.
    """
    s = has_sync.astype(float)
    n = nb + s
    best = np.zeros(np.shape(nb))
    for off in (None, 3, 2, 1):
        k = np.zeros_like(n) if off is None else np.maximum(n - off, 0)
        suffix = (np.maximum(nb - 1 - k, 0) * full_t + np.where(k <= nb - 1, last_t, 0.0) * (nb > 0)
                  + np.where(k <= n - 1, sync_t, 0.0) * s)
        val = np.where(n > 0, suffix - last_bwd * (n - 1 - k) / np.maximum(n, 1), 0.0)
        best = np.maximum(best, val)
    return best


def _grad_accumulation(profile, dtype, e, m, lpar, nl_chunk, v, pp, emb_p, head_p):
    """Per rank and micro-batch: accumulating each chunk's weight gradients (costing.stage_costs).

    Each chunk reads its new gradients and reads and writes the buffer (3 x grad
    bytes) once per micro-batch when there is more than one micro-batch.
    """
    def acc(params):
        params = np.asarray(params, float)
        t = op_time_s(profile, "elementwise", np.maximum(params, 1.0), 3.0 * np.maximum(params, 1.0) * e, dtype)
        return np.where((m > 1) & (params > 0), t, 0.0)
    mid = nl_chunk * lpar
    single = pp * v == 1
    first = np.where(single, acc(mid + emb_p + head_p), acc(mid + emb_p) + (v - 1) * acc(mid))
    last = np.where(single, first, acc(mid + head_p) + (v - 1) * acc(mid))
    return first, last, v * acc(mid)


def _grouped(fn, sizes: np.ndarray, *group_cols) -> np.ndarray:
    """fn(sizes_of_group, *group_key) over distinct group keys, scattered back."""
    out = np.zeros(sizes.shape)
    keys, inv = _unique_rows(*group_cols)
    for k, key in enumerate(keys):
        sel = inv == k
        out[sel] = fn(sizes[sel], *[int(x) for x in key])
    return out


def _optimizer_s(profile, local_params, e, optimizer, dtype):
    """`costing.optimizer_time_s` itself, evaluated once per distinct local parameter count."""
    import inspect
    from simulator.parallel.costing import optimizer_time_s
    kw = {"loss_scaled": dtype == "fp16"} if "loss_scaled" in inspect.signature(optimizer_time_s).parameters else {}
    values, inv = np.unique(np.asarray(local_params, float), return_inverse=True)
    times = np.array([optimizer_time_s(profile, float(x), e, optimizer, **kw) for x in values])
    return times[inv.reshape(-1)]


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
    cluster = build_cluster(sc.cluster, profiles_dir)
    tiers = C.tiers_from_cluster(cluster)
    dpn = cluster.scale_up_domain
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
    emb = E["emb_f"] + E["emb_b"] + E["emb_ar"]
    head = E["head_f"] + E["head_b"]
    single = pp == 1
    m = wl.global_batch // (dp * mb)
    # point-to-point between stages (costing._pp_send_s)
    act = mb * wl.seq_len / cp * arch.hidden_size * e_act
    size = np.where(tp > 1, act / tp, act)
    crosses = tp * cp * dp >= dpn
    p2p = np.where(crosses, C.p2p_s(size, tiers.scale_out), C.p2p_s(size, tiers.scale_up))
    p2p = p2p + np.where((tp > 1) & ~sp, _grouped(lambda s, t: C.all_gather_s(s, t, tiers.scale_up),
                                                  act, tp), 0.0)
    p2p = np.where(single, 0.0, p2p)
    layers = nl_stage * (lf + lb)
    acc_first, acc_last, acc_mid = _grad_accumulation(profile, wl.dtype, e, m, lpar, nl_stage // v, v, pp,
                                                      embedding_params(arch) / tp, _head_p(arch, tp, pp, v))
    w_first, w_last, w_mid = pipeline_work(layers, emb, head, p2p, pp, v, P2P_BLOCKING)
    w_first, w_last, w_mid = w_first + acc_first, w_last + acc_last, w_mid + acc_mid
    w_max = np.maximum(np.maximum(w_first, w_last), np.where(pp > 2, w_mid, 0.0))
    w_sum = np.where(single, w_first, w_first + w_last + np.maximum(pp - 2, 0) * w_mid)
    bubble = (w_sum - w_max) / v + 2 * (pp - 1) * p2p
    pipe = m * w_max + bubble
    acc = _acc_fn(profile, wl.dtype, e, m)
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
    tail, opt_s = _tails(arch, par, profile, tiers, dpn, cols, e, wl, lpar, nl_stage, last_bwd)
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
    return {"step_time_s": step, "compute_s": compute,
            "exposed_comm_s": np.maximum(step - compute - bubble - opt_s, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt_s,
            "memory_bytes_per_device": mem, "capacity_bytes": np.full(len(tp), profile.memory.capacity_bytes),
            "tokens_per_s": wl.global_batch * wl.seq_len / step,
            "mfu": model_flops / (step * devices * peak_flops(profile, wl.dtype))}


def _tails(arch, par, profile, tiers, dpn, cols, e, wl, lpar, nl_stage, last_bwd):
    """Per candidate: max over pipeline ranks of exposed DP reduction + optimizer + ZeRO gather."""
    tp, pp, dp, cp, zero = (cols[k] for k in ("tp", "pp", "dp", "cp", "zero"))
    n = len(tp)
    emb_p = embedding_params(arch) / tp
    head_p = _head_p(arch, tp, pp, cols["virtual_stages"])
    first = (pp == 1) * 1.0
    # (has embedding, has head, is middle, name): the first, last and a middle pipeline rank
    positions = [(1.0, first, False, "first"), (first, 1.0, False, "last"), (0.0, 0.0, True, "middle")]
    tail = np.zeros(n)
    opt_best = np.zeros(n)
    stride = tp * cp
    bucket = par.grad_bucket_bytes
    embed_sync = arch.tied_embeddings & (pp > 1)
    emb_bytes = emb_p * e
    cross = tp * cp * dp * (pp - 1) >= dpn
    for has_emb, has_head, middle, name in positions:
        params = nl_stage * lpar + has_emb * emb_p + has_head * head_p
        grad = params * e
        kind_ar = (zero == 0).astype(np.int64)

        def red(s, d, st, ar):
            if d <= 1:
                return np.zeros_like(s)
            return C.collective_s("all_reduce" if ar else "reduce_scatter", s, C.group_of(d, st, dpn), tiers)
        nb = np.maximum(1, np.ceil(grad / bucket))
        last_b = grad - bucket * (nb - 1)
        both = _grouped(red, np.concatenate([grad, last_b, np.full(n, float(bucket))]),
                        np.tile(dp, 3), np.tile(stride, 3), np.tile(kind_ar, 3))
        total, last_t, full_t = both[:n], both[n:2 * n], both[2 * n:]
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
            n_red = np.where(has_reduce & (grad > 0), nb, 0)
            reduce_s = _exposed_queue(n_red, full_t, last_t, np.where(sync_here, sync, 0.0), sync_here,
                                      last_bwd[name])
        else:
            reduce_s = total
        valid = (pp > 2) if middle else np.ones(n, dtype=bool)
        opt_params = params / np.where(zero >= 1, dp, 1)
        opt_s = _optimizer_s(profile, opt_params, e, wl.optimizer, wl.dtype)
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
    """One layout via the engine's own `prepare_training` + `costing.analytic_step_time_s` (the reference)."""
    from simulator.sim.api import prepare_training
    _cluster, _arch, plan, costs = prepare_training(sc, profiles_dir)
    step = closed_form_step_s(costs)
    mem = max(d.memory.total for d in costs.devices)
    tails = []
    for d, dev in enumerate(costs.devices):
        red = (exposed_buckets_s(dev.bucket_s, next(c.bwd_s for c in costs.chunks if c.device == d and c.index == d))
               if costs.overlap_grad_reduce and dev.bucket_s else dev.reduce_total_s)
        tails.append((red + dev.optimizer_s + dev.post_optimizer_s, -d, dev.optimizer_s))
    opt = max(tails)[2]
    m, p, v = plan.num_microbatches, plan.pp, plan.virtual_stages
    comp = max(sum(c.fwd_compute_s + c.bwd_compute_s for c in costs.chunks if c.device == d) for d in range(p))
    work = [sum(c.fwd_s + c.bwd_s for c in costs.chunks if c.device == d)
            + ((2 * v - (d == 0) - (d == p - 1)) * costs.p2p_s if getattr(costs, "p2p_blocking", False) and p > 1
               else 0.0) for d in range(p)]
    bubble = (sum(work) - max(work)) / v + 2 * (p - 1) * costs.p2p_s
    return {"step_time_s": step, "compute_s": m * comp,
            "exposed_comm_s": max(step - m * comp - opt - bubble, 0.0),
            "pipeline_bubble_s": bubble, "optimizer_s": opt, "memory_bytes_per_device": mem,
            "tokens_per_s": sc.workload.global_batch * sc.workload.seq_len / step,
            "mfu": costs.model_flops_per_step / (step * plan.devices * peak_flops(profile, sc.workload.dtype))}
