"""ONNX importer: an .onnx file -> forward graph, via the onnx package's shape inference.

Symbolic input dimensions are bound from `dims` (`--dim batch=8`); a dimension
named batch/batch_size/N defaults to `batch` and seq/seq_len/sequence_length
to `seq_len`. Weights are read as shapes only (external data is not loaded).
A MatMul whose only consumer adds a constant bias is fused with that Add, as
ONNX runtimes do and as the built-in builders count (bias add not counted).
Operators without a formula in onnx_formulas are kept as memory-bound nodes
and listed in one warning (also kept in g.graph["warnings"]).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import networkx as nx

from simulator.errors import InputError
from simulator.graph.onnx_formulas import FORMULAS
from simulator.graph.ops import make_op, numel

_BATCH_NAMES = ("batch", "batch_size", "N", "n", "B")
_SEQ_NAMES = ("seq", "seq_len", "sequence", "sequence_length", "S")
_FLOAT_TYPES = {1, 10, 11, 16, 17, 18, 19, 20}          # float, fp16, double, bf16, fp8 variants
_INT_BYTES = {2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 12: 4, 13: 8, 21: 0.5, 22: 0.5}
_LAYER_RE = re.compile(r"(?:layers?|h|blocks?|block|encoder\.layer|decoder\.layer)[._/](\d+)(?:[._/]|$)")


class GraphImportWarning(UserWarning):
    """Something was imported approximately (e.g. an operator without a FLOP formula)."""


def _load(path: Path):
    import onnx
    if not path.exists():
        raise InputError("file not found", source=str(path))
    if path.is_dir():
        raise InputError("is a directory, not an .onnx file", source=str(path))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise InputError(f"does not parse as ONNX ({type(exc).__name__})", source=str(path)) from None
    if not model.graph.node:
        raise InputError("does not parse as ONNX or has no operators", source=str(path), field="graph.node")
    return model


def _bind_dims(model, dims: dict, batch: int, seq_len: int, source: str) -> dict[str, int]:
    inits = {t.name for t in model.graph.initializer}
    present: dict[str, int] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                present.setdefault(d.dim_param, 0)
    for key, value in dims.items():
        if key not in present:
            raise InputError(f"the model has no symbolic dimension '{key}'", source="--dim", field=key,
                             expected=", ".join(sorted(present)) or "no --dim (all dimensions are fixed)")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"got {value!r}", source="--dim", field=key, expected="a positive integer")
    bound = {}
    for name in present:
        if name in dims:
            bound[name] = dims[name]
        elif name in _BATCH_NAMES:
            bound[name] = batch
        elif name in _SEQ_NAMES:
            bound[name] = seq_len
        else:
            raise InputError(f"symbolic dimension '{name}' is not bound", source=source, field=name,
                             expected=f"--dim {name}=N")
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_param"):
                value = bound[d.dim_param]
                d.Clear()
                d.dim_value = value
            elif not d.HasField("dim_value"):
                raise InputError(f"input '{vi.name}' has an unknown dimension {i}", source=source,
                                 field=vi.name, expected="a fixed or named dimension")
    return bound


def _tensor_info(model):
    """name -> (shape or None, elem_type) for every tensor shape inference knows."""
    info = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            shape = None if any(v is None for v in dims) else tuple(dims)
        info[vi.name] = (shape, tt.elem_type)
    for t in model.graph.initializer:
        info[t.name] = (tuple(t.dims), t.data_type)
    return info


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _node_ids(nodes) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for i, n in enumerate(nodes):
        base = n.name or f"{n.op_type}_{i}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        ids.append(base if k == 0 else f"{base}_{k}")
    return ids


def _fusable_bias(nodes, inits, consumers) -> dict[int, int]:
    """Add node index -> MatMul node index whose output it only biases."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    fused = {}
    for i, n in enumerate(nodes):
        if n.op_type != "Add" or len(n.input) != 2:
            continue
        a, b = n.input
        act, bias = (a, b) if b in inits else (b, a) if a in inits else (None, None)
        if act is None or act not in producer:
            continue
        j = producer[act]
        if nodes[j].op_type == "MatMul" and consumers.get(act, 0) == 1 and len(inits[bias]) <= 1:
            fused[i] = j
    return fused


