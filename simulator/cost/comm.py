"""Collective and point-to-point times: alpha-beta per link tier (DESIGN.md 4).

Ring all-reduce   2(n-1)/n * S / B + 2(n-1) * a   (all_reduce_s: min of ring and tree)
Reduce-scatter    (n-1)/n * S / B + (n-1) * a        (all-gather likewise)
All-to-all        (n-1)/n * S / B + (n-1) * a
Point-to-point    S / B + a
Tree all-reduce   2 * S / B + 2 * ceil(log2 n) * a   (double binary tree, NCCL)

Inside one scale-up domain an all-reduce is the ring form only: the tier's
busbw curve and latency were derived from nccl-tests times of that domain with
the ring formula (hardware/derive.py), and those times already are what NCCL's
tuner achieved with its best algorithm there, so also offering the tree would
predict the measured points up to 2x faster than measured (8x A100, 32 KiB:
tree 20.6 us against the 43.8 us measured). Across nodes the tree stays in
play: the curves come from a few nodes, and at hundreds of nodes the ring's
2(n-1) latency steps are what NCCL's tree avoids.

S is the full buffer per rank (nccl-tests convention), B the tier's achieved
bus bandwidth: per-direction link bandwidth times the profile's measured
busbw fraction at that message size, a the tier's latency. A group that spans
nodes runs hierarchically (reduce-scatter in node, all-reduce across nodes on
each GPU's NIC with S / ranks_per_node, all-gather in node), as NCCL does.
All functions accept NumPy arrays for S and are pure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.hardware.curves import collective_fraction
from simulator.schema.hardware import CollectiveCurve, HardwareProfile


@dataclass(frozen=True)
class Tier:
    """One link tier as the cost model sees it."""

    name: str
    bw_bytes_per_s: float        # per device, per direction
    latency_s: float
    curve: CollectiveCurve | None = None

    def bus_bw(self, message_bytes):
        return self.bw_bytes_per_s * collective_fraction(self.curve, message_bytes)


@dataclass(frozen=True)
class Tiers:
    scale_up: Tier
    scale_out: Tier
    devices_per_node: int


@dataclass(frozen=True)
class Group:
    """Where a communicator's ranks sit: `ranks_per_node` ranks in each of `nodes` nodes."""

    size: int
    ranks_per_node: int
    nodes: int


def tiers_from_profile(profile: HardwareProfile, devices_per_node: int | None = None) -> Tiers:
    """Cost-model tiers from a hardware profile (scale-up inside a node, scale-out across)."""
    dpn = devices_per_node or profile.devices_per_node
    up = profile.scale_up
    out = profile.scale_out
    if out is None and up is not None:
        out = up
    if up is None and out is not None:
        up = out
    if up is None:   # a lone device: no links; any collective is then size 1 and free
        inf = Tier("none", float("inf"), 0.0)
        return Tiers(inf, inf, dpn)
    return Tiers(Tier(up.kind, up.bandwidth_bytes_per_s, up.latency_s, up.collective),
                 Tier(out.kind, out.bandwidth_bytes_per_s, out.latency_s, out.collective), dpn)


def tiers_from_cluster(cluster) -> Tiers:
    """Tiers of a resolved `schema.hardware.Cluster` (its scale-up domain is the "node" here)."""
    up, out = cluster.scale_up, cluster.scale_out
    up = up or out
    out = out or up
    if up is None:
        inf = Tier("none", float("inf"), 0.0)
        return Tiers(inf, inf, cluster.scale_up_domain)
    return Tiers(Tier(up.kind, up.bandwidth_bytes_per_s, up.latency_s, up.collective),
                 Tier(out.kind, out.bandwidth_bytes_per_s, out.latency_s, out.collective),
                 cluster.scale_up_domain)


