"""ONNX import: the same network from onnx.helper and from the built-in builders gives the same FLOPs."""
from __future__ import annotations

import warnings

import pytest

import graph_onnx_models as om
from simulator.errors import InputError
from simulator.graph.analysis import total_flops, total_params
from simulator.graph.build import load_model
from simulator.graph.importers.cnn import build_sequential


def test_mlp_matches_the_sequential_builder(tmp_path):
    g = load_model(om.mlp(tmp_path / "mlp.onnx", sizes=(32, 64, 48, 10)), dims={"batch": 8})
    ref = build_sequential([("fc", 64), ("relu",), ("fc", 48), ("relu",), ("fc", 10)],
                           input_shape=(8, 32), dt=2, dtype="bf16")
    assert total_flops(g) == total_flops(ref) > 0
    assert total_params(g) == total_params(ref) == 32 * 64 + 64 + 64 * 48 + 48 + 48 * 10 + 10
    assert g.graph["source"] == "onnx" and g.graph["batch"] == 8


def test_dim_binding_changes_the_count(tmp_path):
    path = om.mlp(tmp_path / "mlp.onnx")
    f8 = total_flops(load_model(path, dims={"batch": 8}))
    f2 = total_flops(load_model(path, dims={"batch": 2}))
    assert f8 == pytest.approx(4 * f2)
    # without --dim, a dimension named "batch" takes --batch
    assert total_flops(load_model(path, batch=8)) == f8


def test_small_cnn_matches_the_sequential_builder(tmp_path):
    g = load_model(om.small_cnn(tmp_path / "cnn.onnx", batch=2))
    ref = build_sequential(om.SMALL_CNN_SPEC, input_shape=(2, 3, 32, 32), dt=2, dtype="bf16")
    assert total_flops(g) == total_flops(ref)
    assert total_flops(g, kinds=("conv",)) == 2 * 2 * (8 * 32 * 32 * 27 + 16 * 16 * 16 * 72)
    assert total_params(g) == total_params(ref)


def test_transformer_block_matches_one_gpt2_layer(tmp_path):
    h, heads, b, s = 64, 4, 2, 16
    g = load_model(om.transformer_block(tmp_path / "block.onnx", h=h, heads=heads),
                   dims={"batch": b, "seq": s})
    ref = load_model({"model_type": "gpt2", "n_embd": h, "n_layer": 1, "n_head": heads, "vocab_size": 50},
                     batch=b, seq_len=s)
    layer0 = [a for _, a in ref.nodes(data=True) if a["layer"] == 0]
    assert total_flops(g) == pytest.approx(sum(a["flops"] for a in layer0), rel=1e-12)
    assert total_params(g) == sum(a["params"] for a in layer0) == 12 * h * h + 13 * h
    kinds = {a["kind"] for _, a in g.nodes(data=True)}
    assert {"attention_score", "attention_context", "softmax", "norm", "matmul"} <= kinds
    # names like "h.0.attn.c_attn" give the layer index; the bias Add is fused into the MatMul
    qkv = g.nodes["h.0.attn.c_attn"]
    assert qkv["layer"] == 0 and qkv["params"] == h * 3 * h + 3 * h and qkv["gemm_mnk"] == (b * s, 3 * h, h)
    assert "h.0.attn.c_attn_bias" not in g
    assert g.graph["seq_len"] == s


def test_onnx_training_graph(tmp_path):
    g = load_model(om.transformer_block(tmp_path / "block.onnx"), dims={"batch": 2, "seq": 8},
                   training=True, recompute="selective")
    assert total_flops(g, "backward", kinds=("matmul",)) == 2 * total_flops(g, "forward", kinds=("matmul",))
    assert total_flops(g, "recompute") > 0


def test_unknown_operator_is_kept_and_warned_once(tmp_path):
    path = om.transformer_block(tmp_path / "block.onnx", extra_op="Hardmax")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = load_model(path, dims={"batch": 1, "seq": 8})
    msgs = [str(w.message) for w in caught if "FLOP formula" in str(w.message)]
    assert len(msgs) == 1 and "Hardmax (1)" in msgs[0]
    assert g.graph["warnings"] == msgs
    extra = g.nodes["extra"]
    assert extra["kind"] == "other" and extra["flops"] == 0 and extra["bytes_read"] > 0


