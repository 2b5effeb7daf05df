"""Alpha-beta collectives (simulator/cost/comm.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.cost import comm as C

FLAT = C.Tier("test", 100e9, 1e-5)          # no curve: bus bandwidth = link bandwidth
TIERS = C.Tiers(FLAT, C.Tier("net", 25e9, 5e-6), 8)


def test_ring_all_reduce_formula():
    s, n = 1e9, 8
    expected = 2 * (n - 1) / n * s / 100e9 + 2 * (n - 1) * 1e-5
    assert C.ring_all_reduce_s(s, n, FLAT) == pytest.approx(expected)
    assert C.all_reduce_s(s, n, FLAT) == pytest.approx(expected)      # big message: the ring wins


def test_tree_wins_for_small_messages_over_many_ranks():
    s, n = 1e4, 512
    tree = C.tree_all_reduce_s(s, n, FLAT)
    assert tree == pytest.approx(2 * s / 100e9 + 2 * 9 * 1e-5)
    assert C.all_reduce_s(s, n, FLAT) == pytest.approx(tree)
    assert tree < C.ring_all_reduce_s(s, n, FLAT)


def test_reduce_scatter_and_all_gather_are_half_an_all_reduce_in_bandwidth():
    s, n = 4e9, 4
    rs = C.reduce_scatter_s(s, n, FLAT)
    ag = C.all_gather_s(s, n, FLAT)
    assert rs == pytest.approx(ag)
    assert rs + ag == pytest.approx(C.ring_all_reduce_s(s, n, FLAT))


def test_single_rank_and_empty_messages_are_free():
    assert C.all_reduce_s(1e9, 1, FLAT) == 0.0
    assert C.collective_s("all_reduce", 0.0, C.Group(8, 8, 1), TIERS) == 0.0
    assert C.p2p_s(0.0, FLAT) == 0.0


def test_p2p():
    assert C.p2p_s(1e9, FLAT) == pytest.approx(1e9 / 100e9 + 1e-5)


def test_group_placement_follows_megatron_rank_order():
    assert C.group_of(8, 1, 8) == C.Group(8, 8, 1)       # tp in one node
    assert C.group_of(32, 8, 8) == C.Group(32, 1, 32)    # dp with tp=8: one rank per node
    assert C.group_of(16, 2, 8) == C.Group(16, 4, 4)     # dp with tp=2: 4 per node, 4 nodes
    assert C.group_of(1, 8, 8) == C.Group(1, 1, 1)


def test_hierarchical_all_reduce_beats_flat_ring_over_the_nic():
    s = 1e9
    g = C.Group(32, 8, 4)
    hier = C.collective_s("all_reduce", s, g, TIERS)
    flat_over_nic = C.all_reduce_s(s, 32, TIERS.scale_out)
    expected = (C.reduce_scatter_s(s, 8, FLAT) + C.all_reduce_s(s / 8, 4, TIERS.scale_out)
                + C.all_gather_s(s, 8, FLAT))
    assert hier == pytest.approx(expected)
    assert hier < flat_over_nic


def test_one_rank_per_node_uses_the_network_tier():
    g = C.Group(6, 1, 6)
    assert C.collective_s("all_reduce", 1e9, g, TIERS) == pytest.approx(C.all_reduce_s(1e9, 6, TIERS.scale_out))


def test_all_to_all_bounded_by_the_slower_part():
    s = 8e8
    inside = C.collective_s("all_to_all", s, C.Group(8, 8, 1), TIERS)
    assert inside == pytest.approx(7 * s / 8 / 100e9 + 7 * 1e-5)
    across = C.collective_s("all_to_all", s, C.Group(16, 8, 2), TIERS)
    assert across == pytest.approx(8 * s / 16 / 25e9 + 8 * 5e-6)


def test_curve_lowers_bandwidth_for_small_messages():
    from simulator.hardware.load import load_hardware
    tiers = C.tiers_from_profile(load_hardware("a100-sxm4-80gb"))
    small, big = 1e5, 4e9
    bw_small = 2 * 7 / 8 * small / C.all_reduce_s(small, 8, tiers.scale_up)
    bw_big = 2 * 7 / 8 * big / C.all_reduce_s(big, 8, tiers.scale_up)
    assert bw_small < 0.2 * bw_big
    assert 200e9 < bw_big < 300e9    # nccl-tests: ~235 GB/s busbw on 8x A100 at large sizes


def test_vectorized_sizes():
    t = C.all_reduce_s(np.array([1e6, 1e7, 1e8]), 8, FLAT)
    assert t.shape == (3,) and np.all(np.diff(t) > 0)