def group_of(size: int, stride: int, devices_per_node: int) -> Group:
    """Placement of a communicator of `size` ranks `stride` apart in rank order.

    Megatron orders ranks tp fastest, then cp, dp, pp; consecutive ranks fill a node.
    """
    if size <= 1:
        return Group(1, 1, 1)
    if stride >= devices_per_node:
        return Group(size, 1, size)
    per_node = max(1, min(size, devices_per_node // stride))
    return Group(size, per_node, math.ceil(size / per_node))


def _ring(factor, size_bytes, n, tier: Tier, steps):
    s = np.asarray(size_bytes, dtype=float)
    if n <= 1:
        return np.zeros_like(s) if s.ndim else 0.0
    t = factor * (n - 1) / n * s / tier.bus_bw(s) + steps * (n - 1) * tier.latency_s
    t = np.where(s > 0, t, 0.0)
    return t if t.ndim else float(t)


def ring_all_reduce_s(size_bytes, n: int, tier: Tier):
    """Ring all-reduce on one tier: 2(n-1)/n * S/B + 2(n-1) * a."""
    return _ring(2.0, size_bytes, n, tier, 2)


def all_reduce_s(size_bytes, n: int, tier: Tier):
    """All-reduce on one tier with the faster of ring and double binary tree, as NCCL's tuner picks.

    The ring wins on bandwidth (2(n-1)/n vs 2 S/B), the tree on latency for small
    messages over many ranks (2 log2 n vs 2(n-1) steps).
    """
    return np.minimum(ring_all_reduce_s(size_bytes, n, tier), tree_all_reduce_s(size_bytes, n, tier)) \
        if np.ndim(size_bytes) else min(ring_all_reduce_s(size_bytes, n, tier), tree_all_reduce_s(size_bytes, n, tier))


def tree_all_reduce_s(size_bytes, n: int, tier: Tier):
    """Double-binary-tree all-reduce: bandwidth term ~2 S/B, latency 2 log2(n) steps."""
    s = np.asarray(size_bytes, dtype=float)
    if n <= 1:
        return np.zeros_like(s) if s.ndim else 0.0
    t = np.where(s > 0, 2.0 * s / tier.bus_bw(s) + 2 * math.ceil(math.log2(n)) * tier.latency_s, 0.0)
    return t if t.ndim else float(t)


def reduce_scatter_s(size_bytes, n: int, tier: Tier):
    """Ring reduce-scatter of an S-byte buffer: (n-1)/n * S/B + (n-1) * a."""
    return _ring(1.0, size_bytes, n, tier, 1)


def all_gather_s(size_bytes, n: int, tier: Tier):
    """Ring all-gather producing an S-byte buffer: (n-1)/n * S/B + (n-1) * a."""
    return _ring(1.0, size_bytes, n, tier, 1)


def p2p_s(size_bytes, tier: Tier):
    """One point-to-point transfer: S/B + a."""
    s = np.asarray(size_bytes, dtype=float)
    t = np.where(s > 0, s / tier.bus_bw(s) + tier.latency_s, 0.0)
    return t if t.ndim else float(t)


def collective_s(kind: str, size_bytes, group: Group, tiers: Tiers):
    """Time of collective `kind` over `group`, hierarchical when it spans nodes.

    kind: all_reduce | reduce_scatter | all_gather | all_to_all.
    """
    if group.size <= 1:
        s = np.asarray(size_bytes, dtype=float)
        return np.zeros_like(s) if s.ndim else 0.0
    up, out, r, nodes = tiers.scale_up, tiers.scale_out, group.ranks_per_node, group.nodes
    if kind == "all_to_all":
        return all_to_all_s(size_bytes, group, tiers)
    single = {"all_reduce": all_reduce_s, "reduce_scatter": reduce_scatter_s,
              "all_gather": all_gather_s}[kind]
    if nodes == 1:      # in one domain: the form its curve was measured and derived with
        return (ring_all_reduce_s if kind == "all_reduce" else single)(size_bytes, group.size, up)
    if r == 1:
        return single(size_bytes, nodes, out)
    s = np.asarray(size_bytes, dtype=float)
    if kind == "all_reduce":   # RS in node, AR across nodes on S/r, AG in node
        t = (reduce_scatter_s(s, r, up) + all_reduce_s(s / r, nodes, out) + all_gather_s(s, r, up))
    else:                      # RS/AG: in-node phase on S, cross-node phase on S/r
        t = single(s, r, up) + single(s / r, nodes, out)
    return t if np.ndim(t) else float(t)


def all_to_all_s(size_bytes, group: Group, tiers: Tiers):
    """All-to-all of S bytes per rank: the off-node share goes over the NIC, the rest over NVLink.

    Each rank sends S/n to each of the n-1 peers; (r-1) peers are in node and
    n-r off node; the two parts proceed in parallel, the slower one bounds.
    """
    s = np.asarray(size_bytes, dtype=float)
    n, r = group.size, group.ranks_per_node
    chunk = s / n
    t_in = np.where(r > 1, (r - 1) * chunk / tiers.scale_up.bus_bw(s) + (r - 1) * tiers.scale_up.latency_s, 0.0)
    t_out = np.where(n > r, (n - r) * chunk / tiers.scale_out.bus_bw(s) + (n - r) * tiers.scale_out.latency_s, 0.0)
    t = np.where(s > 0, np.maximum(t_in, t_out), 0.0)
    return t if t.ndim else float(t)
