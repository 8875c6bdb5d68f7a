"""The sandbox is a real control plane: scheduler, kwok, node controller, restarts."""

from __future__ import annotations

import time

import boto3
import pytest
from kubernetes import client as k8s

from k8s_helpers import deployment as _deployment
from k8s_helpers import running_pods as _running
from k8s_helpers import wait_until as _wait
from opsbook.sandbox import Sandbox, faults

pytestmark = [pytest.mark.sandbox, pytest.mark.private_sandbox]








def test_deployment_reaches_three_running_pods(api: k8s.ApiClient, namespace: str) -> None:
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("web", 3))
    core = k8s.CoreV1Api(api)
    pods = _wait(lambda: (r := _running(core, namespace, "web")) and len(r) == 3 and r, 60, "3 running pods")
    assert {p.spec.node_name for p in pods} <= {n.metadata.name for n in core.list_node().items}
    assert all(p.status.pod_ip for p in pods)


def test_nodes_look_like_kops_and_match_moto(sandbox: Sandbox, api: k8s.ApiClient) -> None:
    st = sandbox.state()
    nodes = k8s.CoreV1Api(api).list_node().items
    assert len(nodes) >= 4
    igs = {n.metadata.labels["kops.k8s.io/instancegroup"] for n in nodes}
    assert "master-eu-central-1a" in igs and {"nodes-eu-central-1a", "nodes-eu-central-1b"} <= igs
    ec2 = boto3.client("ec2", region_name=st.region)
    instances = {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    for n in nodes:
        instance_id = n.spec.provider_id.rsplit("/", 1)[1]
        inst = instances[instance_id]
        assert inst["PrivateDnsName"] == n.metadata.name
        assert inst["InstanceType"] == n.metadata.labels["node.kubernetes.io/instance-type"]
        assert inst["Placement"]["AvailabilityZone"] == n.metadata.labels["topology.kubernetes.io/zone"]
    groups = boto3.client("autoscaling", region_name=st.region).describe_auto_scaling_groups()[
        "AutoScalingGroups"
    ]
    assert sum(g["DesiredCapacity"] for g in groups) == len(nodes)


@pytest.mark.slow
def test_lost_node_is_tainted_and_its_pods_evicted(
    sandbox: Sandbox, api: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(api)
    workers = sorted(n.metadata.name for n in core.list_node(label_selector="kubernetes.io/role=node").items)
    assert len(workers) >= 3, "node failure needs >= 3 nodes (else master disruption mode evicts nothing)"
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("api", 3))
    pods = _wait(lambda: (r := _running(core, namespace, "api")) and len(r) == 3 and r, 60, "3 running pods")
    victim = pods[0].spec.node_name
    assert victim in workers
    on_victim = [p.metadata.name for p in pods if p.spec.node_name == victim]
    try:
        faults.stop_heartbeat(sandbox, api, victim)
        t0 = time.monotonic()

        def unready():
            node = core.read_node(victim)
            ready = next(c for c in node.status.conditions if c.type == "Ready")
            taints = {(t.key, t.effect) for t in node.spec.taints or []}
            return ready.status == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints

        _wait(unready, 90, "node Unknown with the unreachable:NoExecute taint")
        t_unready = time.monotonic() - t0

        def evicted_and_replaced():
            pods = core.list_namespaced_pod(namespace, label_selector="app=api").items
            gone = all(
                p.metadata.deletion_timestamp is not None for p in pods if p.metadata.name in on_victim
            )
            elsewhere = [p for p in _running(core, namespace, "api") if p.spec.node_name != victim]
            return gone and len(elsewhere) == 3

        _wait(evicted_and_replaced, 90, "pods evicted and replaced on other nodes")
        node_events = core.list_event_for_all_namespaces(field_selector=f"involvedObject.name={victim}").items
        pod_events = core.list_namespaced_event(namespace).items
        assert "NodeNotReady" in {e.reason for e in node_events}
        assert "TaintManagerEviction" in {e.reason for e in pod_events if e.involved_object.name in on_victim}
        assert t_unready < 60
    finally:
        faults.resume_heartbeat(sandbox, api, victim)
        faults.wait_settled(api, 90)


@pytest.mark.slow
def test_apiserver_restart_keeps_objects(sandbox: Sandbox, api: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="before-restart"), data={"k": "v"})
    )
    timings = faults.restart_apiserver(sandbox)
    assert timings["ready_at"] >= timings["started_at"] > timings["stopped_at"]
    assert core.read_namespaced_config_map("before-restart", namespace).data == {"k": "v"}
    from opsbook.sandbox.cluster import components_running

    time.sleep(12)  # longer than the controllers' 10 s lease renew deadline
    assert all(components_running(sandbox.kwok_workdir, sandbox.name).values())
    # nodes whose Lease lapsed during the restart are NotReady (tainted NoSchedule) until kwok renews it
    faults.wait_settled(api, 90)
    # controllers still work after the restart: a new Deployment gets scheduled and runs
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("after", 2))
    try:
        _wait(lambda: len(_running(core, namespace, "after")) == 2, 90, "pods scheduled after the restart")
    except AssertionError as e:
        pods = [(p.metadata.name, p.spec.node_name, p.status.phase)
                for p in core.list_namespaced_pod(namespace).items]
        rs = [(r.metadata.name, r.status.replicas)
              for r in k8s.AppsV1Api(api).list_namespaced_replica_set(namespace).items]
        raise AssertionError(f"{e}: replicasets {rs}, pods {pods}") from None
