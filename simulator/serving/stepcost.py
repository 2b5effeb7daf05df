"""Cost of one inference forward pass (an iteration) from the model's graph and the cost model.

The forward graph of one token (`graph.transformer.build_transformer`, batch 1,
seq 1) gives every op of a layer and of the embedding/head. Each op's FLOPs and
activation bytes scale with the tokens of the iteration; its weight bytes do
not (they are read once per pass: what makes decode memory-bound). Per-rank
shapes follow Megatron tensor parallelism (column/row/heads/vocab splits,
Shoeybi et al. 2019). Each op is then timed by the shared roofline
`cost.compute.op_time_s`, vectorized over token counts, and the TP all-reduces
by `cost.comm.collective_s`.

The attention core is FlashAttention-style (Dao et al. 2022): 4*heads*head_dim
FLOPs per (query, key) pair (QK^T and PV, the graph's own count), reading Q,
the keys/values and writing the output; no score matrix in memory. Decode
reads every cached key and value once per step (Pope et al. 2022, "Efficiently
Scaling Transformer Inference").

Weight-only quantization (int8/int4) shrinks the bytes of the layers' matmul
weights and computes in the activation dtype, converting every weight it loads on
the vector units (`cost.dequant`: ceil(rows/64) conversions per weight, added to
the tensor-core time, overlapped with the weight loads); fp8 weights compute in
fp8 where the device has an fp8 peak (the cost model falls back to bf16 otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simulator.cost.comm import collective_s, group_of, p2p_s, tiers_from_profile
from simulator.cost.compute import op_time_s
from simulator.cost.dequant import dequant_flops_per_weight, dequant_s, stored_bytes_per_weight
from simulator.graph.transformer import build_transformer
from simulator.schema.graph import TransformerArch
from simulator.schema.hardware import HardwareProfile
from simulator.units import dtype_bytes

_SPLIT = {"column", "row", "heads", "vocab", "expert"}
_CORE = {"attention_score", "attention_context", "softmax"}
_PER_SEQUENCE = {"lm_head", "pooler"}     # run on the rows that emit a token, not on every token
_SKIP = {"loss"}


@dataclass(frozen=True)
class OpRow:
    """One op of the one-token graph, per rank: coefficients that scale with tokens."""

    kind: str
    flops_per_token: float
    act_bytes_per_token: float
    weight_bytes: float
    mnk: tuple[int, int, int] | None     # per-rank GEMM with m = tokens
    dtype: str
    expert_share: float                  # 0 for dense ops; k/E for an expert's matmuls
    weight_elements: float = 0.0         # per-rank weights of a weight-only quantized matmul
    dequant_flops: float = 0.0           # vector FLOPs to convert one of them (cost.dequant)


@dataclass(frozen=True)
class StepModel:
    """Everything needed to time an iteration of any token mix on one replica."""

    profile: HardwareProfile
    arch: TransformerArch
    tp: int
    pp: int
    layers: int                          # layers held by one device (its pipeline stage): memory
    layer_ops: tuple[OpRow, ...]
    token_ops: tuple[OpRow, ...]         # embedding, final norm: per token, outside layers
    seq_ops: tuple[OpRow, ...]           # LM head / pooler: per emitting sequence
    act_dtype: str
    act_bytes: float
    kv_bytes: float
    weight_bytes_per_device: float
    params: int
    allreduces_per_layer: int
    devices_per_node: int

    @property
    def time_layers(self) -> int:
        """Layers one iteration passes through: every stage in turn (the serving engine overlaps
        different iterations across the stages, `serving.engine.Pipeline`)."""
        return self.arch.num_layers

    @property
    def heads_local(self) -> int:
        return self.arch.num_heads // self.tp

    @property
    def kv_heads_local(self) -> int:
        return max(1, math.ceil(self.arch.num_kv_heads / self.tp))

    @property
    def kv_bytes_per_token_per_layer(self) -> float:
        """K and V of one token in one layer on one rank."""
        return 2.0 * self.kv_heads_local * self.arch.head_dim * self.kv_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """Whole model: 2 * layers * kv_heads * head_dim * bytes."""
        a = self.arch
        return 2.0 * a.num_layers * a.num_kv_heads * a.head_dim * self.kv_bytes

    @property
    def kv_bytes_per_token_per_device(self) -> float:
        return self.layers * self.kv_bytes_per_token_per_layer

    @property
    def attn_flops_per_pair(self) -> float:
        return 4.0 * self.heads_local * self.arch.head_dim

    # -- vectorized times (seconds; arrays in, arrays out) --------------------------------
    def linear_s(self, tokens) -> np.ndarray:
        """All layers' token-proportional ops plus embedding/final norm, for `tokens` tokens."""
        t = np.asarray(tokens, dtype=float)
        total = self.time_layers * _rows_s(self.profile, self.layer_ops, t) + _rows_s(self.profile, self.token_ops, t)
        return np.where(t > 0, total, 0.0)

    def head_s(self, rows) -> np.ndarray:
        r = np.asarray(rows, dtype=float)
        return np.where(r > 0, _rows_s(self.profile, self.seq_ops, r), 0.0)

    def decode_attention_s(self, ctx_tokens, queries=0.0) -> np.ndarray:
        """All layers' attention of decode queries over `ctx_tokens` cached tokens in total."""
        c = np.asarray(ctx_tokens, dtype=float)
        q_bytes = 2.0 * np.asarray(queries, dtype=float) * self.heads_local * self.arch.head_dim * self.act_bytes
        t = op_time_s(self.profile, "attention_score", c * self.attn_flops_per_pair,
                      c * self.kv_bytes_per_token_per_layer + q_bytes, self.act_dtype, launches=1)
        return self.time_layers * np.where(c > 0, t, 0.0)

    def prefill_attention_s(self, pairs, kv_tokens, queries) -> np.ndarray:
        """All layers' attention of prompt chunks: `pairs` (query, key) pairs in total."""
        p = np.asarray(pairs, dtype=float)
        bytes_ = (np.asarray(kv_tokens, dtype=float) * self.kv_bytes_per_token_per_layer
                  + 2.0 * np.asarray(queries, dtype=float) * self.heads_local * self.arch.head_dim * self.act_bytes)
        t = op_time_s(self.profile, "attention_score", p * self.attn_flops_per_pair, bytes_,
                      self.act_dtype, launches=1)
        return self.time_layers * np.where(p > 0, t, 0.0)

    def comm_s(self, tokens) -> np.ndarray:
        """Tensor-parallel all-reduces of every layer plus pipeline point-to-point transfers."""
        t = np.asarray(tokens, dtype=float)
        tiers = tiers_from_profile(self.profile, self.devices_per_node)
        size = t * self.arch.hidden_size * self.act_bytes
        out = np.zeros_like(t)
        if self.tp > 1:
            g = group_of(self.tp, 1, self.devices_per_node)
            ar = collective_s("all_reduce", np.maximum(size, 1.0), g, tiers)
            out = out + self.arch.num_layers * self.allreduces_per_layer * np.asarray(ar)
        if self.pp > 1:
            same_node = self.tp * self.pp <= self.devices_per_node
            tier = tiers.scale_up if same_node else tiers.scale_out
            out = out + (self.pp - 1) * np.asarray(p2p_s(np.maximum(size, 1.0), tier))
        return np.where(t > 0, out, 0.0)


