"""Forward graph of a decoder (GPT-2/GPT-3, Llama, Mistral, Mixtral) or encoder (BERT).

One op per logical kernel per layer, named identically in every layer apart
from the `L{i}.` prefix, so that later layers can cost one layer and multiply.
Counts follow Megatron-LM (Narayanan et al. 2021, appendix; Korthikanti et al.
2022): per layer 2*T*(qkv out)*h + 2*T*h*h (attention projections),
2*b*s*s*h for the score and again for the context (full square), and
2*T*h*f per MLP matrix (T = b*s tokens, f = FFN size); the logit layer is 2*T*h*V.
"""
from __future__ import annotations

import networkx as nx

from simulator.graph.ops import PER_ELEMENT_FLOPS, add_op, elementwise_op, make_op, matmul_op
from simulator.schema.graph import TransformerArch

_BIAS_FAMILIES = ("gpt2", "bert")
_DROPOUT_FAMILIES = ("gpt2", "bert")


class _Ctx:
    """Sizes shared by every op of one graph (plain data, built once)."""

    def __init__(self, arch: TransformerArch, batch: int, seq_len: int, dt: float, dtype: str,
                 training: bool):
        self.a, self.b, self.s = arch, batch, seq_len
        self.T = batch * seq_len
        self.h = arch.hidden_size
        self.dt, self.dtype = dt, dtype
        self.bias = arch.family in _BIAS_FAMILIES
        self.dropout = training and arch.family in _DROPOUT_FAMILIES
        self.norm = arch.norm

    def tok(self, width: int) -> tuple[int, int, int]:
        return (self.b, self.s, width)


def build_transformer(arch: TransformerArch, *, batch: int, seq_len: int, dtype: str, dt: float,
                      name: str, training: bool = False) -> nx.DiGraph:
    """Forward graph of `batch` sequences of `seq_len` tokens through the whole model."""
    c = _Ctx(arch, batch, seq_len, dt, dtype, training)
    g = nx.DiGraph()
    x = _embedding(g, c)
    for i in range(arch.num_layers):
        x = _layer(g, c, i, x)
    _head(g, c, x)
    return g


def _op(c: _Ctx, op: dict, layer: int | None, prefix: str) -> dict:
    op["name"] = op["id"]
    op["id"] = prefix + op["id"]
    op["layer"] = layer
    op["dtype"] = c.dtype
    return op


def _norm(c: _Ctx, name: str, width: int, tp: str = "sequence") -> dict:
    params = 2 * width if c.norm == "layernorm" else width
    return elementwise_op(name, c.norm, c.tok(width), dt=c.dt, params=params, kind="norm", tp_split=tp)


def _embedding(g: nx.DiGraph, c: _Ctx) -> str:
    a, h = c.a, c.h
    tables = 1 + int(a.learned_positions) + int(a.family == "bert")
    params = a.vocab_size * h + (a.max_position_embeddings * h if a.learned_positions else 0)
    if a.family == "bert":
        params += a.type_vocab_size * h
    op = make_op("embed", "embedding", flops=(tables - 1) * c.T * h,
                 bytes_read=tables * c.T * h * c.dt + c.T * 8, bytes_written=c.T * h * c.dt,
                 params=params, in_shapes=((c.b, c.s),), out_shape=c.tok(h), tp_split="vocab")
    x = add_op(g, _op(c, op, None, ""))
    if a.family == "bert":   # BERT normalises the summed embeddings (post-norm encoder)
        x = add_op(g, _op(c, _norm(c, "embed.ln", h), None, ""), [x])
    return x


