"""create-cluster apply that resumes a half-failed `kops update`, and the kops path with default parameters.

The real kops against the sandbox's moto server. The sandbox registers kops' channel images in moto
and the kops path points kops at the local node binaries by itself: no `--image`, no
`--set spec.assets.fileRepository` here, except where a test wants an image that is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsbook.errors import RunbookFailed
from opsbook.kops.apply import missing_groups
from opsbook.kops.params import CreateParams, validate
from opsbook.kops.plan import SANDBOX_STAND_IN
from opsbook.kops.preflight import run_preflight
from opsbook.kops.toolchain import ensure_kops, ensure_kops_assets
from opsbook.runbooks.create_cluster import apply
from opsbook.sandbox import Sandbox
from opsbook.sandbox.seed import STATE_BUCKET

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def kops(sandbox: Sandbox) -> Path:
    ensure_kops_assets(lambda m: print(f"[kops assets] {m}"))
    return ensure_kops(lambda m: print(f"[kops] {m}"))


@pytest.fixture
def env(sandbox: Sandbox, kops: Path) -> Iterator[dict[str, str]]:
    sandbox.activate()
    kubeconfig = Path(os.environ["KUBECONFIG"])
    before = kubeconfig.read_bytes()
    yield dict(os.environ)
    assert kubeconfig.read_bytes() == before  # kops update left the sandbox's kubeconfig alone


def params(**over: Any) -> CreateParams:
    """The notebook's defaults, with a fresh name and a free CIDR."""
    kw: dict[str, Any] = dict(
        cluster_name=f"r{uuid.uuid4().hex[:8]}.k8s.local", region=REGION,
        zones="eu-central-1a,eu-central-1b,eu-central-1c", node_size="t2.medium", node_count=5,
        control_plane_zones="eu-central-1a", control_plane_size="m3.medium",
        network_cidr=f"10.{uuid.uuid4().int % 200 + 20}.0.0/16", topology="private", networking="kopeio-vxlan",
        bastion=True, ssh_public_key="", state_store=f"s3://{STATE_BUCKET}", kubernetes_version="1.33.1",
        kops_version="v1.33.1")
    kw.update(over)
    return validate(**kw)


def cloud(name: str) -> dict[str, Any]:
    """What exists in moto for kops cluster ``name``."""
    ec2 = boto3.client("ec2", region_name=REGION)
    owned = [{"Name": f"tag:kubernetes.io/cluster/{name}", "Values": ["owned"]}]
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups()["AutoScalingGroups"]
    mine = [g for g in groups if g["AutoScalingGroupName"].endswith(f".{name}")]
    lt_names = [g["LaunchTemplate"]["LaunchTemplateName"] for g in mine if "LaunchTemplate" in g]
    templates = ec2.describe_launch_templates(LaunchTemplateNames=lt_names)["LaunchTemplates"] if lt_names else []
    insts = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:KubernetesCluster", "Values": [name]}])[
        "Reservations"] for i in r["Instances"]]
    return {
        "vpc_cidrs": [v["CidrBlock"] for v in ec2.describe_vpcs(Filters=owned)["Vpcs"]],
        "subnets": len(ec2.describe_subnets(Filters=owned)["Subnets"]),
        "asgs": {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in mine},
        "launch_templates": sorted(t["LaunchTemplateName"] for t in templates),  # the ASGs' own, present
        "instance_types": sorted(i["InstanceType"] for i in insts),
    }


