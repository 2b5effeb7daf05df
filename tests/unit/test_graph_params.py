"""Published parameter counts and FLOP counts of the bundled models (sources in bundled.json)."""
from __future__ import annotations

import pytest

from simulator.graph.analysis import total_flops, total_params
from simulator.graph.build import bundled_entry, bundled_models, load_arch, load_model
from simulator.graph.training import model_flops

EXACT = {
    "llama2-7b": 6_738_415_616, "llama3-8b": 8_030_261_248, "llama2-70b": 68_976_648_192,
    "mixtral-8x7b": 46_702_792_704, "vgg16": 138_357_544, "resnet50": 25_557_032,
    "gpt2": 124_439_808, "gpt2-xl": 1_557_611_200, "llama2-13b": 13_015_864_320,
    "llama3-70b": 70_553_706_496, "bert-large": 335_141_888, "bert-base": 109_482_240,
}
APPROX = {"gpt3-175b": (174.6e9, 0.005), "bert-base": (109_482_240, 0.01),
          "turing-530b": (529.6e9, 0.01), "megatron-1t": (1008.0e9, 0.01), "llama3-405b": (405e9, 0.01)}

BUNDLED = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b", "llama2-7b", "llama2-13b",
           "llama2-70b", "llama3-8b", "llama3-70b", "llama3-405b", "mixtral-8x7b", "bert-base",
           "bert-large", "vgg16", "resnet50", "megatron-22b", "turing-530b", "megatron-1t"]


def test_every_brief_model_is_bundled_with_a_source():
    assert set(BUNDLED) <= set(bundled_models())
    for name in bundled_models():
        assert len(bundled_entry(name)["source"]) > 20, name


@pytest.mark.parametrize("name,expected", sorted(EXACT.items()))
def test_exact_parameter_counts(name, expected):
    assert total_params(load_model(name, seq_len=8)) == expected


@pytest.mark.parametrize("name,spec", sorted(APPROX.items()))
def test_approximate_parameter_counts(name, spec):
    expected, tol = spec
    assert total_params(load_model(name, seq_len=8)) == pytest.approx(expected, rel=tol)


def test_published_params_field_agrees_with_the_graph():
    for name in bundled_models():
        published = bundled_entry(name)["published_params"]
        assert total_params(load_model(name, seq_len=1)) == pytest.approx(published, rel=0.01), name


def test_megatron_22b_shape():
    arch = load_arch("megatron-22b")
    assert (arch.hidden_size, arch.num_layers, arch.num_heads) == (6144, 48, 64)


def test_gpt3_training_flops_match_megatron_formula():
    """72 B s l h^2 (1 + s/6h + V/16lh), Korthikanti et al. 2022 / Narayanan et al. 2021."""
    B, s, l, h, V = 1, 2048, 96, 12288, 50257
    megatron = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))
    g = load_model("gpt3-175b", seq_len=s, batch=B)
    assert model_flops(g) == pytest.approx(megatron, rel=0.02)
    gt = load_model("gpt3-175b", seq_len=s, batch=B, training=True)
    assert model_flops(gt) == pytest.approx(megatron, rel=0.02)
    # on the same forward graph, the analytic count and the built backward agree exactly
    from simulator.graph.training import add_training
    assert model_flops(add_training(g)) == pytest.approx(model_flops(g), rel=1e-12)


def _gmacs(g):
    return total_flops(g, kinds=("conv", "matmul")) / 2e9


def test_vgg16_gmacs_at_224():
    assert _gmacs(load_model("vgg16", batch=1)) == pytest.approx(15.47, abs=0.005)


def test_resnet50_gmacs_at_224():
    assert _gmacs(load_model("resnet50", batch=1)) == pytest.approx(4.09, abs=0.005)


def test_vgg16_seed_use_case_150px_binary_head():
    g = load_model("vgg16", options={"image_size": 150, "num_classes": 2})
    # torchvision's adaptive pool keeps the 25088-wide classifier; only the last layer shrinks
    assert total_params(g) == 138_357_544 - (4096 * 1000 + 1000) + (4096 * 2 + 2)
    assert g.nodes["L15.fc"]["out_shape"] == (1, 2)
    assert g.nodes["L12.conv"]["out_shape"] == (1, 512, 9, 9)
    assert _gmacs(g) < _gmacs(load_model("vgg16"))


def test_bert_token_classification_head():
    base = load_model("bert-base", seq_len=128)
    ner = load_model("bert-base", seq_len=128, options={"num_labels": 9})
    # the token-classification model drops the pooler and adds a 768 x 9 classifier
    assert total_params(ner) == total_params(base) - (768 * 768 + 768) + (768 * 9 + 9)
    assert ner.nodes["classifier"]["out_shape"] == (1, 128, 9)
    assert "loss" in ner and "pooler" not in ner


def test_forward_flops_scale_with_batch_and_quadratically_in_attention():
    g1 = load_model("llama2-7b", seq_len=512, batch=1)
    g4 = load_model("llama2-7b", seq_len=512, batch=4)
    assert total_flops(g4) == pytest.approx(4 * total_flops(g1), rel=1e-9)
    a1 = total_flops(g1, kinds=("attention_score",))
    a2 = total_flops(load_model("llama2-7b", seq_len=1024), kinds=("attention_score",))
    assert a2 == pytest.approx(4 * a1)


def test_mixtral_experts_see_top_k_over_e_of_the_tokens():
    g = load_model("mixtral-8x7b", seq_len=1024)
    up = g.nodes["L0.moe.e3.up"]
    assert up["tp_split"] == "expert"
    assert up["flops"] == pytest.approx(2 * (1024 * 2 / 8) * 14336 * 4096)
    # active compute per token ~ 2 experts: total expert FLOPs = top_k x one dense MLP
    experts = sum(a["flops"] for n, a in g.nodes(data=True) if a["layer"] == 0 and ".e" in n
                  and a["kind"] == "matmul")
    assert experts == pytest.approx(2 * 3 * 2 * 1024 * 14336 * 4096)


def test_llama3_gqa_qkv_shape():
    g = load_model("llama3-8b", seq_len=16)
    assert g.nodes["L5.attn.qkv"]["gemm_mnk"] == (16, 4096 + 2 * 1024, 4096)
    assert g.nodes["L5.attn.qkv"]["tp_split"] == "column"
    assert g.nodes["L5.attn.proj"]["tp_split"] == "row"


def test_mistral_config_sliding_window_ignored():
    """Mistral-7B-v0.1 config.json (huggingface.co/mistralai/Mistral-7B-v0.1): 7,241,732,096 params."""
    cfg = {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
           "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000,
           "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "sliding_window": 4096,
           "tie_word_embeddings": False}
    g = load_model(cfg, seq_len=8192)
    assert total_params(g) == 7_241_732_096
    no_window = load_model(dict(cfg, sliding_window=None), seq_len=8192)
    assert total_flops(g) == total_flops(no_window)
    assert g.graph["arch"]["family"] == "mistral"
