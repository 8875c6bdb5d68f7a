"""validate-cluster's kops group against the real ``kops validate cluster`` v1.33.1, on the same sandbox.

kops reads the cluster from a moto state store (published by
:mod:`opsbook.sandbox.kops_validate`: cluster, instance groups, the sandbox CA as
``kubernetes-ca``) and talks to the sandbox's kube-apiserver with
``--api-server https://127.0.0.1:<port>``. opsbook reads the same store. Each
scenario adds objects to the running sandbox, asserts the two verdicts and the
``(type, name)`` failure lists are equal (and what they are), and removes the
objects again.

One scenario per case of issue 13 that moto and the sandbox can stage:

1. a bastion instance group (instances that never join) ........... test_bastion_group
2. a detached instance, a Standby member, a stray tagged instance ... test_detached_standby_and_stray_instances
3. a Node whose instance is in no ASG ............................... test_node_without_an_asg
4. desired capacity above the instances / minSize not the target .... test_group_short_of_desired_capacity,
                                                                       test_group_with_min_size_zero
5. an ASG deleted ................................................... test_deleted_asg
6. Ready=True with NetworkUnavailable=True .......................... test_network_unavailable_node
7. a Terminating critical pod ....................................... test_terminating_critical_pod

Not stageable here (covered from kops' source in ``test_kops_parity_unit.py``):
warm-pool instances (moto's DescribeWarmPool returns no instances), an ASG *being*
deleted (moto deletes at once, no ``Status``), an ASG instance in lifecycle state
``Terminating`` (moto removes it at once), a Terminating control-plane mirror pod
(kwok strips the finalizers of pods on its nodes), ``dns/apiserver`` (the sandbox is
a gossip cluster, for which kops skips the check) and ``--wait`` timing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s

from k8s_helpers import wait_until
from opsbook.analysis import validate as v
from opsbook.kops.toolchain import ensure_kops
from opsbook.runbooks import validate_cluster as vc
from opsbook.sandbox import Sandbox
from opsbook.sandbox import kops_validate as kv

pytestmark = [pytest.mark.sandbox, pytest.mark.private_sandbox]


@dataclass
class Oracle:
    sb: Sandbox
    kops: Path
    store: str
    api: k8s.ApiClient
    cluster: str
    region: str

    def ours(self) -> v.Validation:
        src = vc.Sources(api=self.api, cluster=self.cluster, region=self.region, state_store=self.store)
        return v.evaluate(vc.collect(src))

    def both(self) -> tuple[kv.KopsRun, v.Validation]:
        """kops and opsbook on a state that did not change while kops ran (else try again)."""
        for _ in range(4):
            before = self.ours()
            theirs = kv.run(self.sb, self.kops)
            after = self.ours()
            if before.kops.keys() == after.kops.keys():
                return theirs, after
        raise AssertionError("the sandbox kept changing while kops ran")


@pytest.fixture(scope="module")
def oracle(sandbox: Sandbox, api: k8s.ApiClient) -> Oracle:
    kops = ensure_kops(lambda m: print(f"[kops] {m}"))
    st = sandbox.state()
    assert st is not None
    store = kv.publish(sandbox, kops)
    o = Oracle(sandbox, kops, store, api, st.cluster_name, st.region)
    wait_until(lambda: o.ours().kops_passed, 60, "the sandbox to pass kops' rules")
    return o


def assert_same(theirs: kv.KopsRun, ours: v.Validation, expected: list[tuple[str, str]]) -> None:
    assert theirs.keys() == expected, theirs.failures
    assert ours.kops.keys() == expected, ours.kops.failures
    assert theirs.passed == ours.kops_passed == (not expected)
    # v1.33.1 exits 1 ("validation failed: cluster not yet healthy"): its os.Exit(2) is unreachable
    assert theirs.exit_code == (1 if expected else 0), theirs.stderr[-500:]
    assert sorted((n["name"], n["role"]) for n in theirs.nodes) == sorted(
        zip(ours.kops.nodes["name"], ours.kops.nodes["role"], strict=True))
    # the opsbook verdict follows the kops group (no beyond-kops finding reaches fail_on here)
    assert ours.passed == ours.kops_passed, ours.findings[["severity", "check", "object", "message"]].to_string()


# -- staging helpers -----------------------------------------------------------------------------------


def _clients(o: Oracle) -> tuple[Any, Any]:
    return boto3.client("autoscaling", region_name=o.region), boto3.client("ec2", region_name=o.region)


def _tags(o: Oracle, ig: str, role: str) -> dict[str, str]:
    return {"KubernetesCluster": o.cluster, f"kubernetes.io/cluster/{o.cluster}": "owned",
            "Name": f"{ig}.{o.cluster}", "kops.k8s.io/instancegroup": ig, f"k8s.io/role/{role}": "1"}


@pytest.fixture
def group(oracle: Oracle) -> Iterator[Callable[..., list[str]]]:
    """Add an instance group: its ASG (kops name and tags) and/or its state-store entry; removed after."""
    asg, ec2 = _clients(oracle)
    made: list[tuple[str, bool]] = []
    subnet = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"nodes-eu-central-1a.{oracle.cluster}"])[
        "AutoScalingGroups"][0]["VPCZoneIdentifier"].split(",")[0]
    spec = kv.sandbox_spec(oracle.sb)

    def add(ig: str, role: str = "Node", desired: int = 1, min_size: int | None = None, with_asg: bool = True,
            stored: bool = True) -> list[str]:
        name = f"{ig}.{oracle.cluster}"
        made.append((ig, with_asg))
        if stored:
            kv.put_instance_group(spec, kv.instance_group_document(
                ig, role, "t3.small", "eu-central-1a", desired if min_size is None else min_size, max(desired, 3)))
        if not with_asg:
            return []
        tags = _tags(oracle, ig, role.lower() if role != "Node" else "node")
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
            "ImageId": "ami-12c6146b", "InstanceType": "t3.small",
            "TagSpecifications": [{"ResourceType": "instance",
                                   "Tags": [{"Key": k, "Value": x} for k, x in tags.items()]}]})
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=0, MaxSize=max(desired, 3), DesiredCapacity=desired, VPCZoneIdentifier=subnet,
            Tags=[{"Key": k, "Value": x, "PropagateAtLaunch": True, "ResourceId": name,
                   "ResourceType": "auto-scaling-group"} for k, x in tags.items()])
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in g["Instances"]]

    yield add
    for ig, with_asg in made:
        kv.delete_instance_group(spec, ig)
        if with_asg:
            name = f"{ig}.{oracle.cluster}"
            found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
            ids = [i["InstanceId"] for g in found for i in g["Instances"]]
            if found:
                asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
            if ids:
                ec2.terminate_instances(InstanceIds=ids)
            ec2.delete_launch_template(LaunchTemplateName=name)


@pytest.fixture
def nodes(api: k8s.ApiClient) -> Iterator[Callable[..., str]]:
    """Add a Node that no kwok controller manages (its status stays as written); removed after."""
    core = k8s.CoreV1Api(api)
    made: list[str] = []

    def add(instance_id: str, ready: str = "True", network_unavailable: str | None = None) -> str:
        name = f"ip-10-99-{len(made)}-{uuid.uuid4().hex[:4]}.eu-central-1.compute.internal"
        core.create_node(k8s.V1Node(metadata=k8s.V1ObjectMeta(name=name, labels={
            "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "eu-central-1a",
            "kops.k8s.io/instancegroup": "nodes-eu-central-1a", "node-role.kubernetes.io/node": ""}),
            spec=k8s.V1NodeSpec(provider_id=f"aws:///eu-central-1a/{instance_id}")))
        made.append(name)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conds = [{"type": "Ready", "status": ready, "reason": "KubeletReady", "lastHeartbeatTime": now,
                  "lastTransitionTime": now}]
        if network_unavailable is not None:
            conds.append({"type": "NetworkUnavailable", "status": network_unavailable, "reason": "NoRouteCreated",
                          "lastHeartbeatTime": now, "lastTransitionTime": now})
        core.patch_node_status(name, {"status": {"conditions": conds, "addresses": [
            {"type": "InternalIP", "address": f"10.99.{len(made)}.1"}]}})
        return name

    yield add
    for name in made:
        core.delete_node(name)


# -- scenarios -----------------------------------------------------------------------------------------


def test_healthy_sandbox_is_valid_for_both(oracle: Oracle) -> None:
    theirs, ours = oracle.both()
    assert_same(theirs, ours, [])
    assert len(theirs.nodes) == 4 and theirs.exit_code == 0
    print(f"kops validate: {theirs.seconds}s")


def test_bastion_group(oracle: Oracle, group: Callable[..., list[str]]) -> None:
    ids = group("bastions", role="Bastion", desired=1)
    assert len(ids) == 1  # moto launched it; it never joins
    assert_same(*oracle.both(), [])


def test_detached_standby_and_stray_instances(oracle: Oracle, group: Callable[..., list[str]]) -> None:
    asg, ec2 = _clients(oracle)
    ids = group("nodes-surge", desired=2)
    asg_name = f"nodes-surge.{oracle.cluster}"
    # kops' rolling update detaches a surge instance: out of the ASG, tagged kops.k8s.io/detached-from-asg
    asg.detach_instances(InstanceIds=[ids[0]], AutoScalingGroupName=asg_name, ShouldDecrementDesiredCapacity=True)
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "kops.k8s.io/detached-from-asg", "Value": asg_name}])
    # a member in Standby is still a member: it must join
    asg.enter_standby(InstanceIds=[ids[1]], AutoScalingGroupName=asg_name, ShouldDecrementDesiredCapacity=True)
    # an instance tagged with a group but in no ASG (e.g. launched by hand) is not looked at
    stray = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.small", MinCount=1, MaxCount=1,
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                  {"Key": k, "Value": x} for k, x in _tags(oracle, "nodes-surge", "node").items()]}]
                              )["Instances"][0]["InstanceId"]
    try:
        assert_same(*oracle.both(), [("Machine", ids[1])])
    finally:
        ec2.terminate_instances(InstanceIds=[ids[0], stray])


def test_node_without_an_asg(oracle: Oracle, nodes: Callable[..., str]) -> None:
    nodes("i-0000000000000dead", ready="False")
    nodes("i-0000000000000beef", ready="True")
    assert_same(*oracle.both(), [])


def test_group_short_of_desired_capacity(oracle: Oracle, group: Callable[..., list[str]],
                                         nodes: Callable[..., str]) -> None:
    _, ec2 = _clients(oracle)
    ids = group("nodes-short", desired=2, min_size=1)
    nodes(ids[0])  # one instance joined
    # the other lost its group tag: kops finds a group's instances by that tag, so it is no member
    # (moto replaces a terminated ASG instance at once, so "terminated" cannot stage a shortfall)
    ec2.delete_tags(Resources=[ids[1]], Tags=[{"Key": "kops.k8s.io/instancegroup"}])
    theirs, ours = oracle.both()
    assert_same(theirs, ours, [("InstanceGroup", "nodes-short")])
    assert theirs.failures[0]["message"] == 'InstanceGroup "nodes-short" did not have enough nodes 1 vs 2'
    assert ours.kops.failures["message"].iloc[0] == theirs.failures[0]["message"]


def test_group_with_min_size_zero(oracle: Oracle, group: Callable[..., list[str]]) -> None:
    group("nodes-zero", desired=0, min_size=0)
    group("nodes-big-min", desired=0, min_size=3)  # minSize is never the target
    assert_same(*oracle.both(), [])


def test_deleted_asg(oracle: Oracle, group: Callable[..., list[str]]) -> None:
    group("nodes-gone", with_asg=False)
    theirs, ours = oracle.both()
    assert_same(theirs, ours, [("InstanceGroup", "nodes-gone")])
    assert ours.kops.failures["message"].iloc[0] == theirs.failures[0]["message"]


def test_network_unavailable_node(oracle: Oracle, group: Callable[..., list[str]], nodes: Callable[..., str]) -> None:
    ids = group("nodes-net", desired=1)
    name = nodes(ids[0], ready="True", network_unavailable="True")
    theirs, ours = oracle.both()
    assert_same(theirs, ours, [("Node", name)])
    assert ours.kops.failures["message"].iloc[0] == theirs.failures[0]["message"]


def test_terminating_critical_pod(oracle: Oracle, api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_pod(namespace, k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="agent", finalizers=["opsbook.test/hold"]),
        spec=k8s.V1PodSpec(node_name="no-such-node", priority_class_name="system-cluster-critical",
                           containers=[k8s.V1Container(name="agent", image="example/agent:1.0")])))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    core.patch_namespaced_pod_status("agent", namespace, {"status": {"phase": "Running", "containerStatuses": [
        {"name": "agent", "image": "example/agent:1.0", "imageID": "", "ready": False, "restartCount": 0,
         "state": {"running": {"startedAt": now}}}]}})
    core.delete_namespaced_pod("agent", namespace, grace_period_seconds=0)  # no kubelet to confirm a grace
    try:
        wait_until(lambda: core.read_namespaced_pod("agent", namespace).metadata.deletion_timestamp, 10,
                   "the pod to be Terminating")
        theirs, ours = oracle.both()
        assert_same(theirs, ours, [("Pod", f"{namespace}/agent")])
        assert ours.kops.failures["message"].iloc[0] == theirs.failures[0]["message"]
    finally:
        core.patch_namespaced_pod("agent", namespace, {"metadata": {"finalizers": None}})
        wait_until(lambda: "agent" not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items},
                   30, "the pod to be gone")


def test_run_record_reads_like_kops_json(oracle: Oracle, group: Callable[..., list[str]], tmp_path: Path) -> None:
    """`opsbook run validate-cluster` records kops' failures/nodes shape (`.records.validation`)."""
    import json
    import os
    import subprocess
    import sys

    group("nodes-gone", with_asg=False)
    theirs = kv.run(oracle.sb, oracle.kops)
    opsbook = Path(sys.executable).parent / "opsbook"
    proc = subprocess.run([str(opsbook), "run", "validate-cluster", "-p", f"state_store={oracle.store}",
                           "--output", str(tmp_path)], env={**os.environ, **oracle.sb.activate()},
                          capture_output=True, text=True, timeout=300, check=False)
    record = json.loads(next((tmp_path / "validate-cluster").glob("*.json")).read_text())
    body = record["records"]["validation"]
    assert proc.returncode != 0 and record["status"] != "ok", proc.stdout[-800:]
    assert body["status"] == "FAIL" and body["kops"] == {"status": "FAIL", "failures": 1}
    # the same list kops -o json prints, field for field but instanceGroup (kops: the whole object)
    assert [{k: f[k] for k in ("type", "name", "message")} for f in body["failures"]] == [
        {k: f[k] for k in ("type", "name", "message")} for f in theirs.failures]
    assert body["failures"][0]["instanceGroup"] == theirs.failures[0]["instanceGroup"]["metadata"]["name"]
    assert sorted(n["name"] for n in body["nodes"]) == sorted(n["name"] for n in theirs.nodes)
