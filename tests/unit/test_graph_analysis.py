"""Pure analysis functions: DAG check, totals, per-layer table, critical path, liveness."""
from __future__ import annotations

import networkx as nx
import pytest

from simulator.errors import InputError
from simulator.graph.analysis import (check_dag, critical_path, layer_table, peak_activation_bytes,
                                      total_bytes, total_flops, total_params)
from simulator.graph.build import load_model
from simulator.graph.ops import add_op, make_op


def _chain(sizes_and_flops):
    g = nx.DiGraph()
    prev = []
    for i, (out, flops) in enumerate(sizes_and_flops):
        add_op(g, make_op(f"n{i}", "elementwise", flops=flops, bytes_written=out), prev)
        prev = [f"n{i}"]
    return g


def test_check_dag_raises_one_line_naming_the_cycle():
    g = _chain([(1, 1), (1, 1), (1, 1)])
    g.add_edge("n2", "n0", size_bytes=1)
    with pytest.raises(InputError) as e:
        check_dag(g, source="model.onnx")
    msg = e.value.one_line()
    assert "cycle" in msg and "model.onnx" in msg and "n0" in msg and "\n" not in msg


def test_check_dag_accepts_a_dag():
    check_dag(_chain([(1, 1), (1, 1)]))


def test_critical_path_picks_the_heavier_branch():
    g = nx.DiGraph()
    add_op(g, make_op("a", "matmul", flops=1))
    add_op(g, make_op("light", "matmul", flops=2), ["a"])
    add_op(g, make_op("heavy", "matmul", flops=10), ["a"])
    add_op(g, make_op("z", "matmul", flops=3), ["light", "heavy"])
    assert critical_path(g) == (14.0, ["a", "heavy", "z"])
    assert critical_path(nx.DiGraph()) == (0.0, [])


def test_critical_path_of_a_chain_is_the_total():
    g = load_model("gpt2", seq_len=64)
    length, path = critical_path(g)
    assert length <= total_flops(g)
    assert path[0] == "embed" and path[-1] == "loss"
    assert nx.is_path(g, path)


def test_peak_activation_liveness_by_hand():
    # a(4) -> b(2) -> c(1), plus a -> c: a lives until c runs
    g = nx.DiGraph()
    add_op(g, make_op("a", "elementwise", bytes_written=4))
    add_op(g, make_op("b", "elementwise", bytes_written=2), ["a"])
    add_op(g, make_op("c", "elementwise", bytes_written=1), ["a", "b"])
    assert peak_activation_bytes(g, ["a", "b", "c"]) == 7
    chain = _chain([(4, 0), (2, 0), (1, 0)])
    assert peak_activation_bytes(chain) == 6     # a freed after b ran


def test_totals_and_layer_table_agree():
    g = load_model("gpt2", seq_len=128, training=True)
    rows = layer_table(g)
    assert sum(r["params"] for r in rows) == total_params(g)
    assert sum(r["flops"] for r in rows) == pytest.approx(total_flops(g))
    assert sum(r["forward_flops"] for r in rows) == pytest.approx(total_flops(g, "forward"))
    assert sum(r["bytes"] for r in rows) == pytest.approx(total_bytes(g))
    names = [r["name"] for r in rows]
    assert names[0] == "embed" and [f"L{i}" for i in range(12)] == [n for n in names if n.startswith("L")]
    assert "lm_head" in names and not any(n.endswith((".bwd", ".bwd_data", ".optimizer")) for n in names)
    l3 = next(r for r in rows if r["name"] == "L3")
    assert l3["params"] == 12 * 768 * 768 + 13 * 768 and l3["layer"] == 3


def test_bytes_follow_dtype():
    b16 = total_bytes(load_model("gpt2", seq_len=64, dtype="bf16"))
    f32 = total_bytes(load_model("gpt2", seq_len=64, dtype="fp32"))
    assert f32 == pytest.approx(2 * b16, rel=0.01)


def test_graph_metadata_contract():
    g = load_model("llama3-8b", seq_len=256, batch=2)
    assert g.graph["source"] == "bundled" and g.graph["name"] == "llama3-8b"
    assert g.graph["batch"] == 2 and g.graph["seq_len"] == 256 and g.graph["training"] is False
    assert g.graph["arch"]["num_kv_heads"] == 8 and g.graph["arch"]["family"] == "llama"
    c = load_model("resnet50")
    assert c.graph["source"] == "bundled" and "arch" not in c.graph
