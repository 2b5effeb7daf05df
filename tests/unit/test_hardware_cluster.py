"""Clusters: nodes, scale-up domains and which tier a collective group uses."""
from __future__ import annotations

import pytest

from simulator.errors import InputError
from simulator.hardware.cluster import build_cluster, tier_for_group
from simulator.schema.scenario import Cluster as ClusterSpec


def a100(devices, **kw):
    return build_cluster(ClusterSpec(hardware="a100-sxm4-80gb", devices=devices, **kw))


def test_dgx_a100_defaults():
    c = a100(64)
    assert (c.devices_per_node, c.num_nodes, c.scale_up_domain) == (8, 8, 8)
    assert c.scale_up.bandwidth_bytes_per_s == 300e9          # NVLink3 per direction
    assert c.scale_out.bandwidth_bytes_per_s == 25e9          # one 200 Gb/s HDR NIC per GPU


@pytest.mark.parametrize("size,stride,tier,inner,outer", [
    (8, 1, "scale_up", 8, 1),      # tensor parallel inside a node
    (4, 2, "scale_up", 4, 1),
    (8, 8, "scale_out", 1, 8),     # data parallel across nodes, one rank per node
    (64, 1, "scale_out", 8, 8),    # whole cluster: hierarchical, 8 in node x 8 nodes
    (16, 4, "scale_out", 2, 8),
])
def test_tier_for_group(size, stride, tier, inner, outer):
    t = tier_for_group(a100(64), size, stride)
    assert (t.tier, t.inner_size, t.outer_size) == (tier, inner, outer)
    expected_bw = 300e9 if tier == "scale_up" else 25e9
    assert t.bandwidth_bytes_per_s == expected_bw
    assert t.latency_s > 0 and t.collective is not None


def test_fewer_devices_per_node_shrinks_the_domain():
    c = a100(16, devices_per_node=4)
    assert c.scale_up_domain == 4 and c.num_nodes == 4
    assert tier_for_group(c, 8, 1).tier == "scale_out"


def test_partial_nodes_rejected():
    with pytest.raises(InputError, match="whole nodes"):
        a100(12)


def test_group_larger_than_cluster_rejected():
    with pytest.raises(InputError):
        tier_for_group(a100(8), 16, 1)
