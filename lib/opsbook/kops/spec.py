"""A kops cluster's shape: the parameters of ``kops create cluster`` and its instance groups.

The same spec drives the real kops commands (create-cluster runbook) and the
local sandbox, so a rehearsal cluster looks like production: instance groups
``master-<zone>`` and ``nodes-<zone>``, kops node labels, matching ASGs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InstanceGroup:
    """One kops instance group (one ASG)."""

    name: str
    role: str  # "Master" or "Node" (kops spec.role; "ControlPlane" in newer kops)
    machine_type: str
    zone: str
    min_size: int
    max_size: int
    cpu_credits: str | None = None  # kops spec.cpuCredits: "standard" | "unlimited" | None (AWS default)

    @property
    def is_control_plane(self) -> bool:
        """Whether this group runs the control plane."""
        return self.role in ("Master", "ControlPlane")


@dataclass(frozen=True)
class ClusterSpec:
    """The parameters of ``kops create cluster`` that shape the cluster.

    Defaults follow the team's original production command (eu-central-1, t2.medium
    nodes, one m3.medium master, 172.10.0.0/16), scaled down to three nodes.
    """

    name: str = "opsbook.k8s.local"
    region: str = "eu-central-1"
    zones: tuple[str, ...] = ("eu-central-1a", "eu-central-1b", "eu-central-1c")
    node_size: str = "t2.medium"
    node_count: int = 3
    master_zones: tuple[str, ...] = ("eu-central-1a",)
    master_size: str = "m3.medium"
    network_cidr: str = "172.10.0.0/16"
    topology: str = "private"
    networking: str = "kopeio-vxlan"
    bastion: bool = True
    kubernetes_version: str = "1.34.4"
    node_cpu_credits: str | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)

    def instance_groups(self) -> list[InstanceGroup]:
        """Instance groups as kops creates them: one master IG per master zone, nodes spread over zones."""
        igs = [InstanceGroup(f"master-{z}", "Master", self.master_size, z, 1, 1) for z in self.master_zones]
        per_zone = distribute(self.node_count, len(self.zones))
        for zone, count in zip(self.zones, per_zone, strict=True):
            if count:
                igs.append(
                    InstanceGroup(
                        f"nodes-{zone}", "Node", self.node_size, zone, count, count, self.node_cpu_credits
                    )
                )
        return igs


def distribute(count: int, buckets: int) -> list[int]:
    """Spread ``count`` items over ``buckets`` as evenly as kops does (first zones get the extra)."""
    base, extra = divmod(count, buckets)
    return [base + (1 if i < extra else 0) for i in range(buckets)]
