"""Per-stage costs of a layout: what the SimPy engine and the analytic planner both consume.

`stage_costs(arch, plan, profile, workload)` costs one transformer layer once
(identical layers, identical tp/dp ranks), builds every pipeline chunk's
forward and backward time per micro-batch (compute + critical-path
communication), the point-to-point time between stages, each device's
data-parallel gradient buckets, its optimizer step and its memory. The only
thing the engine adds is the event-by-event schedule; `analytic_step_time_s`
(`closed_form_parts`) is the closed form the planner's fast tier vectorizes
(the two agree closely on balanced pipelines, which a test checks). The pure
helpers below (`grad_accumulation_s`, `pp_send_s`, `layer_comm_s`,
`cost.memory.stage_memory`, ...) are shared with plan/closed_form.py.
Chunks may hold different layer counts (`plan.chunk_layer_counts`: uneven
first/last stages, or layers that do not divide); memory is per stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator.cost import comm as C
from simulator.cost.compute import MATMUL_KINDS, op_time_s
from simulator.cost.memory import (MemoryBytes, embedding_params, grad_dtype_bytes, head_params, layer_params,
                                   stage_memory)
from simulator.parallel import transformer as T
from simulator.parallel.closed_form import analytic_step_time_s, closed_form_parts, exposed_buckets_s  # noqa: F401
from simulator.parallel.plan import ResolvedPlan, chunk_layer_counts
from simulator.parallel.strategies import Comm, LoweringContext, lower, pipeline_send_bytes
from simulator.schema.graph import TransformerArch
from simulator.schema.hardware import HardwareProfile
from simulator.units import dtype_bytes


@dataclass(frozen=True)
class ChunkCost:
    """One pipeline chunk (a virtual stage: consecutive layers on one device), per micro-batch."""

    index: int
    device: int
    layers: int
    fwd_compute_s: float
    fwd_comm_s: float
    bwd_compute_s: float       # backward + recompute
    bwd_comm_s: float
    grad_bytes: float          # gradients this chunk contributes to the data-parallel reduction

    @property
    def fwd_s(self) -> float:
        return self.fwd_compute_s + self.fwd_comm_s

    @property
    def bwd_s(self) -> float:
        return self.bwd_compute_s + self.bwd_comm_s


@dataclass(frozen=True)
class DeviceStep:
    """Once-per-step work of one pipeline rank after its last backward."""

    device: int
    bucket_s: tuple[float, ...]        # gradient-reduction collective of each bucket, in order
    reduce_total_s: float              # one collective over the whole buffer (no overlap)
    post_optimizer_s: float            # ZeRO 1/2 parameter all-gather after the step
    optimizer_s: float
    memory: MemoryBytes


@dataclass(frozen=True)
class StageCosts:
    pp: int
    virtual_stages: int
    num_microbatches: int
    schedule: str
    overlap_grad_reduce: bool
    chunks: tuple[ChunkCost, ...]
    devices: tuple[DeviceStep, ...]
    p2p_s: float
    model_flops_per_step: float
    hardware_flops_per_step: float
    notes: dict = field(default_factory=dict)
    p2p_blocking: bool = True      # sender's compute stream waits for its send (Megatron-LM 2021)


def state_dtype_bytes(dtype: str) -> float:
    """Bytes per weight/gradient element: fp8 training keeps bf16 weights and gradients
    (FP8 casts are transient, Micikevicius et al. 2022, "FP8 Formats for Deep Learning");
    tf32 stores fp32."""
    if dtype == "fp8":
        return 2.0
    return float(dtype_bytes("fp32" if dtype == "tf32" else dtype))


def activation_dtype_bytes(dtype: str) -> float:
    """Bytes per activation element: at least 16-bit (fp8 GEMMs keep 16-bit activations)."""
    return 2.0 if dtype == "fp8" else max(2.0, state_dtype_bytes(dtype))


def _ops_time(profile: HardwareProfile, ops: list[dict], dtype: str) -> tuple[float, float, float]:
    """(total, matmul FLOPs, all FLOPs) of an op list."""
    total = gemm_flops = 0.0
    for op in ops:
        total += op_time_s(profile, op["kind"], op["flops"], op["bytes"], dtype, op["gemm_mnk"])
        if op["kind"] in MATMUL_KINDS:
            gemm_flops += op["flops"]
    return total, gemm_flops, sum(op["flops"] for op in ops)


def comm_time_s(c: Comm, tiers: C.Tiers, size_bytes: float | None = None) -> float:
    """Time of one Comm item (all its repetitions)."""
    size = c.size_bytes if size_bytes is None else size_bytes
    g = c.group
    if c.kind in ("p2p", "p2p_ring"):
        tier = tiers.scale_out if g.nodes > 1 else tiers.scale_up
        return c.count * C.p2p_s(size, tier)
    return c.count * C.collective_s(c.kind, size, g, tiers)


def pp_send_s(activation_bytes, tp: int, sequence_parallel: bool, crosses: bool, tiers: C.Tiers):
    """One activation (or its gradient) sent to the adjacent stage; `activation_bytes` may be an array.

    Megatron's scatter/gather (Narayanan 2021, section 4.1): each tp rank sends
    1/tp of the tensor (`strategies.pipeline_send_bytes`) over the scale-out tier
    when the pipeline neighbour is on another node, then the receiver
    all-gathers the pieces over the scale-up tier (not needed under SP, whose
    tensor is already split).
    """
    t = C.p2p_s(pipeline_send_bytes(activation_bytes, tp), tiers.scale_out if crosses else tiers.scale_up)
    if tp > 1 and not sequence_parallel:
        t = t + C.all_gather_s(activation_bytes, tp, tiers.scale_up)
    return t


def _pp_send_s(ctx: LoweringContext, tiers: C.Tiers) -> float:
    """Point-to-point transfer between adjacent stages of this layout (none without pipelining)."""
    if not any(c.scope == "microbatch" for c in lower(ctx)):
        return 0.0
    crosses = ctx.tp * ctx.cp * ctx.dp >= ctx.devices_per_node
    return pp_send_s(ctx.activation_bytes, ctx.tp, ctx.sequence_parallel, crosses, tiers)


def layer_comm_s(ctx: LoweringContext, tiers: C.Tiers) -> tuple[float, float, float, float]:
    """One layer's communication per micro-batch: (forward, backward) on the critical path, then
    (forward, backward) that can hide behind the layer's compute (ring attention, ZeRO-3 prefetch)."""
    direct_f = direct_b = hidden_f = hidden_b = 0.0
    for c in lower(ctx):
        if c.scope not in ("layer_fwd", "layer_bwd"):
            continue
        t = comm_time_s(c, tiers)
        if c.scope == "layer_fwd":
            if c.overlap:
                hidden_f += t
            else:
                direct_f += t
        else:
            if c.overlap:
                hidden_b += t
            else:
                direct_b += t
    return direct_f, direct_b, hidden_f, hidden_b


