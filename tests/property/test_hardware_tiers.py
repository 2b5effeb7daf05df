"""Invariants of tier_for_group: a group splits into inner (scale-up) x outer (scale-out) ranks."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.hardware.cluster import build_cluster, tier_for_group
from simulator.schema.scenario import Cluster as ClusterSpec

CLUSTERS = {
    ("a100-sxm4-80gb", 256): build_cluster(ClusterSpec(hardware="a100-sxm4-80gb", devices=256)),
    ("gb200", 288): build_cluster(ClusterSpec(hardware="gb200", devices=288)),
    ("tpu-v5e", 1024): build_cluster(ClusterSpec(hardware="tpu-v5e", devices=1024)),
}


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(CLUSTERS)), log_size=st.integers(0, 10), log_stride=st.integers(0, 8))
def test_group_split_is_consistent(key, log_size, log_stride):
    c = CLUSTERS[key]
    size, stride = 2 ** log_size, 2 ** log_stride
    if (size - 1) * stride + 1 > c.devices:
        return
    t = tier_for_group(c, size, stride)
    assert t.inner_size * t.outer_size >= size
    assert 1 <= t.inner_size <= c.scale_up_domain
    span = (size - 1) * stride + 1
    # contiguous placement: a group inside one scale-up domain never touches scale-out
    if span <= c.scale_up_domain and c.scale_up_domain % (size * stride) == 0:
        assert t.tier == "scale_up" and t.outer_size == 1
    if t.tier == "scale_up":
        assert t.bandwidth_bytes_per_s == c.scale_up.bandwidth_bytes_per_s
    else:
        assert t.outer_size > 1 and t.bandwidth_bytes_per_s == c.scale_out.bandwidth_bytes_per_s