def _layer(g: nx.DiGraph, c: _Ctx, i: int, x: str) -> str:
    pre = f"L{i}."
    post_norm = c.a.family == "bert"

    def add(op: dict, deps) -> str:
        return add_op(g, _op(c, op, i, pre), deps)

    h_in = add(_norm(c, "ln1", c.h), [x]) if not post_norm else x
    attn_out = _attention(c, add, h_in)
    r1 = add(elementwise_op("residual1", "add", c.tok(c.h), dt=c.dt, n_inputs=2, tp_split="sequence"),
             [x, attn_out])
    if post_norm:
        r1 = add(_norm(c, "ln1", c.h), [r1])
        mlp_in = r1
    else:
        mlp_in = add(_norm(c, "ln2", c.h), [r1])
    if c.a.num_experts > 1:
        mlp_out = _moe(c, add, mlp_in)
    else:
        mlp_out = _mlp(c, add, mlp_in, "mlp.", c.T, "column", "row")
    if c.dropout:
        mlp_out = add(elementwise_op("mlp.dropout", "dropout", c.tok(c.h), dt=c.dt, tp_split="sequence"),
                      [mlp_out])
    out = add(elementwise_op("residual2", "add", c.tok(c.h), dt=c.dt, n_inputs=2, tp_split="sequence"),
              [r1, mlp_out])
    if post_norm:
        out = add(_norm(c, "ln2", c.h), [out])
    return out


def _attention(c: _Ctx, add, x: str) -> str:
    a, h, T, dt = c.a, c.h, c.T, c.dt
    q_dim, kv_dim = a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim
    qkv_n = q_dim + 2 * kv_dim
    qkv = add(matmul_op("attn.qkv", T, qkv_n, h, dt=dt, params=h * qkv_n + (qkv_n if c.bias else 0),
                        in_shape=c.tok(h), out_shape=c.tok(qkv_n), tp_split="column"), [x])
    q_src = qkv
    if a.family != "gpt2" and a.family != "bert":   # rotary embeddings on q and k (Su et al. 2021)
        qk = T * (q_dim + kv_dim)
        q_src = add(make_op("attn.rope", "elementwise", flops=3 * qk, bytes_read=qk * dt,
                            bytes_written=qk * dt, in_shapes=(c.tok(q_dim + kv_dim),),
                            out_shape=c.tok(q_dim + kv_dim), tp_split="heads"), [qkv])
    bhs = (c.b, a.num_heads, c.s, c.s)
    n_scores = c.b * a.num_heads * c.s * c.s
    score_flops = 2.0 * n_scores * a.head_dim
    score = add(make_op("attn.score", "attention_score", flops=score_flops,
                        bytes_read=T * (q_dim + kv_dim) * dt, bytes_written=n_scores * dt,
                        in_shapes=(c.tok(q_dim), c.tok(kv_dim)), out_shape=bhs,
                        gemm_mnk=(c.s, c.s, a.head_dim), tp_split="heads"), [q_src])
    probs = add(elementwise_op("attn.softmax", "softmax", bhs, dt=dt, kind="softmax", tp_split="heads"),
                [score])
    if c.dropout:
        probs = add(elementwise_op("attn.dropout", "dropout", bhs, dt=dt, tp_split="heads"), [probs])
    ctx = add(make_op("attn.context", "attention_context", flops=score_flops,
                      bytes_read=(n_scores + T * kv_dim) * dt, bytes_written=T * q_dim * dt,
                      in_shapes=(bhs, c.tok(kv_dim)), out_shape=c.tok(q_dim),
                      gemm_mnk=(c.s, a.head_dim, c.s), tp_split="heads"), [probs, qkv])
    out = add(matmul_op("attn.proj", T, h, q_dim, dt=dt, params=q_dim * h + (h if c.bias else 0),
                        in_shape=c.tok(q_dim), out_shape=c.tok(h), tp_split="row"), [ctx])
    if c.dropout:
        out = add(elementwise_op("attn.out_dropout", "dropout", c.tok(h), dt=dt, tp_split="sequence"), [out])
    return out


