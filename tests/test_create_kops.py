"""The real kops (built from the Go module proxy) against the sandbox's moto server.

S3 state store via S3_ENDPOINT/S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY/S3_REGION (the sandbox env
file sets them), EC2 and friends via AWS_ENDPOINT_URL, a gossip name, the pinned offline
channel and a local KOPS_BASE_URL for the node-binary hashes.
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
from opsbook.kops import plan
from opsbook.kops.apply import stored_documents
from opsbook.kops.params import CreateParams, validate
from opsbook.kops.preflight import run_preflight
from opsbook.kops.toolchain import ensure_kops, ensure_kops_assets
from opsbook.runbooks.create_cluster import apply
from opsbook.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

REGION = "eu-central-1"
KEY = str(Path(__file__).parent / "data" / "create_devtest.pub")
# an image moto knows under the Canonical owner, so kops can resolve it (moto has no Ubuntu 24.04)
IMAGE = "099720109477/ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"


@pytest.fixture(scope="module")
def kops(sandbox: Sandbox) -> Path:
    return ensure_kops(lambda m: print(f"[kops] {m}"))


@pytest.fixture
def kenv(sandbox: Sandbox, kops: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = sandbox.activate()
    assert {"S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION"} <= set(env)
    # kops update exports a kubeconfig and switches its context: keep it away from the sandbox's
    yield {**os.environ, "KUBECONFIG": str(tmp_path / "kops-kubeconfig")}


def state_bucket() -> str:
    s3 = boto3.client("s3", region_name=REGION)
    name = f"create-kops-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return name


def params(bucket: str, **over: Any) -> CreateParams:
    kw: dict[str, Any] = dict(
        cluster_name=f"k{uuid.uuid4().hex[:8]}.k8s.local", region=REGION,
        zones="eu-central-1a,eu-central-1b,eu-central-1c", node_size="t2.medium", node_count=5,
        control_plane_zones="eu-central-1a", control_plane_size="m3.medium",
        network_cidr=f"10.{uuid.uuid4().int % 200 + 20}.0.0/16", topology="private", networking="kopeio-vxlan",
        bastion=True, ssh_public_key=KEY, state_store=f"s3://{bucket}", kubernetes_version="1.33.1",
        kops_version="v1.33.1")
    kw.update(over)
    return validate(**kw)


def offline_args() -> list[str]:
    repo = ensure_kops_assets(lambda m: print(f"[kops assets] {m}"))
    return ["--image", IMAGE, "--set", f"spec.assets.fileRepository=file://{repo}"]


def cloud(name: str) -> dict[str, Any]:
    """What kops created in moto for cluster ``name``."""
    ec2 = boto3.client("ec2", region_name=REGION)
    owned = [{"Name": f"tag:kubernetes.io/cluster/{name}", "Values": ["owned"]}]
    vpcs = ec2.describe_vpcs(Filters=owned)["Vpcs"]
    vpc_ids = [v["VpcId"] for v in vpcs]
    nats = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["VpcId"] in vpc_ids]  # moto ignores tags
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups()["AutoScalingGroups"]
    insts = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:KubernetesCluster", "Values": [name]}])[
        "Reservations"] for i in r["Instances"]]
    lbs = boto3.client("elbv2", region_name=REGION).describe_load_balancers()["LoadBalancers"]
    slug = name.split(".")[0]  # LB names are truncated to 32 characters
    return {
        "vpc_cidrs": [v["CidrBlock"] for v in vpcs],
        "subnets": len(ec2.describe_subnets(Filters=owned)["Subnets"]),
        "nat_gateways": len(nats),
        "asgs": {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups
                 if g["AutoScalingGroupName"].endswith(f".{name}")},
        "instance_types": [i["InstanceType"] for i in insts],
        "load_balancers": sum(1 for lb in lbs if slug in lb["LoadBalancerName"]),
        "etcd_volumes": len(ec2.describe_volumes(Filters=owned)["Volumes"]),
        "roles": [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"].endswith(name)],
    }


def versions(bucket: str) -> list[tuple[str, str]]:
    out = boto3.client("s3", region_name=REGION).list_object_versions(Bucket=bucket)
    return sorted((v["Key"], v["VersionId"]) for v in out.get("Versions", []))


def test_dry_run_specs_match_the_derived_plan(kenv: dict[str, str], kops: Path) -> None:
    bucket = state_bucket()
    p = params(bucket)
    result = plan.dry_run(p, channel="pinned", kops=kops, env=kenv)
    assert result.source == "kops dry-run"
    got = result.instance_groups.drop(columns=["image"])
    # on the sandbox the plan runs m3.medium (which moto cannot launch from a kops launch template) as
    # t3.medium and says so (docs/design.md, create-cluster on the sandbox)
    fitted = plan.sandbox_fit(p, kenv).fit(p)
    assert fitted.control_plane_size == plan.SANDBOX_STAND_IN and fitted.node_size == p.node_size
    assert any("sandbox limitation" in n and "m3.medium" in n for n in result.notes)
    want = plan.expected_instance_groups(fitted).drop(columns=["image"])
    assert got.sort_values("name").reset_index(drop=True).equals(want.sort_values("name").reset_index(drop=True))
    assert result.cluster["kubernetes_version"] == "1.33.1" and result.cluster["network_cidr"] == p.network_cidr
    assert result.cluster["networking"] == "kopeio" and result.cluster["dns"] == "None"
    assert len(result.cluster["subnets"]) == 6 and result.cluster["etcd_clusters"] == ["main", "events"]
    assert "--channel file://" in result.commands[0] and "channels/stable" in result.commands[0]
    assert versions(bucket) == []  # a dry run writes nothing


def test_apply_creates_cluster_on_moto_and_rerun_changes_nothing(kenv: dict[str, str], kops: Path,
                                                                  tmp_path: Path) -> None:
    bucket = state_bucket()
    # t3.medium control plane: moto cannot launch the team's m3.medium from a kops launch template
    # (instance-store mapping without "Ebs" -> KeyError in moto's run_instances), see the phases test.
    p = params(bucket, control_plane_size="t3.medium")
    checks = run_preflight(p)
    assert set(checks["status"]) == {"pass"}
    lines: list[str] = []
    result = apply(p, apply=True, preflight=checks, extra_args=offline_args(), env=kenv,
                   stream=lines.append)
    assert result.action == "created", lines[-20:]
    assert any("Created instancegroup/nodes-eu-central-1a" in ln for ln in lines)
    # `kops update cluster --yes` finished (on the sandbox it runs with --create-kube-config=false, so
    # kops says this rather than "Cluster is starting", which it prints only when it exports a kubeconfig)
    assert any("Cluster changes have been applied to the cloud" in ln for ln in lines), lines[-20:]

    name = p.cluster_name
    keys = {k for k, _ in versions(bucket)}
    assert {f"{name}/config", f"{name}/cluster-completed.spec", f"{name}/pki/private/kubernetes-ca/keyset.yaml",
            f"{name}/secrets/admin"} <= keys
    assert {f"{name}/instancegroup/{ig}" for ig in plan.expected_instance_groups(p)["name"]} <= keys

    stored = stored_documents(p, kops, plan.kops_env(p, kenv))  # kops get cluster/ig -o yaml
    assert stored is not None
    igs = plan.instance_groups_frame(stored).set_index("name")
    assert igs.loc["nodes-eu-central-1a", "min_size"] == 2 and igs.loc["bastions", "role"] == "Bastion"
    assert [d["metadata"]["name"] for d in stored if d["kind"] == "Cluster"] == [name]

    aws = cloud(name)
    assert aws["vpc_cidrs"] == [p.network_cidr] and aws["subnets"] == 6 and aws["nat_gateways"] == 3
    assert aws["asgs"] == {f"bastions.{name}": 1, f"control-plane-eu-central-1a.masters.{name}": 1,
                           f"nodes-eu-central-1a.{name}": 2, f"nodes-eu-central-1b.{name}": 2,
                           f"nodes-eu-central-1c.{name}": 1}
    assert sorted(aws["instance_types"]) == ["t2.medium"] * 5 + ["t3.medium", "t3.micro"]
    assert aws["load_balancers"] == 2 and aws["etcd_volumes"] == 2
    assert set(aws["roles"]) == {f"masters.{name}", f"nodes.{name}", f"bastions.{name}"}

    before = versions(bucket)
    again = apply(p, apply=True, preflight=run_preflight(p), extra_args=offline_args(), env=kenv)
    assert again.action == "unchanged" and not again.changed and again.diff == ""
    assert versions(bucket) == before  # not one object version written
    assert cloud(name) == aws  # and nothing new in EC2/ASG/ELB/IAM
    # kops' own preview still lists resources moto describes differently (see report); nothing else
    assert all(r.startswith(("SSHKey/", "Subnet/")) for r in again.output), again.output

    replan = plan.dry_run(p, kops=kops, env=kenv, extra_args=offline_args())  # works on an existing cluster
    assert f"configBase: s3://{bucket}/{name}\n" in replan.yaml and versions(bucket) == before

    bigger = params(bucket, cluster_name=name, network_cidr=p.network_cidr, control_plane_size="t3.medium",
                    node_count=6)
    differs = apply(bigger, apply=True, extra_args=offline_args(), env=kenv)
    assert differs.action == "differs" and not differs.changed
    assert "-  minSize: 1\n" in differs.diff and "+  minSize: 2\n" in differs.diff
    assert versions(bucket) == before and cloud(name) == aws


def test_update_phases_with_the_original_sizes(kenv: dict[str, str], kops: Path, tmp_path: Path) -> None:
    """The team's m3.medium control plane: network and security phases work on moto."""
    bucket = state_bucket()
    p = params(bucket)
    env = plan.kops_env(p, kenv)
    spec = tmp_path / "spec.yaml"
    ch = plan.resolve_channel("pinned", p.kops_version)
    spec.write_text(plan.run_kops(kops, plan.create_args(p, channel=ch, dry_run=True,
                                                         extra_args=offline_args()), env).stdout)
    plan.run_kops(kops, plan.create_from_file_args(p, str(spec)), env)
    for phase in ("network", "security"):
        plan.run_kops(kops, [*plan.update_args(p), "--phase", phase, "--create-kube-config=false"], env,
                      timeout=300)
    aws = cloud(p.cluster_name)
    assert aws["vpc_cidrs"] == [p.network_cidr] and aws["subnets"] == 6 and aws["nat_gateways"] == 3
    assert set(aws["roles"]) == {f"masters.{p.cluster_name}", f"nodes.{p.cluster_name}",
                                 f"bastions.{p.cluster_name}"}
    assert aws["asgs"] == {} and aws["instance_types"] == []  # the cluster phase did not run


def test_preflight_failure_stops_apply_before_kops(kenv: dict[str, str]) -> None:
    p = params("missing-" + uuid.uuid4().hex[:10])
    with pytest.raises(RunbookFailed, match="preflight failed"):
        apply(p, apply=True, preflight=run_preflight(p))


def test_channel_images_are_known_to_the_sandbox_and_a_missing_one_is_named(
    kenv: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox registered kops' channel images in moto at start; an image EC2 does not list is named."""
    p = params("unused-bucket")
    assert plan.channel_images_missing(p, ("amd64", "arm64")) == []  # one DescribeImages each, on moto
    fake = tmp_path / "stable"
    fake.write_text("spec:\n  images:\n  - name: 099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-"
                    "server-29991231\n    providerID: aws\n    architectureID: amd64\n")
    monkeypatch.setattr(plan, "channel_file", lambda version: fake)
    assert plan.channel_images_missing(p) == [
        "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-29991231"]
