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


def build(hw, devices, **kw):
    return build_cluster(ClusterSpec(hardware=hw, devices=devices, **kw))


def test_nvl72_domain_spans_compute_trays():
    c = build("gb200", 144)
    assert (c.devices_per_node, c.num_nodes, c.scale_up_domain) == (4, 36, 72)
    assert tier_for_group(c, 72, 1).tier == "scale_up"      # 72 GPUs on NVLink across 18 trays
    assert tier_for_group(c, 2, 72).tier == "scale_out"


def test_tpu_slice_is_one_ici_domain_then_dcn():
    c = build("tpu-v5e", 512)
    assert c.scale_up_domain == 256 and c.scale_up.topology == "torus2d"
    assert tier_for_group(c, 256, 1).tier == "scale_up"
    t = tier_for_group(c, 512, 1)
    assert (t.tier, t.inner_size, t.outer_size) == ("scale_out", 256, 2)
    assert t.bandwidth_bytes_per_s == pytest.approx(25e9 / 8)   # 2x100 Gbps per 8-chip host


def test_pcie_cards_without_network_stay_in_one_host():
    from simulator.errors import InfeasibleError
    c = build("rtx-4090", 8)
    assert c.scale_up.topology == "pcie" and c.scale_up_domain == 8
    with pytest.raises(InfeasibleError, match="no scale_out network"):
        build("rtx-4090", 16)
    with pytest.raises(InfeasibleError):
        build("cpu-generic", 2)


def test_single_device_cluster():
    c = build("cpu-generic", 1)
    assert c.num_nodes == 1 and c.scale_up is None and c.scale_up_domain == 1


def test_named_clusters_load():
    from simulator.hardware.cluster import list_clusters
    names = list_clusters()
    assert {"dgx-a100-superpod", "aws-p5en-h200", "aws-p6-b200", "rtx-4090-100gbe"} <= set(names)
    for name in names:
        c = build_cluster(name)
        assert c.devices >= 1 and c.num_nodes * c.devices_per_node >= c.devices


def test_named_cluster_from_scenario_section():
    c = build_cluster(ClusterSpec(hardware="a100-sxm4-80gb", name="dgx-a100-superpod"))
    assert c.devices == 3072 and c.num_nodes == 384         # device count from the cluster file
    c = build_cluster(ClusterSpec(hardware="a100-sxm4-80gb", name="dgx-a100-superpod", devices=1024))
    assert c.devices == 1024                                  # the scenario's own field wins


def test_named_cluster_gives_pcie_cards_a_network():
    c = build_cluster("rtx-4090-100gbe")
    assert c.scale_out.bandwidth_bytes_per_s == pytest.approx(12.5e9 / 8)
    assert c.scale_out.latency_s > 0 and c.scale_out.collective is not None   # from the b200 analogue
    assert tier_for_group(c, 32, 1).outer_size == 4


def test_named_cluster_hardware_mismatch():
    with pytest.raises(InputError, match="built from"):
        build_cluster(ClusterSpec(hardware="h100-sxm5-80gb", name="dgx-a100-superpod"))


def test_unknown_named_cluster():
    from simulator.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="dgx-a100-superpod"):
        build_cluster("dgx-a100-superpad")


def test_relative_profile_path_beside_the_scenario(tmp_path, monkeypatch):
    import shutil
    from simulator.hardware.load import profile_paths
    text = profile_paths()["a100-sxm4-80gb"].read_text().replace("name: a100-sxm4-80gb", "name: lab-a100")
    (tmp_path / "lab-a100.yaml").write_text(text)
    monkeypatch.chdir(shutil.os.path.dirname(__file__))        # somewhere else
    spec = ClusterSpec(hardware="lab-a100.yaml", devices=8)
    assert build_cluster(spec, base_dir=tmp_path).profile.name == "lab-a100"
    with pytest.raises(InputError, match="not found"):
        build_cluster(spec)


def test_pcie_host_domain_follows_devices_per_node():
    c = build("l40s", 10, devices_per_node=10)          # a 10-card PCIe server
    assert c.scale_up_domain == 10 and tier_for_group(c, 10, 1).tier == "scale_up"
