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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from opsbook.aws.session import client as aws_client
from opsbook.errors import SandboxError
from opsbook.sandbox import Sandbox
from opsbook.sandbox import cluster as kc

log = logging.getLogger(__name__)


def _guard_local(api: k8s.ApiClient) -> None:
    host = str(api.configuration.host)
    if "127.0.0.1" not in host and "localhost" not in host:
        raise SandboxError(
            f"refusing to inject a fault into {host}: fault injection only runs against the local sandbox"
        )


def stop_heartbeat(sandbox: Sandbox, api: k8s.ApiClient, node: str) -> None:
    """Stop a node's kubelet heartbeats: the node goes Unknown after the grace period.

    kwok manages only nodes annotated ``kwok.x-k8s.io/node=fake``, but its informer
    ignores (rather than forgets) a node that stops matching, so after removing the
    annotation the kwok controller is restarted; it then lists the nodes afresh and
    no longer renews this node's Lease. Undo with :func:`resume_heartbeat`.
    """
    _guard_local(api)
    patch = {"metadata": {"annotations": {kc.MANAGED_ANNOTATION: None}}}
    k8s.CoreV1Api(api).patch_node(node, patch)
    restart_kwok(sandbox)
    log.info("stopped heartbeats of node %s", node)


def restart_kwok(sandbox: Sandbox) -> None:
    """Restart the kwok controller (the simulated kubelets) so it re-reads which nodes it manages."""
    st = sandbox.state()
    if st is None or st.backend != "kwok":
        raise SandboxError("fault injection needs a running kwok sandbox (`opsbook sandbox up`)")
    # A simulator has no state worth a graceful shutdown: kill fast so other nodes' leases never lapse.
    kc.stop_component(sandbox.kwok_workdir, sandbox.name, "kwok-controller", timeout=1.0)
    kc.start_component(sandbox.kwok_workdir, sandbox.name, "kwok-controller")


def resume_heartbeat(sandbox: Sandbox, api: k8s.ApiClient, node: str, timeout: float = 60) -> None:
    """Let kwok manage the node again: heartbeats resume, it becomes Ready, its pods report Ready again."""
    _guard_local(api)
    core = k8s.CoreV1Api(api)
    patch = {"metadata": {"annotations": {kc.MANAGED_ANNOTATION: kc.MANAGED_VALUE}}}
    core.patch_node(node, patch)
    restart_kwok(sandbox)

    def ready() -> bool:
        n = core.read_node(node)
        return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])

    from opsbook.sandbox.procs import wait_for

    wait_for(ready, timeout, f"node {node} to become Ready again")
    kubelet_resync(api)


def kubelet_resync(api: k8s.ApiClient) -> int:
    """Re-report Ready for running pods on Ready nodes, as kubelets do when they reconnect.

    When a node goes NotReady the node controller sets its pods' Ready condition to False.
    A real kubelet re-reports the pod status when it is back; kwok's ``pod-ready`` Stage only
    selects pods without ``status.podIP``, so on kwok those pods would stay NotReady forever.
    Pods whose containers are not ready (crash loops, failing probes) are left alone.

    Returns:
        How many pods were marked Ready again.
    """
    _guard_local(api)
    core = k8s.CoreV1Api(api)
    ready = {
        n.metadata.name
        for n in core.list_node().items
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fixed = 0
    for p in core.list_pod_for_all_namespaces().items:
        conds = {c.type: c.status for c in p.status.conditions or []}
        if (
            p.spec.node_name in ready
            and not p.metadata.deletion_timestamp
            and p.status.phase == "Running"
            and conds.get("Ready") == "False"
            and conds.get("ContainersReady") == "True"
        ):
            core.patch_namespaced_pod_status(
                p.metadata.name,
                p.metadata.namespace,
                {"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}},
            )
            fixed += 1
    return fixed


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
    """Stop kube-apiserver, wait ``down_seconds``, start it again (etcd keeps the data).

    Returns:
        Timings: ``stopped_at``, ``started_at``, ``ready_at`` (epoch seconds).
    """
    st = sandbox.state()
    if st is None or st.backend != "kwok":
        raise SandboxError("restart_apiserver needs a running kwok sandbox (`opsbook sandbox up`)")
    kc.stop_component(sandbox.kwok_workdir, sandbox.name, "kube-apiserver")
    stopped = time.time()
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
