"""The sandbox's stand-in for "AWS replaces the instance and the new kubelet joins".

kops rolling-update on AWS detaches the old instance from its ASG (surge: the ASG launches a
replacement), drains the old node, then terminates it. Here the same calls go to moto's ASG API,
and the replacement instance's Node is registered the way a kops-built kubelet would register it,
at the new kubelet version (kwok then keeps it Ready). A control-plane replacement also gets its
static pods (kube-apiserver & co.) at the new version, which is where the control plane's version
is read from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from kubernetes import client as k8s

from opsbook.aws.session import client as aws_client
from opsbook.errors import SandboxError
from opsbook.kops.spec import ClusterSpec, InstanceGroup
from opsbook.sandbox import seed

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def _ig(spec: ClusterSpec, name: str) -> InstanceGroup:
    for ig in spec.instance_groups():
        if ig.name == name:
            return ig
    raise SandboxError(f"instance group {name!r} is not part of the sandbox cluster {spec.name}")


def _asg_instances(spec: ClusterSpec, ig: str) -> set[str]:
    asg = aws_client("autoscaling", spec.region)
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{ig}.{spec.name}"])["AutoScalingGroups"]
    return {i["InstanceId"] for g in groups for i in g.get("Instances", [])}


def launch_replacement(spec: ClusterSpec, ig_name: str, old_instance: str, *, surge: bool) -> str:
    """Have the ASG launch a replacement for ``old_instance``; return the new instance id.

    ``surge``: detach the old instance (it keeps running until :func:`retire`), as kops' maxSurge
    does; otherwise terminate it in the ASG (the node must already be drained).
    """
    asg = aws_client("autoscaling", spec.region)
    before = _asg_instances(spec, ig_name)
    name = f"{ig_name}.{spec.name}"
    if old_instance in before:
        if surge:
            asg.detach_instances(InstanceIds=[old_instance], AutoScalingGroupName=name,
                                 ShouldDecrementDesiredCapacity=False)
        else:
            asg.terminate_instance_in_auto_scaling_group(InstanceId=old_instance,
                                                         ShouldDecrementDesiredCapacity=False)
    new = sorted(_asg_instances(spec, ig_name) - before - {old_instance})
    if not new:
        raise SandboxError(f"ASG {name} launched no replacement for {old_instance}")
    return new[0]


def unregistered_instance(api: k8s.ApiClient, spec: ClusterSpec, ig_name: str) -> str:
    """An instance of the group's ASG that has no Node yet ("" if none).

    That is a replacement launched by a run that stopped before it could note it on the old node.
    """
    have = {n.metadata.name for n in k8s.CoreV1Api(api).list_node().items}
    members = _asg_instances(spec, ig_name)
    for inst in seed.list_instances(spec):
        if inst.instance_id in members and inst.private_dns not in have:
            return inst.instance_id
    return ""


def _static_pods(node: str, version: str) -> list[k8s.V1Pod]:
    pods = []
    for comp in (*seed.CONTROL_PLANE_COMPONENTS, "etcd-manager-main"):
        pod = seed._static_pod(comp, node)
        if comp in seed.CONTROL_PLANE_COMPONENTS:
            pod.spec.containers[0].image = f"registry.k8s.io/{comp}:v{version}"
        pods.append(pod)
    return pods


def register_node(api: k8s.ApiClient, spec: ClusterSpec, instance_id: str, version: str,
                  timeout: float = 60) -> str:
    """Register the Node of ``instance_id`` at kubelet ``version`` (idempotent) and wait until it is Ready."""
    core = k8s.CoreV1Api(api)
    inst = next((i for i in seed.list_instances(spec) if i.instance_id == instance_id), None)
    if inst is None:
        raise SandboxError(f"instance {instance_id} is not running in moto")
    ig = _ig(spec, inst.instance_group)
    if inst.private_dns not in {n.metadata.name for n in core.list_node().items}:
        cpu, mem = seed._instance_resources(spec, inst.instance_type)
        core.create_node(seed.node_body(replace(spec, kubernetes_version=version), inst, ig, cpu, mem))
    if ig.is_control_plane:
        have = {p.metadata.name for p in core.list_namespaced_pod("kube-system").items}
        for pod in _static_pods(inst.private_dns, version):
            if pod.metadata.name not in have:
                core.create_namespaced_pod("kube-system", pod)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = core.read_node(inst.private_dns)
        if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])):
            return inst.private_dns
        time.sleep(0.5)
    raise SandboxError(f"node {inst.private_dns} (instance {instance_id}) did not become Ready in {timeout:.0f}s")


def retire(api: k8s.ApiClient, spec: ClusterSpec, node: str, instance_id: str) -> None:
    """Terminate the old instance (if still running), delete its Node and its static pods (idempotent)."""
    ec2 = aws_client("ec2", spec.region)
    running = {i.instance_id for i in seed.list_instances(spec)}
    if instance_id in running:
        ec2.terminate_instances(InstanceIds=[instance_id])
    core = k8s.CoreV1Api(api)
    for p in core.list_namespaced_pod("kube-system", field_selector=f"spec.nodeName={node}").items:
        core.delete_namespaced_pod(p.metadata.name, "kube-system", grace_period_seconds=0)
    try:
        core.delete_node(node)
    except k8s.ApiException as e:
        if e.status != 404:
            raise
