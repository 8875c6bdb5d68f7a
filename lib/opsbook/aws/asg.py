"""The cluster's AWS side as ``kops validate cluster`` sees it: ASGs and their instances.

kops gives every instance group one Auto Scaling group named ``<ig>.<cluster>``
tagged ``KubernetesCluster=<cluster>`` and ``kops.k8s.io/instancegroup=<ig>``.
The *target* size of an instance group is, in order of preference:

1. the kops state store (``s3://bucket/<cluster>/instancegroup/<ig>``: ``spec.minSize``),
2. the ASG's desired capacity (what kops validate itself uses),
3. the number of nodes that carry the instance-group label (no AWS access).

Every call here is read-only (``Describe*``, ``s3:GetObject``/``ListBucket``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import yaml

from opsbook.aws.kops_model import (
    CLUSTER_TAG,
    DETACHED_TAG,
    IG_COLUMNS,
    IG_ROLES,
    IG_TAG,
    INSTANCE_COLUMNS,
    KOPS_ASG_COLUMNS,
    KOPS_INSTANCE_COLUMNS,
    KOPS_MEMBER_COLUMNS,
    LIVE_STATES,
    TARGET_COLUMNS,
    KopsCloud,
    label_targets,
)
from opsbook.aws.s3url import split_s3
from opsbook.aws.session import boundary, client
from opsbook.errors import AwsError

__all__ = [  # kops' AWS model (tags, columns, KopsCloud) is in opsbook.aws.kops_model (pure)
    "CLUSTER_TAG",
    "DETACHED_TAG",
    "IG_COLUMNS",
    "IG_ROLES",
    "IG_TAG",
    "INSTANCE_COLUMNS",
    "KOPS_ASG_COLUMNS",
    "KOPS_INSTANCE_COLUMNS",
    "KOPS_MEMBER_COLUMNS",
    "LIVE_STATES",
    "TARGET_COLUMNS",
    "KopsCloud",
    "label_targets",
]

log = logging.getLogger(__name__)

class Calls:
    """Counts AWS API calls (pages) made by this module."""

    def __init__(self) -> None:
        self.count = 0


def _tags(items: list[dict[str, Any]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def cluster_asg_records(cluster: str, region: str | None = None, asg: Any = None,
                        calls: Calls | None = None) -> list[dict[str, Any]]:
    """The cluster's Auto Scaling groups (tag ``KubernetesCluster=<cluster>``), as the API returns them.

    The one ASG lister: :func:`kops_cloud`, the CPU-credit inventory, the outage evidence and the
    create-cluster façade read the cluster's groups through it; create-cluster's "is work pending" asks
    by name (:func:`existing_asg_names`) through the same pager.

    Raises:
        AwsError: the call failed; ApiUnavailable when denied or absent.
    """
    groups = _describe_asgs(f"describe Auto Scaling groups of {cluster}", region, asg, calls,
                            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}])
    return [g for g in groups if _tags(g.get("Tags", [])).get(CLUSTER_TAG) == cluster]


def existing_asg_names(names: Sequence[str], region: str | None = None, asg: Any = None,
                       calls: Calls | None = None) -> set[str]:
    """Which of these Auto Scaling group names exist, tagged or not (create-cluster's "is work pending")."""
    if not names:
        return set()
    groups = _describe_asgs("describe Auto Scaling groups by name", region, asg, calls,
                            AutoScalingGroupNames=list(names))
    return {g["AutoScalingGroupName"] for g in groups}


def _describe_asgs(what: str, region: str | None, asg: Any, calls: Calls | None, **query: Any) -> list[dict[str, Any]]:
    """The one DescribeAutoScalingGroups pager."""
    groups: list[dict[str, Any]] = []
    with boundary(what):
        asg = asg or client("autoscaling", region)
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(**query):
            if calls:
                calls.count += 1
            groups += page["AutoScalingGroups"]
    return groups


def cluster_instance_records(cluster: str, region: str | None = None, ec2: Any = None,
                             states: tuple[str, ...] | None = None,
                             calls: Calls | None = None) -> list[dict[str, Any]]:
    """The cluster's EC2 instances (tag ``KubernetesCluster=<cluster>``), as the API returns them.

    The one instance lister: :func:`cluster_instances` (and through it :func:`kops_cloud`, the outage
    evidence, the cluster-inventory runbook) and the CPU-credit inventory read the cluster's instances through it.

    Args:
        cluster: the kops cluster name.
        region: AWS region (default: the environment's).
        ec2: an ``ec2`` boto3 client (default: a new one).
        states: only instances in these states (None: any, terminated ones included).
        calls: counts the API pages requested.

    Raises:
        AwsError: the call failed; ApiUnavailable when denied or absent.
    """
    filters: list[dict[str, Any]] = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
    if states is not None:
        filters.append({"Name": "instance-state-name", "Values": list(states)})
    out: list[dict[str, Any]] = []
    with boundary(f"describe instances of {cluster}"):
        ec2 = ec2 or client("ec2", region)
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters,
                                                                     PaginationConfig={"PageSize": 1000}):
            if calls:
                calls.count += 1
            out += [i for res in page["Reservations"] for i in res["Instances"]]
    return out


