"""``kops validate cluster`` v1.33.1, rule for rule (pure: frames in, frames out).

Read side by side with kops' ``pkg/validation/validate_cluster.go``,
``node_conditions.go`` and ``upup/pkg/fi/cloudup/awsup/aws_cloud.go`` (``getCloudGroups``):

* **instance groups** come from the state store; each is matched to the ASG kops would
  create for it (``<ig>.<cluster>``, ``<ig>.masters.<cluster>`` for the control plane,
  ``<ig>.apiservers.<cluster>``) among the ASGs tagged ``KubernetesCluster=<cluster>``;
  an ASG with a ``Status`` (delete in progress) is skipped. A group without an ASG fails
  ``InstanceGroup "x" is missing from the cloud provider``.
* **members** of a group: the ASG's instances and warm-pool instances, except those in
  lifecycle state ``Terminating`` and those without a pending/running/stopping/stopped EC2
  instance tagged with the group; plus *detached* instances (tag
  ``kops.k8s.io/detached-from-asg``) of the group.
* **target**: the ASG's desired capacity, compared with the members that are not detached
  (warm-pool members count; minSize is never used; nodes do not matter):
  ``InstanceGroup "x" did not have enough nodes 1 vs 2``.
* a member without a Node (matched by the last part of ``spec.providerID``) fails
  ``machine "i-…" has not yet joined cluster`` unless the group is a bastion, the member is
  in the warm pool or detached.
* a member's Node is **ready** when Ready=True and NetworkUnavailable is not True; a node of
  role control-plane, apiserver or node that is not ready fails. Nodes of instances in no
  ASG are never looked at.
* on every *ready* control-plane node (label ``node-role.kubernetes.io/control-plane``) a
  kube-system pod with ``k8s-app`` kube-apiserver, kube-controller-manager and
  kube-scheduler must sit on one of the node's addresses (``status.hostIP``), in any phase,
  terminating or not: ``control-plane node "x" is missing kube-scheduler pod``.
* every pod whose ``priorityClassName`` is system-cluster-critical or system-node-critical,
  terminating or not, unless Succeeded: Pending or Unknown fails, otherwise any container
  status not ready fails.
* for a non-gossip cluster whose API name resolves to kops' placeholder address
  (203.0.113.123 / fd00:dead:add::) only ``dns/apiserver`` is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CRITICAL_CLASSES = ("system-cluster-critical", "system-node-critical")
PLACEHOLDER_IPS = ("203.0.113.123", "fd00:dead:add::")
FAILURE_COLUMNS = ["type", "name", "message", "instance_group"]
NODE_COLUMNS = ["name", "zone", "role", "hostname", "status"]
MEMBER_COLUMNS = ["instance_group", "asg", "instance_id", "detached", "warm", "node"]
GROUP_COLUMNS = ["instance_group", "role", "asg", "target", "members", "found"]
VALIDATED_ROLES = ("control-plane", "apiserver", "node")


@dataclass
class KopsVerdict:
    """What ``kops validate cluster -o json`` would print, as frames.

    Attributes:
        failures: ``type, name, message, instance_group`` (kops' ``failures``).
        nodes: ``name, zone, role, hostname, status`` (kops' ``nodes``).
        groups: per instance group: ``instance_group, role, asg, target`` (desired capacity),
            ``members`` (not detached), ``found`` (an ASG matched).
        members: ``instance_group, asg, instance_id, detached, warm, node`` (name or "").
    """

    failures: pd.DataFrame
    nodes: pd.DataFrame
    groups: pd.DataFrame
    members: pd.DataFrame

    @property
    def passed(self) -> bool:
        """No failure (kops exits 0)."""
        return bool(self.failures.empty)

    def keys(self) -> list[tuple[str, str]]:
        """The sorted ``(type, name)`` list, for comparing with real kops."""
        return sorted(zip(self.failures["type"], self.failures["name"], strict=True))

    def as_json(self) -> dict[str, list[dict[str, str]]]:
        """The ``failures``/``nodes`` shape of ``kops validate cluster -o json`` (instanceGroup by name)."""
        failures = [{"type": r.type, "name": r.name, "message": r.message,
                     **({"instanceGroup": r.instance_group} if r.instance_group else {})}
                    for r in self.failures.itertuples(index=False)]
        nodes = [{k: str(v) for k, v in r._asdict().items() if v} for r in self.nodes.itertuples(index=False)]
        return {"failures": failures, "nodes": nodes}


def is_gossip(cluster: str) -> bool:
    """Whether the name is a gossip name (kops' ``IsGossipClusterName``: it ends in ``.k8s.local``)."""
    return cluster.rstrip(".").endswith(".k8s.local")


def dns_failure(api_addresses: list[str]) -> pd.DataFrame:
    """The ``dns/apiserver`` check of kops: the API name still resolves to the placeholder address."""
    hit = sorted(a for a in api_addresses if a in PLACEHOLDER_IPS)
    if not hit:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    msg = (f"The API DNS IP address is the placeholder address that kops creates: {hit[0]}. Wait 5-10 "
           "minutes for a control-plane node to start and dns-controller to update the record.")
    return pd.DataFrame([{"type": "dns", "name": "apiserver", "message": msg, "instance_group": ""}],
                        columns=FAILURE_COLUMNS)


def match_groups(igs: pd.DataFrame, asgs: pd.DataFrame) -> pd.DataFrame:
    """Each instance group with the ASG kops matches it to; ASGs being deleted are skipped.

    The ``asg`` column of ``igs`` comes from :func:`opsbook.aws.asg.state_store_instance_groups`.

    Returns:
        ``instance_group, role, asg, target, found``.
    """
    live = asgs[asgs["status"].fillna("") == ""].set_index("asg")
    rows = []
    for ig in igs.itertuples(index=False):
        found = bool(ig.asg) and ig.asg in live.index
        rows.append({"instance_group": ig.instance_group, "role": ig.role, "asg": ig.asg,
                     "target": int(live.loc[ig.asg, "desired"]) if found else 0, "found": found})
    return pd.DataFrame(rows, columns=["instance_group", "role", "asg", "target", "found"])


def members(groups: pd.DataFrame, asg_members: pd.DataFrame, instances: pd.DataFrame,
            nodes: pd.DataFrame) -> pd.DataFrame:
    """The cloud instances kops counts per matched group (see the module docstring).

    Args:
        groups: from :func:`match_groups`.
        asg_members: ``KopsCloud.members``.
        instances: ``KopsCloud.instances``.
        nodes: ``Snapshot.nodes`` (``kops_instance_id``, ``name``).
    """
    node_of = dict(zip(nodes["kops_instance_id"], nodes["name"], strict=True))
    rows = []
    for g in groups[groups["found"]].itertuples(index=False):
        mine = instances[instances["instance_group"] == g.instance_group]
        ids = set(mine["instance_id"])
        seen: set[str] = set()
        for m in asg_members[asg_members["asg"] == g.asg].itertuples(index=False):
            if not m.instance_id:
                continue
            seen.add(m.instance_id)
            if m.lifecycle_state == "Terminating" or m.instance_id not in ids:
                continue
            warm = bool(m.warm) or str(m.lifecycle_state).startswith("Warmed")
            rows.append({"instance_group": g.instance_group, "asg": g.asg, "instance_id": m.instance_id,
                         "detached": False, "warm": warm, "node": node_of.get(m.instance_id, "")})
        for iid in mine.loc[mine["detached"] != "", "instance_id"]:
            if iid not in seen:
                seen.add(iid)
                rows.append({"instance_group": g.instance_group, "asg": g.asg, "instance_id": iid,
                             "detached": True, "warm": False, "node": node_of.get(iid, "")})
    return pd.DataFrame(rows, columns=MEMBER_COLUMNS)


def node_ready(row: Any) -> bool:
    """Ready as kops' ``isNodeReady`` sees it: Ready=True and NetworkUnavailable not True."""
    return bool(row.ready == "True" and row.network_unavailable != "True")


def validate(igs: pd.DataFrame, asgs: pd.DataFrame, asg_members: pd.DataFrame, instances: pd.DataFrame,
             nodes: pd.DataFrame, pods: pd.DataFrame, api_addresses: list[str] | None = None) -> KopsVerdict:
    """Validate like ``kops validate cluster`` (one attempt).

    Args:
        igs: the state store's instance groups (``instance_group, role, asg``).
        asgs: ``KopsCloud.asgs``.
        asg_members: ``KopsCloud.members``.
        instances: ``KopsCloud.instances``.
        nodes: ``Snapshot.nodes``.
        pods: ``Snapshot.pods``.
        api_addresses: what the API name resolves to (non-gossip clusters only; None = not checked).
    """
    dns = dns_failure(api_addresses or [])
    groups = match_groups(igs, asgs)
    mem = members(groups, asg_members, instances, nodes)
    if not dns.empty:
        return KopsVerdict(dns, pd.DataFrame(columns=NODE_COLUMNS), groups.assign(members=0), mem)
    failures: list[dict[str, str]] = []
    counted = mem[~mem["detached"]].groupby("instance_group").size()
    groups = groups.assign(members=groups["instance_group"].map(counted).fillna(0).astype(int))
    by_name = nodes.set_index("name", drop=False)
    out_nodes = []
    ready_nodes: list[str] = []
    ig_of_node: dict[str, str] = {}
    for g in groups[groups["found"]].itertuples(index=False):
        if g.members < g.target:
            failures.append({"type": "InstanceGroup", "name": g.instance_group, "instance_group": g.instance_group,
                             "message": f'InstanceGroup "{g.instance_group}" did not have enough nodes '
                                        f"{g.members} vs {g.target}"})
        for m in mem[mem["instance_group"] == g.instance_group].itertuples(index=False):
            if not m.node:
                if g.role != "bastion" and not m.warm and not m.detached:
                    failures.append({"type": "Machine", "name": m.instance_id, "instance_group": g.instance_group,
                                     "message": f'machine "{m.instance_id}" has not yet joined cluster'})
                continue
            n = by_name.loc[m.node]
            ig_of_node[m.node] = g.instance_group
            role = g.role or "node"
            ready = node_ready(n)
            if ready:
                ready_nodes.append(m.node)
            if role in VALIDATED_ROLES:
                if not ready:
                    failures.append({"type": "Node", "name": m.node, "instance_group": g.instance_group,
                                     "message": f'node "{m.node}" of role "{role}" is not ready'})
                out_nodes.append({"name": m.node, "zone": n.zone, "role": role, "hostname": n.hostname,
                                  "status": n.ready})
    for g in groups[~groups["found"]].itertuples(index=False):
        failures.append({"type": "InstanceGroup", "name": g.instance_group, "instance_group": g.instance_group,
                         "message": f'InstanceGroup "{g.instance_group}" is missing from the cloud provider'})
    failures += pod_failures(nodes[nodes["name"].isin(ready_nodes)], pods, ig_of_node)
    return KopsVerdict(pd.DataFrame(failures, columns=FAILURE_COLUMNS), pd.DataFrame(out_nodes, columns=NODE_COLUMNS),
                       groups[GROUP_COLUMNS], mem)


def pod_failures(ready_nodes: pd.DataFrame, pods: pd.DataFrame, ig_of_node: dict[str, str]) -> list[dict[str, str]]:
    """Kops' ``collectPodFailures``: control-plane pods per ready control-plane node, critical pods."""
    by_address = {a: r.name for r in ready_nodes.itertuples(index=False) for a in r.addresses}
    missing = {r.name: set(CONTROL_PLANE_PODS) for r in ready_nodes.itertuples(index=False)
               if r.control_plane_label}
    out: list[dict[str, str]] = []
    for p in pods.itertuples(index=False):
        host = by_address.get(p.host_ip, "")
        if p.namespace == "kube-system" and host in missing:
            missing[host].discard(p.k8s_app)
        if p.priority_class not in CRITICAL_CLASSES or p.phase == "Succeeded":
            continue
        ig = ig_of_node.get(host, "") if p.priority_class == "system-node-critical" else ""
        name = f"{p.namespace}/{p.name}"
        if p.phase in ("Pending", "Unknown"):
            state = "pending" if p.phase == "Pending" else "unknown phase"
            out.append({"type": "Pod", "name": name, "instance_group": ig,
                        "message": f'{p.priority_class} pod "{p.name}" is {state}'})
        elif p.not_ready_containers:
            out.append({"type": "Pod", "name": name, "instance_group": ig,
                        "message": f'{p.priority_class} pod "{p.name}" is not ready '
                                   f'({",".join(p.not_ready_containers)})'})
    for node, apps in missing.items():
        for app in sorted(apps):
            out.append({"type": "Node", "name": node, "instance_group": ig_of_node.get(node, ""),
                        "message": f'control-plane node "{node}" is missing {app} pod'})
    return out


def validate_nodes_only(nodes: pd.DataFrame, pods: pd.DataFrame) -> KopsVerdict:
    """Kops' node and pod rules without the cloud side (no AWS access: a degraded mode kops lacks).

    Every node counts as a member of the instance group on its ``kops.k8s.io/instancegroup``
    label; instance-group sizes, unjoined machines and missing ASGs cannot be checked.
    """
    failures: list[dict[str, str]] = []
    out_nodes = []
    ready: list[str] = []
    for n in nodes.itertuples(index=False):
        role = "control-plane" if n.role == "control-plane" else "node"
        if node_ready(n):
            ready.append(n.name)
        else:
            failures.append({"type": "Node", "name": n.name, "instance_group": n.instance_group,
                             "message": f'node "{n.name}" of role "{role}" is not ready'})
        out_nodes.append({"name": n.name, "zone": n.zone, "role": role, "hostname": n.hostname,
                          "status": n.ready})
    ig_of = dict(zip(nodes["name"], nodes["instance_group"], strict=True))
    failures += pod_failures(nodes[nodes["name"].isin(ready)], pods, ig_of)
    return KopsVerdict(pd.DataFrame(failures, columns=FAILURE_COLUMNS), pd.DataFrame(out_nodes, columns=NODE_COLUMNS),
                       pd.DataFrame(columns=GROUP_COLUMNS), pd.DataFrame(columns=MEMBER_COLUMNS))
