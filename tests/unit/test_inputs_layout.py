"""Pipeline schedule and virtual stages: a combination that would be silently changed is refused.

`schedule: interleaved` with one chunk per stage used to run plain 1F1B under the
interleaved label; chunks under 1F1B/GPipe, or interleaving without a pipeline, are
refused too. The planner's `parallelism: auto` never generates such a layout, and a
sweep that crosses schedule and virtual_stages skips the bad points with a note.
"""
from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import InputError
from simulator.parallel.plan import resolve_plan
from simulator.plan.space import SCHEDULES, layouts
from simulator.schema.graph import TransformerArch
from simulator.schema.scenario import Scenario

ARCH = TransformerArch(family="gpt2", hidden_size=1024, num_layers=24, num_heads=16, num_kv_heads=16,
                       head_dim=64, ffn_hidden_size=4096, vocab_size=51200)


def scen(devices=16, global_batch=64, **par):
    return Scenario.model_validate({"workload": {"model": "gpt2", "global_batch": global_batch, "seq_len": 1024},
                                    "cluster": {"hardware": "a100-sxm4-80gb", "devices": devices},
                                    "parallelism": par})


@pytest.mark.parametrize("par,field,words", [
    (dict(tp=2, pp=4, schedule="interleaved"), "parallelism.virtual_stages", "would be plain 1F1B"),
    (dict(tp=2, pp=4, schedule="interleaved", virtual_stages=1), "parallelism.virtual_stages", "plain 1F1B"),
    (dict(tp=2, pp=4, schedule="1f1b", virtual_stages=4), "parallelism.virtual_stages", "schedule is '1f1b'"),
    (dict(tp=2, pp=4, schedule="gpipe", virtual_stages=2), "parallelism.virtual_stages", "schedule is 'gpipe'"),
    (dict(tp=2, pp=1, schedule="interleaved", virtual_stages=2), "parallelism.pp", "needs a pipeline"),
    # 24 layers do not split into 4*5 = 20 chunks; 4*8 = 32 chunks exceed the layers
    (dict(tp=2, pp=4, schedule="interleaved", virtual_stages=5), "parallelism.virtual_stages", "4*5 = 20"),
    (dict(tp=2, pp=4, schedule="interleaved", virtual_stages=8), "parallelism.virtual_stages", "only 24 layers"),
])
def test_schedule_and_virtual_stages_that_would_be_changed_are_refused(par, field, words):
    with pytest.raises(InputError) as exc:
        resolve_plan(scen(**par), ARCH, 8, source="x.yaml")
    assert exc.value.field == field
    assert words in exc.value.message
    assert "x.yaml" in exc.value.one_line()


def test_a_valid_interleaved_layout_keeps_its_chunks():
    p = resolve_plan(scen(tp=2, pp=4, schedule="interleaved", virtual_stages=3), ARCH, 8)
    assert (p.schedule, p.virtual_stages, p.num_microbatches) == ("interleaved", 3, 32)
    assert resolve_plan(scen(tp=2, pp=4, schedule="gpipe"), ARCH, 8).virtual_stages == 1


@pytest.mark.parametrize("devices,global_batch", [(16, 64), (32, 96), (8, 8)])
def test_auto_layouts_never_hold_a_refused_combination(devices, global_batch):
    wl = scen(devices, global_batch).workload
    cols = layouts(ARCH, devices, wl, 8)
    sched = np.array(SCHEDULES)[cols["schedule"]]
    v, pp = cols["virtual_stages"], cols["pp"]
    assert len(v) > 0
    inter = sched == "interleaved"
    assert np.all(v[~inter] == 1)
    assert np.all(v[inter] >= 2) and np.all(pp[inter] >= 2)
    assert np.all(ARCH.num_layers % (pp * v) == 0)
    # and every interleaved row passes the resolver (the rule the simulation itself applies)
    for i in np.flatnonzero(inter)[:40]:
        sc = scen(devices, global_batch, tp=int(cols["tp"][i]), pp=int(pp[i]), dp=int(cols["dp"][i]),
                  schedule="interleaved", virtual_stages=int(v[i]))
        sc = sc.model_copy(update={"workload": sc.workload.model_copy(update={"micro_batch": int(cols["micro_batch"][i])})})
        assert resolve_plan(sc, ARCH, 8).virtual_stages == int(v[i])