def cluster_instances(cluster: str, region: str | None = None, ec2: Any = None,
                      states: tuple[str, ...] | None = LIVE_STATES, calls: Calls | None = None) -> pd.DataFrame:
    """The cluster's EC2 instances as a frame (default: pending and running), in the API's order.

    Returns:
        Columns :data:`~opsbook.aws.kops_model.INSTANCE_COLUMNS`: ``instance_id, instance_group, state,
        private_dns, zone, instance_type, launch_time, state_reason`` (``StateTransitionReason``),
        ``detached`` (value of ``kops.k8s.io/detached-from-asg``).

    Raises:
        AwsError: the call failed; ApiUnavailable when denied or absent.
    """
    rows = []
    for i in cluster_instance_records(cluster, region, ec2, states, calls):
        tags = _tags(i.get("Tags", []))
        rows.append({"instance_id": i["InstanceId"], "instance_group": tags.get(IG_TAG, ""),
                     "state": i["State"]["Name"], "private_dns": i.get("PrivateDnsName", ""),
                     "zone": (i.get("Placement") or {}).get("AvailabilityZone", ""),
                     "instance_type": i["InstanceType"],
                     "launch_time": pd.Timestamp(i["LaunchTime"]) if i.get("LaunchTime") else pd.NaT,
                     "state_reason": i.get("StateTransitionReason", ""), "detached": tags.get(DETACHED_TAG, "")})
    return pd.DataFrame(rows, columns=INSTANCE_COLUMNS)


