"""Layout resolution and the one-line errors of impossible layouts (simulator/parallel/plan.py)."""
from __future__ import annotations

import pytest

from simulator.errors import InputError
from simulator.parallel.plan import resolve_plan
from simulator.schema.graph import TransformerArch
from simulator.schema.scenario import Scenario

ARCH = TransformerArch(family="gpt2", hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32,
                       head_dim=128, ffn_hidden_size=16384, vocab_size=51200)
MOE = ARCH.model_copy(update={"family": "mixtral", "num_experts": 8, "experts_per_token": 2})


def scen(devices=64, global_batch=512, micro_batch=1, **par):
    return Scenario.model_validate({"workload": {"model": "gpt2", "global_batch": global_batch,
                                                 "micro_batch": micro_batch, "seq_len": 2048},
                                    "cluster": {"hardware": "a100-sxm4-80gb", "devices": devices},
                                    "parallelism": par})


def test_dp_is_derived_and_microbatches_counted():
    p = resolve_plan(scen(tp=8, pp=2), ARCH, 8)
    assert (p.tp, p.pp, p.dp) == (8, 2, 4)
    assert p.num_microbatches == 512 // 4


@pytest.mark.parametrize("par,field,words", [
    (dict(tp=3), "parallelism", "does not divide 64 devices"),
    (dict(tp=8, pp=2, dp=2), "parallelism.dp", "cluster.devices"),
    (dict(tp=64), "parallelism.tp", "attention heads"),
    (dict(tp=1, pp=64), "parallelism.pp", "only 32 layers"),
    (dict(tp=8, pp=2, schedule="interleaved", virtual_stages=3), "parallelism.virtual_stages", "virtual_stages"),
    (dict(tp=8, virtual_stages=2), "parallelism.virtual_stages", "interleaved"),
])
def test_bad_layouts_name_the_field(par, field, words):
    with pytest.raises(InputError) as exc:
        resolve_plan(scen(**par), ARCH, 8, source="x.yaml")
    assert exc.value.field == field
    assert words in exc.value.one_line()
    assert exc.value.one_line().startswith("x.yaml: field")


def test_micro_batch_must_divide_the_replica_batch():
    with pytest.raises(InputError) as exc:
        resolve_plan(scen(global_batch=512, micro_batch=3, tp=8), ARCH, 8)
    assert exc.value.field == "workload.micro_batch"


def test_expert_parallel_checks():
    with pytest.raises(InputError, match="experts"):
        resolve_plan(scen(tp=1, ep=3, dp=64), MOE, 8)
    with pytest.raises(InputError, match="mixture-of-experts"):
        resolve_plan(scen(tp=1, ep=2), ARCH, 8)
    assert resolve_plan(scen(tp=1, ep=8), MOE, 8).ep == 8


def test_unknown_schedule_is_rejected_at_the_schema_edge():
    from simulator.errors import from_validation_error
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as exc:
        scen(schedule="zigzag")
    err = from_validation_error(exc.value, "x.yaml")
    assert err.field == "parallelism.schedule"
