"""The cluster's EC2 instances, by instance group, with their CPU credit mode and Kubernetes node.

Credit mode, first source that knows wins (``credit_mode_source`` says which):

1. ``kops``: the instance group's ``spec.cpuCredits`` in the kops state store
   (``$KOPS_STATE_STORE/<cluster>/instancegroup/<ig>``);
2. ``launch-template``: the ASG launch template's ``CreditSpecification``
   (kops writes ``cpuCredits`` there);
3. ``ec2-api``: ``DescribeInstanceCreditSpecifications``;
4. ``aws-default``: T2 standard, T3/T3a/T4g unlimited.

The declared sources come first because the API cannot always tell: moto's
``describe_instance_credit_specifications`` says "standard" for everything (and
moto has no ``modify_instance_credit_specification``). When the API disagrees
with the declared mode, ``credit_mode_api`` keeps its answer so the report can
say so (on AWS that means someone changed the instance by hand, and kops will
put the declared mode back on the next rolling update).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd
import yaml

from opsbook.aws.asg import IG_TAG, LIVE_STATES, cluster_asg_records, cluster_instance_records, state_store_documents
from opsbook.aws.s3url import is_s3
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.data.tables import credit_spec
from opsbook.errors import AwsError, BadInput, OpsbookError
from opsbook.k8s import inventory as k8s_inventory

log = logging.getLogger(__name__)

INVENTORY_COLUMNS = [
    "instance_id",
    "instance_group",
    "asg",
    "role",
    "instance_type",
    "zone",
    "state",
    "launch_time",
    "credit_mode",
    "credit_mode_source",
    "credit_mode_declared",
    "credit_mode_api",
    "node",
]


def kops_cpu_credits(
    cluster: str, state_store: str | None = None, s3: Any = None, region: str | None = None
) -> dict[str, str]:
    """``spec.cpuCredits`` of every instance group in the kops state store that sets it.

    Args:
        cluster: cluster name.
        state_store: ``s3://bucket[/prefix]`` (default ``$KOPS_STATE_STORE``).
        s3: boto3 S3 client.
        region: AWS region when ``s3`` is not given.

    Returns:
        instance group name -> ``standard`` | ``unlimited``; empty when the store cannot be read.
    """
    store = state_store or os.environ.get("KOPS_STATE_STORE", "")
    if not is_s3(store):
        return {}
    out: dict[str, str] = {}
    try:
        for name, doc in state_store_documents(store, cluster, region, s3):
            credits = (doc.get("spec") or {}).get("cpuCredits")
            if credits:
                out[name] = str(credits)
    except (OpsbookError, yaml.YAMLError) as e:  # no bucket, unreadable, not YAML: fall back
        log.warning("kops state store %s not readable, credit mode falls back to EC2: %s", store, e)
        return {}
    return out


def _launch_template_credits(ec2: Any, groups: list[dict[str, Any]]) -> dict[str, str]:
    """ASG name -> CreditSpecification.CpuCredits of its launch template (when set)."""
    out: dict[str, str] = {}
    for g in groups:
        lt = g.get("LaunchTemplate") or (g.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get(
            "LaunchTemplateSpecification"
        )
        if not lt:
            continue
        ref = (
            {"LaunchTemplateId": lt["LaunchTemplateId"]}
            if lt.get("LaunchTemplateId")
            else {"LaunchTemplateName": lt["LaunchTemplateName"]}
        )
        try:
            with boundary(f"describe launch template of {g['AutoScalingGroupName']}"):
                vers = ec2.describe_launch_template_versions(
                    Versions=[str(lt.get("Version") or "$Default")], **ref
                )["LaunchTemplateVersions"]
        except AwsError as e:
            log.warning("%s", e)
            continue
        for v in vers:
            mode = (v.get("LaunchTemplateData", {}).get("CreditSpecification") or {}).get("CpuCredits")
            if mode:
                out[g["AutoScalingGroupName"]] = str(mode)
    return out


def _api_credits(ec2: Any, instance_ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(instance_ids), 100):
        try:
            with boundary("describe instance credit specifications"):
                resp = ec2.describe_instance_credit_specifications(InstanceIds=instance_ids[i : i + 100])
        except AwsError as e:
            log.warning("credit mode from the EC2 API unavailable: %s", e)
            return out
        for s in resp.get("InstanceCreditSpecifications", []):
            out[s["InstanceId"]] = s["CpuCredits"]
    return out


def nodes_by_instance(api: Any = None) -> dict[str, str]:
    """EC2 instance id -> Kubernetes node name, from each node's ``spec.providerID`` (``aws:///az/i-...``)."""
    nodes = k8s_inventory.nodes(api)
    return {r.instance_id: r.name for r in nodes.itertuples() if r.instance_id}


