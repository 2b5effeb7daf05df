"""ONNX models built with onnx.helper for the graph tests (no downloads, random weights)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20


def _init(name, shape, rng, dtype=np.float32):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def _shape(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def mlp(path, batch="batch", sizes=(32, 64, 10), seed=0):
    """Gemm-ReLU-Gemm... with a symbolic batch dimension."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "x"
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        inits += [_init(f"W{i}", (k, n), rng), _init(f"b{i}", (n,), rng)]
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"y{i}"], name=f"fc{i}"))
        x = f"y{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"], name=f"relu{i}"))
            x = f"r{i}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, sizes[0]])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return _save(g, path)


def small_cnn(path, batch=2, seed=0):
    """conv3x3(3->8, pad 1)-relu-maxpool2-conv3x3(8->16)-relu-maxpool2-flatten-fc(16*8*8 -> 10)."""
    rng = np.random.default_rng(seed)
    inits = [_init("c1w", (8, 3, 3, 3), rng), _init("c1b", (8,), rng),
             _init("c2w", (16, 8, 3, 3), rng), _init("c2b", (16,), rng),
             _init("fw", (16 * 8 * 8, 10), rng), _init("fb", (10,), rng)]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["a1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2w", "c2b"], ["a2"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"]),
    ]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return _save(g, path)


SMALL_CNN_SPEC = [("conv", 8, 3, 1, 1), ("relu",), ("maxpool", 2, 2), ("conv", 16, 3, 1, 1), ("relu",),
                  ("maxpool", 2, 2), ("flatten",), ("fc", 10)]


def transformer_block(path, h=64, heads=4, seq="seq", batch="batch", seed=0, extra_op=None):
    """One pre-norm GPT-2 block: LN, qkv (MatMul+bias), split heads, QK^T, softmax, PV,
    merge heads, projection, residual, LN, MLP with GELU, residual. The 1/sqrt(d) scale
    is folded into the q weights, as exporters often do."""
    rng = np.random.default_rng(seed)
    d = h // heads
    f = 4 * h
    inits = [_init("ln1_s", (h,), rng), _init("ln1_b", (h,), rng), _init("Wqkv", (h, 3 * h), rng),
             _init("bqkv", (3 * h,), rng), _init("Wo", (h, h), rng), _init("bo", (h,), rng),
             _init("ln2_s", (h,), rng), _init("ln2_b", (h,), rng), _init("Wup", (h, f), rng),
             _init("bup", (f,), rng), _init("Wdn", (f, h), rng), _init("bdn", (h,), rng),
             _shape("heads_shape", [0, 0, heads, d]), _shape("merge_shape", [0, 0, h])]
    N = helper.make_node
    nodes = [
        N("LayerNormalization", ["x", "ln1_s", "ln1_b"], ["n1"], axis=-1, name="h.0.ln_1"),
        N("MatMul", ["n1", "Wqkv"], ["qkv0"], name="h.0.attn.c_attn"),
        N("Add", ["qkv0", "bqkv"], ["qkv"], name="h.0.attn.c_attn_bias"),
        N("Split", ["qkv"], ["q", "k", "v"], axis=-1, num_outputs=3, name="h.0.split"),
        N("Reshape", ["q", "heads_shape"], ["q4"]), N("Reshape", ["k", "heads_shape"], ["k4"]),
        N("Reshape", ["v", "heads_shape"], ["v4"]),
        N("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]), N("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        N("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        N("MatMul", ["qt", "kt"], ["scores"], name="h.0.attn.scores"),
        N("Softmax", ["scores"], ["probs"], axis=-1, name="h.0.attn.softmax"),
        N("MatMul", ["probs", "vt"], ["ctx"], name="h.0.attn.context"),
        N("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        N("Reshape", ["ctx_t", "merge_shape"], ["ctx_m"]),
        N("MatMul", ["ctx_m", "Wo"], ["o0"], name="h.0.attn.c_proj"), N("Add", ["o0", "bo"], ["o"]),
        N("Add", ["x", "o"], ["r1"], name="h.0.residual1"),
        N("LayerNormalization", ["r1", "ln2_s", "ln2_b"], ["n2"], axis=-1, name="h.0.ln_2"),
        N("MatMul", ["n2", "Wup"], ["u0"], name="h.0.mlp.c_fc"), N("Add", ["u0", "bup"], ["u"]),
        N("Gelu", ["u"], ["gu"], approximate="tanh", name="h.0.mlp.act"),
        N("MatMul", ["gu", "Wdn"], ["d0"], name="h.0.mlp.c_proj"), N("Add", ["d0", "bdn"], ["dn"]),
        N("Add", ["r1", "dn"], ["y"], name="h.0.residual2"),
    ]
    out = "y"
    if extra_op:
        nodes.append(N(extra_op, ["y"], ["y2"], name="extra"))
        out = "y2"
    g = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, seq, h])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    return _save(g, path)


def cyclic(path):
    """Two Relu nodes feeding each other: not a DAG."""
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    g = helper.make_graph(nodes, "cyc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 4])])
    return _save(g, path)
