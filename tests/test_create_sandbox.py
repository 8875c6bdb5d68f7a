"""create-cluster with provider=sandbox: the team's original parameters shape the local cluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
from kubernetes import client as k8s

from opsbook.errors import BadInput
from opsbook.kops.params import CreateParams, validate
from opsbook.kops.spec import ClusterSpec
from opsbook.runbooks import validate_cluster as vc
from opsbook.runbooks.create_cluster import apply, compare_sandbox, shape_sandbox
from opsbook.sandbox import Sandbox

pytestmark = pytest.mark.sandbox

KEY = str(Path(__file__).parent / "data" / "create_devtest.pub")


def original_params(**over: object) -> CreateParams:
    """The team's original command, verbatim (172.10.0.0/16 is accepted for the sandbox only)."""
    kw: dict[str, object] = dict(
        cluster_name="opsbook.k8s.local", region="eu-central-1",
        zones="eu-central-1a,eu-central-1b,eu-central-1c", node_size="t2.medium", node_count=5,
        control_plane_zones="eu-central-1a", control_plane_size="m3.medium", network_cidr="172.10.0.0/16",
        topology="private", networking="kopeio-vxlan", bastion=True, ssh_public_key=KEY,
        state_store="s3://opsbook-kops-state", kubernetes_version="1.33.1", kops_version="v1.33.1",
        provider="sandbox")
    kw.update(over)
    return validate(**kw)  # type: ignore[arg-type]


@pytest.fixture
def restore_shape(sandbox: Sandbox) -> Iterator[None]:
    """Put the shared sandbox back into the shape it had (other tests expect the default)."""
    st = sandbox.state()
    assert st is not None
    before = ClusterSpec(**{**st.spec, "zones": tuple(st.spec["zones"]),
                            "master_zones": tuple(st.spec["master_zones"])})
    yield
    shape_sandbox(before, sandbox.name, stream=lambda m: None)
    sandbox.activate()


def test_public_cidr_is_only_a_note_for_the_sandbox(sandbox: Sandbox) -> None:
    p = original_params(ssh_public_key="")
    assert any("public address space" in n for n in p.notes)
    with pytest.raises(BadInput, match=r"172\.10\.0\.0/16 is public address space"):
        original_params(provider="kops")


def test_sandbox_provider_matches_original_spec(sandbox: Sandbox, api: k8s.ApiClient,
                                                restore_shape: None) -> None:
    p = original_params()
    core = k8s.CoreV1Api(api)
    nodes_before = sorted(n.metadata.name for n in core.list_node().items)

    dry = apply(p, apply=False, sandbox=sandbox.name)
    assert dry.action == "dry-run" and not dry.changed
    assert "nodes-eu-central-1a=2×t2.medium" in dry.message
    assert sorted(n.metadata.name for n in core.list_node().items) == nodes_before

    lines: list[str] = []
    result = apply(p, apply=True, sandbox=sandbox.name, stream=lines.append)
    assert result.action in ("reshaped", "unchanged", "created")
    sandbox.activate()

    table = compare_sandbox(p.spec(), api)
    assert table["match"].all(), table.to_dict("records")
    assert dict(zip(table["instance_group"], table["expected"], strict=True)) == {
        "master-eu-central-1a": 1, "nodes-eu-central-1a": 2, "nodes-eu-central-1b": 2,
        "nodes-eu-central-1c": 1}

    nodes = core.list_node().items
    assert len(nodes) == 6
    by_ig: dict[str, list[k8s.V1Node]] = {}
    for n in nodes:
        by_ig.setdefault(n.metadata.labels["kops.k8s.io/instancegroup"], []).append(n)
    assert {ig: len(v) for ig, v in by_ig.items()} == {
        "master-eu-central-1a": 1, "nodes-eu-central-1a": 2, "nodes-eu-central-1b": 2,
        "nodes-eu-central-1c": 1}
    for ig, ns in by_ig.items():
        for n in ns:
            zone = ig.removeprefix("master-").removeprefix("nodes-")
            assert n.metadata.labels["topology.kubernetes.io/zone"] == zone
            assert n.metadata.labels["node.kubernetes.io/instance-type"] == (
                "m3.medium" if ig.startswith("master") else "t2.medium")
            assert n.spec.provider_id.startswith(f"aws:///{zone}/i-")

    ec2 = boto3.client("ec2", region_name="eu-central-1")
    running = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:KubernetesCluster", "Values": ["opsbook.k8s.local"]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]
    assert sorted(i["PrivateDnsName"] for i in running) == sorted(n.metadata.name for n in nodes)
    assert sorted(i["InstanceType"] for i in running) == ["m3.medium"] + ["t2.medium"] * 5
    asgs = {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in boto3.client(
        "autoscaling", region_name="eu-central-1").describe_auto_scaling_groups()["AutoScalingGroups"]}
    assert {k: v for k, v in asgs.items() if k.endswith(".opsbook.k8s.local")} == {
        "master-eu-central-1a.opsbook.k8s.local": 1, "nodes-eu-central-1a.opsbook.k8s.local": 2,
        "nodes-eu-central-1b.opsbook.k8s.local": 2, "nodes-eu-central-1c.opsbook.k8s.local": 1}

    run = vc.validate_cluster("opsbook.k8s.local", "eu-central-1", api=api, wait=60, interval=2)
    assert run.passed, run.reason

    again = apply(p, apply=True, sandbox=sandbox.name)
    assert again.action == "unchanged" and not again.changed
    assert sorted(n.metadata.name for n in core.list_node().items) == sorted(n.metadata.name for n in nodes)
    st = sandbox.state()
    assert st is not None and st.spec["node_count"] == 5 and asdict(p.spec())["node_count"] == 5


def test_sandbox_shrinks_and_changes_type(sandbox: Sandbox, api: k8s.ApiClient, restore_shape: None) -> None:
    p = original_params(node_count=2, node_size="t3.medium", zones="eu-central-1a,eu-central-1b")
    result = apply(p, apply=True, sandbox=sandbox.name, stream=lambda m: None)
    assert result.action == "reshaped" and result.changed
    sandbox.activate()
    table = compare_sandbox(p.spec(), api)
    assert table["match"].all(), table.to_dict("records")
    nodes = k8s.CoreV1Api(api).list_node().items
    assert sorted(n.metadata.labels["node.kubernetes.io/instance-type"] for n in nodes) == [
        "m3.medium", "t3.medium", "t3.medium"]
    assert "deleted nodes-eu-central-1c.opsbook.k8s.local" in result.output


def test_sandbox_refuses_other_cluster_name(sandbox: Sandbox) -> None:
    with pytest.raises(BadInput, match=r"holds cluster opsbook\.k8s\.local"):
        apply(original_params(cluster_name="other.k8s.local"), apply=True, sandbox=sandbox.name)
