"""Build a Cluster (devices, nodes, link tiers) from a scenario's cluster section.

Tiers: `scale_up` joins the devices of one domain (NVSwitch node, NVL72 rack,
TPU ICI slice, PCIe host); `scale_out` joins domains (InfiniBand, EFA, RoCE,
DCN). Ranks are placed contiguously (rank r lives in domain r // domain), the
Megatron-LM convention (Narayanan et al. 2021): tensor parallel innermost.

A cluster can also be named: hardware_profiles/clusters/NAME.yaml holds a
`NamedCluster` (hardware, size, optional link overrides); a scenario refers to
it with `cluster: {name: NAME}` (optionally `devices: N` of them; `hardware`, if
written, must be the cluster's own) and `resolve_cluster_name` fills in the rest,
or the planner with `build_cluster("NAME")`.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from simulator.errors import InfeasibleError, InputError, UnknownNameError
from simulator.hardware.load import _looks_like_path, data_dir, load_hardware, resolve_profile
from simulator.loading import read_mapping, validate
from simulator.schema.base import BytesPerS, Frozen, Seconds
from simulator.schema.hardware import Cluster, CollectiveCurve, HardwareProfile, Link, TierUse
from simulator.schema.scenario import Cluster as ClusterSpec
from simulator.schema.scenario import Scenario


class LinkOverride(Frozen):
    """Fields that replace those of a profile's link tier in a named cluster.

    `analogue` names another profile whose tier is the base (for its latency and
    collective curve) when this profile has no such tier, e.g. PCIe cards on Ethernet.
    """

    analogue: str | None = None
    kind: str | None = None
    bandwidth_bytes_per_s: BytesPerS | None = None
    latency_s: Seconds | None = None
    domain_size: int | None = Field(default=None, gt=0)
    topology: str | None = None
    collective: CollectiveCurve | None = None


class NamedCluster(Frozen):
    """A named cluster file: a profile plus the system's own node and network facts."""

    name: str
    hardware: str
    devices: int = Field(gt=0)
    devices_per_node: int | None = Field(default=None, gt=0)
    scale_up: LinkOverride | None = None
    scale_out: LinkOverride | None = None
    description: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)
    notes: str | None = None


def cluster_paths(profiles_dir: str | Path | None = None) -> dict[str, Path]:
    """Named cluster -> file, bundled `clusters/` folder then the user's `<profiles_dir>/clusters`."""
    folders = [data_dir("hardware_profiles") / "clusters"]
    if profiles_dir is not None:
        folders.append(Path(profiles_dir) / "clusters")
    out: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            out.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return out


def list_clusters(profiles_dir: str | Path | None = None) -> list[str]:
    """Sorted names of the named clusters (bundled plus the user's `clusters/` folder)."""
    return sorted(cluster_paths(profiles_dir))


def load_named_cluster(name: str, profiles_dir: str | Path | None = None) -> NamedCluster:
    paths = cluster_paths(profiles_dir)
    if name not in paths:
        raise UnknownNameError("cluster", name, paths)
    return validate(NamedCluster, read_mapping(paths[name]), str(paths[name]))


def _merged_link(base: Link | None, override: LinkOverride | None, tier: str, source: str,
                 profiles_dir) -> Link | None:
    """The profile's tier with a named cluster's overrides applied (validated as a Link)."""
    if override is None:
        return base
    if override.analogue:
        try:
            base = getattr(load_hardware(override.analogue, profiles_dir), tier)
        except InputError as exc:   # name the cluster file, not the scenario's hardware
            raise InputError(exc.message, source=source, field=f"{tier}.analogue", expected=exc.expected) from None
    if base is None:
        raise InputError(f"no {tier} link to override", source=source, field=tier,
                         expected=f"'analogue: PROFILE' naming a profile that has a {tier} tier")
    fields = override.model_dump(exclude_none=True, exclude={"analogue"})
    return validate(Link, {**base.model_dump(), **fields}, source)


def _domain(profile: HardwareProfile, link: Link | None, devices_per_node: int) -> int:
    """Devices one scale-up domain reaches: the link's domain if it spans nodes, else the node.

    A PCIe host bus joins every device of the host, however many the user puts in it.
    """
    if link is None:
        return 1
    if link.topology == "pcie":
        return devices_per_node
    size = link.domain_size or devices_per_node
    return size if size > profile.devices_per_node else min(size, devices_per_node)