@dataclass(frozen=True)
class LayerCost:
    fwd_compute_s: float
    fwd_comm_s: float
    bwd_compute_s: float
    bwd_comm_s: float
    fwd_gemm_flops: float
    recompute_gemm_flops: float


def layer_cost(arch: TransformerArch, ctx: LoweringContext, profile: HardwareProfile, tiers: C.Tiers,
               dtype: str) -> LayerCost:
    """Cost one transformer layer on one rank for one micro-batch (done once per layout)."""
    e = ctx.dtype_bytes
    fwd = T.layer_forward_ops(arch, micro_batch=ctx.micro_batch, seq_len=ctx.seq_len, tp=ctx.tp, cp=ctx.cp,
                              sequence_parallel=ctx.sequence_parallel, ep=ctx.ep, dtype_bytes=e)
    rec = T.recompute_ops(fwd, ctx.recompute)
    t_f, gf, _ = _ops_time(profile, fwd, dtype)
    t_b, _, _ = _ops_time(profile, T.backward_ops(fwd), dtype)
    t_r, gr, _ = _ops_time(profile, rec, dtype) if rec else (0.0, 0.0, 0.0)
    comm_f, comm_b, hidden_f, hidden_b = layer_comm_s(ctx, tiers)
    # overlappable comm (ring attention, ZeRO-3 prefetch) shows only where it outlasts compute
    comm_f += max(0.0, hidden_f - t_f)
    comm_b += max(0.0, hidden_b - (t_b + t_r))
    return LayerCost(t_f, comm_f, t_b + t_r, comm_b, gf, gr)


