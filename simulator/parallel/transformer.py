"""Per-rank op lists of one transformer layer (and the embedding / head) after lowering.

Tensor parallelism (Megatron, Shoeybi et al. 2019; Narayanan et al. 2021,
section 2.3) splits the QKV and MLP-up matmuls by columns, the output and
MLP-down matmuls by rows and the attention core by heads, so each of those
ops runs its 1/tp share *with the per-rank shape* (the efficiency curves and
wave quantization see the smaller GEMM). Norms, dropouts and residual adds
stay replicated unless sequence parallelism splits them along the sequence
(Korthikanti et al. 2022). Context parallelism divides the sequence; its
attention still sees the full key length (ring attention). Kernels follow
Megatron's fused set (section 4.2): bias+GeLU, bias+dropout+add,
scale+mask+softmax. Ops are dicts: name, kind, flops, bytes, gemm_mnk, core
(True for the attention core that selective recompute replays).

`backward_ops` derives the backward pass op by op: each matmul becomes its
data-gradient and weight-gradient GEMMs (2x the FLOPs), each memory-bound
op reads the saved input and the output gradient and writes the input
gradient (1.5x the bytes of forward's read + write).
"""
from __future__ import annotations

from simulator.schema.graph import TransformerArch


def _gemm(name, m, n, k, e, batch=1, core=False):
    flops = 2.0 * m * n * k * batch
    return {"name": name, "kind": "matmul", "flops": flops,
            "bytes": e * batch * (m * k + k * n + m * n), "gemm_mnk": (m, n, k), "core": core}


def _mem(name, elements_read, elements_written, e, core=False, mask_bytes=0.0, flops_per_elem=1.0):
    return {"name": name, "kind": "elementwise", "flops": flops_per_elem * elements_written,
            "bytes": e * (elements_read + elements_written) + mask_bytes, "gemm_mnk": None, "core": core}


def _flash(b, heads, s, s_kv, hd, kv_local, e):
    """The attention core as one FlashAttention kernel (Dao et al. 2022; FlashAttention-2, Dao 2023):
    the score and context GEMMs' FLOPs (4 b a s s_kv d; causal blocks are not skipped here, as in
    the unfused path), reading Q, K, V and writing O once - the s x s_kv scores never reach memory.
    Costed on the attention/matmul curve at the per-head GEMM shape; its backward (backward_ops)
    recomputes the scores inside the kernel: 5 GEMMs against forward's 2, so 2.5x the FLOPs."""
    return {"name": "flash_attention", "kind": "attention_score", "flops": 4.0 * b * heads * s * s_kv * hd,
            "bytes": e * b * (2 * s * heads * hd + 2 * s_kv * kv_local), "gemm_mnk": (s, s_kv, hd),
            "core": False, "flash": True}


def has_dropout(arch: TransformerArch) -> bool:
    """GPT-2/GPT-3 and BERT train with dropout 0.1; Llama/Mistral/Mixtral use none."""
    return arch.family in ("gpt2", "bert")


