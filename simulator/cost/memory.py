"""Bytes per device during training: weights, gradients, optimizer state, activations.

Mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, section 3.1): 2 B weights
+ g B gradients + 12 B optimizer state (fp32 master copy, two fp32 moments) per
parameter, where g is the gradient buffer's dtype (`grad_dtype`: 4 B for bf16
under Megatron-LM, 2 B for fp16); ZeRO stage 1 shards the optimizer state over
the data-parallel group, stage 2 also the gradients, stage 3 also the weights.
Activations per transformer layer follow Korthikanti et al. 2022 ("Reducing
Activation Recomputation in Large Transformer Models"), Table 2, with s the
sequence per rank, b the micro-batch, h hidden, a heads, t the tensor-parallel
size; the MLP term is generalized from 4h to the model's ffn size (and gated
MLPs). Pure functions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from simulator.schema.graph import TransformerArch
from simulator.units import dtype_bytes as _dtype_bytes

# bytes per parameter of the optimizer state (fp32 master weights counted here
# when training in 16 bits): Adam = 2 moments; SGD/RMSprop = 1 state tensor
_STATE_TENSORS = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}


def grad_dtype(train_dtype: str, requested: str = "auto") -> str:
    """The dtype gradients are accumulated in over micro-batches and reduced in over dp.

    `auto` follows Megatron-LM: with --bf16 it forces
    accumulate_allreduce_grads_in_fp32 ("bfloat16 requires gradient accumulation
    and all-reduce to be done in fp32", megatron/arguments.py parse_args,
    NVIDIA/Megatron-LM @ 00129014), and DistributedDataParallel then allocates
    the contiguous `main_grad` buffer as torch.float (`_get_buffer_type`,
    megatron/model/distributed.py), so the buffer is 4 B/param and the DP
    all-reduce (or the distributed optimizer's reduce-scatter) moves fp32. With
    --fp16 the flag defaults off (store_true), so the 2021 runs of Narayanan et
    al. accumulate and all-reduce in fp16 (the buffer takes param.dtype). fp8
    training runs on bf16 parameters (--bf16 --fp8-format), hence fp32 too;
    fp32/tf32 keep fp32. An explicit fp32 | bf16 | fp16 overrides the rule
    (e.g. Megatron's later --grad-reduce-in-bf16).
    """
    if requested != "auto":
        return requested
    if train_dtype in ("bf16", "fp8", "tf32", "fp32"):
        return "fp32"
    return train_dtype


def grad_dtype_bytes(train_dtype: str, requested: str = "auto") -> float:
    """Bytes per element of the gradient buffer (see `grad_dtype`)."""
    return float(_dtype_bytes(grad_dtype(train_dtype, requested)))


@dataclass(frozen=True)
class MemoryBytes:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    temporary: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.temporary

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["total"] = self.total
        return d


def layer_params(arch: TransformerArch) -> tuple[int, int]:
    """(dense params, expert params) of one transformer layer, biases and norms included."""
    h, kv = arch.hidden_size, arch.num_kv_heads * arch.head_dim
    q = arch.num_heads * arch.head_dim
    attn = h * (q + 2 * kv) + (q + 2 * kv) + q * h + h
    mats = 3 if arch.gated_mlp else 2
    bias = 0 if arch.gated_mlp else arch.ffn_hidden_size + h
    mlp = mats * h * arch.ffn_hidden_size + bias
    norms = (2 if arch.norm == "layernorm" else 1) * 2 * h
    if arch.num_experts > 1:
        router = h * arch.num_experts
        return attn + norms + router, mlp * arch.num_experts
    return attn + mlp + norms, 0


def embedding_params(arch: TransformerArch) -> int:
    """Word (+ learned position) embedding parameters."""
    pos = arch.max_position_embeddings * arch.hidden_size if arch.learned_positions else 0
    return arch.vocab_size * arch.hidden_size + pos


def head_params(arch: TransformerArch) -> int:
    """LM head parameters held by the last stage (Megatron keeps a tied copy there too)."""
    return arch.vocab_size * arch.hidden_size + arch.hidden_size * 2


def _where(cond, a, b):
    """`a if cond else b`; elementwise (np.where) when `cond` is an array, so scalars stay scalars."""
    if np.ndim(cond) == 0:
        return a if cond else b
    return np.where(cond, a, b)


def activation_bytes_per_layer(arch: TransformerArch, *, seq_len, micro_batch, tp, sequence_parallel,
                               recompute, act_bytes: float = 2.0):
    """Stored activations of one layer for one micro-batch (Korthikanti 2022, Table 2).

    none:      sbh(10 + 24/t) + 5 a s^2 b / t   (with SP the 10 sbh term is also / t)
    selective: drops the 5 a s^2 b / t attention-score term
    full:      only the layer input, 2 sbh (/ t with SP)
    The 16-bit constants scale with `act_bytes` / 2. Every argument but `arch`
    may be a NumPy array (`recompute` an array of policy names).
    """
    s, b, h, t = seq_len, micro_batch, arch.hidden_size, tp
    sbh = s * b * h
    scale = act_bytes / 2.0
    full = 2.0 * sbh / _where(sequence_parallel, t, 1) * scale
    mats = 3 if arch.gated_mlp else 2
    # split across tp: Q,K (4), V (2), proj input (2); MLP: fc1 out and fc2 in (2 B each per element)
    split = 8.0 * sbh + 2.0 * mats * s * b * arch.ffn_hidden_size
    if arch.num_experts > 1:
        split = split + 2.0 * mats * s * b * arch.ffn_hidden_size * (arch.experts_per_token - 1)
    replicated = 10.0 * sbh   # LN inputs (4), attention + MLP inputs (4), dropout masks (2)
    total = split / t + _where(sequence_parallel, replicated / t, replicated)
    # unfused attention stores scores, probabilities and the dropout mask (5 a s^2 b / t bytes);
    # FlashAttention keeps only the fp32 softmax log-sum-exp per query (4 a s b / t bytes)
    if arch.attention == "flash":
        none = total * scale + 4.0 * arch.num_heads * s * b / t
    else:
        none = (total + 5.0 * arch.num_heads * s * s * b / t) * scale
    return _where(recompute == "full", full, _where(recompute == "none", none, total * scale))


def in_flight_microbatches(schedule, pp, stage, num_microbatches, virtual_stages=1):
    """Micro-batches whose activations a stage holds at its peak (arrays accepted).

    GPipe holds all m; 1F1B holds up to p - stage (p on the first stage);
    interleaved holds p + (p-1)/v micro-batch-stages on the first stage
    (Korthikanti 2022, section 4.2: L(1 + (p-1)/(pv)) layers' worth).
    """
    m = num_microbatches
    base = np.minimum(m, pp - stage) if np.ndim(pp - stage) or np.ndim(m) else min(m, pp - stage)
    interleaved = (schedule == "interleaved") & (virtual_stages > 1)
    out = _where(schedule == "gpipe", m, _where(interleaved, base + (pp - 1 - stage) / virtual_stages, base))
    return out * 1.0 if np.ndim(out) else float(out)


def state_bytes(params, *, dtype_bytes: float, optimizer: str, zero, dp, grad_bytes: float | None = None):
    """(weights, gradients, optimizer) bytes per device for `params` local parameters.

    `grad_bytes` per element of the gradient buffer (default: the weights'
    dtype). `params`, `zero` and `dp` may be arrays.
    """
    weights = params * dtype_bytes
    grads = params * (dtype_bytes if grad_bytes is None else grad_bytes)
    tensors = _STATE_TENSORS.get(optimizer, 2)
    master = 4.0 if dtype_bytes < 4 else 0.0
    opt = params * (4.0 * tensors + master)
    opt = _where(zero >= 1, opt / dp, opt)
    grads = _where(zero >= 2, grads / dp, grads)
    weights = _where(zero >= 3, weights / dp, weights)
    return weights, grads, opt


def stage_memory(arch: TransformerArch, *, layers, first, last, stage, tp, pp, dp, cp, ep, sequence_parallel,
                 zero, recompute, micro_batch, seq_len: int, dtype_bytes: float, optimizer: str,
                 schedule, num_microbatches, virtual_stages=1, grad_bytes: float | None = None) -> MemoryBytes:
    """Memory of one pipeline stage's device (one tp/cp/dp rank; all ranks are alike).

    Scalars give one stage; NumPy arrays (layouts of the planner's vectorized
    tier, `first`/`last` as 0/1 arrays, `recompute`/`schedule` as arrays of
    names) give one value per layout from the same formulas.
    """
    dense, expert = layer_params(arch)
    params = layers * (dense / tp + expert / (tp * ep))
    params = params + _where(first, embedding_params(arch) / tp, 0.0)
    head = head_params(arch) / tp
    params = params + _where(last, _where(first, 0.0, head) if arch.tied_embeddings else head, 0.0)
    weights, grads, opt = state_bytes(params, dtype_bytes=dtype_bytes, optimizer=optimizer, zero=zero, dp=dp,
                                      grad_bytes=grad_bytes)
    s = seq_len // cp
    act_bytes = max(dtype_bytes, 2.0)
    kw = dict(seq_len=s, micro_batch=micro_batch, tp=tp, sequence_parallel=sequence_parallel, act_bytes=act_bytes)
    per_layer = activation_bytes_per_layer(arch, recompute=recompute, **kw)
    flight = in_flight_microbatches(schedule, pp, stage, num_microbatches, virtual_stages)
    acts = per_layer * layers * flight
    # one layer's full activations live while it is recomputed
    temp = _where(recompute == "full", activation_bytes_per_layer(arch, recompute="none", **kw), 0.0)
    # logits in 16 bit plus fp32 softmax for the loss
    temp = temp + _where(last, s * micro_batch * arch.vocab_size / tp * (act_bytes + 4.0), 0.0)
    # one layer's gathered weights
    temp = temp + _where(zero >= 3, (dense + expert / ep) / tp * dtype_bytes, 0.0)
    return MemoryBytes(weights, grads, opt, acts, temp)