def bucket_split(total_bytes, bucket_bytes: float):
    """(bucket count, bytes of the last bucket) of a gradient buffer cut into `bucket_bytes` pieces
    (PyTorch DDP / Megatron buckets: n-1 full ones and the remainder); arrays accepted."""
    if np.ndim(total_bytes):
        n = np.maximum(1, np.ceil(total_bytes / bucket_bytes))
    else:
        n = max(1, math.ceil(total_bytes / bucket_bytes))
    return n, total_bytes - bucket_bytes * (n - 1)


def _buckets(total_bytes: float, bucket_bytes: float) -> list[float]:
    if total_bytes <= 0:
        return []
    n, last = bucket_split(total_bytes, bucket_bytes)
    return [bucket_bytes] * (n - 1) + [last]


def embedding_sync_crosses(tp, cp, dp, pp, devices_per_node):
    """Whether the first and the last pipeline stage sit on different nodes (arrays accepted)."""
    return tp * cp * dp * (pp - 1) >= devices_per_node


def embedding_sync_s(grad_bytes, crosses, tiers: C.Tiers):
    """All-reduce of the tied word-embedding gradient between the first and the last stage
    (Megatron-LM `_allreduce_embedding_grads`, 2 ranks; over the NIC when `crosses`)."""
    across = C.collective_s("all_reduce", grad_bytes, C.Group(2, 1, 2), tiers)
    within = C.collective_s("all_reduce", grad_bytes, C.Group(2, 2, 1), tiers)
    if np.ndim(crosses):
        return np.where(crosses, across, within)
    return across if crosses else within


def optimizer_time_s(profile: HardwareProfile, local_params: float, dtype_b: float, optimizer: str,
                     loss_scaled: bool = True, grad_b: float | None = None) -> float:
    """Memory-bound optimizer step over the local (possibly ZeRO-sharded) parameters.

    Mixed precision with fp32 master weights (Micikevicius et al. 2018; Megatron's
    Float16Optimizer) passes over every parameter: copy the g-byte gradient
    buffer to fp32 (read g, write 4 B; none when the buffer is already fp32:
    `main_param.grad = model_param.main_grad.float()` is then an alias,
    megatron/optimizer/optimizer.py _copy_model_grads_to_main_grads), unscale and
    check for inf/NaN (fp16 loss scaling: r/w 8 B), gradient-norm clipping (read
    4, then scale r/w 8), the update (read grad 4, master weight and each state
    tensor r/w 8 B), and the copy back to 16-bit weights (read 4, write e).
    Adam: 60 B per parameter in fp16 (fp16 grads), 46 in bf16 (fp32 grads, no
    loss scaling), 40 in fp32 (no copies). `grad_b` defaults to `dtype_b`.
    """
    g = dtype_b if grad_b is None else grad_b
    states = 2 if optimizer in ("adam", "adamw") else 1
    update = 4.0 + 8.0 + 8.0 * states
    clip = 12.0
    if dtype_b >= 4:
        per_param = clip + update
    else:
        copy = 0.0 if g >= 4 else g + 4.0
        per_param = copy + clip + update + (4.0 + dtype_b) + (8.0 if dtype_b == 2 and loss_scaled else 0.0)
    if local_params <= 0:
        return 0.0
    return op_time_s(profile, "optimizer", 0.0, local_params * per_param, "fp32", launches=2)


