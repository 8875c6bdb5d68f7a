"""Fault injection on the sandbox: the outages the team has lived through, on demand.

Every function here acts on a *sandbox* (local kwok cluster, moto server) and
says how to undo itself. Nothing here is ever pointed at a real cluster: the
functions refuse an API server that is not on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsbook.aws.session import client as aws_client
from opsbook.errors import SandboxError
from opsbook.procs import wait_for
from opsbook.sandbox import Sandbox
from opsbook.sandbox import cluster as kc

log = logging.getLogger(__name__)


def _guard_local(api: k8s.ApiClient) -> None:
    host = str(api.configuration.host)
    if "127.0.0.1" not in host and "localhost" not in host:
        raise SandboxError(
            f"refusing to inject a fault into {host}: fault injection only runs against the local sandbox"
        )


LEASE_NAMESPACE = "kube-node-lease"
FAULT_HOLDER = "opsbook-fault"  # holder of a stopped node's Lease, so kwok leaves the node alone
FAULT_LEASE_SECONDS = 10 * 365 * 24 * 3600  # "until resumed"


def stop_heartbeat(sandbox: Sandbox, api: k8s.ApiClient, node: str) -> None:
    """Stop one node's kubelet heartbeats: it goes Unknown after the grace period, the others carry on.

    kwok's simulated kubelet renews a node's Lease only while it holds it, and leaves a node whose
    Lease another holder has taken (no status updates, its pods untouched). So the node's Lease is
    taken over by ``opsbook-fault`` (renew time unchanged, a duration of years): the Lease stops
    being renewed, exactly as when a kubelet dies, and nothing else is restarted or touched.
    Undo with :func:`resume_heartbeat`.
    """
    _guard_local(api)
    _sandbox_state(sandbox)
    lease = {"spec": {"holderIdentity": FAULT_HOLDER, "leaseDurationSeconds": FAULT_LEASE_SECONDS}}
    try:
        k8s.CoordinationV1Api(api).patch_namespaced_lease(node, LEASE_NAMESPACE, lease)
    except ApiException as e:
        if e.status == 404:
            raise SandboxError(f"node {node} has no Lease in {LEASE_NAMESPACE}: is it a sandbox node?") from e
        raise
    log.info("stopped heartbeats of node %s (its Lease is held by %s)", node, FAULT_HOLDER)


def heartbeat_stopped(api: k8s.ApiClient, node: str) -> bool:
    """Whether :func:`stop_heartbeat` holds the node's Lease."""
    lease = k8s.CoordinationV1Api(api).read_namespaced_lease(node, LEASE_NAMESPACE)
    return bool(lease.spec.holder_identity == FAULT_HOLDER)


def restart_kwok(sandbox: Sandbox, down_seconds: float = 0.0) -> None:
    """Restart the kwok controller: every simulated kubelet restarts at once.

    The new process has a new identity, so it takes each node's Lease over only once the old one
    expires (``40 s x heartbeat factor``): every node may lapse to NotReady for a moment, and the
    node controller marks its pods NotReady. When the node is back the ``pod-ready-again`` Stage
    (``opsbook/data/kwok-stages.yaml``) re-reports their readiness, as reconnecting kubelets do.
    ``down_seconds`` longer than the grace period makes every node lapse for certain.
    """
    _sandbox_state(sandbox)
    # A simulator has no state worth a graceful shutdown.
    kc.stop_component(sandbox.kwok_workdir, sandbox.name, "kwok-controller", timeout=1.0)
    time.sleep(down_seconds)
    kc.start_component(sandbox.kwok_workdir, sandbox.name, "kwok-controller")


