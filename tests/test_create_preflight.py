"""create-cluster preflight against the sandbox's moto server: pass, and every failure, creating nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsbook.errors import BadInput, RunbookFailed
from opsbook.kops.params import CreateParams, validate
from opsbook.kops.preflight import advice, require_pass, run_preflight
from opsbook.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

REGION = "eu-central-1"
KEY = str(Path(__file__).parent / "data" / "create_devtest.pub")


def _clients() -> dict[str, Any]:
    return {s: boto3.client(s, region_name=REGION) for s in ("s3", "ec2", "route53", "autoscaling")}


def snapshot() -> dict[str, Any]:
    """Everything preflight could conceivably create, to prove it created nothing."""
    c = _clients()
    buckets = sorted(b["Name"] for b in c["s3"].list_buckets()["Buckets"])
    return {
        "buckets": buckets,
        "objects": {b: sorted(o["Key"] for o in c["s3"].list_objects_v2(Bucket=b).get("Contents", []))
                    for b in buckets},
        "vpcs": sorted(v["VpcId"] for v in c["ec2"].describe_vpcs()["Vpcs"]),
        "subnets": len(c["ec2"].describe_subnets()["Subnets"]),
        "instances": sorted(i["InstanceId"] for r in c["ec2"].describe_instances()["Reservations"]
                            for i in r["Instances"]),
        "key_pairs": sorted(k["KeyName"] for k in c["ec2"].describe_key_pairs()["KeyPairs"]),
        "zones": sorted(z["Id"] for z in c["route53"].list_hosted_zones()["HostedZones"]),
        "asgs": sorted(g["AutoScalingGroupName"]
                       for g in c["autoscaling"].describe_auto_scaling_groups()["AutoScalingGroups"]),
    }


def make_bucket(versioning: bool = True, encryption: bool = True, block_public: bool = True,
                public_acl: bool = False) -> str:
    s3 = _clients()["s3"]
    name = f"create-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if encryption:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    if block_public:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    if public_acl:
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    return name


def params(bucket: str, **over: Any) -> CreateParams:
    base: dict[str, Any] = dict(
        cluster_name=f"c{uuid.uuid4().hex[:6]}.k8s.local", region=REGION,
        zones="eu-central-1a,eu-central-1b,eu-central-1c", node_size="t2.medium", node_count=5,
        control_plane_zones="eu-central-1a", control_plane_size="m3.medium",
        network_cidr=f"10.{uuid.uuid4().int % 200 + 20}.0.0/16", topology="private",
        networking="kopeio-vxlan",
        bastion=True, ssh_public_key=KEY, state_store=f"s3://{bucket}", kubernetes_version="1.33.1",
        kops_version="v1.33.1")
    base.update(over)
    check_types = base.pop("check_instance_types", True)
    return validate(**base, check_instance_types=check_types)


@pytest.fixture
def env(sandbox: Sandbox) -> Iterator[None]:
    sandbox.activate()
    yield


def by_check(result: Any) -> dict[str, dict[str, str]]:
    return {r["check"]: r for r in result.to_dict("records")}


def test_compliant_account_passes(env: None) -> None:
    p = params(make_bucket())
    before = snapshot()
    result = run_preflight(p)
    assert snapshot() == before
    assert set(result["status"]) == {"pass"}, result[result["status"] != "pass"].to_dict("records")
    checks = by_check(result)
    assert set(checks) == {"aws.identity", "state.bucket", "state.versioning", "state.encryption",
                           "state.public-access", "dns.hosted-zone", "network.cidr-overlap", "region.zones",
                           "ec2.instance-types"}
    assert "arn:aws:sts::123456789012" in checks["aws.identity"]["message"]
    assert "gossip name" in checks["dns.hosted-zone"]["message"]
    require_pass(result)  # does not raise
    tips = by_check(advice(p, ec2=_clients()["ec2"]))
    assert "advice.burstable-standard" in tips and "advice.single-control-plane" in tips
    assert "m3.medium is a previous-generation type" in tips["advice.previous-generation"]["message"]


def test_compliant_with_route53_zone(env: None) -> None:
    domain = f"ex{uuid.uuid4().hex[:8]}.com"
    _clients()["route53"].create_hosted_zone(Name=domain, CallerReference=uuid.uuid4().hex)
    result = by_check(run_preflight(params(make_bucket(), cluster_name=f"k8s.{domain}")))
    assert result["dns.hosted-zone"]["status"] == "pass"
    assert f"hosted zone {domain}." in result["dns.hosted-zone"]["message"]


@pytest.mark.parametrize(("case", "check", "fragments"), [
    ("no bucket", "state.bucket", ["does not exist", "aws s3api create-bucket --bucket"]),
    ("versioning off", "state.versioning", ["versioning is off", "put-bucket-versioning",
                                            "Status=Enabled"]),
    ("no encryption", "state.encryption", ["no default encryption", "put-bucket-encryption"]),
    ("public bucket", "state.public-access", ["public-access block is missing", "AllUsers:READ",
                                              "put-public-access-block", "--acl private"]),
    ("missing hosted zone", "dns.hosted-zone", ["no Route53 hosted zone holds", "create-hosted-zone",
                                                ".k8s.local"]),
    ("overlapping CIDR", "network.cidr-overlap", ["overlaps existing VPC", "Pick a free block"]),
    ("unknown zone", "region.zones", ["eu-central-1z is not zone(s) of eu-central-1",
                                      "eu-central-1a, eu-central-1b, eu-central-1c"]),
    ("unknown instance type", "ec2.instance-types", ["t2.gigantic", "do not exist in eu-central-1"]),
])
def test_non_compliant_fails_with_fix_and_creates_nothing(env: None, case: str, check: str,
                                                         fragments: list[str]) -> None:
    over: dict[str, Any] = {}
    bucket = "missing-" + uuid.uuid4().hex[:12]
    if case != "no bucket":
        bucket = make_bucket(versioning=case != "versioning off", encryption=case != "no encryption",
                             block_public=case != "public bucket", public_acl=case == "public bucket")
    if case == "missing hosted zone":
        over["cluster_name"] = f"k8s.nozone{uuid.uuid4().hex[:6]}.com"
    if case == "overlapping CIDR":
        other = _clients()["ec2"].create_vpc(CidrBlock="10.250.0.0/16")["Vpc"]["VpcId"]
        over["network_cidr"] = "10.250.128.0/17"
    if case == "unknown zone":
        over["zones"] = "eu-central-1a,eu-central-1b,eu-central-1z"
    if case == "unknown instance type":
        over.update(node_size="t2.gigantic", check_instance_types=False)
    p = params(bucket, **over)
    before = snapshot()
    result = run_preflight(p)
    assert snapshot() == before, "preflight must not create anything"
    failed = result[result["status"] == "fail"]
    assert list(failed["check"]) == [check], result.to_dict("records")
    msg = by_check(result)[check]["message"]
    for f in fragments:
        assert f in msg, (f, msg)
    if case == "overlapping CIDR":
        assert other in msg
    with pytest.raises(RunbookFailed, match=f"nothing was created: {check}"):
        require_pass(result)


def test_validation_asks_ec2_for_instance_types(env: None) -> None:
    before = snapshot()
    with pytest.raises(BadInput, match=r"instance type t2\.gigantic does not exist in eu-central-1"):
        params(make_bucket(), node_size="t2.gigantic")
    assert snapshot()["vpcs"] == before["vpcs"]
