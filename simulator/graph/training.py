"""Training-step graph from a forward graph: backward, recompute and optimizer ops.

Backward (Narayanan et al. 2021, appendix): each matmul/conv gets a
data-gradient and a weight-gradient op, each as many FLOPs as the forward,
so backward = 2x forward for them; the attention core's two batched matmuls
likewise get the gradients of both operands. Other ops get one backward op
with their FLOPs and the bytes of the saved input, the output gradient and
the input gradient.

Recompute (Korthikanti et al. 2022): "selective" recomputes the attention
core (score, softmax, dropout, context) of each layer in the backward pass,
"full" the whole forward of each layer from its stored input. Recomputed ops
run after the gradient of the region's output is available and before the
region's backward ops; backward ops inside the region read the recomputed
tensors, which is what frees the stored ones (see analysis.peak_activation_bytes).

Optimizer: one step op per layer (and per parameter-owning op outside layers),
phase "optimizer". Mixed-precision Adam (Micikevicius et al. 2018; ZeRO,
Rajbhandari et al. 2020: 2+2+12 = 16 bytes of state per parameter) reads the
gradient, fp32 master weights and two moments and writes those and the
low-precision weights.
"""
from __future__ import annotations

import networkx as nx

from simulator.graph.ops import BILINEAR_KINDS, MATMUL_LIKE, backward_flops
from simulator.units import dtype_bytes

SELECTIVE_NAMES = frozenset({"attn.score", "attn.softmax", "attn.dropout", "attn.context"})
_ATTN_KINDS = frozenset({"attention_score", "attention_context"})

# optimizer -> (fp32 moment tensors per parameter, FLOPs per parameter of the update rule)
# Adam: m (3: 2 mul, add), v (4: square, 2 mul, add), update (5: sqrt, add eps, divide,
# scale by lr, subtract); AdamW adds decoupled weight decay (2). SGD with momentum: v (2), w (2).
# RMSprop: v (4), update (4).
OPTIMIZER_STATE = {"adam": (2, 12), "adamw": (2, 14), "sgd": (1, 4), "rmsprop": (1, 8)}


def add_training(g: nx.DiGraph, recompute: str = "none", optimizer: str = "adam") -> nx.DiGraph:
    """A new graph: `g`'s forward ops plus backward, recompute and optimizer-step ops."""
    h = g.copy()
    fwd_nodes = g.nodes
    order = list(nx.topological_sort(g))
    region = _recompute_region(g, order, recompute)
    new_nodes: list[tuple[str, dict]] = []
    new_edges: list[tuple[str, str, float]] = []
    grads: dict[str, list[str]] = {}     # forward op -> its backward ops that produce input gradients
    weight_grads: dict[str, str] = {}    # forward op -> its parameter-gradient op

    def out_size(n: str) -> float:
        return fwd_nodes[n]["bytes_written"]

    for u in region:
        h.nodes[u]["recompute"] = True
    rset = set(region)

    def same_region(u: str, p: str) -> bool:
        return p in rset and u in rset and fwd_nodes[p]["layer"] == fwd_nodes[u]["layer"]

    _recompute_ops(g, region, same_region, new_nodes, new_edges)
    for u in reversed(order):
        a = fwd_nodes[u]
        preds = list(g.predecessors(u))
        if not preds and a["params"] == 0 and a["flops"] == 0:
            continue    # a graph input: nothing to differentiate
        ops = _backward_ops(a)
        # what the gradient reads: the op's inputs, its output (softmax) or nothing (adds)
        saved_kind = a.get("saved", "inputs")
        saved_inputs = preds if saved_kind == "inputs" else []
        if saved_kind == "output" and u not in rset:
            new_edges.extend((u, op["id"], a["bytes_written"]) for op in ops)
        succs = list(g.successors(u))
        grad_in = [gn for v in succs for gn in grads.get(v, ())] or [u]
        for op in ops:
            new_nodes.append((op["id"], op))
            for src in grad_in:
                new_edges.append((src, op["id"], a["bytes_written"]))
            for p in saved_inputs:
                saved = p + ".recompute" if same_region(u, p) else p
                new_edges.append((saved, op["id"], out_size(p)))
            if u in rset and saved_kind == "output":
                new_edges.append((u + ".recompute", op["id"], out_size(u)))
        grads[u] = [op["id"] for op in ops if not op["id"].endswith(".bwd_weight")]
        wg = [op["id"] for op in ops if op["id"].endswith(".bwd_weight")]
        if wg:
            weight_grads[u] = wg[0]
        elif a["params"]:
            weight_grads[u] = ops[0]["id"]
    _add_triggers(g, region, grads, new_edges)
    _optimizer_ops(g, order, weight_grads, optimizer, new_nodes, new_edges)
    h.add_nodes_from(new_nodes)
    h.add_edges_from((u, v, {"size_bytes": s}) for u, v, s in new_edges)
    h.graph.update(training=True, recompute=recompute, optimizer=optimizer)
    return h


def _recompute_region(g: nx.DiGraph, order: list[str], policy: str) -> list[str]:
    """Forward ops recomputed under `policy`, in topological order."""
    if policy == "none":
        return []
    nodes = g.nodes
    if policy == "full":
        return [n for n in order if nodes[n]["layer"] is not None]
    picked: set[str] = set()
    for n in order:
        a = nodes[n]
        if a["layer"] is None:
            continue
        if a["name"] in SELECTIVE_NAMES or a["kind"] in _ATTN_KINDS:
            picked.add(n)
        elif a["kind"] in ("softmax", "elementwise") and any(
                p in picked and nodes[p]["kind"] != "attention_context" for p in g.predecessors(n)) \
                and any(nodes[s]["kind"] == "attention_context" for s in g.successors(n)):
            picked.add(n)   # softmax/dropout between score and context in imported graphs
    return [n for n in order if n in picked]


