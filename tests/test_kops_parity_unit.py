"""kops validate cluster v1.33.1 rules that moto or the sandbox cannot stage, from kops' source.

Each test names the kops code it follows (``pkg/validation/validate_cluster.go``,
``node_conditions.go``, ``upup/pkg/fi/cloudup/awsup/aws_cloud.go``, ``cmd/kops/validate_cluster.go``).
The cases the sandbox *can* stage are compared with the real kops binary in
``test_kops_differential.py``; these are the rest:

* warm-pool instances: moto's ``DescribeWarmPool`` never returns instances;
* an ASG being deleted: moto deletes at once, ``Status`` is never "Delete in progress";
* an ASG instance in lifecycle state ``Terminating``: moto removes it at once;
* a Terminating control-plane mirror pod: kwok strips finalizers from pods on its nodes;
* ``dns/apiserver``: the sandbox is a gossip cluster (kops skips the check for gossip names);
* ``--wait`` ending in the middle of a streak, and errors retried while waiting (timing).
"""

from __future__ import annotations

from itertools import chain, repeat

import pandas as pd
import pytest

from opsbook.analysis import kops_parity as kp
from opsbook.analysis import validate as v
from opsbook.errors import AwsError, BadInput
from test_validate_unit import cloud, control_plane_pods, healthy_inputs, node, pod, snapshot

NODES = [node("cp1", "master-a", cp=True), node("n1", "nodes-a"), node("n2", "nodes-a")]


def verdict(inputs: v.Inputs) -> kp.KopsVerdict:
    return v.evaluate(inputs).kops


def test_warm_pool_instances_count_and_need_not_join() -> None:
    # aws_cloud.go buildCloudInstance: LifecycleState "Warmed:*" -> WarmPool; validateNodes: a WarmPool
    # member without a node is not expected to join, and it is one of allMembers for the size check.
    inputs = healthy_inputs()
    inputs.cloud = cloud({"master-a.masters.c": ["i-cp1"], "nodes-a.c": ["i-n1", "i-n2", "i-warm"]},
                         desired={"nodes-a.c": 3}, states={"i-warm": "Warmed:Stopped"})
    got = verdict(inputs)
    assert got.passed and got.keys() == []
    assert got.groups.set_index("instance_group").loc["nodes-a", "members"] == 3


def test_asg_being_deleted_is_missing_from_the_cloud_provider() -> None:
    # FindAutoscalingGroups skips an ASG with a Status ("Delete in progress"); the group is then unseen.
    inputs = healthy_inputs()
    assert inputs.cloud is not None
    inputs.cloud.asgs.loc[inputs.cloud.asgs["asg"] == "nodes-a.c", "status"] = "Delete in progress"
    got = verdict(inputs)
    assert got.keys() == [("InstanceGroup", "nodes-a")]
    assert "missing from the cloud provider" in got.failures["message"].iloc[0]
    # its nodes are no longer validated at all: a NotReady one adds nothing
    inputs.snapshot = snapshot([NODES[0], node("n1", "nodes-a", ready="False"), NODES[2]], control_plane_pods("cp1"))
    assert verdict(inputs).keys() == [("InstanceGroup", "nodes-a")]


def test_terminating_asg_instance_is_not_a_member() -> None:
    # buildCloudInstance: LifecycleState Terminating -> ignored; desired 2 vs 1 member.
    inputs = healthy_inputs()
    inputs.cloud = cloud({"master-a.masters.c": ["i-cp1"], "nodes-a.c": ["i-n1", "i-n2"]},
                         states={"i-n2": "Terminating"})
    got = verdict(inputs)
    assert got.keys() == [("InstanceGroup", "nodes-a")]
    assert got.failures["message"].iloc[0] == 'InstanceGroup "nodes-a" did not have enough nodes 1 vs 2'


def test_terminating_control_plane_pod_still_counts_and_critical_pods_of_any_phase() -> None:
    # collectPodFailures: the static-pod match happens before any phase/deletion test.
    pods = control_plane_pods("cp1")
    pods[0]["metadata"]["deletionTimestamp"] = "2026-01-10T11:59:00Z"
    pods += [
        pod("kube-system", "failed", "n1", phase="Failed", ready=False, priority_class="system-node-critical"),
        pod("kube-system", "pending", "n1", phase="Pending", priority_class="system-cluster-critical"),
        pod("kube-system", "done", "n1", phase="Succeeded", ready=False, priority_class="system-node-critical"),
        pod("kube-system", "by-value", "n1", ready=False, priority_class="high-priority"),
    ]
    inputs = healthy_inputs()
    inputs.snapshot = snapshot(NODES, pods)
    got = verdict(inputs)
    # only the class *name* counts (a pod of priority value 2e9 under another class name does not)
    assert got.keys() == [("Pod", "kube-system/failed"), ("Pod", "kube-system/pending")]
    msgs = dict(zip(got.failures["name"], got.failures["message"], strict=True))
    assert msgs["kube-system/failed"] == 'system-node-critical pod "failed" is not ready (app)'
    assert msgs["kube-system/pending"] == 'system-cluster-critical pod "pending" is pending'
    # system-node-critical failures carry the node's instance group, cluster-critical ones none
    igs = dict(zip(got.failures["name"], got.failures["instance_group"], strict=True))
    assert igs == {"kube-system/failed": "nodes-a", "kube-system/pending": ""}