def grad_accumulation_s(profile: HardwareProfile, params, e: float, g: float, dtype: str):
    """Adding one micro-batch's weight gradients into the g-byte gradient buffer.

    Autograd's .grad accumulation / Megatron's main_grad hook
    (`param.main_grad.add_(param.grad.data)`, megatron/model/distributed.py), no
    fused wgrad accumulation: read the new e-byte gradient, read and write the
    buffer: (e + 2g) bytes per parameter (6 B in fp16, 10 B in bf16 with fp32
    main_grad). NumPy-vectorizable over `params`.
    """
    return op_time_s(profile, "elementwise", params, params * (e + 2.0 * g), dtype)


def stage_costs(arch: TransformerArch, plan: ResolvedPlan, profile: HardwareProfile, workload,
                tiers: C.Tiers | None = None) -> StageCosts:
    """Everything the pipeline simulation needs, for a transformer `arch` under `plan`."""
    tiers = tiers or C.tiers_from_profile(profile, plan.devices_per_node)
    dtype = workload.dtype
    e = state_dtype_bytes(dtype)
    g = grad_dtype_bytes(dtype, plan.grad_reduce_dtype)
    e_act = activation_dtype_bytes(dtype)
    dense, expert = layer_params(arch)
    ctx = LoweringContext(arch=arch, tp=plan.tp, pp=plan.pp, dp=plan.dp, cp=plan.cp, ep=plan.ep,
                          sequence_parallel=plan.sequence_parallel, zero=plan.zero, recompute=plan.recompute,
                          micro_batch=plan.micro_batch, seq_len=workload.seq_len, dtype_bytes=e_act,
                          devices_per_node=plan.devices_per_node,
                          layer_param_bytes=(dense / plan.tp + expert / (plan.tp * plan.ep)) * e_act)
    lc = layer_cost(arch, ctx, profile, tiers, dtype)
    kw = dict(micro_batch=plan.micro_batch, seq_len=workload.seq_len, tp=plan.tp, cp=plan.cp,
              sequence_parallel=plan.sequence_parallel, dtype_bytes=e_act)
    emb = T.embedding_ops(arch, **kw)
    head = T.head_ops(arch, **kw)
    t_emb_f, _, _ = _ops_time(profile, emb, dtype)
    t_emb_b, _, _ = _ops_time(profile, T.backward_ops(emb), dtype)
    t_head_f, head_gf, _ = _ops_time(profile, head, dtype)
    t_head_b, _, _ = _ops_time(profile, T.backward_ops(head), dtype)
    # vocab-parallel embedding and cross-entropy each all-reduce a small tensor across tp
    emb_ar = C.collective_s("all_reduce", ctx.activation_bytes, ctx.group("tp"), tiers) if plan.tp > 1 else 0.0

    n_chunks = plan.pp * plan.virtual_stages
    layer_split = chunk_layer_counts(arch.num_layers, plan.pp, plan.virtual_stages, plan.first_stage_layers,
                                     plan.last_stage_layers, plan.embedding_as_layer, plan.loss_as_layer)
    local_layer_params = dense / plan.tp + expert / (plan.tp * plan.ep)
    chunks = []
    for j, nl in enumerate(layer_split):
        first, last = j == 0, j == n_chunks - 1
        fc, fm = nl * lc.fwd_compute_s, nl * lc.fwd_comm_s
        bc, bm = nl * lc.bwd_compute_s, nl * lc.bwd_comm_s
        params = nl * local_layer_params
        if first:
            fc, bc, fm = fc + t_emb_f, bc + t_emb_b, fm + emb_ar
            params += embedding_params(arch) / plan.tp
        if last:
            fc, bc = fc + t_head_f, bc + t_head_b
            if not (arch.tied_embeddings and n_chunks == 1):
                params += head_params(arch) / plan.tp
        if plan.num_microbatches > 1 and params > 0:
            bc += grad_accumulation_s(profile, params, e, g, dtype)
        chunks.append(ChunkCost(j, j % plan.pp, nl, fc, fm, bc, bm, params * g))
    devices = _device_steps(arch, plan, profile, tiers, ctx, chunks, layer_split, workload, e, g)
    p2p = _pp_send_s(ctx, tiers)
    per_mb_gemm = arch.num_layers * lc.fwd_gemm_flops * plan.tp * plan.cp + head_gf * plan.tp * plan.cp
    mb_total = plan.num_microbatches * plan.dp
    model_flops = 3.0 * per_mb_gemm * mb_total
    hw_flops = model_flops + arch.num_layers * lc.recompute_gemm_flops * plan.tp * plan.cp * mb_total
    return StageCosts(plan.pp, plan.virtual_stages, plan.num_microbatches, plan.schedule,
                      plan.overlap_grad_reduce, tuple(chunks), tuple(devices), p2p, model_flops, hw_flops,
                      notes={"layer_fwd_compute_s": lc.fwd_compute_s, "layer_fwd_comm_s": lc.fwd_comm_s,
                             "layer_bwd_compute_s": lc.bwd_compute_s, "layer_bwd_comm_s": lc.bwd_comm_s})