def resume_heartbeat(sandbox: Sandbox, api: k8s.ApiClient, node: str, timeout: float = 60) -> None:
    """Give the node's Lease back to kwok and wait until the node is Ready again.

    Its pods then report Ready again by themselves (the ``pod-ready-again`` Stage), a few seconds
    later, like pods of a kubelet that reconnects; pods evicted meanwhile are deleted.
    """
    _guard_local(api)
    _sandbox_state(sandbox)
    core = k8s.CoreV1Api(api)
    if heartbeat_stopped(api, node):
        # No holder: kwok takes the Lease at its next renewal and manages the node again.
        lease = {"spec": {"holderIdentity": None}}
        k8s.CoordinationV1Api(api).patch_namespaced_lease(node, LEASE_NAMESPACE, lease)

    def ready() -> bool:
        n = core.read_node(node)
        return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])

    wait_for(ready, timeout, f"node {node} to become Ready again")


def unsettled(api: k8s.ApiClient) -> list[str]:
    """What still shows a node's recent absence; empty once the cluster has settled.

    Lists nodes not Ready, pods whose Ready condition is False only because their node was away
    (no reason of their own, containers ready: they report Ready a few seconds after their node
    returns), pods being deleted from Ready nodes, and Deployments whose status has not yet counted
    their ready pods. Pods that are unready for a reason of their own (crash loops, failing
    readiness probes) are not listed: that is their state, not a transient.
    """
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    out: list[str] = []
    ready_nodes = set()
    for n in core.list_node().items:
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []):
            ready_nodes.add(n.metadata.name)
        else:
            out.append(f"node/{n.metadata.name} is not Ready")
    ready_pods: dict[str, list[dict[str, str]]] = {}
    for p in core.list_pod_for_all_namespaces().items:
        where = f"pod/{p.metadata.namespace}/{p.metadata.name}"
        if p.metadata.deletion_timestamp:
            if p.spec.node_name in ready_nodes:
                out.append(f"{where} is still being deleted")
            continue
        conds = {c.type: c for c in p.status.conditions or []}
        ready, containers = conds.get("Ready"), conds.get("ContainersReady")
        if ready is not None and ready.status == "True":
            ready_pods.setdefault(p.metadata.namespace, []).append(p.metadata.labels or {})
        elif (
            p.status.phase == "Running"
            and ready is not None
            and not ready.reason
            and containers is not None
            and containers.status == "True"
        ):
            out.append(f"{where} is NotReady since its node {p.spec.node_name} was away")
    for d in apps.list_deployment_for_all_namespaces().items:
        want = d.spec.replicas or 0
        match = (d.spec.selector.match_labels or {}).items()
        ready = sum(1 for labels in ready_pods.get(d.metadata.namespace, []) if match <= labels.items())
        if ready >= want and (d.status.available_replicas or 0) < want:
            out.append(
                f"deployment/{d.metadata.namespace}/{d.metadata.name}: {ready} ready pods, status says "
                f"{d.status.available_replicas or 0} available"
            )
    return out


def wait_settled(api: k8s.ApiClient, timeout: float = 90) -> None:
    """Wait until :func:`unsettled` is empty (every node back, its pods re-reported, statuses caught up).

    Raises:
        SandboxError: still unsettled after ``timeout`` seconds (the message lists what).
    """
    left: list[str] = []

    def settled() -> bool:
        left[:] = unsettled(api)
        return not left

    try:
        wait_for(settled, timeout, "the sandbox to settle", interval=0.5)
    except SandboxError as e:
        raise SandboxError(f"{e}; still unsettled: {'; '.join(left[:10])}") from e


def _sandbox_state(sandbox: Sandbox) -> None:
    st = sandbox.state()
    if st is None or st.backend != "kwok":
        raise SandboxError("fault injection needs a running kwok sandbox (`opsbook sandbox up`)")