def _rows_s(profile: HardwareProfile, rows: tuple[OpRow, ...], tokens: np.ndarray) -> np.ndarray:
    total = np.zeros_like(tokens, dtype=float)
    for r in rows:
        weights = r.weight_bytes
        if r.expert_share:   # an expert's weights are read only if some token routes to it
            weights = weights * (1.0 - (1.0 - r.expert_share) ** tokens)
        flops, bytes_ = tokens * r.flops_per_token, tokens * r.act_bytes_per_token + weights
        if r.mnk is None:
            total = total + op_time_s(profile, r.kind, flops, bytes_, r.dtype)
            continue
        m = np.maximum(np.rint(tokens * (r.expert_share or 1.0)), 1.0)   # per-rank GEMM rows
        shape = (m, r.mnk[1], r.mnk[2])
        if not r.dequant_flops:
            total = total + op_time_s(profile, r.kind, flops, bytes_, r.dtype, gemm_mnk=shape)
            continue
        # weight-only quantized: max(tensor cores + conversion, weight loads) (cost.dequant)
        elements = r.weight_elements * (weights / r.weight_bytes if r.weight_bytes else 1.0)
        t_mma = op_time_s(profile, r.kind, flops, 0.0, r.dtype, gemm_mnk=shape)
        t_dq = dequant_s(profile, elements, m, r.dequant_flops, r.dtype)
        total = total + np.maximum(t_mma + t_dq, op_time_s(profile, r.kind, 0.0, bytes_, r.dtype))
    return total


