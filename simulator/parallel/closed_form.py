"""The closed-form step time of a `costing.StageCosts`: what the planner's fast tier vectorizes.

The engine (sim/engine.py) plays the pipeline out event by event; this is the
same schedule in closed form (Narayanan et al. 2021, section 2.2), used by the
planner (plan/closed_form.py, plan/analytic.py) as the scalar reference of its
vectorized tier and checked against the engine within 5% by the tests.
"""
from __future__ import annotations


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


def closed_form_parts(costs) -> tuple[float, float, float, float]:
    """(pipeline time, its fill/drain bubble, step tail, optimizer time in that tail) in closed form.

    pipeline = m * max_d W_d + (sum_d W_d - max_d W_d) / v + 2 (p-1) t_p2p:
    in 1F1B and GPipe every micro-batch passes the bottleneck rank once
    (m * max W), and the fill and drain cost one pass through the other ranks
    (Narayanan et al. 2021, section 2.2: bubble (p-1)/m of the ideal time for
    equal stages), shrunk by v with interleaving. W_d includes blocking sends.
    tail = max_d (exposed DP reduction + optimizer + ZeRO parameter all-gather).
    """
    m, p, v = costs.num_microbatches, costs.pp, costs.virtual_stages
    work = []
    for d in range(p):
        w = sum(c.fwd_s + c.bwd_s for c in costs.chunks if c.device == d)
        if costs.p2p_blocking and p > 1:
            w += (2 * v - (d == 0) - (d == p - 1)) * costs.p2p_s
        work.append(w)
    pipe = m * max(work) + (sum(work) - max(work)) / v + 2 * (p - 1) * costs.p2p_s
    bubble = (sum(work) - max(work)) / v + 2 * (p - 1) * costs.p2p_s
    tails = [(0.0, 0, 0.0)]
    for d, dev in enumerate(costs.devices):
        if costs.overlap_grad_reduce and dev.bucket_s:
            last_bwd = next(c.bwd_s for c in costs.chunks if c.device == d and c.index == d)
            red = exposed_buckets_s(dev.bucket_s, last_bwd)
        else:
            red = dev.reduce_total_s
        tails.append((red + dev.optimizer_s + dev.post_optimizer_s, -d, dev.optimizer_s))
    tail, _, opt = max(tails)
    return pipe, bubble, tail, opt


def analytic_step_time_s(costs) -> float:
    """Closed-form step time (`closed_form_parts`): what the planner's vectorized tier computes."""
    pipe, _, tail, _ = closed_form_parts(costs)
    return pipe + tail
