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
from typing import Any
from urllib.parse import urlparse

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
    TARGET_COLUMNS,
    KopsCloud,
    label_targets,
)
from opsbook.aws.session import boundary, client

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


def asg_targets(cluster: str, region: str | None = None, asg: Any = None,
                calls: Calls | None = None) -> pd.DataFrame:
    """Desired capacity of each of the cluster's ASGs, per instance group.

    Args:
        cluster: the kops cluster name (value of the ``KubernetesCluster`` tag).
        region: AWS region (default: the environment's).
        asg: an ``autoscaling`` boto3 client (default: a new one).
        calls: counts the API pages requested.

    Returns:
        Columns ``instance_group, target, min_size, max_size, source`` (``asg``), ``asg`` (its name).

    Raises:
        AwsError: the call failed; ApiUnavailable when denied or absent.
    """
    rows = []
    with boundary(f"describe Auto Scaling groups of {cluster}"):
        asg = asg or client("autoscaling", region)
        pages = asg.get_paginator("describe_auto_scaling_groups").paginate(
            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}])
        for page in pages:
            if calls:
                calls.count += 1
            for g in page["AutoScalingGroups"]:
                tags = _tags(g.get("Tags", []))
                if tags.get(CLUSTER_TAG) != cluster:
                    continue
                ig = tags.get(IG_TAG) or g["AutoScalingGroupName"].removesuffix(f".{cluster}")
                rows.append({"instance_group": ig, "target": int(g["DesiredCapacity"]),
                             "min_size": int(g["MinSize"]), "max_size": int(g["MaxSize"]),
                             "source": "asg", "asg": g["AutoScalingGroupName"]})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS).sort_values("instance_group", ignore_index=True)


def cluster_instances(cluster: str, region: str | None = None, ec2: Any = None,
                      calls: Calls | None = None) -> pd.DataFrame:
    """The cluster's pending and running EC2 instances (by the ``KubernetesCluster`` tag).

    Returns:
        Columns ``instance_id, instance_group, state, private_dns, zone, instance_type``.

    Raises:
        AwsError: the call failed; ApiUnavailable when denied or absent.
    """
    rows = []
    with boundary(f"describe instances of {cluster}"):
        ec2 = ec2 or client("ec2", region)
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
                     {"Name": "instance-state-name", "Values": ["pending", "running"]}],
            PaginationConfig={"PageSize": 1000})
        for page in pages:
            if calls:
                calls.count += 1
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    tags = _tags(i.get("Tags", []))
                    rows.append({"instance_id": i["InstanceId"], "instance_group": tags.get(IG_TAG, ""),
                                 "state": i["State"]["Name"], "private_dns": i.get("PrivateDnsName", ""),
                                 "zone": i["Placement"]["AvailabilityZone"],
                                 "instance_type": i["InstanceType"]})
    return pd.DataFrame(rows, columns=INSTANCE_COLUMNS).sort_values("instance_id", ignore_index=True)


def state_store_targets(state_store: str, cluster: str, region: str | None = None, s3: Any = None,
                        calls: Calls | None = None) -> pd.DataFrame:
    """Instance-group sizes from the kops state store (``spec.minSize`` of each instance group).

    Args:
        state_store: ``s3://bucket[/prefix]`` as in ``KOPS_STATE_STORE``.
        cluster: the cluster name (the folder under the state store).
        region: AWS region of the bucket.
        s3: an ``s3`` boto3 client.
        calls: counts the API calls made.

    Returns:
        Columns as :func:`asg_targets` with ``source`` = ``state-store``; empty when the store holds
        no instance groups for this cluster.

    Raises:
        BadInput: ``state_store`` is not an ``s3://`` URL.
        AwsError: the bucket cannot be read.
    """
    rows = []
    for ig in state_store_instance_groups(state_store, cluster, region, s3, calls).itertuples(index=False):
        rows.append({"instance_group": ig.instance_group, "target": ig.min_size, "min_size": ig.min_size,
                     "max_size": ig.max_size, "source": "state-store", "asg": ig.asg})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS).sort_values("instance_group", ignore_index=True)


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
    from opsbook.errors import BadInput

    url = urlparse(state_store)
    if url.scheme != "s3" or not url.netloc:
        raise BadInput(f"state store {state_store!r} is not an s3:// URL (e.g. s3://my-kops-state)")
    prefix = "/".join(p for p in (url.path.strip("/"), cluster, "instancegroup") if p) + "/"
    rows = []
    with boundary(f"read instance groups of {cluster} from {state_store}"):
        s3 = s3 or client("s3", region)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix=prefix):
            if calls:
                calls.count += 1
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=url.netloc, Key=obj["Key"])["Body"].read()
                if calls:
                    calls.count += 1
                ig = yaml.safe_load(body) or {}
                spec = ig.get("spec") or {}
                name = (ig.get("metadata") or {}).get("name") or obj["Key"].rsplit("/", 1)[-1]
                min_size = int(spec.get("minSize", 1))
                role = IG_ROLES.get(str(spec.get("role", "Node")).lower(), str(spec.get("role", "")).lower())
                rows.append({"instance_group": name, "role": role, "min_size": min_size,
                             "max_size": int(spec.get("maxSize", min_size)),
                             "asg": asg_name(name, role, cluster) or ""})
    return pd.DataFrame(rows, columns=IG_COLUMNS).sort_values("instance_group", ignore_index=True)


def kops_cloud(cluster: str, region: str | None = None, asg: Any = None, ec2: Any = None,
               calls: Calls | None = None) -> KopsCloud:
    """Read ASGs, their instances, warm pools and the cluster's EC2 instances (read-only).

    A missing or denied ``DescribeWarmPool`` leaves warm pools out and says so in ``notes``.

    Raises:
        AwsError: the ASGs or instances cannot be read.
    """
    from opsbook.errors import AwsError

    calls = calls or Calls()
    asg_rows: list[dict[str, Any]] = []
    member_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    groups: list[dict[str, Any]] = []
    with boundary(f"describe Auto Scaling groups of {cluster}"):
        asg = asg or client("autoscaling", region)
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]):
            calls.count += 1
            groups += [g for g in page["AutoScalingGroups"] if _tags(g.get("Tags", [])).get(CLUSTER_TAG) == cluster]
    ec2 = ec2 or client("ec2", region)
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
    inst_rows = []
    with boundary(f"describe instances of {cluster}"):
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
                         {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}],
                PaginationConfig={"PageSize": 1000}):
            calls.count += 1
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    tags = _tags(i.get("Tags", []))
                    inst_rows.append({"instance_id": i["InstanceId"], "instance_group": tags.get(IG_TAG, ""),
                                      "state": i["State"]["Name"], "detached": tags.get(DETACHED_TAG, ""),
                                      "private_dns": i.get("PrivateDnsName", ""),
                                      "zone": i["Placement"]["AvailabilityZone"],
                                      "instance_type": i["InstanceType"]})
    return KopsCloud(asgs=pd.DataFrame(asg_rows, columns=KOPS_ASG_COLUMNS),
                     members=pd.DataFrame(member_rows, columns=KOPS_MEMBER_COLUMNS),
                     instances=pd.DataFrame(inst_rows, columns=KOPS_INSTANCE_COLUMNS), notes=notes)