def build_step_model(arch: TransformerArch, profile: HardwareProfile, *, tp: int = 1, pp: int = 1,
                     dtype: str = "bf16", weight_dtype: str | None = None, kv_dtype: str | None = None,
                     devices_per_node: int | None = None) -> StepModel:
    """Per-rank op rows of the one-token forward graph of `arch` (see module docstring)."""
    act_b = float(dtype_bytes(dtype))
    w_dtype = weight_dtype or dtype
    w_b = stored_bytes_per_weight(w_dtype) or float(dtype_bytes(w_dtype))   # int4: + group scales/zeros
    mm_dtype = "fp8" if w_dtype == "fp8" else dtype
    g = build_transformer(arch, batch=1, seq_len=1, dtype=dtype, dt=act_b, name="step")
    layer, token, seq = [], [], []
    params, w_dev_layer, w_dev_other, ar_ops, has_expert = 0, 0.0, [0.0, 0.0], 0, False
    for _, op in g.nodes(data=True):
        params += op["params"]
        name, kind = op["name"], op["kind"]
        if kind in _CORE or name in _SKIP:
            continue
        in_layer = op["layer"] is not None
        quant = in_layer and kind == "matmul"
        share = arch.experts_per_token / arch.num_experts if op["tp_split"] == "expert" else 0.0
        row, w_dev = _op_row(op, tp, act_b, w_b if quant else act_b, mm_dtype if quant else dtype, share)
        if quant and dequant_flops_per_weight(w_dtype, dtype):
            row = replace(row, weight_elements=w_dev / w_b, dequant_flops=dequant_flops_per_weight(w_dtype, dtype))
        if in_layer:
            if op["layer"] != 0:
                continue
            layer.append(row)
            w_dev_layer += w_dev
            ar_ops += op["tp_split"] == "row"
            has_expert = has_expert or op["tp_split"] == "expert"
        else:
            (seq if name in _PER_SEQUENCE else token).append(row)
            # the embedding table sits on the first stage, the head on the last
            w_dev_other[0 if kind == "embedding" else 1] += w_dev
    layers = math.ceil(arch.num_layers / pp)
    other = sum(w_dev_other) if pp == 1 else max(w_dev_other)
    return StepModel(
        profile=profile, arch=arch, tp=tp, pp=pp, layers=layers, layer_ops=tuple(layer),
        token_ops=tuple(token), seq_ops=tuple(seq), act_dtype=dtype, act_bytes=act_b,
        kv_bytes=float(dtype_bytes(kv_dtype or dtype)),
        weight_bytes_per_device=layers * w_dev_layer + other,
        params=int(params), allreduces_per_layer=ar_ops + int(has_expert),
        devices_per_node=devices_per_node or profile.devices_per_node)


def _op_row(op: dict, tp: int, act_b: float, w_b: float, dtype: str,
            expert_share: float) -> tuple[OpRow, float]:
    """Per-rank coefficients of one graph op (built at one token) and its weight bytes per rank."""
    split = op["tp_split"] in _SPLIT and tp > 1
    div = tp if split else 1
    w_dev = op["params"] * w_b / div           # bytes this rank holds
    if op["kind"] == "embedding":              # a gather: reads only the looked-up rows
        act, w_read = op["bytes_read"] + op["bytes_written"], 0.0
    else:
        act = max(op["bytes_read"] + op["bytes_written"] - op["params"] * act_b, 0.0)
        w_read = w_dev
    mnk = op.get("gemm_mnk")
    if mnk is not None:
        _, n, k = mnk
        row_split = op["tp_split"] == "row" or (op["tp_split"] == "expert" and op["name"].endswith("down"))
        if split:
            n, k = (n, k // tp) if row_split else (n // tp, k)
        mnk = (1, max(int(n), 1), max(int(k), 1))
    row = OpRow(kind=op["kind"], flops_per_token=op["flops"] / div, act_bytes_per_token=act / div,
                weight_bytes=w_read, mnk=mnk, dtype=dtype, expert_share=expert_share)
    return row, w_dev