def inventory(
    cluster: str | None = None,
    region: str | None = None,
    *,
    ec2: Any = None,
    autoscaling: Any = None,
    s3: Any = None,
    api: Any = None,
    state_store: str | None = None,
    with_nodes: bool = True,
) -> pd.DataFrame:
    """The cluster's running instances, by instance group, with credit mode and Kubernetes node.

    Args:
        cluster: kops cluster name (default ``$KOPS_CLUSTER_NAME``).
        region: AWS region (default the environment's).
        ec2: boto3 EC2 client.
        autoscaling: boto3 Auto Scaling client.
        s3: boto3 S3 client (kops state store).
        api: Kubernetes ApiClient (default: the configured cluster).
        state_store: kops state store (default ``$KOPS_STATE_STORE``).
        with_nodes: match instances to Kubernetes nodes (an unreachable cluster leaves ``node`` empty).

    Returns:
        Columns ``INVENTORY_COLUMNS``: ``role`` master|node, ``credit_mode`` standard|unlimited ("" when not
        burstable), ``credit_mode_source`` kops|launch-template|ec2-api|aws-default, ``node`` the node
        name or "".
    """
    cluster = cluster or os.environ.get("KOPS_CLUSTER_NAME", "")
    if not cluster:
        raise BadInput("no cluster name: pass `cluster` or set KOPS_CLUSTER_NAME")
    ec2 = ec2 or aws_client("ec2", region)
    autoscaling = autoscaling or aws_client("autoscaling", region)
    instances = cluster_instance_records(cluster, region, ec2, LIVE_STATES)
    groups = cluster_asg_records(cluster, region, autoscaling)
    asg_of = {i["InstanceId"]: g["AutoScalingGroupName"] for g in groups for i in g.get("Instances", [])}
    lt_modes = _launch_template_credits(ec2, groups)
    kops_modes = kops_cpu_credits(cluster, state_store, s3, region)
    burstable_ids = [i["InstanceId"] for i in instances if credit_spec(i["InstanceType"])]
    api_modes = _api_credits(ec2, burstable_ids) if burstable_ids else {}
    nodes: dict[str, str] = {}
    if with_nodes:
        try:
            nodes = nodes_by_instance(api)
        except OpsbookError as e:
            log.warning("cannot match instances to nodes: %s", e)
    rows = []
    for inst in instances:
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        iid = inst["InstanceId"]
        ig = tags.get(IG_TAG, "")
        asg = asg_of.get(iid) or tags.get("aws:autoscaling:groupName", "")
        spec = credit_spec(inst["InstanceType"])
        declared, src = "", ""
        if ig in kops_modes:
            declared, src = kops_modes[ig], "kops"
        elif asg in lt_modes:
            declared, src = lt_modes[asg], "launch-template"
        mode = declared
        if spec is None:
            mode, src = "", ""
        elif not mode and iid in api_modes:
            mode, src = api_modes[iid], "ec2-api"
        elif not mode:
            mode, src = spec.default_mode, "aws-default"
        rows.append(
            {
                "instance_id": iid,
                "instance_group": ig,
                "asg": asg,
                "role": "master"
                if ("k8s.io/role/master" in tags or "k8s.io/role/control-plane" in tags)
                else "node",
                "instance_type": inst["InstanceType"],
                "zone": inst["Placement"]["AvailabilityZone"],
                "state": inst["State"]["Name"],
                "launch_time": pd.Timestamp(inst["LaunchTime"]),
                "credit_mode": mode,
                "credit_mode_source": src,
                "credit_mode_declared": declared if spec else "",
                "credit_mode_api": api_modes.get(iid, ""),
                "node": nodes.get(iid, ""),
            }
        )
    df = pd.DataFrame(rows, columns=INVENTORY_COLUMNS)
    return df.sort_values(["instance_group", "instance_id"]).reset_index(drop=True)


def inventory_findings(inv: pd.DataFrame) -> list[dict[str, Any]]:
    """Findings about the inventory: instances without a node; declared vs EC2-reported credit mode."""
    out: list[dict[str, Any]] = []
    for r in inv.itertuples():
        if not r.node:
            out.append(
                {
                    "check": "inventory.instance_without_node",
                    "severity": "medium",
                    "object": r.instance_id,
                    "group": "inventory",
                    "evidence": "EC2 DescribeInstances vs Kubernetes node providerID",
                    "message": (
                        f"{r.instance_type} {r.instance_id} of {r.instance_group or '?'} has no "
                        "Kubernetes node: it is paid for but not in the cluster (still booting, or "
                        "failed to join: check its console output)."
                    ),
                }
            )
        if r.credit_mode_api and r.credit_mode_declared and r.credit_mode_api != r.credit_mode_declared:
            out.append(
                {
                    "check": "inventory.credit_mode_mismatch",
                    "severity": "info",
                    "object": r.instance_id,
                    "group": "inventory",
                    "evidence": "DescribeInstanceCreditSpecifications",
                    "message": (
                        f"{r.instance_id}: {r.credit_mode_source} declares {r.credit_mode_declared} but "
                        f"EC2 reports {r.credit_mode_api}; using {r.credit_mode_declared}. On AWS this "
                        "means a manual change kops will revert (the sandbox's moto always reports standard)."
                    ),
                }
            )
    return out


def group_summary(inv: pd.DataFrame) -> pd.DataFrame:
    """Instances per instance group.

    Returns:
        Columns ``instance_group, asg, role, instance_type, credit_mode, credit_mode_source, instances,
        nodes``.
    """
    if inv.empty:
        return pd.DataFrame(
            columns=[
                "instance_group",
                "asg",
                "role",
                "instance_type",
                "credit_mode",
                "credit_mode_source",
                "instances",
                "nodes",
            ]
        )
    g = inv.groupby(
        ["instance_group", "asg", "role", "instance_type", "credit_mode", "credit_mode_source"], dropna=False
    )
    return g.agg(
        instances=("instance_id", "count"), nodes=("node", lambda s: int((s != "").sum()))
    ).reset_index()
