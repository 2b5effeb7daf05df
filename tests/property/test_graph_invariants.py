"""Hypothesis invariants of transformer graphs built from random small configs."""
from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.graph.analysis import critical_path, peak_activation_bytes, total_flops, total_params
from simulator.graph.build import load_model
from simulator.graph.ops import BILINEAR_KINDS
from simulator.graph.training import add_training, hardware_flops, model_flops


@st.composite
def configs(draw):
    family = draw(st.sampled_from(["gpt2", "llama", "mixtral", "bert"]))
    heads = draw(st.sampled_from([1, 2, 4]))
    head_dim = draw(st.sampled_from([4, 8]))
    h = heads * head_dim
    layers = draw(st.integers(1, 3))
    vocab = draw(st.integers(5, 60))
    if family == "gpt2":
        return {"model_type": "gpt2", "n_embd": h, "n_layer": layers, "n_head": heads, "vocab_size": vocab,
                "n_positions": 64}
    ffn = draw(st.integers(4, 48))
    cfg = {"model_type": family, "hidden_size": h, "num_hidden_layers": layers, "num_attention_heads": heads,
           "intermediate_size": ffn, "vocab_size": vocab, "max_position_embeddings": 64}
    if family in ("llama", "mixtral"):
        cfg["num_key_value_heads"] = draw(st.sampled_from([k for k in (1, 2, 4) if heads % k == 0]))
    if family == "mixtral":
        e = draw(st.integers(2, 4))
        cfg.update(num_local_experts=e, num_experts_per_tok=draw(st.integers(1, e)))
    return cfg


def expected_params(cfg) -> int:
    """Closed-form parameter counts (GPT-2: 12h^2+13h per layer; Llama: 4h^2-style with GQA)."""
    mt = cfg["model_type"]
    if mt == "gpt2":
        h, l, V = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"]
        return l * (12 * h * h + 13 * h) + V * h + 64 * h + 2 * h
    h, l, V, f = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    if mt == "bert":
        layer = 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h
        return l * layer + (V + 64 + 2) * h + 2 * h + h * h + h
    d = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * d
    attn = 2 * h * h + 2 * h * kv
    mlp = 3 * h * f * cfg.get("num_local_experts", 1) + (h * cfg["num_local_experts"] if mt == "mixtral" else 0)
    return l * (attn + mlp + 2 * h) + 2 * V * h + h


@settings(max_examples=40, deadline=None)
@given(configs(), st.integers(1, 3), st.integers(1, 12))
def test_params_flops_and_dag(cfg, batch, seq):
    g = load_model(cfg, batch=batch, seq_len=seq, dtype="fp32")
    assert nx.is_directed_acyclic_graph(g)
    assert total_params(g) == expected_params(cfg)
    g2 = load_model(cfg, batch=2 * batch, seq_len=seq, dtype="fp32")
    assert total_flops(g2) == pytest.approx(2 * total_flops(g), rel=1e-9)
    length, path = critical_path(g)
    assert max(a["flops"] for _, a in g.nodes(data=True)) <= length <= total_flops(g) * (1 + 1e-12)
    assert nx.is_path(g, path)


@settings(max_examples=25, deadline=None)
@given(configs(), st.integers(1, 8))
def test_training_invariants(cfg, seq):
    g = load_model(cfg, seq_len=seq)
    peaks = []
    for policy in ("none", "selective", "full"):
        t = add_training(g, recompute=policy)
        assert nx.is_directed_acyclic_graph(t)
        fwd = total_flops(t, "forward", kinds=BILINEAR_KINDS)
        assert total_flops(t, "backward", kinds=BILINEAR_KINDS) == pytest.approx(2 * fwd)
        assert model_flops(t) == pytest.approx(model_flops(g))
        assert hardware_flops(t) >= model_flops(t)
        assert total_params(t) == total_params(g)
        peaks.append(peak_activation_bytes(t))
    # dropping the stored attention core never raises the peak; full recompute can exceed "none"
    # for one layer (checkpoint + the whole recomputed layer), so only its positivity is general
    assert peaks[1] <= peaks[0] * (1 + 1e-9) and peaks[2] > 0
