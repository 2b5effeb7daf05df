import numpy as np
import pytest

from simulator.errors import InputError
from simulator.graph.build import load_arch
from simulator.loading import validate
from simulator.plan.space import RECOMPUTE, SCHEDULES, apply_layout, layouts, sweep_points
from simulator.schema.scenario import Scenario, Workload

BASE = {"name": "t", "workload": {"model": "megatron-22b", "global_batch": 64, "seq_len": 2048, "tokens": 1e9},
        "cluster": {"hardware": "a100-sxm4-80gb", "devices": 16}}


def _sc(**sweep):
    raw = {**BASE, "sweep": sweep}
    return raw, validate(Scenario, raw, "t.yaml")


def test_layout_rules_hold_for_every_row():
    arch = load_arch("megatron-22b")
    wl = Workload(model="x", global_batch=64, seq_len=2048)
    cols = layouts(arch, 16, wl, 8)
    n = len(cols["tp"])
    assert n > 100
    tp, pp, dp, cp, mb, v = (cols[k] for k in ("tp", "pp", "dp", "cp", "micro_batch", "virtual_stages"))
    assert np.all(tp * pp * dp * cp == 16)
    assert np.all(arch.num_heads % tp == 0) and np.all(tp <= 8)
    assert np.all(arch.num_layers % pp == 0)
    assert np.all((64 // dp) % mb == 0)
    inter = cols["schedule"] == SCHEDULES.index("interleaved")
    assert np.all((arch.num_layers // pp[inter]) % v[inter] == 0)
    assert np.all(((64 // dp[inter]) // mb[inter]) % pp[inter] == 0)
    assert np.all(cols["zero"][dp == 1] == 0)
    assert not np.any(cols["sequence_parallel"][tp == 1])
    assert set(np.unique(cols["recompute"])) == {0, 1, 2}
    rows = set(zip(*(cols[k].tolist() for k in cols)))
    assert len(rows) == n   # no duplicates


def test_cnn_is_data_parallel_only():
    cols = layouts(None, 4, Workload(model="vgg16", global_batch=20), 8)
    assert set(cols["tp"].tolist()) == {1} and set(cols["pp"].tolist()) == {1}
    assert set(cols["dp"].tolist()) == {4}


def test_sweep_points_product_in_file_order():
    raw, sc = _sc(**{"cluster.devices": [8, 16], "workload.micro_batch": [1, 2], "parallelism": "auto"})
    points, auto = sweep_points(raw, sc, "t.yaml")
    assert auto
    assert [ov for ov, _ in points] == [{"cluster.devices": 8, "workload.micro_batch": 1},
                                        {"cluster.devices": 8, "workload.micro_batch": 2},
                                        {"cluster.devices": 16, "workload.micro_batch": 1},
                                        {"cluster.devices": 16, "workload.micro_batch": 2}]
    assert points[3][1].cluster.devices == 16 and points[3][1].workload.micro_batch == 2


@pytest.mark.parametrize("sweep,needle", [
    ({"cluster.devices": []}, "empty list"),
    ({"cluster.devicez": [8]}, "cluster.devicez"),
    ({"nonsense.field": [1]}, "nonsense"),
    ({"cluster.devices": [-8]}, "cluster.devices"),
    ({"workload.model": "auto"}, "only 'parallelism'"),
])
def test_bad_sweeps_are_one_line_input_errors(sweep, needle):
    raw, sc = _sc(**sweep)
    with pytest.raises(InputError) as e:
        sweep_points(raw, sc, "t.yaml")
    assert needle in e.value.one_line() and "\n" not in e.value.one_line()


def test_empty_sweep_mapping():
    raw = {**BASE, "sweep": {}}
    sc = validate(Scenario, raw, "t.yaml")
    with pytest.raises(InputError, match="sweep is empty"):
        sweep_points(raw, sc, "t.yaml")


def test_apply_layout_roundtrip():
    arch = load_arch("megatron-22b")
    raw, sc = _sc(parallelism="auto")
    cols = layouts(arch, 16, sc.workload, 8)
    i = len(cols["tp"]) // 2
    s2 = apply_layout(sc, cols, i)
    assert s2.parallelism.tp == cols["tp"][i] and s2.parallelism.pp == cols["pp"][i]
    assert s2.workload.recompute == RECOMPUTE[cols["recompute"][i]]
    assert s2.parallelism.schedule == SCHEDULES[cols["schedule"][i]]
