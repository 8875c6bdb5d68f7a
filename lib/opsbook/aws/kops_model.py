"""What kops puts in AWS, as data: tags, frame columns, :class:`KopsCloud`. Pure.

:class:`KopsCloud` is the cluster's AWS side as ``kops validate cluster`` reads it; the reading is
:mod:`opsbook.aws.asg`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

IG_TAG = "kops.k8s.io/instancegroup"
CLUSTER_TAG = "KubernetesCluster"
TARGET_COLUMNS = ["instance_group", "target", "min_size", "max_size", "source", "asg"]
INSTANCE_COLUMNS = ["instance_id", "instance_group", "state", "private_dns", "zone", "instance_type", "launch_time",
                    "state_reason", "detached"]
LIVE_STATES = ("pending", "running")  # terminated instances linger in describe output for about an hour
IG_COLUMNS = ["instance_group", "role", "min_size", "max_size", "asg"]
# kops InstanceGroup spec.role (any case; "Master" is the v1alpha2 name of ControlPlane) -> kops' lower-case role
IG_ROLES = {"master": "control-plane", "controlplane": "control-plane", "control-plane": "control-plane",
            "node": "node", "bastion": "bastion", "apiserver": "apiserver"}
DETACHED_TAG = "kops.k8s.io/detached-from-asg"
KOPS_ASG_COLUMNS = ["asg", "desired", "min_size", "max_size", "status", "instance_group", "role"]
KOPS_MEMBER_COLUMNS = ["asg", "instance_id", "lifecycle_state", "warm"]
KOPS_INSTANCE_COLUMNS = ["instance_id", "instance_group", "state", "detached", "private_dns", "zone",
                         "instance_type"]


@dataclass
class KopsCloud:
    """The cluster's AWS side read the way ``kops validate cluster`` reads it (``getCloudGroups``).

    Attributes:
        asgs: the ASGs tagged ``KubernetesCluster=<cluster>``: ``asg, desired, min_size, max_size,
            status`` (non-empty = "Delete in progress"), ``instance_group, role`` (from its tags).
        members: ASG and warm-pool instances: ``asg, instance_id, lifecycle_state, warm``.
        instances: the cluster's pending/running/stopping/stopped EC2 instances: ``instance_id,
            instance_group`` (tag), ``state, detached`` (value of ``kops.k8s.io/detached-from-asg``),
            ``private_dns, zone, instance_type``.
        notes: what could not be read (e.g. warm pools: the API is missing or denied).
    """

    asgs: pd.DataFrame
    members: pd.DataFrame
    instances: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def label_targets(nodes: pd.DataFrame) -> pd.DataFrame:
    """Fallback targets without AWS: each instance group's size is the number of its labelled nodes.

    Args:
        nodes: ``Snapshot.nodes`` (needs ``instance_group``).
    """
    labelled = nodes[nodes["instance_group"] != ""]
    counts = labelled.groupby("instance_group").size()
    return pd.DataFrame({"instance_group": counts.index, "target": counts.values, "min_size": counts.values,
                         "max_size": counts.values, "source": "node-labels", "asg": ""},
                        columns=TARGET_COLUMNS).reset_index(drop=True)
