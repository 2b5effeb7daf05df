"""Stage costs of a general (non-transformer) graph: data parallelism over its op list.

CNNs and other graphs without a `TransformerArch` run as one pipeline stage
(tp = pp = cp = ep = 1). Every forward op of the graph is costed by the
roofline; backward ops follow the same rules as for transformers
(`transformer.backward_ops`). Activation memory is the sum of the forward
outputs (all kept for backward; no recompute), weights/gradients/optimizer,
the gradient buffer's dtype and its per-micro-batch accumulation as for
transformers.
"""
from __future__ import annotations

from simulator.cost import comm as C
from simulator.cost.compute import MATMUL_KINDS, op_time_s
from simulator.cost.memory import MemoryBytes, grad_dtype_bytes, state_bytes
from simulator.parallel.costing import (ChunkCost, DeviceStep, StageCosts, _buckets, grad_accumulation_s,
                                        optimizer_time_s, state_dtype_bytes)
from simulator.parallel.plan import ResolvedPlan
from simulator.parallel.strategies import dp_reduce_kind
from simulator.parallel.transformer import backward_ops


def graph_forward_ops(g) -> list[dict]:
    """Forward op dicts of a graph (node attributes of schema.graph.Op)."""
    ops = []
    for n, a in g.nodes(data=True):
        if a.get("phase", "forward") != "forward":
            continue
        mnk = a.get("gemm_mnk")
        ops.append({"name": str(n), "kind": a.get("kind", "other"), "flops": float(a.get("flops", 0.0)),
                    "bytes": float(a.get("bytes_read", 0.0)) + float(a.get("bytes_written", 0.0)),
                    "gemm_mnk": tuple(mnk) if mnk else None, "core": False,
                    "params": int(a.get("params", 0)), "out_bytes": float(a.get("bytes_written", 0.0))})
    return ops


def graph_stage_costs(g, plan: ResolvedPlan, profile, workload, tiers: C.Tiers) -> StageCosts:
    """One-stage StageCosts of graph `g` (built for one micro-batch) under data parallelism."""
    dtype = workload.dtype
    e = state_dtype_bytes(dtype)
    gb = grad_dtype_bytes(dtype, plan.grad_reduce_dtype)   # fp32 buffer for bf16 (cost.memory.grad_dtype)
    fwd = graph_forward_ops(g)
    t_f = sum(op_time_s(profile, o["kind"], o["flops"], o["bytes"], dtype, o["gemm_mnk"]) for o in fwd)
    t_b = sum(op_time_s(profile, o["kind"], o["flops"], o["bytes"], dtype, o["gemm_mnk"]) for o in backward_ops(fwd))
    params = float(sum(o["params"] for o in fwd))
    if plan.num_microbatches > 1 and params > 0:   # as for transformer chunks (costing.stage_costs)
        t_b += grad_accumulation_s(profile, params, e, gb, dtype)
    grad_bytes = params * gb
    group = C.group_of(plan.dp, 1, plan.devices_per_node)
    kind = dp_reduce_kind(plan.zero)
    buckets = _buckets(grad_bytes, plan.grad_bucket_bytes)
    bucket_s = tuple(C.collective_s(kind, b, group, tiers) for b in buckets) if plan.dp > 1 else ()
    total_s = C.collective_s(kind, grad_bytes, group, tiers) if plan.dp > 1 else 0.0
    post = C.collective_s("all_gather", params * e, group, tiers) if (plan.dp > 1 and 0 < plan.zero < 3) else 0.0
    opt_s = optimizer_time_s(profile, params / (plan.dp if plan.zero >= 1 else 1), e, workload.optimizer,
                             loss_scaled=workload.dtype == "fp16", grad_b=gb)
    w, gr, opt = state_bytes(params, dtype_bytes=e, optimizer=workload.optimizer, zero=plan.zero, dp=plan.dp,
                             grad_bytes=gb)
    flight = plan.num_microbatches if plan.schedule == "gpipe" else 1
    acts = sum(o["out_bytes"] for o in fwd) * flight
    mem = MemoryBytes(w, gr, opt, acts, 0.0)
    chunk = ChunkCost(0, 0, 1, t_f, 0.0, t_b, 0.0, grad_bytes)
    fwd_flops = sum(o["flops"] for o in fwd if o["kind"] in MATMUL_KINDS or o["kind"] == "conv")
    model_flops = 3.0 * fwd_flops * plan.num_microbatches * plan.dp
    device = DeviceStep(0, bucket_s, total_s, post, opt_s, mem)
    return StageCosts(1, 1, plan.num_microbatches, plan.schedule, plan.overlap_grad_reduce, (chunk,),
                      (device,), 0.0, model_flops, model_flops)