def _device_steps(arch, plan, profile, tiers, ctx, chunks, layer_split, workload, e, g):
    """Per pipeline rank: DP reduction of its g-byte gradients (buckets and whole), the ZeRO 1/2
    parameter all-gather (e-byte weights), the tied-embedding gradient all-reduce, optimizer, memory."""
    dp_comms = [c for c in lower(ctx) if c.scope == "step"]
    reduce_c = next((c for c in dp_comms if c.kind in ("all_reduce", "reduce_scatter")), None)
    gather_c = next((c for c in dp_comms if c.kind == "all_gather"), None)
    embed_sync = arch.tied_embeddings and plan.pp > 1
    emb_bytes = embedding_params(arch) / plan.tp * g   # Megatron all-reduces word_embeddings main_grad
    emb_crosses = embedding_sync_crosses(plan.tp, plan.cp, plan.dp, plan.pp, plan.devices_per_node)
    out = []
    for d in range(plan.pp):
        mine = [c for c in chunks if c.device == d]
        grad_bytes = sum(c.grad_bytes for c in mine)
        buckets = _buckets(grad_bytes, plan.grad_bucket_bytes)
        bucket_s = tuple(comm_time_s(reduce_c, tiers, b) for b in buckets) if reduce_c else ()
        total_s = comm_time_s(reduce_c, tiers, grad_bytes) if reduce_c else 0.0
        local_params = grad_bytes / g
        post = comm_time_s(gather_c, tiers, local_params * e) if gather_c else 0.0
        if embed_sync and d in (0, plan.pp - 1):
            sync = embedding_sync_s(emb_bytes, emb_crosses, tiers)
            total_s += sync
            bucket_s = bucket_s + (sync,)
        opt_params = local_params / (plan.dp if plan.zero >= 1 else 1)
        opt_s = optimizer_time_s(profile, opt_params, e, workload.optimizer, loss_scaled=workload.dtype == "fp16",
                                 grad_b=g)
        layers = sum(layer_split[c.index] for c in mine)
        mem = stage_memory(arch, layers=layers, first=d == 0, last=d == plan.pp - 1, stage=d, tp=plan.tp,
                           pp=plan.pp, dp=plan.dp, cp=plan.cp, ep=plan.ep,
                           sequence_parallel=plan.sequence_parallel, zero=plan.zero, recompute=plan.recompute,
                           micro_batch=plan.micro_batch, seq_len=workload.seq_len, dtype_bytes=e,
                           optimizer=workload.optimizer, schedule=plan.schedule,
                           num_microbatches=plan.num_microbatches, virtual_stages=plan.virtual_stages,
                           grad_bytes=g)
        out.append(DeviceStep(d, bucket_s, total_s, post, opt_s, mem))
    return out