def test_control_plane_pods_are_looked_for_on_ready_control_plane_nodes_only() -> None:
    inputs = healthy_inputs()
    web = [pod("default", "web", "n1")]
    inputs.snapshot = snapshot([node("cp1", "master-a", cp=True, network_unavailable="True"), *NODES[1:]], web)
    # NetworkUnavailable=True makes cp1 not ready (isNodeReady), so no "missing pod" failures
    assert verdict(inputs).keys() == [("Node", "cp1")]
    inputs.snapshot = snapshot(NODES, web)
    assert verdict(inputs).keys() == [("Node", "cp1")] * 3


def test_dns_placeholder_reports_only_dns() -> None:
    # Validate(): a non-gossip cluster whose API name resolves to 203.0.113.123 -> dns/apiserver, return
    inputs = healthy_inputs()
    inputs.snapshot = snapshot([node("cp1", "master-a", cp=True, ready="False"), *NODES[1:]],
                               [pod("default", "web", "n1")])
    inputs.api_addresses = ["203.0.113.123"]
    val = v.evaluate(inputs)
    assert val.kops.keys() == [("dns", "apiserver")] and val.kops.nodes.empty
    assert ("kops.dns.apiserver", "dns/apiserver") in set(zip(val.findings["check"], val.findings["object"],
                                                                 strict=True))
    assert kp.is_gossip("opsbook.k8s.local") and not kp.is_gossip("prod.example.com")


def test_json_shape_is_kops() -> None:
    inputs = healthy_inputs()
    inputs.snapshot = snapshot([NODES[0], node("n1", "nodes-a", ready="Unknown"), NODES[2]],
                               control_plane_pods("cp1"))
    body = verdict(inputs).as_json()
    assert body["failures"] == [{"type": "Node", "name": "n1", "message": 'node "n1" of role "node" is not ready',
                                 "instanceGroup": "nodes-a"}]
    assert body["nodes"] == [
        {"name": "cp1", "zone": "eu-central-1a", "role": "control-plane", "hostname": "cp1", "status": "True"},
        {"name": "n1", "zone": "eu-central-1a", "role": "node", "hostname": "n1", "status": "Unknown"},
        {"name": "n2", "zone": "eu-central-1a", "role": "node", "hostname": "n2", "status": "True"},
    ]


# -- --wait / --count (cmd/kops/validate_cluster.go RunValidateCluster) ------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _good() -> v.Validation:
    return v.evaluate(healthy_inputs())


def _bad() -> v.Validation:
    inputs = healthy_inputs()
    inputs.snapshot = snapshot([NODES[0], node("n1", "nodes-a", ready="False"), NODES[2]], control_plane_pods("cp1"))
    return v.evaluate(inputs)


def test_wait_finishes_a_streak_that_runs_past_the_deadline() -> None:
    # kops checks the deadline only before an attempt and only while consecutive == 0
    good, bad = _good(), _bad()
    seq = chain([bad, bad, good], repeat(good))
    clock = Clock()
    run = v.validate_until(lambda: next(seq), wait_s=12, count=3, interval_s=5, clock=clock, sleep=clock.sleep)
    # attempts at t=0, 5, 10 (first pass), 15 and 20 (past the 12 s deadline): the streak completes
    assert run.passed and list(run.attempts["passed"]) == [False, False, True, True, True]
    assert clock.t == 20


def test_wait_stops_at_the_deadline_once_the_streak_breaks() -> None:
    good, bad = _good(), _bad()
    seq = chain([bad, bad, good, bad], repeat(good))
    clock = Clock()
    run = v.validate_until(lambda: next(seq), wait_s=12, count=3, interval_s=5, clock=clock, sleep=clock.sleep)
    assert not run.passed and len(run.attempts) == 4 and "wait time (12s) exceeded" in run.reason
    assert "Node/n1" in run.reason


def test_any_error_is_retried_while_waiting_but_bad_input_is_not() -> None:
    good = _good()
    calls = iter([AwsError("throttled"), good])

    def attempt() -> v.Validation:
        x = next(calls)
        if isinstance(x, Exception):
            raise x
        return x

    clock = Clock()
    run = v.validate_until(attempt, wait_s=60, interval_s=5, clock=clock, sleep=clock.sleep)
    assert run.passed and list(run.attempts["error"]) == ["throttled", ""]
    with pytest.raises(AwsError):
        v.validate_until(lambda: (_ for _ in ()).throw(AwsError("x")), wait_s=0)

    def bad_input() -> v.Validation:
        raise BadInput("no")

    with pytest.raises(BadInput):
        v.validate_until(bad_input, wait_s=60, interval_s=5, clock=clock, sleep=clock.sleep)


def test_summary_carries_kops_shaped_failures_and_both_verdicts() -> None:
    bad = _bad()
    run = v.validate_until(lambda: bad, options=v.Options(max_unready_nodes=1))
    assert run.passed is False  # the attempt was built without the policy: opsbook fails too
    tolerant = v.evaluate(bad.inputs, v.Options(max_unready_nodes=1))
    run = v.validate_until(lambda: tolerant, options=v.Options(max_unready_nodes=1))
    s = run.summary()
    assert s["status"] == "PASS" and s["kops"] == {"status": "FAIL", "failures": 1}
    assert s["failures"] == [{"type": "Node", "name": "n1", "message": 'node "n1" of role "node" is not ready',
                              "instanceGroup": "nodes-a"}]
    assert [n["name"] for n in s["nodes"]] == ["cp1", "n1", "n2"]
    assert s["beyond_kops"]["policies"]["max_unready_nodes"] == 1 and s["beyond_kops"]["tolerated_nodes"] == ["n1"]
    assert "kops validate cluster: FAIL" in run.summary_line()
    assert isinstance(pd.DataFrame(s["failures"]), pd.DataFrame)