def _recompute_ops(g, region, same_region, new_nodes, new_edges) -> None:
    for u in region:
        op = dict(g.nodes[u])
        op.update(id=u + ".recompute", name=op["name"] + ".recompute", phase="recompute", params=0,
                  recompute=True)
        new_nodes.append((op["id"], op))
        for p in g.predecessors(u):
            src = p + ".recompute" if same_region(u, p) else p
            new_edges.append((src, op["id"], g.nodes[p]["bytes_written"]))


def _add_triggers(g, region, grads, new_edges) -> None:
    """Recompute a region only once the gradient of its outputs exists (per layer)."""
    by_layer: dict[int, list[str]] = {}
    for u in region:
        by_layer.setdefault(g.nodes[u]["layer"], []).append(u)
    for members in by_layer.values():
        mset = set(members)
        after = {v for u in members for v in g.successors(u) if v not in mset}
        triggers = [gn for v in after for gn in grads.get(v, ())]
        for u in members:
            if not any(p in mset for p in g.predecessors(u)):
                for t in triggers:
                    new_edges.append((t, u + ".recompute", 0.0))


def _backward_ops(a: dict) -> list[dict]:
    """Backward ops of one forward op (see the module docstring)."""
    base = dict(a)
    base.update(phase="backward", params=0, recompute=False)
    out_b, in_b = a["bytes_written"], a["bytes_read"]
    dt = dtype_bytes(a["dtype"])
    w_b = a["params"] * dt
    if a["kind"] in MATMUL_LIKE:
        mnk = a["gemm_mnk"]
        wsize = w_b or (mnk[1] * mnk[2] * dt if mnk else 0.0)
        act_in = max(in_b - w_b, 0.0)
        data = dict(base, id=a["id"] + ".bwd_data", name=a["name"] + ".bwd_data", flops=a["flops"],
                    bytes_read=out_b + wsize, bytes_written=act_in,
                    gemm_mnk=(mnk[0], mnk[2], mnk[1]) if mnk else None)
        weight = dict(base, id=a["id"] + ".bwd_weight", name=a["name"] + ".bwd_weight", flops=a["flops"],
                      bytes_read=out_b + act_in, bytes_written=wsize,
                      gemm_mnk=(mnk[2], mnk[1], mnk[0]) if mnk else None)
        return [data, weight]
    if a["kind"] in BILINEAR_KINDS:
        return [dict(base, id=a["id"] + sfx, name=a["name"] + sfx, flops=a["flops"],
                     bytes_read=out_b + in_b, bytes_written=in_b / 2) for sfx in (".bwd_data", ".bwd_data2")]
    return [dict(base, id=a["id"] + ".bwd", name=a["name"] + ".bwd", flops=backward_flops(a),
                 bytes_read=in_b + out_b, bytes_written=in_b)]


def _optimizer_ops(g, order, weight_grads, optimizer, new_nodes, new_edges) -> None:
    nodes = g.nodes
    moments, flops_per = OPTIMIZER_STATE[optimizer]
    groups: dict[str, list[str]] = {}
    shared: list[str] = []          # weight grads of ops with tied (not owned) weights
    for u in order:
        a = nodes[u]
        if u not in weight_grads:
            continue
        if a["params"] == 0:
            shared.append(weight_grads[u])
            continue
        key = f"L{a['layer']}.optimizer" if a["layer"] is not None else u + ".optimizer"
        groups.setdefault(key, []).append(u)
    outer = [k for k, m in groups.items() if nodes[m[0]]["layer"] is None] or list(groups)
    for key, members in groups.items():
        params = sum(nodes[u]["params"] for u in members)
        dtype = nodes[members[0]]["dtype"]
        dt = dtype_bytes(dtype)
        master = 4.0 if dt < 4 else 0.0
        state = master + 4.0 * moments
        op = {
            "id": key, "name": "optimizer" if nodes[members[0]]["layer"] is not None else key,
            "kind": "optimizer", "phase": "optimizer", "layer": nodes[members[0]]["layer"],
            "flops": float(flops_per * params),
            "bytes_read": params * (state + dt + (dt if master == 0 else 0.0)),
            "bytes_written": params * (state + dt), "params": 0, "dtype": dtype, "in_shapes": (),
            "out_shape": (params,), "gemm_mnk": None, "tp_split": "replicated", "recompute": False,
            "saved": "none",
        }
        new_nodes.append((key, op))
        for u in members:
            new_edges.append((weight_grads[u], key, params * dt))
        if key in outer:
            for s in shared:
                new_edges.append((s, key, 0.0))


def model_flops(g: nx.DiGraph) -> float:
    """Forward + backward FLOPs without recompute or optimizer (the MFU numerator)."""
    nodes = g.nodes(data=True)
    if g.graph.get("training"):
        return float(sum(a["flops"] for _, a in nodes if a["phase"] in ("forward", "backward")))
    return float(sum(a["flops"] + backward_flops(a) for _, a in nodes if a["phase"] == "forward"))


def hardware_flops(g: nx.DiGraph) -> float:
    """Model FLOPs plus recomputed forward FLOPs (the HFU numerator)."""
    recomputed = sum(a["flops"] for _, a in g.nodes(data=True) if a["phase"] == "recompute")
    return model_flops(g) + float(recomputed)
