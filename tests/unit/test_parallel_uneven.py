"""Uneven pipeline stages: parallelism.first_stage_layers / last_stage_layers (Megatron-Core
--decoder-first/last-pipeline-num-layers; Llama 3 405B: 7 + 14 x 8 + 7 layers over pp 16)."""
from __future__ import annotations

import pytest

from simulator.errors import InputError
from simulator.parallel.plan import chunk_layer_counts, resolve_plan, stage_layer_counts
from simulator.plan import analytic
from simulator.plan.space import fixed_layout
from simulator.hardware.load import load_hardware
from simulator.schema.scenario import Scenario
from simulator.sim.api import prepare_training, simulate

TINY = {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 14, "num_attention_heads": 16,
        "num_key_value_heads": 16, "intermediate_size": 2816, "vocab_size": 32000,
        "max_position_embeddings": 4096}


def scen(layers=14, devices=8, global_batch=64, **par):
    par = {"tp": 1, "pp": 4, **par}
    return Scenario.model_validate({
        "name": "uneven", "workload": {"model": {**TINY, "num_hidden_layers": layers}, "seq_len": 2048,
                                       "global_batch": global_batch, "micro_batch": 1, "tokens": 1e9},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": devices}, "parallelism": par})


def test_stage_split_llama3_405b():
    counts = stage_layer_counts(126, 16, 7, 7)
    assert counts == [7] + [8] * 14 + [7]
    assert sum(counts) == 126


def test_stage_split_one_side_and_even_default():
    assert stage_layer_counts(14, 4, first=2) == [2, 4, 4, 4]
    assert stage_layer_counts(14, 4, last=5) == [3, 3, 3, 5]
    assert stage_layer_counts(10, 2, 4, 6) == [4, 6]
    # without first/last: the historical divmod split, remainder on the leading stages
    assert stage_layer_counts(14, 4) == [4, 4, 3, 3]


def test_chunk_split_interleaved_follows_megatron_core():
    # each stage's layers split evenly over its v chunks; chunk index = chunk * pp + device
    chunks = chunk_layer_counts(14, 4, 2, first=2)
    assert chunks == [1, 2, 2, 2, 1, 2, 2, 2]
    assert chunk_layer_counts(16, 4, 2) == [2] * 8          # even layouts unchanged
    assert chunk_layer_counts(14, 4, 1, 3, 3) == [3, 4, 4, 3]


def test_resolved_plan_and_stage_costs_carry_the_split():
    sc = scen(first_stage_layers=3, last_stage_layers=3)
    _cluster, _arch, plan, costs = prepare_training(sc)
    assert (plan.first_stage_layers, plan.last_stage_layers) == (3, 3)
    assert [c.layers for c in costs.chunks] == [3, 4, 4, 3]
    d = plan.as_dict()
    assert d["first_stage_layers"] == 3
    # even layouts print the layout exactly as before
    _c, _a, even, _ = prepare_training(scen(layers=12))
    assert "first_stage_layers" not in even.as_dict()


def test_uneven_step_between_the_even_layouts_around_it():
    """3 + 4 + 4 + 3 layers: slower than 4 x 3 (12 layers), faster than 4 x 4 (16 layers)."""
    low = simulate(scen(layers=12)).step_time_s
    mid = simulate(scen(layers=14, first_stage_layers=3, last_stage_layers=3)).step_time_s
    high = simulate(scen(layers=16)).step_time_s
    assert low < mid < high


def test_moving_layers_off_the_edge_stages_balances_the_pipeline():
    """Same model, 3/3/3/3 vs 2/4/4/2: the tiny model's LM head (32000 x 1024) weighs about 2.5 layers,
    so the even layout's last stage is the bottleneck; shedding a layer from each edge stage lowers the
    slowest stage's work per micro-batch and with it the step (why Llama 3 405B did it)."""
    even = simulate(scen(layers=12))
    uneven = simulate(scen(layers=12, first_stage_layers=2, last_stage_layers=2))
    assert [s.layers for s in uneven.stages] == [2, 4, 4, 2]
    assert uneven.stages[1].forward_s_per_microbatch > even.stages[1].forward_s_per_microbatch
    assert uneven.stages[0].forward_s_per_microbatch < even.stages[0].forward_s_per_microbatch

    def slowest(r):
        return max(s.forward_s_per_microbatch + s.backward_s_per_microbatch for s in r.stages)

    assert slowest(uneven) < slowest(even)
    assert uneven.step_time_s < even.step_time_s


def test_memory_is_per_stage():
    even = simulate(scen(layers=12))
    uneven = simulate(scen(layers=12, first_stage_layers=2, last_stage_layers=2))
    # the first stage sheds a layer (its weights, gradients, optimizer state and activations)
    assert uneven.stages[0].memory_bytes < even.stages[0].memory_bytes
    # a middle stage gains one
    assert uneven.stages[1].memory_bytes > even.stages[1].memory_bytes
    # reported per-device memory is the worst stage
    worst = max(uneven.stages, key=lambda s: s.memory_bytes)
    assert uneven.memory.total_bytes_per_device == pytest.approx(worst.memory_bytes)
    assert uneven.memory.worst_stage == worst.stage


def test_uneven_interleaved_runs():
    r = simulate(scen(layers=14, first_stage_layers=2, schedule="interleaved", virtual_stages=2))
    assert [s.layers for s in r.stages] == [2, 4, 4, 4]
    assert r.step_time_s > 0


def test_analytic_tier_agrees_with_simpy_on_uneven_layout():
    for par in ({"first_stage_layers": 3, "last_stage_layers": 3},
                {"first_stage_layers": 2, "schedule": "interleaved", "virtual_stages": 2}):
        sc = scen(layers=14, **par)
        prof = load_hardware("a100-sxm4-80gb")
        _c, arch, _p, _costs = prepare_training(sc)
        out = analytic.evaluate(sc, fixed_layout(sc), prof, arch)
        sim = simulate(sc)
        assert abs(out["step_time_s"][0] - sim.step_time_s) / sim.step_time_s < 0.05, par
        ref = analytic.evaluate_scalar(sc, prof, arch)
        assert out["step_time_s"][0] == pytest.approx(ref["step_time_s"], rel=1e-12)
        assert out["memory_bytes_per_device"][0] == pytest.approx(sim.memory.total_bytes_per_device)


@pytest.mark.parametrize("par,field,words", [
    (dict(first_stage_layers=4, last_stage_layers=3), "parallelism.first_stage_layers",
     "remaining 7 of the 14 layers do not split evenly over the other 2 stages"),
    (dict(last_stage_layers=3), "parallelism.last_stage_layers", "remaining 11 of the 14 layers"),
    (dict(first_stage_layers=14, last_stage_layers=3), "parallelism.first_stage_layers", "do not split"),
    (dict(pp=1, first_stage_layers=3), "parallelism.first_stage_layers", "need a pipeline"),
    (dict(pp=2, first_stage_layers=3, last_stage_layers=3), "parallelism.first_stage_layers",
     "must be the model's 14 layers"),
    (dict(first_stage_layers=3, last_stage_layers=3, schedule="interleaved", virtual_stages=2),
     "parallelism.first_stage_layers", "stage 0 has 3 layers"),
])
def test_bad_uneven_layouts_name_the_field(par, field, words):
    sc = scen(**par)
    with pytest.raises(InputError) as exc:
        prepare_training(sc)
    assert exc.value.field == field
    assert words in exc.value.message


@pytest.mark.parametrize("value", [0, -1, True, 2.5])
def test_schema_refuses_non_positive_or_non_integer(value):
    with pytest.raises(Exception) as exc:
        scen(first_stage_layers=value)
    assert "first_stage_layers" in str(exc.value)


def test_graph_models_refuse_uneven_stages():
    sc = Scenario.model_validate({"workload": {"model": "vgg16", "global_batch": 8},
                                  "cluster": {"hardware": "a100-sxm4-80gb", "devices": 2},
                                  "parallelism": {"pp": 2, "first_stage_layers": 1}})
    with pytest.raises(InputError) as exc:
        resolve_plan(sc, None, 8)
    assert exc.value.field == "parallelism.first_stage_layers"


# --- embedding_as_layer / loss_as_layer (Megatron-Core account_for_embedding/loss_in_pipeline_split) ---

def test_counted_embedding_split_llama3_405b_interleaved():
    """126 layers + embedding + loss = 128 = 16 stages x 8 chunks x 1 layer: the first chunk holds only the
    embedding, the last only the head and loss (Llama 3 paper, section 3.3.2)."""
    chunks = chunk_layer_counts(126, 16, 8, embedding=True, loss=True)
    assert chunks[0] == 0 and chunks[-1] == 0 and set(chunks[1:-1]) == {1}
    stages = [sum(chunks[c * 16 + d] for c in range(8)) for d in range(16)]
    assert stages == [7] + [8] * 14 + [7] == stage_layer_counts(126, 16, 7, 7)
    assert chunk_layer_counts(15, 4, 2, embedding=True) == [1, 2, 2, 2, 2, 2, 2, 2]
    assert chunk_layer_counts(15, 4, 1, embedding=True) == [3, 4, 4, 4]


def test_counted_embedding_without_interleaving_equals_first_last():
    a = simulate(scen(layers=14, embedding_as_layer=True, loss_as_layer=True))
    b = simulate(scen(layers=14, first_stage_layers=3, last_stage_layers=3))
    assert [s.layers for s in a.stages] == [3, 4, 4, 3]
    assert a.step_time_s == pytest.approx(b.step_time_s, rel=1e-12)
    assert a.parallelism["embedding_as_layer"] is True and "first_stage_layers" not in a.parallelism


def test_counted_embedding_interleaved_with_an_empty_edge_chunk():
    """14 + 2 = 16 = 4 stages x 4 chunks x 1 layer; chunk 0 is embedding-only, chunk 15 head-only."""
    sc = scen(layers=14, embedding_as_layer=True, loss_as_layer=True, schedule="interleaved",
              virtual_stages=4)
    _c, arch, _p, costs = prepare_training(sc)
    assert costs.chunks[0].layers == 0 and costs.chunks[0].fwd_s > 0    # the embedding still runs
    assert costs.chunks[-1].layers == 0 and costs.chunks[-1].fwd_s > 0  # the head and loss still run
    r = simulate(sc)
    assert [s.layers for s in r.stages] == [3, 4, 4, 3]
    # interleaving shrinks the bubble of the same stage split
    plain = simulate(scen(layers=14, embedding_as_layer=True, loss_as_layer=True))
    assert r.breakdown.pipeline_bubble_s < plain.breakdown.pipeline_bubble_s
    prof = load_hardware("a100-sxm4-80gb")
    out = analytic.evaluate(sc, fixed_layout(sc), prof, arch)
    assert abs(out["step_time_s"][0] - r.step_time_s) / r.step_time_s < 0.05


@pytest.mark.parametrize("par,field,words", [
    (dict(embedding_as_layer=True, first_stage_layers=3), "parallelism.embedding_as_layer", "give one"),
    (dict(pp=1, loss_as_layer=True), "parallelism.loss_as_layer", "needs a pipeline"),
    (dict(embedding_as_layer=True), "parallelism.embedding_as_layer", "= 15 do not split into"),
    (dict(embedding_as_layer=True, loss_as_layer=True, schedule="interleaved", virtual_stages=8),
     "parallelism.embedding_as_layer", "= 32 equal model chunks"),
])
def test_bad_counted_layouts_name_the_field(par, field, words):
    with pytest.raises(InputError) as exc:
        prepare_training(scen(**par))
    assert exc.value.field == field
    assert words in exc.value.message


def test_graph_models_refuse_counted_embedding():
    sc = Scenario.model_validate({"workload": {"model": "vgg16", "global_batch": 8},
                                  "cluster": {"hardware": "a100-sxm4-80gb", "devices": 2},
                                  "parallelism": {"pp": 2, "embedding_as_layer": True}})
    with pytest.raises(InputError) as exc:
        resolve_plan(sc, None, 8)
    assert exc.value.field == "parallelism.embedding_as_layer"
