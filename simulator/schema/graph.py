"""The op record of the graph IR and the architecture summary a graph carries.

A computation graph is a `networkx.DiGraph` (always a DAG). Each node id is a
stable string (e.g. "L3.attn.qkv", "L3.attn.qkv.bwd_data"); each node has
the attributes of `Op` (as plain attributes, `g.nodes[n]["flops"]`, so that
analysis stays fast), and each edge has `size_bytes` (the tensor passed).
`g.graph` holds: `name`, `source` (bundled | config | onnx | cnn), `dtype`,
`batch`, `seq_len`, `training`, `recompute`, `warnings` (list of str), and for
transformers `arch` (a `TransformerArch` dump), which the parallel timing
model and the analytic planner read.

Naming: ops inside transformer layer i have ids `L{i}.<name>` and the same
`name` in every layer (e.g. "attn.qkv"). Backward ops append `.bwd_data` and
`.bwd_weight` (matmul/conv; for the attention core `.bwd_data` and
`.bwd_data2`, the gradients of its two operands) or `.bwd` (other ops);
recomputed ops append `.recompute`; optimizer steps are `L{i}.optimizer` and
`<op id>.optimizer` for parameters outside layers.

tp_split "sequence" marks ops that plain tensor parallelism replicates and
sequence parallelism splits along the sequence (norms, dropout, residuals).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.schema.base import Frozen

OpKind = Literal[
    "matmul", "conv", "attention_score", "attention_context", "softmax", "norm",
    "elementwise", "embedding", "pooling", "reduce", "data_movement", "loss",
    "optimizer", "other",
]
Phase = Literal["forward", "backward", "recompute", "optimizer"]
# How tensor parallelism divides an op (Megatron): column/row-split matmuls,
# head-split attention core, ops replicated on every tp rank, or ops that
# sequence parallelism splits along the sequence.
TPSplit = Literal["column", "row", "heads", "replicated", "sequence", "vocab", "expert"]


class Op(Frozen):
    id: str
    name: str
    kind: OpKind
    phase: Phase = "forward"
    layer: int | None = None              # transformer block / CNN stage index; None outside layers
    flops: float = Field(default=0.0, ge=0)
    bytes_read: float = Field(default=0.0, ge=0)
    bytes_written: float = Field(default=0.0, ge=0)
    params: int = Field(default=0, ge=0)  # parameters owned by this op (forward ops only)
    dtype: str = "bf16"
    in_shapes: tuple[tuple[int, ...], ...] = ()
    out_shape: tuple[int, ...] = ()
    gemm_mnk: tuple[int, int, int] | None = None   # (m, n, k) for matmul-like ops, for efficiency curves
    tp_split: TPSplit = "replicated"
    recompute: bool = False               # recomputed in backward under the active policy
    # what this op's backward reads from the forward: its inputs (matmul, norm, gelu...), its
    # output (softmax) or nothing (additions); drives activation liveness (Korthikanti et al. 2022)
    saved: Literal["inputs", "output", "none"] = "inputs"


class TransformerArch(Frozen):
    """What the Megatron-style parallel model and analytic formulas need of a transformer."""

    family: Literal["gpt2", "llama", "mistral", "mixtral", "bert"]
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    ffn_hidden_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(default=2048, gt=0)
    gated_mlp: bool = False               # SwiGLU (3 matrices) vs GELU MLP (2)
    num_experts: int = Field(default=1, gt=0)
    experts_per_token: int = Field(default=1, gt=0)
    tied_embeddings: bool = False
    learned_positions: bool = False
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    encoder_only: bool = False
    num_labels: int | None = Field(default=None, gt=0)   # BERT token-classification head
    type_vocab_size: int = Field(default=0, ge=0)         # BERT token-type embeddings
    # how the attention core runs in training: "unfused" (score GEMM, softmax, dropout, context
    # GEMM through memory, as Megatron-LM 2021) or "flash" (one fused kernel, Dao et al. 2022)
    attention: Literal["unfused", "flash"] = "unfused"