def build_onnx(path: Path, *, batch: int, seq_len: int, dtype: str, dt: float, dims: dict,
               options: dict, training: bool, source: str) -> nx.DiGraph:
    """Importer "onnx" (see the module docstring)."""
    import onnx
    if options:
        raise InputError(f"ONNX models take no options (got {', '.join(sorted(options))})",
                         source="options", field=sorted(options)[0])
    model = _load(path)
    bound = _bind_dims(model, dims, batch, seq_len, source)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError and others
        raise InputError(f"ONNX shape inference failed: {str(exc).splitlines()[0][:200]}", source=source) from None
    info = _tensor_info(model)
    nodes = list(model.graph.node)
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    consts = set(inits)
    for n in nodes:
        if n.op_type == "Constant":
            consts.update(n.output)
            a = _attrs(n).get("value")
            if a is not None:
                info[n.output[0]] = (tuple(a.dims), a.data_type)
    consumers: dict[str, int] = {}
    for n in nodes:
        for t in n.input:
            consumers[t] = consumers.get(t, 0) + 1
    fused = _fusable_bias(nodes, inits, consumers)
    fused_into = {j: i for i, j in fused.items()}
    ids = _node_ids(nodes)

    def nbytes(name: str) -> float:
        shape, et = info.get(name, (None, 1))
        if shape is None:
            return 0.0
        return numel(shape) * (dt if et in _FLOAT_TYPES else _INT_BYTES.get(et, 4))

    g = nx.DiGraph()
    producer: dict[str, str] = {}
    claimed: set[str] = set()
    missing: dict[str, int] = {}
    unknown_shape: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n.op_type == "Constant":
            continue
        if i in fused:
            producer[n.output[0]] = ids[fused[i]]
            continue
        outputs = list(n.output) if i not in fused_into else list(nodes[fused_into[i]].output)
        op = _make(n, ids[i], info, inits, consts, claimed, outputs, nbytes, dt, dtype, missing,
                   unknown_shape)
        if i in fused_into:
            bias = [t for t in nodes[fused_into[i]].input if t in inits][0]
            if bias not in claimed:
                claimed.add(bias)
                op["params"] += numel(inits[bias])
                op["bytes_read"] += nbytes(bias)
        g.add_node(op["id"], **op)
        for o in outputs:
            producer[o] = op["id"]
    _mark_attention(g, nodes, ids, fused, fused_into)
    for i, n in enumerate(nodes):
        if n.op_type == "Constant" or i in fused:
            continue
        for t in n.input:
            if t and t in producer and t not in consts:
                g.add_edge(producer[t], ids[i], size_bytes=nbytes(t))
    seq = next((bound[k] for k in _SEQ_NAMES if k in bound), None)
    g.graph.update(source="onnx", batch=next((bound[k] for k in _BATCH_NAMES if k in bound), batch), seq_len=seq,
                   dims=bound, warnings=_warn(missing, unknown_shape, source))
    return g