def test_unbound_and_unknown_dims(tmp_path):
    path = om.transformer_block(tmp_path / "block.onnx", seq="tokens")
    with pytest.raises(InputError, match="'tokens' is not bound.*--dim tokens=N"):
        load_model(path)
    with pytest.raises(InputError, match="no symbolic dimension 'seqq'"):
        load_model(path, dims={"seqq": 4, "tokens": 4})
    with pytest.raises(InputError, match="positive"):
        load_model(path, dims={"tokens": 0})


def test_cyclic_onnx_is_rejected(tmp_path):
    with pytest.raises(InputError, match="cycle"):
        load_model(om.cyclic(tmp_path / "cyc.onnx"))


def test_unparsable_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffnot a protobuf at all\x12\x34" * 10)
    with pytest.raises(InputError, match="does not parse as ONNX") as e:
        load_model(bad)
    assert str(bad) in e.value.one_line()
    with pytest.raises(InputError, match="file not found"):
        load_model(tmp_path / "missing.onnx")


def test_einsum_formula():
    from simulator.graph.onnx_formulas import FORMULAS
    kind, flops = FORMULAS["Einsum"](None, [(2, 3, 4), (2, 4, 5)], [(2, 3, 5)], {"equation": "bij,bjk->bik"})
    assert kind == "matmul" and flops == 2 * 2 * 3 * 4 * 5


@pytest.mark.parametrize("op,ins,outs,attrs,kind,flops", [
    ("Conv", [(1, 4, 8, 8), (6, 2, 3, 3)], [(1, 6, 8, 8)], {"group": 2}, "conv", 2 * 6 * 64 * 2 * 9),
    ("ConvTranspose", [(1, 4, 5, 5), (4, 3, 2, 2)], [(1, 3, 10, 10)], {}, "conv", 2 * 100 * 3 * 4),
    ("Gemm", [(3, 7), (7, 5)], [(3, 5)], {}, "matmul", 2 * 3 * 5 * 7),
    ("Gemm", [(7, 3), (7, 5)], [(3, 5)], {"transA": 1}, "matmul", 2 * 3 * 5 * 7),
    ("MatMul", [(2, 4, 3, 8), (2, 4, 8, 6)], [(2, 4, 3, 6)], {}, "matmul", 2 * 2 * 4 * 3 * 6 * 8),
    ("BatchNormalization", [(2, 3, 4, 4)], [(2, 3, 4, 4)], {}, "norm", 2 * 96),
    ("LayerNormalization", [(2, 5, 8)], [(2, 5, 8)], {}, "norm", 7 * 80),
    ("MaxPool", [(1, 2, 8, 8)], [(1, 2, 4, 4)], {"kernel_shape": [2, 2]}, "pooling", 32 * 4),
    ("GlobalAveragePool", [(1, 2, 8, 8)], [(1, 2, 1, 1)], {}, "pooling", 128),
    ("ReduceMean", [(4, 10)], [(4, 1)], {}, "reduce", 40),
    ("Gelu", [(3, 3)], [(3, 3)], {}, "elementwise", 8 * 9),
    ("Transpose", [(3, 3)], [(3, 3)], {}, "data_movement", 0),
    ("Einsum", [(5, 6)], [(6,)], {"equation": "ij->j"}, "reduce", 30),
])
def test_operator_formulas(op, ins, outs, attrs, kind, flops):
    from simulator.graph.onnx_formulas import FORMULAS
    assert FORMULAS[op](None, ins, outs, attrs) == (kind, flops)


def test_imported_nodes_are_valid_ops(tmp_path):
    from simulator.schema.graph import Op
    for path, dims in ((om.transformer_block(tmp_path / "b.onnx"), {"batch": 2, "seq": 4}),
                       (om.small_cnn(tmp_path / "c.onnx"), {})):
        g = load_model(path, dims=dims, training=True)
        for n, a in g.nodes(data=True):
            assert Op(**a).id == n
    for n, a in load_model("resnet50", training=True).nodes(data=True):
        assert Op(**a).id == n


def test_seq_longer_than_positions_is_warned():
    with pytest.warns(UserWarning, match="exceeds the model's max_position_embeddings 1024"):
        g = load_model("gpt2", seq_len=2048)
    assert len(g.graph["warnings"]) == 1