def _named_hardware(named: NamedCluster, src: str) -> str:
    """The named cluster's hardware reference; a relative path is taken beside the cluster file."""
    ref = named.hardware
    if _looks_like_path(ref) and not Path(ref).expanduser().is_absolute():
        return str((Path(src).parent / ref).resolve())
    return ref


def _hardware_of_named(named: NamedCluster, src: str, profiles_dir) -> Path:
    """The profile file of a named cluster's hardware; an error there names the cluster file."""
    try:
        return resolve_profile(_named_hardware(named, src), profiles_dir)
    except InputError as exc:
        raise InputError(exc.message, source=src, field="hardware", expected=exc.expected) from None


def _named_for(spec: ClusterSpec, profiles_dir, base_dir=None) -> tuple[NamedCluster | None, str | None]:
    """The named cluster a scenario section refers to (by `name`), if any, and its file.

    A name that is no cluster file is a plain label when `hardware` is given, an
    unknown name (with the close ones) when it is not. Hardware written beside a
    cluster name must be that cluster's own profile.
    """
    paths = cluster_paths(profiles_dir)
    if not spec.name or (spec.name not in paths and spec.hardware is not None):
        return None, None       # a plain label, not a cluster file
    if spec.name not in paths:
        raise UnknownNameError("cluster", spec.name, paths, field="cluster.name")
    src = str(paths[spec.name])
    named = load_named_cluster(spec.name, profiles_dir)
    own = _hardware_of_named(named, src, profiles_dir)
    if spec.hardware is not None and resolve_profile(spec.hardware, profiles_dir, base_dir) != own:
        raise InputError(f"cluster '{spec.name}' is built from '{named.hardware}', not '{spec.hardware}'",
                         field="cluster.hardware",
                         expected=f"'{named.hardware}', or no cluster.hardware: the cluster supplies it")
    return named, src


def resolve_cluster_name(scenario: Scenario, profiles_dir: str | Path | None = None,
                         source: str | None = None) -> Scenario:
    """The scenario with its named cluster's hardware, devices_per_node and devices filled in.

    `cluster: {name: dgx-a100-superpod, devices: 256}` takes the hardware and
    devices_per_node from hardware_profiles/clusters/dgx-a100-superpod.yaml (or a
    user's `<profiles_dir>/clusters/`), the device count too when `devices` is not
    written; `build_cluster` applies the file's link overrides. Fields written in the
    scenario win, except hardware, which must agree, and devices, which must fit the
    cluster. Without a cluster name the scenario comes back unchanged.
    """
    spec = scenario.cluster
    try:
        named, src = _named_for(spec, profiles_dir)
    except InputError as exc:   # keep the type (UnknownNameError carries its close matches)
        exc.source = exc.source or source
        raise
    if named is None:
        return scenario
    fields = spec.model_dump(exclude_unset=True)
    if "devices" in spec.model_fields_set and spec.devices > named.devices:
        raise InputError(f"cluster '{named.name}' has {named.devices} devices, not {spec.devices}",
                         source=source, field="cluster.devices", expected=f"at most {named.devices}")
    fields.setdefault("devices", named.devices)
    fields["hardware"] = spec.hardware or _named_hardware(named, src)
    if spec.devices_per_node is None and named.devices_per_node is not None:
        fields["devices_per_node"] = named.devices_per_node
    return scenario.model_copy(update={"cluster": validate(ClusterSpec, fields, source)})