def state_store_documents(state_store: str, cluster: str, region: str | None = None, s3: Any = None,
                          calls: Calls | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The InstanceGroup documents kops stored for ``cluster`` (``<store>/<cluster>/instancegroup/*``).

    The one state-store reader: :func:`state_store_instance_groups` and the CPU-credit inventory's
    declared credit modes both read through it.

    Returns:
        ``(instance group name, document)`` per stored instance group.

    Raises:
        BadInput: ``state_store`` is not an ``s3://`` URL.
        AwsError: the bucket cannot be read.
    """
    bucket, root = split_s3(state_store, f"state store {state_store!r}")
    prefix = "/".join(p for p in (root, cluster, "instancegroup") if p) + "/"
    out: list[tuple[str, dict[str, Any]]] = []
    with boundary(f"read instance groups of {cluster} from {state_store}"):
        s3 = s3 or client("s3", region)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            if calls:
                calls.count += 1
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                if calls:
                    calls.count += 1
                doc = yaml.safe_load(body) or {}
                out.append((str((doc.get("metadata") or {}).get("name") or obj["Key"].rsplit("/", 1)[-1]), doc))
    return out


def asg_name(instance_group: str, role: str, cluster: str) -> str | None:
    """The ASG name kops gives an instance group (``matchInstanceGroup`` in kops' awsup).

    Control-plane groups are ``<ig>.masters.<cluster>``; None for a role kops ignores.
    """
    kind = IG_ROLES.get(role.lower())
    if kind in ("control-plane",):
        return f"{instance_group}.masters.{cluster}"
    if kind == "apiserver":
        return f"{instance_group}.apiservers.{cluster}"
    if kind in ("node", "bastion"):
        return f"{instance_group}.{cluster}"
    return None


def state_store_instance_groups(state_store: str, cluster: str, region: str | None = None, s3: Any = None,
                                calls: Calls | None = None) -> pd.DataFrame:
    """The instance groups stored for ``cluster`` in the kops state store (what kops validate lists).

    Returns:
        Columns ``instance_group, role`` (kops' lower-case role: ``control-plane``, ``node``, ``bastion``,
        ``apiserver``), ``min_size, max_size, asg`` (the ASG name kops looks for).

    Raises:
        BadInput: ``state_store`` is not an ``s3://`` URL.
        AwsError: the bucket cannot be read.
    """
    rows = []
    for name, ig in state_store_documents(state_store, cluster, region, s3, calls):
        spec = ig.get("spec") or {}
        min_size = int(spec.get("minSize", 1))
        role = IG_ROLES.get(str(spec.get("role", "Node")).lower(), str(spec.get("role", "")).lower())
        rows.append({"instance_group": name, "role": role, "min_size": min_size,
                     "max_size": int(spec.get("maxSize", min_size)), "asg": asg_name(name, role, cluster) or ""})
    return pd.DataFrame(rows, columns=IG_COLUMNS).sort_values("instance_group", ignore_index=True)


def kops_cloud(cluster: str, region: str | None = None, asg: Any = None, ec2: Any = None,
               calls: Calls | None = None) -> KopsCloud:
    """Read ASGs, their instances, warm pools and the cluster's EC2 instances (read-only).

    A missing or denied ``DescribeWarmPool`` leaves warm pools out and says so in ``notes``.

    Raises:
        AwsError: the ASGs or instances cannot be read.
    """
    calls = calls or Calls()
    asg_rows: list[dict[str, Any]] = []
    member_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with boundary("create AWS clients"):
        asg = asg or client("autoscaling", region)
        ec2 = ec2 or client("ec2", region)
    groups = cluster_asg_records(cluster, region, asg, calls)
    for g in groups:
        name = g["AutoScalingGroupName"]
        tags = _tags(g.get("Tags", []))
        roles = [k.removeprefix("k8s.io/role/") for k in tags if k.startswith("k8s.io/role/")]
        role = ("control-plane" if {"master", "control-plane"} & set(roles)
                else "bastion" if "bastion" in roles else "node")
        asg_rows.append({"asg": name, "desired": int(g["DesiredCapacity"]), "min_size": int(g["MinSize"]),
                         "max_size": int(g["MaxSize"]), "status": g.get("Status") or "",
                         "instance_group": tags.get(IG_TAG, ""), "role": role})
        member_rows += [{"asg": name, "instance_id": i.get("InstanceId", ""),
                         "lifecycle_state": i.get("LifecycleState", ""), "warm": False}
                        for i in g.get("Instances", [])]
        try:
            with boundary(f"describe warm pool of {name}"):
                calls.count += 1
                pool = asg.describe_warm_pool(AutoScalingGroupName=name)
            member_rows += [{"asg": name, "instance_id": i.get("InstanceId", ""),
                             "lifecycle_state": i.get("LifecycleState", ""), "warm": True}
                            for i in pool.get("Instances", [])]
        except AwsError as e:
            notes.append(f"warm pool of {name} unreadable ({e}); warm-pool instances not counted")
    instances = cluster_instances(cluster, region, ec2, ("pending", "running", "stopping", "stopped"), calls)
    return KopsCloud(asgs=pd.DataFrame(asg_rows, columns=KOPS_ASG_COLUMNS),
                     members=pd.DataFrame(member_rows, columns=KOPS_MEMBER_COLUMNS),
                     instances=instances[KOPS_INSTANCE_COLUMNS].copy(), notes=notes)
