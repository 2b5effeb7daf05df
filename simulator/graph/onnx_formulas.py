"""FLOP formulas of ONNX operators, from the shapes ONNX shape inference gives.

Each formula takes (node, input shapes, output shapes, attrs) and returns
(kind, flops). Conventions are those of simulator.graph.ops (2 FLOPs per MAC,
per-element counts from PER_ELEMENT_FLOPS) so an ONNX export and the
built-in builder of the same network agree. Operators missing here are kept
as memory-bound nodes (kind "other", 0 FLOPs, their bytes) and reported.
"""
from __future__ import annotations

import string

from simulator.graph.ops import PER_ELEMENT_FLOPS as PEF
from simulator.graph.ops import numel

_ELEMENTWISE = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min", "Pow": "pow",
    "Where": "where", "Relu": "relu", "LeakyRelu": "leaky_relu", "PRelu": "leaky_relu", "Clip": "clip",
    "Neg": "neg", "Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Reciprocal": "reciprocal",
    "Erf": "erf", "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "FastGelu": "gelu",
    "Softplus": "softplus", "Elu": "elu", "Selu": "selu", "HardSigmoid": "hard_sigmoid",
    "HardSwish": "hard_swish", "Mish": "mish", "Dropout": "dropout", "Cast": "cast",
}
_DATA_MOVEMENT = frozenset({
    "Reshape", "Transpose", "Concat", "Slice", "Squeeze", "Unsqueeze", "Flatten", "Split", "Expand",
    "Identity", "Shape", "Tile", "Pad", "Gather", "GatherElements", "GatherND", "ConstantOfShape",
    "Range", "Resize", "DepthToSpace", "SpaceToDepth", "ScatterND", "Size",
})
_REDUCE = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                     "ReduceSumSquare", "ArgMax", "ArgMin"})


def _matmul(node, ins, outs, attrs):
    a = ins[0]
    k = a[-1] if len(a) >= 1 else 1
    return "matmul", 2.0 * numel(outs[0]) * k


def _gemm(node, ins, outs, attrs):
    a = ins[0]
    k = a[0] if attrs.get("transA", 0) else a[-1]
    return "matmul", 2.0 * numel(outs[0]) * k


def _conv(node, ins, outs, attrs):
    w = ins[1]   # (Cout, Cin/groups, kh, kw, ...)
    return "conv", 2.0 * numel(outs[0]) * numel(w[1:])


def _conv_transpose(node, ins, outs, attrs):
    x, w = ins[0], ins[1]   # w: (Cin, Cout/groups, kh, kw)
    return "conv", 2.0 * numel(x) * numel(w[1:])


def _pool(node, ins, outs, attrs):
    return "pooling", float(numel(outs[0]) * numel(attrs.get("kernel_shape", [1])))


def _global_pool(node, ins, outs, attrs):
    return "pooling", float(numel(ins[0]))


def _per_out(formula, kind):
    return lambda node, ins, outs, attrs: (kind, float(PEF[formula] * numel(outs[0])))


def _reduce(node, ins, outs, attrs):
    return "reduce", float(numel(ins[0]))


def _einsum(node, ins, outs, attrs):
    """2 x the product of every index size when an index is contracted, else 1 per output."""
    eq = attrs["equation"].replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if "..." in eq or len(terms) != len(ins):
        raise ValueError("ellipsis einsum")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, ins):
        if len(term) != len(shape):
            raise ValueError("rank mismatch")
        for ch, d in zip(term, shape):
            sizes[ch] = max(sizes.get(ch, 1), d)
    if not rhs and "->" not in eq:
        rhs = "".join(sorted(c for c in sizes if lhs.count(c) == 1 and c in string.ascii_letters))
    total = numel(sizes.values())
    contracted = any(c not in rhs for c in sizes)
    if len(terms) == 1:
        return "reduce", float(total)
    return "matmul", float(2 * total if contracted else total)


FORMULAS = {
    "MatMul": _matmul, "Gemm": _gemm, "Conv": _conv, "ConvTranspose": _conv_transpose,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool, "Einsum": _einsum,
    "BatchNormalization": _per_out("batchnorm", "norm"),
    "LayerNormalization": _per_out("layernorm", "norm"),
    "SimplifiedLayerNormalization": _per_out("rmsnorm", "norm"),
    "RMSNormalization": _per_out("rmsnorm", "norm"),
    "Softmax": _per_out("softmax", "softmax"), "LogSoftmax": _per_out("softmax", "softmax"),
}
for _op, _f in _ELEMENTWISE.items():
    FORMULAS[_op] = _per_out(_f, "elementwise")
for _op in _REDUCE:
    FORMULAS[_op] = _reduce
for _op in _DATA_MOVEMENT:
    FORMULAS[_op] = lambda node, ins, outs, attrs: ("data_movement", 0.0)
