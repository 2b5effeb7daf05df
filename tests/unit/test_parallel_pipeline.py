"""Pipeline schedule orders (simulator/parallel/pipeline.py)."""
from __future__ import annotations

from collections import Counter

import pytest

from simulator.errors import InputError
from simulator.parallel.pipeline import device_order


@pytest.mark.parametrize("schedule,v", [("gpipe", 1), ("1f1b", 1), ("interleaved", 2), ("interleaved", 3)])
@pytest.mark.parametrize("pp,m", [(1, 4), (4, 8), (4, 4), (8, 16)])
def test_every_task_exactly_once_and_forward_before_backward(schedule, v, pp, m):
    for d in range(pp):
        order = device_order(schedule, pp, d, m, v)
        counts = Counter(order)
        chunks = v if schedule == "interleaved" else 1
        assert len(order) == 2 * m * chunks and set(counts.values()) == {1}
        seen = set()
        for kind, mb, c in order:
            if kind == "B":
                assert ("F", mb, c) in seen
            seen.add((kind, mb, c))


def test_1f1b_warmup_depends_on_rank():
    order = device_order("1f1b", 4, 0, 8)
    assert [k for k, _, _ in order[:4]] == ["F", "F", "F", "F"] and order[4][0] == "B"
    last = device_order("1f1b", 4, 3, 8)
    assert [k for k, _, _ in last[:4]] == ["F", "B", "F", "B"]


def test_gpipe_runs_all_forwards_first():
    order = device_order("gpipe", 4, 1, 6)
    assert all(k == "F" for k, _, _ in order[:6]) and all(k == "B" for k, _, _ in order[6:])


def test_interleaved_cycles_chunks_in_groups_of_pp():
    order = device_order("interleaved", 2, 0, 4, 2)
    forwards = [(mb, c) for k, mb, c in order if k == "F"]
    assert forwards[:4] == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_unknown_schedule():
    with pytest.raises(InputError):
        device_order("zigzag", 2, 0, 4)
