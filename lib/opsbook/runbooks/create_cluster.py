"""The create-cluster runbook's façade: kops on AWS, or the local sandbox shaped like the requested cluster.

The notebook ``notebooks/create-cluster.ipynb`` reaches the library only through this module (and
:mod:`opsbook.report`): the parameters, the preflight and the plan of :mod:`opsbook.kops` are re-exported
here. :func:`apply` dispatches on the provider:
``kops`` runs :func:`opsbook.kops.apply.apply_kops`; ``sandbox`` brings the local sandbox up
(or reshapes a running one) from the requested spec: one moto Auto Scaling group per instance
group at the requested size and instance type, one simulated node per instance with kops'
labels. :func:`compare_sandbox` checks nodes, labels and moto instances agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd
from kubernetes import client as k8s

from opsbook.aws.asg import cluster_asg_records
from opsbook.aws.session import boundary
from opsbook.aws.session import client as aws_client
from opsbook.errors import BadInput
from opsbook.k8s.client import api_client
from opsbook.kops import apply as kapply
from opsbook.kops.apply import ApplyResult, Stream, next_step
from opsbook.kops.params import CreateParams
from opsbook.kops.params import validate as validate_params
from opsbook.kops.plan import dry_run
from opsbook.kops.preflight import advice, preflight_findings, require_pass, run_preflight
from opsbook.kops.spec import ClusterSpec, InstanceGroup
from opsbook.sandbox import DEFAULT_NAME, Sandbox, seed
from opsbook.sandbox.cluster import Timing

__all__ = ["ApplyResult", "advice", "apply", "apply_sandbox", "compare_sandbox", "dry_run", "node_matches",
           "preflight_findings", "run_preflight", "sandbox_check", "shape_sandbox", "validate_params"]


def _reshape_aws(spec: ClusterSpec, say: Stream) -> list[str]:
    """Make the cluster's moto ASGs match ``spec``: resize, or delete groups that are gone or changed type.

    Missing groups are left for :func:`opsbook.sandbox.seed.seed_aws` to create.
    """
    asg = aws_client("autoscaling", spec.region)
    ec2 = aws_client("ec2", spec.region)
    want = {f"{ig.name}.{spec.name}": ig for ig in spec.instance_groups()}
    changes: list[str] = []
    for g in cluster_asg_records(spec.name, spec.region, asg):
        name = g["AutoScalingGroupName"]
        ig = want.get(name)
        lt = g.get("LaunchTemplate", {}).get("LaunchTemplateName", name)
        current_type = ""
        if ig is not None:
            with boundary(f"ec2 describe-launch-template-versions {lt}"):
                versions = ec2.describe_launch_template_versions(LaunchTemplateName=lt, Versions=["$Latest"])
            data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
            current_type = data.get("InstanceType", "")
        if ig is None or current_type != ig.machine_type:
            with boundary(f"autoscaling delete-auto-scaling-group {name}"):
                asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
                ec2.delete_launch_template(LaunchTemplateName=lt)
            changes.append(f"deleted {name}" + (f" ({current_type} → {ig.machine_type})" if ig else ""))
        elif (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) != (ig.min_size, ig.max_size, ig.min_size):
            with boundary(f"autoscaling update-auto-scaling-group {name}"):
                asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=ig.min_size,
                                              MaxSize=ig.max_size, DesiredCapacity=ig.min_size)
            changes.append(f"resized {name}: {g['DesiredCapacity']} → {ig.min_size}")
    for c in changes:
        say(c)
    return changes


def _prune_nodes(api: k8s.ApiClient, instance_ids: set[str], say: Stream) -> list[str]:
    """Delete nodes (and their control-plane pods) whose instance no longer exists."""
    core = k8s.CoreV1Api(api)
    gone: list[str] = []
    for n in core.list_node().items:
        name = str(n.metadata.name) if n.metadata else ""
        pid = str(n.spec.provider_id or "") if n.spec else ""
        iid = pid.rsplit("/", 1)[-1]
        if not name or not pid.startswith("aws://") or iid in instance_ids:
            continue
        core.delete_node(name)
        for p in core.list_namespaced_pod("kube-system", field_selector=f"spec.nodeName={name}").items:
            if p.metadata and p.metadata.name:
                core.delete_namespaced_pod(str(p.metadata.name), "kube-system", grace_period_seconds=0)
        gone.append(name)
        say(f"removed node {name} (instance {iid} is gone)")
    return gone


def shape_sandbox(spec: ClusterSpec, name: str, stream: Stream = print) -> tuple[str, list[str]]:
    """Bring sandbox ``name`` up shaped like ``spec``, or reshape it if it runs already.

    Resizes moto ASGs (moto launches/terminates instances), replaces groups whose instance
    type changed, deletes groups that are gone, then lets the sandbox seed what is missing
    and removes nodes whose instance is gone.

    Returns:
        ``(action, changes)``: action is ``created``, ``reshaped`` or ``unchanged``.

    Raises:
        BadInput: the sandbox already holds a different cluster name.
    """
    sb = Sandbox(name)
    prev = sb.state()
    if prev is not None and prev.cluster_name != spec.name:
        raise BadInput(f"sandbox {name!r} holds cluster {prev.cluster_name}, not {spec.name}: use "
                       f"cluster_name {prev.cluster_name}, or `opsbook sandbox down --name {name}` first")
    changes: list[str] = []
    if prev is not None and sb.status().get("up"):
        sb.activate()
        changes += _reshape_aws(spec, stream)
    timing = None
    if prev is not None and prev.timing:
        timing = Timing(**{k: v for k, v in prev.timing.items() if k in Timing.__dataclass_fields__})
    st = sb.up(spec=spec, timing=timing, progress=stream)
    instances = seed.list_instances(spec)
    api = api_client(st.kubeconfig)
    try:
        gone = _prune_nodes(api, {i.instance_id for i in instances}, stream)
        changes += [f"removed node {g}" for g in gone]
    finally:
        api.close()  # type: ignore[no-untyped-call]
    if prev is None:
        return "created", changes
    return ("reshaped" if changes else "unchanged"), changes


def apply_sandbox(params: CreateParams, *, apply: bool = False, sandbox: str | None = None,
                  stream: Stream = print) -> ApplyResult:
    """Create or reshape the local sandbox cluster from the parameters (only when ``apply``).

    Args:
        params: checked parameters (``provider="sandbox"``).
        apply: False = say what would happen; change nothing.
        sandbox: sandbox name (default ``$OPSBOOK_SANDBOX``, else ``opsbook``).
        stream: called with each progress line.

    Raises:
        BadInput: the sandbox already holds a different cluster name.
        SandboxError: the sandbox cannot be started.
    """
    name = sandbox or os.environ.get("OPSBOOK_SANDBOX", DEFAULT_NAME)
    spec = params.spec()
    igs = ", ".join(f"{ig.name}={ig.min_size}×{ig.machine_type}" for ig in spec.instance_groups())
    cmd = [f"opsbook sandbox up --name {name}  # shaped: {igs}"]
    if not apply:
        return ApplyResult("sandbox", "dry-run", False, f"dry run (apply=false): sandbox {name!r} would hold "
                           f"{spec.name} with {igs}", cmd, next_step=next_step(params))
    action, changes = shape_sandbox(spec, name, stream)
    return ApplyResult("sandbox", action, action != "unchanged",
                       f"sandbox {name!r} {action}: {spec.name} with {igs}", cmd, output=changes,
                       next_step=next_step(params))


def node_matches(node: k8s.V1Node, ig: InstanceGroup, instance_id: str) -> bool:
    """Whether a node carries the labels and provider ID kops gives an instance of ``ig``."""
    labels: dict[str, str] = dict(node.metadata.labels or {}) if node.metadata else {}
    provider_id = str(node.spec.provider_id or "") if node.spec else ""
    role = "master" if ig.is_control_plane else "node"
    return (labels.get("kops.k8s.io/instancegroup") == ig.name
            and labels.get("node.kubernetes.io/instance-type") == ig.machine_type
            and labels.get("topology.kubernetes.io/zone") == ig.zone
            and labels.get("kubernetes.io/role") == role
            and ("node-role.kubernetes.io/control-plane" in labels) == ig.is_control_plane
            and provider_id == f"aws:///{ig.zone}/{instance_id}")


def _ready(node: k8s.V1Node) -> bool:
    conds = (node.status.conditions or []) if node.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conds)


def compare_sandbox(spec: ClusterSpec, api: k8s.ApiClient | None = None) -> pd.DataFrame:
    """Per instance group: expected size vs moto ASG instances vs Ready nodes, with label checks.

    Returns:
        Columns ``instance_group, role, zone, instance_type, expected, asg_instances, nodes,
        ready_nodes, labels_ok, match``.
    """
    instances = seed.list_instances(spec)
    own = api is None
    api = api or api_client()
    try:
        nodes = k8s.CoreV1Api(api).list_node().items
    finally:
        if own:
            api.close()  # type: ignore[no-untyped-call]
    by_name = {n.metadata.name: n for n in nodes if n.metadata}
    rows = []
    for ig in spec.instance_groups():
        mine = [i for i in instances if i.instance_group == ig.name]
        pairs = [(by_name[i.private_dns], i) for i in mine if i.private_dns in by_name]
        labels_ok = all(node_matches(n, ig, i.instance_id) for n, i in pairs)
        types_ok = all(i.instance_type == ig.machine_type and i.zone == ig.zone for i in mine)
        rows.append({"instance_group": ig.name, "role": "master" if ig.is_control_plane else "node",
                     "zone": ig.zone, "instance_type": ig.machine_type, "expected": ig.min_size,
                     "asg_instances": len(mine), "nodes": len(pairs),
                     "ready_nodes": sum(1 for n, _ in pairs if _ready(n)),
                     "labels_ok": labels_ok and types_ok})
    df = pd.DataFrame(rows, columns=["instance_group", "role", "zone", "instance_type", "expected",
                                     "asg_instances", "nodes", "ready_nodes", "labels_ok"])
    df["match"] = ((df["expected"] == df["asg_instances"]) & (df["expected"] == df["ready_nodes"])
                   & df["labels_ok"])
    return df


def apply(params: CreateParams, *, apply: bool = False, provider: str | None = None, target: str = "direct",
          out_dir: str = "", channel: str = "pinned", sandbox: str | None = None,
          preflight: pd.DataFrame | None = None, extra_args: Sequence[str] = (),
          env: Mapping[str, str] | None = None, stream: Stream = print) -> ApplyResult:
    """Apply with ``provider`` (default ``params.provider``): kops on AWS or the local sandbox.

    Args:
        params: checked parameters.
        apply: False = dry run.
        provider: ``kops`` or ``sandbox``.
        target: kops only: ``direct`` or ``terraform``.
        out_dir: kops only: terraform output folder.
        channel: kops only: see :func:`opsbook.kops.plan.resolve_channel`.
        sandbox: sandbox only: its name.
        preflight: result of :func:`opsbook.kops.preflight.run_preflight`; with the kops provider
            a failed check stops apply before kops runs.
        extra_args: kops only: more ``kops create cluster`` flags.
        env: kops only: its environment (default: this process's).
        stream: called with each output line.

    Raises:
        RunbookFailed: preflight failed (kops provider, apply=True) or kops failed.
    """
    provider = provider or params.provider
    if provider == "sandbox":
        return apply_sandbox(params, apply=apply, sandbox=sandbox, stream=stream)
    if provider == "kops":
        if apply and preflight is not None:
            require_pass(preflight)
        return kapply.apply_kops(params, apply=apply, target=target, out_dir=out_dir, channel=channel,
                          extra_args=extra_args, env=env, stream=stream)
    raise BadInput(f"provider {provider!r} is unknown: use kops (AWS) or sandbox (local cluster)")


def sandbox_check(params: CreateParams, result: ApplyResult) -> pd.DataFrame:
    """:func:`compare_sandbox` after a sandbox apply; an empty frame otherwise (nothing local to check)."""
    if result.provider != "sandbox" or result.action == "dry-run":
        return pd.DataFrame(columns=["instance_group", "role", "zone", "instance_type", "expected",
                                     "asg_instances", "nodes", "ready_nodes", "labels_ok", "match"])
    return compare_sandbox(params.spec())
