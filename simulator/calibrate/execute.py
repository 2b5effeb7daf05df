"""Execute a capplan graph op by op with NumPy or CuPy, from the same NetworkX graph the
simulator costs, and time every op.

Each node becomes one array call (or the few calls its formula needs) on
tensors of the node's shapes: GEMMs from `gemm_mnk`, convolutions as im2col +
GEMM (kernels.conv2d), attention from the (b, heads, s, s) score shape,
elementwise formulas from the op name (relu, gelu, swiglu, add/residual,
dropout, rope), norms from the model's norm kind. Data flows along the edges
(a producer's output, reshaped, is the consumer's input) so caches behave as
in a real forward pass. Weights are random (never zero), scaled by 1/sqrt(k)
so activations stay O(1) (no overflow, no denormals). Nodes that do no work
(the input tensor, views) are not executed and not costed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import networkx as nx
import numpy as np

from simulator.calibrate import kernels as K
from simulator.calibrate.harness import random_array
from simulator.errors import InputError
from simulator.graph.ops import numel

_NP_DTYPES = {"fp32": np.float32, "fp64": np.float64, "fp16": np.float16}


@dataclass(frozen=True)
class Step:
    node: str
    kind: str
    run: Callable[[], None]


def does_work(attrs: dict) -> bool:
    """True for nodes that move or compute data (not the input tensor, not views)."""
    return attrs["flops"] > 0 or attrs["bytes_read"] > 0


def prepare(g: nx.DiGraph, xp, rng: np.random.Generator) -> list[Step]:
    """One Step per working node, in topological order, with inputs and weights allocated."""
    dtype = _NP_DTYPES.get(g.graph.get("dtype", "fp32"))
    if dtype is None:
        raise InputError(f"cannot execute dtype {g.graph.get('dtype')!r} on this backend",
                         field="dtype", expected=", ".join(_NP_DTYPES))
    env: dict[str, object] = {}
    steps = []
    ctx = _Ctx(g, xp, rng, dtype, env)
    for node in nx.topological_sort(g):
        a = g.nodes[node]
        if not does_work(a):
            preds = list(g.predecessors(node))
            if preds:                    # a view: consumers read its producer's output
                ctx.alias[node] = ctx.resolve(preds[0])
                env[node] = env.get(ctx.alias[node])
            else:                        # the input tensor: fixed random data
                env[node] = ctx.const(a["out_shape"]) if a["out_shape"] else None
            continue
        run = _builder(a["kind"])(ctx, node, a)
        run()                        # once now: fills env so consumers see the output's size
        steps.append(Step(node, a["kind"], run))
    return steps


class _Ctx:
    def __init__(self, g, xp, rng, dtype, env):
        self.g, self.xp, self.rng, self.dtype, self.env = g, xp, rng, dtype, env
        arch = g.graph.get("arch") or {}
        self.heads = arch.get("num_heads")
        self.kv_heads = arch.get("num_kv_heads", self.heads)
        self.norm = arch.get("norm", "layernorm")
        self.gated = arch.get("gated_mlp", False)
        self.alias: dict[str, str] = {}

    def resolve(self, node: str) -> str:
        while node in self.alias:
            node = self.alias[node]
        return node

    def const(self, shape, scale: float = 1.0):
        arr = random_array(self.xp, self.rng, tuple(shape), self.dtype)
        if scale != 1.0:
            arr *= self.dtype(scale)
        return arr

    def input(self, node: str, i: int, shape):
        """A getter of the i-th predecessor's latest output viewed as `shape` (a fixed random
        tensor when there is no such predecessor or its size differs)."""
        preds = list(self.g.predecessors(node))
        shape = tuple(shape)
        if i < len(preds):
            pred = self.resolve(preds[i])
            val = self.env.get(pred)
            if val is not None and val.size == numel(shape):
                env = self.env
                return lambda: env[pred].reshape(shape)
        const = self.const(shape)
        return lambda: const

    def out(self, node: str, shape):
        buf = self.xp.empty(tuple(shape), dtype=self.dtype)
        self.env[node] = buf
        return buf


def _matmul(c: _Ctx, node, a):
    m, n, k = a["gemm_mnk"]
    x = c.input(node, 0, (m, k))
    w = c.const((k, n), 1.0 / math.sqrt(k))
    _fold_attention_scale(c, node, w)
    out = c.out(node, (m, n))
    return lambda: c.xp.matmul(x(), w, out=out)


def _fold_attention_scale(c: _Ctx, node, w) -> None:
    """Scale the query columns of a q|k|v projection that feeds attention by 1/sqrt(d_head).

    Every transformer scales its scores by 1/sqrt(d) (Vaswani et al. 2017); frameworks fold
    it into a kernel (baddbmm's alpha, a fused scale-softmax), and the graph counts it in
    no op. Folding it into the query weights keeps the executed scores O(1) at no cost:
    unscaled scores (std ~25) underflow exp to subnormals and slow the softmax by ~30%.
    """
    for succ in c.g.successors(node):
        sa = c.g.nodes[succ]
        if sa["kind"] == "attention_score" and sa.get("gemm_mnk"):
            d = sa["gemm_mnk"][2]
            heads = c.heads or sa["out_shape"][1]
            w[:, : heads * d] *= c.dtype(1.0 / math.sqrt(d))
            return


def _conv(c: _Ctx, node, a):
    n, cin, h, _ = a["in_shapes"][0]
    _, cout, ho, _ = a["out_shape"]
    kk = a["gemm_mnk"][2]
    k = int(round(math.sqrt(kk / cin)))
    stride, pad = K.conv_geometry(h, ho, k)
    x = c.input(node, 0, a["in_shapes"][0])
    w = c.const((kk, cout), 1.0 / math.sqrt(kk))

    def run():
        c.env[node] = K.conv2d(c.xp, x(), w, stride, pad)
    return run


def _heads_split(c: _Ctx, qkv, b, s, d):
    hq, hkv = c.heads, c.kv_heads or c.heads
    q = qkv[..., : hq * d].reshape(b, s, hq, d).transpose(0, 2, 1, 3)
    k = qkv[..., hq * d: (hq + hkv) * d].reshape(b, s, hkv, d).transpose(0, 2, 3, 1)
    v = qkv[..., (hq + hkv) * d: (hq + 2 * hkv) * d].reshape(b, s, hkv, d).transpose(0, 2, 1, 3)
    if hkv != hq:   # grouped-query attention: each kv head serves hq/hkv query heads
        k = c.xp.repeat(k, hq // hkv, axis=1)
        v = c.xp.repeat(v, hq // hkv, axis=1)
    return q, k, v


def _qkv_of(c: _Ctx, node, b, s, d):
    """Getter of the fused q|k|v projection feeding an attention op."""
    width = (c.heads + 2 * (c.kv_heads or c.heads)) * d
    for p in map(c.resolve, c.g.predecessors(node)):
        val = c.env.get(p)
        if val is not None and val.size == b * s * width:
            env = c.env
            return lambda: env[p].reshape(b, s, width)
    const = c.const((b, s, width), 1.0 / math.sqrt(d))
    return lambda: const


def _score(c: _Ctx, node, a):
    b, heads, s, _ = a["out_shape"]
    c.heads = c.heads or heads
    d = a["gemm_mnk"][2]
    qkv = _qkv_of(c, node, b, s, d)
    out = c.out(node, a["out_shape"])

    def run():
        q, k, _ = _heads_split(c, qkv(), b, s, d)
        c.xp.matmul(q, k, out=out)
    return run


def _context(c: _Ctx, node, a):
    b, s, width = a["out_shape"]
    d = a["gemm_mnk"][1]
    heads = width // d
    c.heads = c.heads or heads
    probs = c.input(node, 0, (b, heads, s, s))
    qkv = _qkv_of(c, node, b, s, d)
    tmp = c.xp.empty((b, heads, s, d), dtype=c.dtype)
    out = c.out(node, (b, s, width))

    def run():
        _, _, v = _heads_split(c, qkv(), b, s, d)
        c.xp.matmul(probs(), v, out=tmp)
        c.xp.copyto(out.reshape(b, s, heads, d), tmp.transpose(0, 2, 1, 3))
    return run


def _softmax(c: _Ctx, node, a):
    x = c.input(node, 0, a["out_shape"])
    out = c.out(node, a["out_shape"])
    return lambda: K.softmax(c.xp, x(), out=out)


def _norm(c: _Ctx, node, a):
    shape = a["out_shape"]
    x = c.input(node, 0, shape)
    if len(shape) == 4 or "bn" in a["name"]:          # batch norm with stored statistics
        scale = c.const((1, shape[1], 1, 1))
        shift = c.const((1, shape[1], 1, 1))
        out = c.out(node, shape)

        def bn():
            c.xp.multiply(x(), scale, out=out)
            c.xp.add(out, shift, out=out)
        return bn
    gamma, beta = c.const((shape[-1],)), c.const((shape[-1],))

    def run():
        c.env[node] = (K.rmsnorm(c.xp, x(), gamma) if c.norm == "rmsnorm"
                       else K.layernorm(c.xp, x(), gamma, beta))
    return run


def _elementwise(c: _Ctx, node, a):
    shape = a["out_shape"]
    name = a["name"].lower()
    n_in = len(a["in_shapes"]) or 1
    xs = [c.input(node, i, shape) for i in range(n_in)]
    xp = c.xp
    out = c.out(node, shape)
    if "relu" in name:   # array-array maximum: NumPy's vectorised path (scalar 0 is 3x slower)
        zeros = xp.zeros(shape, dtype=c.dtype)
        return lambda: xp.maximum(xs[0](), zeros, out=out)
    if "gelu" in name or ("act" in name and not c.gated and n_in == 1):
        return lambda: c.env.__setitem__(node, K.gelu(xp, xs[0]()))
    if "swiglu" in name or ("act" in name and n_in == 2):
        return lambda: xp.multiply(K.silu(xp, xs[0]()), xs[1](), out=out)
    if "dropout" in name:
        mask = c.const(shape)
        return lambda: xp.multiply(xs[0](), mask, out=out)
    if n_in >= 2:
        return lambda: xp.add(xs[0](), xs[1](), out=out)
    scale = c.const(shape[-1:])
    return lambda: xp.multiply(xs[0](), scale, out=out)   # rope-like: one pass with a table


def _pooling(c: _Ctx, node, a):
    shape_in, shape_out = a["in_shapes"][0], a["out_shape"]
    x = c.input(node, 0, shape_in)
    if len(shape_out) == 2:                              # global average pool
        return lambda: c.env.__setitem__(node, x().mean(axis=(2, 3)))
    h, ho = shape_in[2], shape_out[2]
    k = max(1, int(round(math.sqrt(a["flops"] / numel(shape_out)))))   # flops = out * k * k
    stride, pad = K.conv_geometry(h, ho, k)
    mode = "avg" if "avg" in a["name"] else "max"
    return lambda: c.env.__setitem__(node, K.pool2d(c.xp, x(), k, stride, pad, mode))


def _embedding(c: _Ctx, node, a):
    b, s, h = a["out_shape"]
    vocab = max(1, int(a["params"] // h))
    ids = c.xp.asarray(c.rng.integers(0, min(vocab, 32000), size=(b, s)))
    table = c.const((min(vocab, 32000), h))
    extra = c.const((s, h)) if a["flops"] > 0 else None
    out = c.out(node, (b, s, h))

    def run():
        c.xp.take(table, ids, axis=0, out=out)
        if extra is not None:
            c.xp.add(out, extra, out=out)
    return run


def _loss(c: _Ctx, node, a):
    shape = a["in_shapes"][0]
    logits = c.input(node, 0, shape)
    labels = c.xp.asarray(c.rng.integers(0, shape[-1], size=shape[:-1]))
    return lambda: c.env.__setitem__(node, K.cross_entropy(c.xp, logits(), labels))


def _copy(c: _Ctx, node, a):
    x = c.input(node, 0, a["in_shapes"][0] if a["in_shapes"] else a["out_shape"])
    out = c.out(node, a["out_shape"])
    return lambda: c.xp.copyto(out, x().reshape(a["out_shape"]))


def _reduce(c: _Ctx, node, a):
    x = c.input(node, 0, a["in_shapes"][0])
    return lambda: c.env.__setitem__(node, x().sum(axis=-1))


_BUILDERS = {
    "matmul": _matmul, "conv": _conv, "attention_score": _score, "attention_context": _context,
    "softmax": _softmax, "norm": _norm, "elementwise": _elementwise, "pooling": _pooling,
    "embedding": _embedding, "loss": _loss, "data_movement": _copy, "reduce": _reduce,
}


def _builder(kind: str):
    if kind not in _BUILDERS:
        raise InputError(f"cannot execute op kind {kind!r}", field="kind",
                         expected=", ".join(sorted(_BUILDERS)))
    return _BUILDERS[kind]
