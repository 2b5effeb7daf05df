"""Batch-1 decode of Llama-2-7B in fp16 on an A100 is memory-bound: the time per token is
close to (weights + KV cache bytes) / achieved bandwidth (Pope et al. 2022, section 3).

The achieved bandwidth is the profile's HBM bandwidth times the plateau of its
memory efficiency curve (from STREAM-like measurements); nothing is hard-coded.
The model adds only per-kernel latency on top, so the prediction may exceed the
ideal by the launch floor of ~12 kernels per layer, not fall below it.
"""
from __future__ import annotations

from simulator.graph.build import load_arch, load_model
from simulator.hardware.curves import find_curve
from simulator.hardware.load import load_hardware
from simulator.schema.scenario import Scenario
from simulator.serving.inference import simulate_inference

PROMPT, OUTPUT = 512, 128


def test_llama2_7b_batch1_decode_is_weight_plus_kv_over_bandwidth():
    sc = Scenario.model_validate({
        "workload": {"kind": "inference", "model": "llama2-7b", "prompt_tokens": PROMPT,
                     "output_tokens": OUTPUT, "batch": 1, "dtype": "fp16"},
        "cluster": {"hardware": "a100-sxm4-80gb"}})
    r = simulate_inference(sc)
    profile = load_hardware("a100-sxm4-80gb")
    arch = load_arch("llama2-7b")
    g = load_model("llama2-7b", seq_len=1, batch=1, dtype="fp16")
    params = sum(d["params"] for _, d in g.nodes(data=True))
    # every weight is read once per token, except the embedding table (one row is gathered)
    weight_bytes = (params - arch.vocab_size * arch.hidden_size) * 2
    mean_ctx = PROMPT + OUTPUT / 2
    kv_bytes = 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * 2 * mean_ctx
    achieved_bw = profile.memory.bandwidth_bytes_per_s * find_curve(profile, "memory", "any").efficiency[-1]
    ideal = (weight_bytes + kv_bytes) / achieved_bw
    assert r.breakdown.decode_bound == "memory"
    assert 1.0 <= r.decode_s_per_token / ideal < 1.2, (r.decode_s_per_token, ideal)