def state_keys(name: str) -> set[str]:
    s3 = boto3.client("s3", region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=STATE_BUCKET, Prefix=f"{name}/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def versions(name: str) -> list[tuple[str, str]]:
    out = boto3.client("s3", region_name=REGION).list_object_versions(Bucket=STATE_BUCKET, Prefix=f"{name}/")
    return sorted((v["Key"], v["VersionId"]) for v in out.get("Versions", []))


def test_failed_update_is_resumed_then_unchanged(env: dict[str, str], kops: Path) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    image_name = f"opsbook-resume-{uuid.uuid4().hex[:8]}"
    image = ["--image", f"{account}/{image_name}"]  # not registered yet: `kops update` fails on it
    p = params()
    name = p.cluster_name
    assert set(run_preflight(p)["status"]) == {"pass"}

    lines: list[str] = []
    with pytest.raises(RunbookFailed) as failed:
        apply(p, apply=True, extra_args=image, env=env, stream=lines.append)
    assert image_name in str(failed.value) and "Phase reached: spec stored" in str(failed.value)
    assert {f"{name}/config", f"{name}/instancegroup/nodes-eu-central-1a"} <= state_keys(name)
    assert cloud(name) == {"vpc_cidrs": [], "subnets": 0, "asgs": {}, "launch_templates": [],
                           "instance_types": []}  # spec stored, nothing in the cloud

    # the cause is fixed: the image now exists (a copy of an Ubuntu image moto ships)
    src = ec2.describe_images(Owners=["099720109477"], Filters=[
        {"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"]}])["Images"][0]
    ec2.copy_image(SourceImageId=src["ImageId"], SourceRegion=REGION, Name=image_name)

    lines.clear()
    resumed = apply(p, apply=True, extra_args=image, env=env, stream=lines.append)
    assert resumed.action == "resumed" and resumed.changed, lines[-20:]
    assert [(ph["phase"], ph["reached"]) for ph in resumed.phases] == [
        ("spec stored", True), ("cloud resources created", True), ("validated", False)]
    assert resumed.pending == ["create (everything: no kops update got as far as issuing the cluster CA)"]
    assert any("sandbox limitation" in n and "m3.medium" in n for n in resumed.notes)
    aws = cloud(name)
    igs = {f"bastions.{name}": 1, f"control-plane-eu-central-1a.masters.{name}": 1,
           f"nodes-eu-central-1a.{name}": 2, f"nodes-eu-central-1b.{name}": 2, f"nodes-eu-central-1c.{name}": 1}
    assert aws["vpc_cidrs"] == [p.network_cidr] and aws["subnets"] == 6
    assert aws["asgs"] == igs and aws["launch_templates"] == sorted(igs)
    assert aws["instance_types"] == sorted(["t2.medium"] * 5 + [SANDBOX_STAND_IN, "t3.micro"])

    before = versions(name)
    again = apply(p, apply=True, extra_args=image, env=env, stream=lines.append)
    assert again.action == "unchanged" and not again.changed and again.pending == [], again.message
    assert again.phase == "cloud resources created"
    assert versions(name) == before and cloud(name) == aws  # not one object written, nothing created


def test_missing_auto_scaling_groups_are_pending_without_asking_kops(env: dict[str, str]) -> None:
    """An update that failed after the CA but before the groups: pending, with no kops preview.

    (kops' preview cannot say so on moto: DescribeWarmPool of a missing group answers 500 and kops
    retries its WarmPool task for 10 minutes.)
    """
    p = params()
    name = p.cluster_name
    stored = [{"kind": "Cluster", "metadata": {"name": name}, "spec": {}},
              {"kind": "InstanceGroup", "metadata": {"name": "control-plane-eu-central-1a"},
               "spec": {"role": "ControlPlane"}},
              {"kind": "InstanceGroup", "metadata": {"name": "nodes-eu-central-1a"}, "spec": {"role": "Node"}}]
    assert missing_groups(p, stored) == [f"control-plane-eu-central-1a.masters.{name}", f"nodes-eu-central-1a.{name}"]
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]
    ec2.create_launch_template(LaunchTemplateName=f"nodes-eu-central-1a.{name}",
                               LaunchTemplateData={"InstanceType": "t3.micro"})
    boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=f"nodes-eu-central-1a.{name}", MinSize=0, MaxSize=0,
        LaunchTemplate={"LaunchTemplateName": f"nodes-eu-central-1a.{name}"}, VPCZoneIdentifier=subnet["SubnetId"])
    assert missing_groups(p, stored) == [f"control-plane-eu-central-1a.masters.{name}"]
    assert missing_groups(p, stored[:1]) == []  # no instance groups: nothing to look for
