"""Op records and the FLOP/byte conventions shared by every builder and importer.

Nodes are plain attribute dicts with the fields of `simulator.schema.graph.Op`
(validated once in tests, not per node, so that building a 100k-op graph stays
fast). Edges carry `size_bytes`, the tensor passed from producer to consumer.

FLOP conventions (one table for the built-in builders and the ONNX importer,
so that the same network gives the same count from either):

- matmul / conv: 2 FLOPs per multiply-accumulate (bias adds are fused into the
  producing GEMM/conv and not counted, as in Megatron's count, Narayanan et
  al. 2021 appendix, and torchvision's GFLOPS column, which is MACs).
- attention score / context: batched matmuls, 2*b*heads*s*s*head_dim each.
- elementwise and normalisation ops: the count of elementary operations per
  output element in `PER_ELEMENT_FLOPS` (a convention; these ops are memory
  bound and their FLOPs are < 0.1% of a transformer's).
"""
from __future__ import annotations

import math
from typing import Iterable

import networkx as nx

# Elementary operations per output element (counted from each op's formula).
PER_ELEMENT_FLOPS = {
    "add": 1, "sub": 1, "mul": 1, "div": 1, "max": 1, "min": 1, "pow": 1, "where": 1,
    "relu": 1, "leaky_relu": 2, "clip": 1, "neg": 1, "abs": 1, "sqrt": 1, "exp": 1, "log": 1,
    "reciprocal": 1, "erf": 1, "cast": 0,
    "sigmoid": 4,            # exp, add, reciprocal, (negate)
    "tanh": 4,
    "silu": 5,               # sigmoid + multiply
    "swiglu": 6,             # silu(gate) * up
    "gelu": 8,               # tanh approximation: x^3, 2 mul, add, tanh, add, 2 mul
    "softplus": 3, "elu": 3, "selu": 4, "hard_sigmoid": 2, "hard_swish": 3, "mish": 8,
    "softmax": 5,            # max, subtract, exp, sum, divide
    "layernorm": 7,          # mean, subtract, square, sum, scale by rstd, *gamma, +beta
    "rmsnorm": 4,            # square, sum, scale by rstd, *gamma
    "batchnorm": 2,          # normalised with stored statistics: *scale, +shift
    "dropout": 2,            # compare with a random mask, multiply
    "rope": 3,               # rotary embedding: 2 mul + 1 add per element of q and k
    "cross_entropy": 5,      # log-softmax over the logits
    "reduce": 1,             # per input element
}

BILINEAR_KINDS = frozenset({"matmul", "conv", "attention_score", "attention_context"})
MATMUL_LIKE = frozenset({"matmul", "conv"})


def numel(shape: Iterable[int]) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return math.prod(int(d) for d in shape)


def make_op(op_id: str, kind: str, *, name: str | None = None, phase: str = "forward",
            layer: int | None = None, flops: float = 0.0, bytes_read: float = 0.0,
            bytes_written: float = 0.0, params: int = 0, dtype: str = "bf16",
            in_shapes: tuple = (), out_shape: tuple = (), gemm_mnk: tuple | None = None,
            tp_split: str = "replicated", recompute: bool = False, saved: str = "inputs") -> dict:
    """An op as the attribute dict stored on a graph node (fields of schema.graph.Op)."""
    return {
        "id": op_id, "name": name or op_id, "kind": kind, "phase": phase, "layer": layer,
        "flops": float(flops), "bytes_read": float(bytes_read), "bytes_written": float(bytes_written),
        "params": int(params), "dtype": dtype, "in_shapes": tuple(tuple(s) for s in in_shapes),
        "out_shape": tuple(out_shape), "gemm_mnk": gemm_mnk, "tp_split": tp_split,
        "recompute": recompute, "saved": saved,
    }


def add_op(g: nx.DiGraph, op: dict, deps: Iterable[str] = ()) -> str:
    """Add `op` to `g` with edges from each dependency (size = the producer's output bytes)."""
    node = op["id"]
    g.add_node(node, **op)
    nodes = g.nodes
    for d in deps:
        g.add_edge(d, node, size_bytes=nodes[d]["bytes_written"])
    return node


def matmul_op(op_id: str, m: int, n: int, k: int, *, dt: float, params: int = 0,
              in_shape: tuple | None = None, out_shape: tuple | None = None, **kw) -> dict:
    """A GEMM (m x k) @ (k x n): 2mnk FLOPs; reads the input and `params` weights, writes m x n."""
    return make_op(
        op_id, kw.pop("kind", "matmul"), flops=2.0 * m * n * k,
        bytes_read=(m * k + params) * dt, bytes_written=m * n * dt, params=params,
        in_shapes=(in_shape or (m, k),), out_shape=out_shape or (m, n), gemm_mnk=(m, n, k), **kw)


def elementwise_op(op_id: str, formula: str, shape: tuple, *, dt: float, n_inputs: int = 1,
                   params: int = 0, kind: str = "elementwise", **kw) -> dict:
    """An op that reads `n_inputs` tensors of `shape` (plus params) and writes one."""
    n = numel(shape)
    kw.setdefault("saved", "none" if formula in ("add", "sub") else "output" if formula == "softmax" else "inputs")
    return make_op(
        op_id, kind, flops=PER_ELEMENT_FLOPS[formula] * n,
        bytes_read=(n * n_inputs + params) * dt, bytes_written=n * dt, params=params,
        in_shapes=(tuple(shape),) * n_inputs, out_shape=tuple(shape), **kw)


def backward_flops(op: dict) -> float:
    """Backward FLOPs of a forward op: 2x for bilinear ops (data and weight/other-operand
    gradients, each as costly as the forward), 1x for the rest (Narayanan et al. 2021)."""
    return op["flops"] * (2.0 if op["kind"] in BILINEAR_KINDS else 1.0)
