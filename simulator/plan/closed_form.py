"""Closed forms of the analytic tier, vectorized over candidates (helpers of plan/analytic.py).

The pipeline step (`closed_form_step_s` and its vectorized form in
`analytic.evaluate`), the FIFO gradient-bucket queue after the last backward
(`exposed_buckets_s`), per-chunk gradient accumulation, the optimizer step
(the engine's own `costing.optimizer_time_s`, once per distinct size), memory
per device (the vectorized `cost.memory.stage_memory`) and the once-per-step
tail (DP reduction, optimizer, ZeRO parameter all-gather). Each mirrors a
function of `parallel.costing` / `cost.memory`; tests/unit/test_plan_analytic.py
checks the vectorized tier equals the scalar one on sampled layouts.
"""
from __future__ import annotations

import numpy as np

from simulator.cost import comm as C
from simulator.cost.memory import embedding_params, head_params, layer_params
from simulator.plan.space import SCHEDULES

_STATE_TENSORS = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}

def _unique_rows(*cols) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of the stacked integer columns, sorted; inverse index), via one mixed-radix key."""
    code = np.zeros(len(np.asarray(cols[0])), dtype=np.int64)
    for c in cols:
        vals, inv = np.unique(np.asarray(c, dtype=np.int64), return_inverse=True)
        code = code * len(vals) + inv.reshape(-1)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    stacked = np.stack([np.asarray(c, dtype=np.int64)[first] for c in cols], axis=1)
    return stacked, inverse.reshape(-1)


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


def _acc_fn(profile, dtype, e, m, g):
    """Per-micro-batch gradient accumulation time of a chunk with `params` local parameters
    (`costing.grad_accumulation_s`: read the e-byte gradient, read and write the g-byte buffer)."""
    from simulator.parallel.costing import grad_accumulation_s

    def acc(params):
        params = np.asarray(params, float)
        t = grad_accumulation_s(profile, np.maximum(params, 1.0), e, g, dtype)
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


def _grad_accumulation(profile, dtype, e, m, lpar, nl_chunk, v, pp, emb_p, head_p, g):
    """Per rank and micro-batch: accumulating each chunk's weight gradients (costing.stage_costs).

    Each chunk reads its new e-byte gradients and reads and writes the g-byte
    buffer once per micro-batch when there is more than one micro-batch.
    """
    acc = _acc_fn(profile, dtype, e, m, g)
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


def _optimizer_s(profile, local_params, e, optimizer, dtype, g):
    """`costing.optimizer_time_s` itself, evaluated once per distinct local parameter count."""
    from simulator.parallel.costing import optimizer_time_s
    values, inv = np.unique(np.asarray(local_params, float), return_inverse=True)
    times = np.array([optimizer_time_s(profile, float(x), e, optimizer, loss_scaled=dtype == "fp16", grad_b=g)
                      for x in values])
    return times[inv.reshape(-1)]


def _memory(arch, wl, cols, m, e, first, last, stage, layers, g):
    """Vectorized `cost.memory.stage_memory` for one device position (first/last flags are arrays)."""
    tp, pp, dp, cp, ep = (cols[k].astype(float) for k in ("tp", "pp", "dp", "cp", "ep"))
    sp, zero, mb = cols["sequence_parallel"], cols["zero"], cols["micro_batch"].astype(float)
    rec = cols["recompute"]
    dense, expert = layer_params(arch)
    params = layers * (dense / tp + expert / (tp * ep)) + first * embedding_params(arch) / tp \
        + last * (1.0 - first * float(arch.tied_embeddings)) * head_params(arch) / tp
    weights, grads = params * e, params * g
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


def _tails(arch, par, profile, tiers, dpn, cols, e, wl, lpar, nl_stage, last_bwd, g):
    """Per candidate: max over pipeline ranks of exposed DP reduction + optimizer + ZeRO gather.

    Gradients (and the tied-embedding sync) move g bytes per parameter; the
    ZeRO 1/2 all-gather moves the e-byte weights."""
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
    emb_bytes = emb_p * g
    cross = tp * cp * dp * (pp - 1) >= dpn
    for has_emb, has_head, middle, name in positions:
        params = nl_stage * lpar + has_emb * emb_p + has_head * head_p
        grad = params * g
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
                                 if d > 1 else np.zeros_like(s), params * e, dp, stride), 0.0)
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
        opt_s = _optimizer_s(profile, opt_params, e, wl.optimizer, wl.dtype, g)
        t = np.where(valid, reduce_s + opt_s + post, 0.0)
        better = t > tail
        opt_best = np.where(better, opt_s, opt_best)
        tail = np.maximum(tail, t)
    return tail, opt_best