def layer_forward_ops(arch: TransformerArch, *, micro_batch: int, seq_len: int, tp: int, cp: int = 1,
                      sequence_parallel: bool = False, ep: int = 1, dtype_bytes: float = 2.0) -> list[dict]:
    """Forward ops of one transformer layer on one (tp, cp) rank for one micro-batch."""
    e = dtype_bytes
    b, h = micro_batch, arch.hidden_size
    s = seq_len // cp                       # local queries
    s_kv = seq_len                          # keys seen across the ring
    t = tp
    heads = arch.num_heads // t
    hd = arch.head_dim
    kv_local = max(1, arch.num_kv_heads // t) * hd
    tokens = b * s
    repl = tokens * h / (t if sequence_parallel else 1)   # elements of a replicated [s,b,h] tensor
    drop = 1.0 if has_dropout(arch) else 0.0
    probs = b * heads * s * s_kv
    if arch.attention == "flash":
        core = [_flash(b, heads, s, s_kv, hd, kv_local, e)]
    else:
        core = [
            _gemm("attn_score", s, s_kv, hd, e, batch=b * heads, core=True),
            _mem("softmax", b * heads * s * s_kv, b * heads * s * s_kv, e, core=True, flops_per_elem=5.0),
            # dropout on probabilities: read probs, write dropped probs + 1-byte mask
            _mem("attn_dropout", drop * probs, drop * probs, e, core=True, mask_bytes=drop * probs),
            _gemm("attn_context", s, hd, s_kv, e, batch=b * heads, core=True),
        ]
    ops = [
        _mem("input_norm", repl, repl, e, flops_per_elem=5.0),
        _gemm("qkv", tokens, heads * hd + 2 * kv_local, h, e),
        *core,
        _gemm("attn_proj", tokens, h, heads * hd, e),
        # fused bias + dropout + residual add: read x and residual, write out + mask
        _mem("attn_bias_dropout_add", 2 * repl, repl, e, mask_bytes=drop * repl),
        _mem("post_attn_norm", repl, repl, e, flops_per_elem=5.0),
    ]
    ops += _mlp_ops(arch, tokens, t, ep, e)
    ops.append(_mem("mlp_bias_dropout_add", 2 * repl, repl, e, mask_bytes=drop * repl))
    return ops


def _mlp_ops(arch: TransformerArch, tokens: int, t: int, ep: int, e: float) -> list[dict]:
    h, f = arch.hidden_size, arch.ffn_hidden_size // t
    up = 2 * f if arch.gated_mlp else f
    k = arch.experts_per_token if arch.num_experts > 1 else 1
    rows = tokens * k                      # token-expert pairs processed by this rank's experts
    ops = []
    if arch.num_experts > 1:
        ops.append(_gemm("router", tokens, arch.num_experts, h, e))
    ops.append(_gemm("mlp_up", rows, up, h, e))
    act_in = rows * up
    ops.append(_mem("mlp_act", act_in, rows * f, e, flops_per_elem=8.0))   # bias + GeLU / SwiGLU fused
    ops.append(_gemm("mlp_down", rows, h, f, e))
    return ops


def embedding_ops(arch: TransformerArch, *, micro_batch: int, seq_len: int, tp: int, cp: int = 1,
                  sequence_parallel: bool = False, dtype_bytes: float = 2.0) -> list[dict]:
    """First stage: word (+ position) embedding lookup and embedding dropout."""
    tokens = micro_batch * seq_len // cp
    h, e = arch.hidden_size, dtype_bytes
    out = tokens * h / (tp if sequence_parallel else 1)
    reads = 2 if arch.learned_positions else 1
    ops = [{"name": "embedding", "kind": "embedding", "flops": out, "bytes": e * (reads * out + out),
            "gemm_mnk": None, "core": False}]
    if has_dropout(arch):
        ops.append(_mem("embedding_dropout", out, out, e, mask_bytes=out))
    return ops


def head_ops(arch: TransformerArch, *, micro_batch: int, seq_len: int, tp: int, cp: int = 1,
             sequence_parallel: bool = False, dtype_bytes: float = 2.0) -> list[dict]:
    """Last stage: final norm, vocab-parallel LM head GEMM and fused cross-entropy."""
    tokens = micro_batch * seq_len // cp
    h, e = arch.hidden_size, dtype_bytes
    v_local = arch.vocab_size // tp
    repl = tokens * h / (tp if sequence_parallel else 1)
    return [_mem("final_norm", repl, repl, e, flops_per_elem=5.0),
            _gemm("lm_head", tokens, v_local, h, e),
            # unfused vocab-parallel cross-entropy on fp32 logits (Megatron-LM 2021
            # vocab_parallel_cross_entropy(output.float())): cast (read e, write 4 B),
            # max (read 4), subtract (r/w 8), exp (r/w 8), sum (read 4) per logit
            {"name": "cross_entropy", "kind": "loss", "flops": 5.0 * tokens * v_local,
             "bytes": tokens * v_local * (e + 4.0 + 4.0 + 8.0 + 8.0 + 4.0), "gemm_mnk": None, "core": False}]


def backward_ops(forward: list[dict]) -> list[dict]:
    """Backward ops of a forward op list (data- and weight-gradient GEMMs; 1.5x bytes otherwise)."""
    out = []
    for op in forward:
        if op.get("flash"):      # recompute S and P, then dV, dP, dQ, dK (FlashAttention-2, Alg. 2)
            out.append({**op, "name": op["name"] + ".bwd", "flops": op["flops"] * 2.5, "bytes": op["bytes"] * 2.0})
        elif op["gemm_mnk"] is not None:
            m, n, k = op["gemm_mnk"]
            half_bytes = op["bytes"]
            out.append({**op, "name": op["name"] + ".dgrad", "gemm_mnk": (m, k, n), "bytes": half_bytes})
            out.append({**op, "name": op["name"] + ".wgrad", "gemm_mnk": (k, n, m), "bytes": half_bytes})
        else:
            out.append({**op, "name": op["name"] + ".bwd", "flops": op["flops"] * 2.0, "bytes": op["bytes"] * 1.5})
    return out


def recompute_ops(forward: list[dict], policy: str) -> list[dict]:
    """Forward work replayed in backward: all of it (full), the attention core (selective), none."""
    if policy == "full":
        return [{**op, "name": op["name"] + ".recompute"} for op in forward]
    if policy == "selective":
        return [{**op, "name": op["name"] + ".recompute"} for op in forward if op["core"]]
    return []