def _make(n, op_id, info, inits, consts, claimed, outputs, nbytes, dt, dtype, missing, unknown_shape) -> dict:
    ins = [info.get(t, (None, 0))[0] if t else () for t in n.input]
    outs = [info.get(t, (None, 0))[0] for t in outputs]
    params = 0
    for t in n.input:
        if t in inits and t not in claimed and info[t][1] in _FLOAT_TYPES:
            claimed.add(t)   # weights: float initializers (shapes/indices are not parameters)
            params += numel(inits[t])
    attrs = _attrs(n)
    kind, flops = "other", 0.0
    formula = FORMULAS.get(n.op_type)
    if formula is None:
        missing[n.op_type] = missing.get(n.op_type, 0) + 1
    elif any(s is None for s in ins[:2]) or any(s is None for s in outs[:1]):
        unknown_shape[n.op_type] = unknown_shape.get(n.op_type, 0) + 1
    else:
        try:
            kind, flops = formula(n, ins, outs, attrs)
        except (KeyError, IndexError, ValueError):
            unknown_shape[n.op_type] = unknown_shape.get(n.op_type, 0) + 1
    read = sum(nbytes(t) for t in n.input if t)
    if n.op_type in ("Gather",) and n.input and n.input[0] in inits:
        kind = "embedding"
        read = sum(nbytes(o) for o in outputs) + nbytes(n.input[1])
    if n.op_type in ("Shape", "Size"):
        read = 0.0
    m = _LAYER_RE.search(n.name or "")
    op = make_op(op_id, kind, layer=int(m.group(1)) if m else None, flops=flops, bytes_read=read,
                 bytes_written=sum(nbytes(o) for o in outputs), params=params, dtype=dtype,
                 in_shapes=tuple(s for s in ins if s), out_shape=outs[0] or () if outs else (),
                 gemm_mnk=_mnk(n.op_type, ins, outs, attrs) if kind == "matmul" else None)
    op["name"] = n.op_type if not n.name else n.name
    op["saved"] = {"Add": "none", "Sub": "none", "Softmax": "output"}.get(n.op_type, "inputs")
    return op


def _mnk(op_type, ins, outs, attrs):
    try:
        out, a, b = outs[0], ins[0], ins[1]
        if op_type == "Gemm":
            k = a[0] if attrs.get("transA", 0) else a[-1]
            return (out[0], out[1], k)
        if op_type == "MatMul":
            m = numel(out[:-1]) if len(b) <= 2 else out[-2]
            return (m, out[-1], a[-1])
    except (IndexError, TypeError):
        return None
    return None


def _mark_attention(g, nodes, ids, fused, fused_into) -> None:
    """MatMuls of two activations feeding / fed by a Softmax are the attention core."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    users: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            users.setdefault(t, []).append(i)
    for i, n in enumerate(nodes):
        if n.op_type != "MatMul" or ids[i] not in g or g.nodes[ids[i]]["params"]:
            continue
        if any(nodes[j].op_type == "Softmax" for j in _through(users, nodes, n.output[0], "down")):
            g.nodes[ids[i]]["kind"] = "attention_score"
        elif any(nodes[j].op_type == "Softmax"
                 for t in n.input for j in _through({}, nodes, t, "up", producer)):
            g.nodes[ids[i]]["kind"] = "attention_context"


def _through(users, nodes, tensor, direction, producer=None):
    """Nodes reached from `tensor` across elementwise scaling/masking/dropout (a few hops)."""
    passthrough = {"Div", "Mul", "Add", "Where", "Dropout", "Cast"}
    found, frontier = [], [tensor]
    for _ in range(4):
        nxt = []
        for t in frontier:
            idxs = users.get(t, []) if direction == "down" else ([producer[t]] if t in producer else [])
            for j in idxs:
                found.append(j)
                if nodes[j].op_type in passthrough:
                    nxt.extend(nodes[j].output if direction == "down" else [x for x in nodes[j].input if x])
        frontier = nxt
    return found


def _warn(missing: dict, unknown_shape: dict, source: str) -> list[str]:
    out = []
    if missing:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
        out.append(f"{source}: operators without a FLOP formula, kept as memory-bound ops: {listed}")
    if unknown_shape:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(unknown_shape.items()))
        out.append(f"{source}: operators whose shapes could not be inferred, counted as 0 FLOPs: {listed}")
    for msg in out:
        warnings.warn(msg, GraphImportWarning, stacklevel=3)
    return out