def _mlp(c: _Ctx, add, x: str, pre: str, tokens: float, col: str, row: str) -> str:
    """GELU MLP (2 matrices) or SwiGLU (3: gate, up, down; Shazeer 2020) on `tokens` tokens
    (fractional for MoE experts, which see T*top_k/E tokens on average)."""
    a, h, f, dt = c.a, c.h, c.a.ffn_hidden_size, c.dt
    m = max(1, int(round(tokens)))

    def mm(name, n, k, params, split):
        op = matmul_op(pre + name, tokens, n, k, dt=dt, params=params, tp_split=split,
                       in_shape=(m, k), out_shape=(m, n))
        op["gemm_mnk"] = (m, n, k)
        return op

    up = add(mm("up", f, h, h * f + (f if c.bias else 0), col), [x])
    if a.gated_mlp:
        gate = add(mm("gate", f, h, h * f, col), [x])
        act = add(_scaled_elementwise(pre + "act", "swiglu", tokens, f, 2, dt, col), [gate, up])
    else:
        act = add(_scaled_elementwise(pre + "act", "gelu", tokens, f, 1, dt, col), [up])
    return add(mm("down", h, f, f * h + (h if c.bias else 0), row), [act])


def _scaled_elementwise(name: str, formula: str, tokens: float, width: int, n_in: int, dt: float,
                        split: str) -> dict:
    n = tokens * width
    m = max(1, int(round(tokens)))
    return make_op(name, "elementwise", flops=PER_ELEMENT_FLOPS[formula] * n, bytes_read=n_in * n * dt,
                   bytes_written=n * dt, in_shapes=((m, width),) * n_in, out_shape=(m, width),
                   tp_split=split)


def _moe(c: _Ctx, add, x: str) -> str:
    """Mixture of experts (Mixtral, Jiang et al. 2024): router, top-k routing, experts each
    seeing T*top_k/E tokens on average, and a weighted combine."""
    a, h, T, dt = c.a, c.h, c.T, c.dt
    E, k = a.num_experts, a.experts_per_token
    router = add(matmul_op("moe.router", T, E, h, dt=dt, params=h * E, in_shape=c.tok(h),
                           out_shape=c.tok(E)), [x])
    route = add(elementwise_op("moe.route", "softmax", c.tok(E), dt=dt, kind="softmax"), [router])
    tokens = T * k / E
    outs = [_mlp(c, add, x, f"moe.e{j}.", tokens, "expert", "expert") for j in range(E)]
    n = T * k * h
    combine = make_op("moe.combine", "elementwise", flops=2.0 * n, bytes_read=n * dt + T * k * 4,
                      bytes_written=T * h * dt, in_shapes=((T * k, h),), out_shape=c.tok(h),
                      tp_split="sequence")
    return add(combine, [route, *outs])


def _head(g: nx.DiGraph, c: _Ctx, x: str) -> None:
    a, h, T, dt = c.a, c.h, c.T, c.dt

    def add(op, deps):
        return add_op(g, _op(c, op, None, ""), deps)

    if a.family == "bert":
        if a.num_labels is None:   # BertModel: pooler on the first token of each sequence
            add(matmul_op("pooler", c.b, h, h, dt=dt, params=h * h + h, tp_split="replicated"), [x])
            return
        n = a.num_labels           # BertForTokenClassification: a linear head per token
        logits = add(matmul_op("classifier", T, n, h, dt=dt, params=h * n + n, in_shape=c.tok(h),
                               out_shape=c.tok(n)), [x])
        add(_loss(c, n), [logits])
        return
    x = add(_norm(c, "final_norm", h), [x])
    V = a.vocab_size
    logits = add(matmul_op("lm_head", T, V, h, dt=dt, params=0 if a.tied_embeddings else h * V,
                           in_shape=c.tok(h), out_shape=c.tok(V), tp_split="vocab"), [x])
    add(_loss(c, V), [logits])


def _loss(c: _Ctx, width: int) -> dict:
    n = c.T * width
    return make_op("loss", "loss", flops=PER_ELEMENT_FLOPS["cross_entropy"] * n, bytes_read=n * c.dt,
                   bytes_written=c.T * 4, in_shapes=(c.tok(width),), out_shape=(c.b, c.s),
                   tp_split="vocab")
