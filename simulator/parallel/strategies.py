"""Lowering strategies: the communication each kind of parallelism adds (a registry).

Each strategy is a pure function `(ctx) -> list[Comm]` keyed by its kind
(data, tensor, sequence, pipeline, expert, zero, context). A `Comm` says which
collective runs, on how many bytes, over which communicator, how often, in
which pass (forward / backward per layer and micro-batch, per micro-batch
between stages, or once per step) and whether it can hide behind compute.
Sources: Narayanan et al. 2021 (tensor: 2 all-reduces per layer forward and
2 backward; pipeline point-to-point with scatter/gather), Korthikanti et al.
2022 (sequence parallelism: all-gather + reduce-scatter in place of each
all-reduce), Rajbhandari et al. 2020 (ZeRO), Lepikhin et al. 2021 (MoE
all-to-all twice per layer each way), Liu et al. 2023 (ring attention).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from simulator.cost.comm import Group, group_of
from simulator.schema.graph import TransformerArch


@dataclass(frozen=True)
class Comm:
    name: str
    kind: str            # all_reduce | reduce_scatter | all_gather | all_to_all | p2p
    size_bytes: float
    group: Group
    count: float = 1.0
    scope: str = "layer_fwd"   # layer_fwd | layer_bwd | microbatch | step
    overlap: str | None = None # None: on the critical path; "layer": hides behind the layer's compute


@dataclass(frozen=True)
class LoweringContext:
    arch: TransformerArch
    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    sequence_parallel: bool
    zero: int
    recompute: str
    micro_batch: int
    seq_len: int
    dtype_bytes: float
    devices_per_node: int
    layer_param_bytes: float = 0.0    # one layer's local parameters (bytes), for ZeRO-3

    def group(self, which: str) -> Group:
        d = self.devices_per_node
        return {
            "tp": group_of(self.tp, 1, d),
            "cp": group_of(self.cp, self.tp, d),
            "dp": group_of(self.dp, self.tp * self.cp, d),
            "ep": group_of(self.ep, self.tp * self.cp, d),
            "pp": group_of(self.pp, self.tp * self.cp * self.dp, d),
        }[which]

    @property
    def activation_bytes(self) -> float:
        """One [s/cp, b, h] activation tensor."""
        return self.micro_batch * self.seq_len / self.cp * self.arch.hidden_size * self.dtype_bytes


STRATEGIES: dict[str, Callable[[LoweringContext], list[Comm]]] = {}


def strategy(kind: str):
    def register(fn):
        STRATEGIES[kind] = fn
        return fn
    return register


def _replays(ctx: LoweringContext) -> float:
    """Forward collectives replayed in backward by full recompute."""
    return 1.0 if ctx.recompute == "full" else 0.0


@strategy("tensor")
def tensor_comm(ctx: LoweringContext) -> list[Comm]:
    """Megatron TP without SP: all-reduce after attention and MLP (fwd), and of input grads (bwd)."""
    if ctx.tp <= 1 or ctx.sequence_parallel:
        return []
    g, s = ctx.group("tp"), ctx.activation_bytes
    return [Comm("tp_allreduce", "all_reduce", s, g, 2.0, "layer_fwd"),
            Comm("tp_allreduce", "all_reduce", s, g, 2.0 * (1.0 + _replays(ctx)), "layer_bwd")]


@strategy("sequence")
def sequence_comm(ctx: LoweringContext) -> list[Comm]:
    """TP with SP: each all-reduce becomes an all-gather and a reduce-scatter (same volume).

    The all-gathered input of each column-parallel GEMM is not kept for its
    weight gradient: backward gathers it again (Korthikanti et al. 2022, sec. 4.2.2;
    full recompute regathers it anyway). Megatron-LM issues that all-gather
    asynchronously ahead of the data-gradient GEMM, so it hides behind the
    layer's backward compute unless the link is slower than the GEMMs.
    """
    if ctx.tp <= 1 or not ctx.sequence_parallel:
        return []
    g, s = ctx.group("tp"), ctx.activation_bytes
    bwd = 2.0 * (1.0 + _replays(ctx))
    comms = [Comm("sp_allgather", "all_gather", s, g, 2.0, "layer_fwd"),
             Comm("sp_reducescatter", "reduce_scatter", s, g, 2.0, "layer_fwd"),
             Comm("sp_allgather", "all_gather", s, g, bwd, "layer_bwd"),
             Comm("sp_reducescatter", "reduce_scatter", s, g, bwd, "layer_bwd")]
    if ctx.recompute != "full":
        comms.append(Comm("sp_allgather_wgrad", "all_gather", s, g, 2.0, "layer_bwd", "layer"))
    return comms


@strategy("context")
def context_comm(ctx: LoweringContext) -> list[Comm]:
    """Ring attention: cp-1 K/V block exchanges per layer forward; K/V and their grads backward."""
    if ctx.cp <= 1:
        return []
    a = ctx.arch
    kv = 2.0 * ctx.micro_batch * ctx.seq_len / ctx.cp * a.num_kv_heads * a.head_dim / max(1, min(ctx.tp, a.num_kv_heads)) * ctx.dtype_bytes
    g = ctx.group("cp")
    return [Comm("cp_kv_ring", "p2p_ring", kv, g, ctx.cp - 1, "layer_fwd", "layer"),
            Comm("cp_kv_ring", "p2p_ring", 2.0 * kv, g, (ctx.cp - 1) * (1.0 + _replays(ctx) / 2), "layer_bwd", "layer")]


@strategy("expert")
def expert_comm(ctx: LoweringContext) -> list[Comm]:
    """MoE: token dispatch and combine all-to-all, twice per layer forward and twice backward."""
    if ctx.ep <= 1:
        return []
    a = ctx.arch
    size = ctx.activation_bytes * a.experts_per_token / (ctx.tp if ctx.sequence_parallel else 1)
    g = ctx.group("ep")
    return [Comm("ep_alltoall", "all_to_all", size, g, 2.0, "layer_fwd"),
            Comm("ep_alltoall", "all_to_all", size, g, 2.0 * (1.0 + _replays(ctx)), "layer_bwd")]


@strategy("pipeline")
def pipeline_comm(ctx: LoweringContext) -> list[Comm]:
    """Activations (forward) and their gradients (backward) between adjacent stages.

    With tp > 1 across nodes Megatron's scatter/gather sends 1/tp of the tensor
    per GPU and all-gathers it over NVLink (Narayanan 2021, section 4.1); under
    SP the tensor is already split.
    """
    if ctx.pp <= 1:
        return []
    return [Comm("pp_send", "p2p", pipeline_send_bytes(ctx.activation_bytes, ctx.tp), ctx.group("pp"), 1.0,
                 "microbatch")]


def pipeline_send_bytes(activation_bytes, tp: int):
    """Bytes each rank sends to the next stage: 1/tp of the activation with tp > 1 (scatter/gather)."""
    return activation_bytes / tp if tp > 1 else activation_bytes


@strategy("data")
def data_comm(ctx: LoweringContext) -> list[Comm]:
    """Gradient reduction once per step: all-reduce, or reduce-scatter + all-gather under ZeRO.

    The byte count is filled in per stage by the costing (it depends on the
    stage's parameters); here only the collective pattern is declared.
    """
    if ctx.dp <= 1:
        return []
    g = ctx.group("dp")
    if dp_reduce_kind(ctx.zero) == "all_reduce":
        return [Comm("dp_grad_allreduce", "all_reduce", 0.0, g, 1.0, "step")]
    comms = [Comm("dp_grad_reducescatter", "reduce_scatter", 0.0, g, 1.0, "step")]
    if ctx.zero < 3:
        comms.append(Comm("dp_param_allgather", "all_gather", 0.0, g, 1.0, "step"))
    return comms


def dp_reduce_kind(zero: int) -> str:
    """The gradient collective: all-reduce, or reduce-scatter once ZeRO shards anything."""
    return "all_reduce" if zero == 0 else "reduce_scatter"


@strategy("zero")
def zero3_comm(ctx: LoweringContext) -> list[Comm]:
    """ZeRO-3 / FSDP: all-gather each layer's parameters before its forward and its backward."""
    if ctx.zero < 3 or ctx.dp <= 1:
        return []
    g = ctx.group("dp")
    p = ctx.layer_param_bytes
    return [Comm("zero3_param_allgather", "all_gather", p, g, 1.0, "layer_fwd", "layer"),
            Comm("zero3_param_allgather", "all_gather", p, g, 1.0, "layer_bwd", "layer")]


def lower(ctx: LoweringContext) -> list[Comm]:
    """All communication of a layout, strategy by strategy (registry order)."""
    out: list[Comm] = []
    for fn in STRATEGIES.values():
        out.extend(fn(ctx))
    return out
