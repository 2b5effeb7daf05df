"""Closed forms of the analytic tier, vectorized over candidates (helpers of plan/analytic.py).

The formulas live once, in the engine's own pure helpers, called here on
arrays (or once per distinct key via `_grouped` where a communicator's size
must be a scalar): memory per device is `cost.memory.stage_memory` itself,
gradient accumulation `costing.grad_accumulation_s`, the optimizer step
`costing.optimizer_time_s`, buckets `costing.bucket_split`, the tied-embedding
sync `costing.embedding_sync_s`, the scalar closed form `costing.closed_form_parts`
(with its FIFO bucket queue `exposed_buckets_s`). What is specific to this
module is the vectorized bookkeeping: per-rank busy time of the first, last and
a middle pipeline rank (`pipeline_work`), the bucket queue in closed form over
runs of equal buckets (`_exposed_queue`) and the step tail (`_tails`).
tests/unit/test_plan_analytic.py checks the vectorized tier equals the scalar
one on sampled layouts.
"""
from __future__ import annotations

import numpy as np

from simulator.cost import comm as C
from simulator.cost.memory import embedding_params, head_params, stage_memory
from simulator.parallel.costing import (StageCosts, analytic_step_time_s, bucket_split,  # noqa: F401
                                        embedding_sync_crosses, embedding_sync_s, exposed_buckets_s,
                                        grad_accumulation_s, optimizer_time_s)
from simulator.parallel.strategies import dp_reduce_kind
from simulator.plan.space import RECOMPUTE, SCHEDULES


def _unique_rows(*cols) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of the stacked integer columns, sorted; inverse index), via one mixed-radix key."""
    code = np.zeros(len(np.asarray(cols[0])), dtype=np.int64)
    for c in cols:
        vals, inv = np.unique(np.asarray(c, dtype=np.int64), return_inverse=True)
        code = code * len(vals) + inv.reshape(-1)
    _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    stacked = np.stack([np.asarray(c, dtype=np.int64)[first] for c in cols], axis=1)
    return stacked, inverse.reshape(-1)


# Megatron-LM 2021 point-to-point blocks the sender (costing.StageCosts.p2p_blocking)
P2P_BLOCKING = bool(StageCosts.__dataclass_fields__["p2p_blocking"].default)


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
    """The closed form on a `StageCosts` (`costing.closed_form_parts`; the vectorized tier's reference)."""
    return analytic_step_time_s(costs)


def _head_p(arch, tp, pp, v):
    """Head parameters on the last chunk (none extra when tied and the model is one chunk)."""
    return np.where(arch.tied_embeddings & (pp * v == 1), 0.0, head_params(arch) / tp)


def _acc_fn(profile, dtype, e, m, g):
    """Per-micro-batch gradient accumulation time of a chunk with `params` local parameters
    (`costing.grad_accumulation_s`: read the e-byte gradient, read and write the g-byte buffer)."""
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
    values, inv = np.unique(np.asarray(local_params, float), return_inverse=True)
    times = np.array([optimizer_time_s(profile, float(x), e, optimizer, loss_scaled=dtype == "fp16", grad_b=g)
                      for x in values])
    return times[inv.reshape(-1)]


def _memory(arch, wl, cols, m, e, first, last, stage, layers, g):
    """`cost.memory.stage_memory` itself over all layouts, for one device position (0/1 flag arrays)."""
    tp, pp, dp, cp, ep = (cols[k].astype(float) for k in ("tp", "pp", "dp", "cp", "ep"))
    mem = stage_memory(arch, layers=layers, first=first, last=last, stage=stage, tp=tp, pp=pp, dp=dp, cp=cp, ep=ep,
                       sequence_parallel=cols["sequence_parallel"], zero=cols["zero"],
                       recompute=np.asarray(RECOMPUTE)[cols["recompute"]], micro_batch=cols["micro_batch"].astype(float),
                       seq_len=wl.seq_len, dtype_bytes=e, optimizer=wl.optimizer,
                       schedule=np.asarray(SCHEDULES)[cols["schedule"]], num_microbatches=m,
                       virtual_stages=cols["virtual_stages"].astype(float), grad_bytes=g)
    return mem.total


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
    cross = embedding_sync_crosses(tp, cp, dp, pp, dpn)
    for has_emb, has_head, middle, name in positions:
        params = nl_stage * lpar + has_emb * emb_p + has_head * head_p
        grad = params * g

        def red(s, d, st, z):
            if d <= 1:
                return np.zeros_like(s)
            return C.collective_s(dp_reduce_kind(z), s, C.group_of(d, st, dpn), tiers)
        nb, last_b = bucket_split(grad, bucket)
        both = _grouped(red, np.concatenate([grad, last_b, np.full(n, float(bucket))]),
                        np.tile(dp, 3), np.tile(stride, 3), np.tile(np.minimum(zero, 1), 3))
        total, last_t, full_t = both[:n], both[n:2 * n], both[2 * n:]
        post = np.where((zero >= 1) & (zero < 3) & (dp > 1),
                        _grouped(lambda s, d, st: C.collective_s("all_gather", s, C.group_of(d, st, dpn), tiers)
                                 if d > 1 else np.zeros_like(s), params * e, dp, stride), 0.0)
        has_reduce = dp > 1
        sync_here = embed_sync & (np.asarray(has_emb + has_head) > 0)
        sync = np.zeros(n)
        if np.any(sync_here):
            sync = embedding_sync_s(emb_bytes, cross, tiers)
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