def build_cluster(spec: ClusterSpec | str, profiles_dir: str | Path | None = None,
                  base_dir: str | Path | None = None) -> Cluster:
    """Resolve a scenario cluster section (or a named cluster) into a Cluster.

    With `cluster: {name: NAME}` naming a cluster file, the file gives the hardware,
    device count and link overrides; fields written in the scenario win. `base_dir`
    (the scenario's folder) resolves a relative `hardware: my-gpu.yaml`.
    """
    if isinstance(spec, str):
        spec = ClusterSpec.model_construct(_fields_set={"name"}, name=spec, hardware=None, devices=1,
                                           devices_per_node=None)
    named, named_src = _named_for(spec, profiles_dir, base_dir)
    if spec.hardware is None:   # the hardware comes from the cluster file; a path there is relative to it
        profile = load_hardware(_hardware_of_named(named, named_src, profiles_dir), profiles_dir)
    else:
        profile = load_hardware(spec.hardware, profiles_dir, base_dir)
    devices = spec.devices if (named is None or "devices" in spec.model_fields_set) else named.devices
    per_node = (spec.devices_per_node or (named.devices_per_node if named else None)
                or profile.devices_per_node)
    scale_up, scale_out = profile.scale_up, profile.scale_out
    if named is not None:
        scale_up = _merged_link(scale_up, named.scale_up, "scale_up", named_src, profiles_dir)
        scale_out = _merged_link(scale_out, named.scale_out, "scale_out", named_src, profiles_dir)
    domain = min(_domain(profile, scale_up, per_node), devices)
    _check_size(profile, devices, per_node, domain, scale_out)
    return Cluster(name=spec.name, profile=profile, devices=devices, devices_per_node=per_node,
                   num_nodes=max(1, -(-devices // per_node)), scale_up=scale_up, scale_out=scale_out,
                   scale_up_domain=domain)


def _check_size(profile: HardwareProfile, devices: int, per_node: int, domain: int, scale_out) -> None:
    if devices > per_node and devices % per_node:
        raise InputError(f"{devices} devices do not fill whole nodes of {per_node}", field="cluster.devices",
                         expected=f"a multiple of devices_per_node ({per_node}) or at most one node")
    if devices > domain and scale_out is None:
        raise InfeasibleError(f"profile '{profile.name}' has no scale_out network, so {devices} devices "
                              f"cannot span more than {domain} per scale-up domain", field="cluster.devices",
                              expected=f"at most {domain} devices, or a named cluster with scale_out "
                                       "(see `capplan hardware clusters`)")


def tier_for_group(cluster: Cluster, group_size: int, stride: int = 1) -> TierUse:
    """The tier a collective over ranks r0, r0+stride, ..., r0+(group_size-1)*stride uses.

    inner_size members share a scale-up domain (contiguous placement), outer_size
    domains take part; outer_size > 1 means the group crosses scale_out.
    """
    if group_size < 1 or stride < 1:
        raise InputError(f"group size {group_size} and stride {stride} must be >= 1", field="parallelism")
    if (group_size - 1) * stride + 1 > cluster.devices:
        raise InputError(f"a group of {group_size} ranks with stride {stride} needs more than the "
                         f"cluster's {cluster.devices} devices", field="parallelism")
    domain = cluster.scale_up_domain
    inner = 1 if stride >= domain else max(1, min(group_size, domain // stride))
    outer = -(-group_size // inner)
    if outer == 1:
        link = cluster.scale_up or cluster.scale_out
        if link is None:   # single device per domain and no network: nothing to communicate over
            raise InfeasibleError(f"profile '{cluster.profile.name}' has no link for a group of {group_size}",
                                  field="cluster.hardware")
        tier = "scale_up" if cluster.scale_up is not None else "scale_out"
        return TierUse(tier=tier, link=link, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
                       latency_s=link.latency_s, collective=link.collective, inner_size=group_size,
                       outer_size=1, inner_link=None)
    link = cluster.scale_out
    if link is None:
        raise InfeasibleError(f"profile '{cluster.profile.name}' has no scale_out network for a group "
                              f"spanning {outer} scale-up domains", field="cluster.hardware")
    return TierUse(tier="scale_out", link=link, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
                   latency_s=link.latency_s, collective=link.collective, inner_size=inner,
                   outer_size=outer, inner_link=cluster.scale_up if inner > 1 else None)


def broken_user_clusters(profiles_dir: str | Path | None) -> list[InputError]:
    """The errors of the named-cluster files in `<profiles_dir>/clusters/` that do not build."""
    if profiles_dir is None:
        return []
    folder = Path(profiles_dir).expanduser() / "clusters"
    out = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            build_cluster(path.stem, profiles_dir)
        except InputError as exc:
            out.append(exc)
    return out