def mark_not_ready(
    sandbox: Sandbox,
    api: k8s.ApiClient,
    node: str,
    reason: str = "KubeletNotReady",
    message: str = "container runtime is down",
) -> None:
    """Stop the node's heartbeats and post Ready=False as a failing kubelet would.

    The node controller then taints it ``node.kubernetes.io/not-ready:NoExecute``.
    Undo with :func:`resume_heartbeat`.
    """
    stop_heartbeat(sandbox, api, node)
    core = k8s.CoreV1Api(api)
    now = datetime.now().astimezone().isoformat()
    node_obj = core.read_node_status(node)
    conds = []
    for c in node_obj.status.conditions or []:
        d = api.sanitize_for_serialization(c)
        if c.type == "Ready":
            d.update(
                {
                    "status": "False",
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            )
        conds.append(d)
    core.patch_node_status(node, {"status": {"conditions": conds}})


def restart_apiserver(sandbox: Sandbox, down_seconds: float = 2.0, timeout: float = 90) -> dict[str, float]:
    """Stop kube-apiserver, wait ``down_seconds`` once it is gone, start it again (etcd keeps the data).

    As in the team's outage, kubelets keep running: if their Lease renewals were missed for longer
    than the grace period, the node controller marks nodes NotReady for a moment once it is back, and
    the nodes' pods report Ready again a few seconds after their node does.

    Returns:
        Timings: ``stopped_at`` (SIGTERM: it stops serving), ``started_at``, ``ready_at`` (epoch seconds).
    """
    st = sandbox.state()
    if st is None or st.backend != "kwok":
        raise SandboxError("restart_apiserver needs a running kwok sandbox (`opsbook sandbox up`)")
    stopped = time.time()
    # It stops listening at once on SIGTERM, then drains long-running requests for up to a minute:
    # waiting for that would turn a restart of seconds into one of half a minute.
    kc.stop_component(sandbox.kwok_workdir, sandbox.name, "kube-apiserver", timeout=3.0)
    time.sleep(down_seconds)
    kc.start_component(sandbox.kwok_workdir, sandbox.name, "kube-apiserver")
    started = time.time()
    kc.wait_api(Path(st.kubeconfig), timeout=timeout)
    kc.ensure_components(sandbox.kwok_workdir, sandbox.name)
    return {"stopped_at": stopped, "started_at": started, "ready_at": time.time()}


@dataclass(frozen=True)
class MetricSeries:
    """A CloudWatch series to seed: one metric, one set of dimensions, values at fixed steps."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    start: datetime
    step: timedelta
    values: Sequence[float]
    unit: str = "None"


def seed_metrics(series: Iterable[MetricSeries], region: str | None = None, cw: Any = None) -> int:
    """``put_metric_data`` every point of every series (batched 1000 per call); return points written.

    moto generates no EC2 metrics on its own, so the sandbox seeds them.
    """
    cw = cw or aws_client("cloudwatch", region)
    written = 0
    for s in series:
        dims = [{"Name": k, "Value": v} for k, v in s.dimensions.items()]
        data = [
            {
                "MetricName": s.name,
                "Dimensions": dims,
                "Timestamp": s.start + i * s.step,
                "Value": float(v),
                "Unit": s.unit,
            }
            for i, v in enumerate(s.values)
        ]
        for i in range(0, len(data), 1000):
            cw.put_metric_data(Namespace=s.namespace, MetricData=data[i : i + 1000])
        written += len(data)
    return written


def terminate_instance(instance_id: str, region: str | None = None) -> str:
    """Terminate an instance as its Auto Scaling group would (EC2 death); return how it was done.

    Through ``TerminateInstanceInAutoScalingGroup`` (keeping the desired capacity, so a real ASG would
    launch a replacement and record the activity); a plain ``TerminateInstances`` when the instance
    belongs to no group. Only against the sandbox's moto server.
    """
    import os

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if "127.0.0.1" not in endpoint and "localhost" not in endpoint:
        raise SandboxError(f"refusing to terminate {instance_id}: AWS_ENDPOINT_URL is not the local moto server")
    asg = aws_client("autoscaling", region)
    groups = asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if groups:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=False)
        return f"terminated through ASG {groups[0]['AutoScalingGroupName']}"
    aws_client("ec2", region).terminate_instances(InstanceIds=[instance_id])
    return "terminated"
