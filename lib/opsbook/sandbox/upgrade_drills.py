"""Upgrade drills: the sandbox made one minor older, so upgrade-cluster has something to do.

The sandbox's control plane binaries have one fixed version; what the upgrade runbook reads as
"the cluster's version" is what kops clusters show: the kube-apiserver pods' image tag and every
kubelet's reported version. A drill sets those one minor back (the Node status and the static pods,
as an older kops cluster would report them) and adds the workload the drill is about.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client as k8s

from opsbook.k8s.upgrade import NOTE, REPLACEMENT, drain, uncordon
from opsbook.kops.spec import ClusterSpec
from opsbook.sandbox import rolling, seed
from opsbook.sandbox.sandbox import Sandbox, _spec_from_dict

log = logging.getLogger(__name__)

NAMESPACE = "taxi"
PDB_WORKLOAD = "ledger"


def older_version(current: str) -> str:
    """One minor before ``current`` (``1.34.4`` -> ``1.33.7``, a patch release that exists)."""
    major, minor = (int(x) for x in current.lstrip("v").split(".")[:2])
    return f"{major}.{minor - 1}.7"


def set_cluster_version(api: k8s.ApiClient, version: str, only_at: str = "") -> list[str]:
    """Report ``version`` on every node (or only nodes now at ``only_at``) and the control-plane pods.

    Returns:
        The nodes changed.
    """
    core = k8s.CoreV1Api(api)
    changed = []
    for n in core.list_node().items:
        current = n.status.node_info.kubelet_version if n.status and n.status.node_info else ""
        if only_at and current.lstrip("v") != only_at.lstrip("v"):
            continue
        core.patch_node_status(n.metadata.name, {"status": {"nodeInfo": {"kubeletVersion": f"v{version}"}}})
        changed.append(n.metadata.name)
        for p in core.list_namespaced_pod("kube-system", field_selector=f"spec.nodeName={n.metadata.name}").items:
            comp = (p.metadata.labels or {}).get("component", "")
            if comp in seed.CONTROL_PLANE_COMPONENTS:
                core.patch_namespaced_pod(p.metadata.name, "kube-system", {"spec": {"containers": [
                    {"name": comp, "image": f"registry.k8s.io/{comp}:v{version}"}]}})
    return changed


def blocking_pdb(api: k8s.ApiClient) -> None:
    """A 2-replica ``ledger`` Deployment whose PDB (minAvailable 2) allows no disruption."""
    apps, policy = k8s.AppsV1Api(api), k8s.PolicyV1Api(api)
    labels = {"app": PDB_WORKLOAD}
    if PDB_WORKLOAD not in {d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items}:
        apps.create_namespaced_deployment(NAMESPACE, k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name=PDB_WORKLOAD, labels=labels),
            spec=k8s.V1DeploymentSpec(
                replicas=2, selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(containers=[k8s.V1Container(
                        name=PDB_WORKLOAD, image="taxi/ledger:3.2.0",
                        resources=k8s.V1ResourceRequirements(requests={"cpu": "100m", "memory": "128Mi"}))])))))
    if PDB_WORKLOAD not in {b.metadata.name for b in policy.list_namespaced_pod_disruption_budget(NAMESPACE).items}:
        policy.create_namespaced_pod_disruption_budget(NAMESPACE, k8s.V1PodDisruptionBudget(
            metadata=k8s.V1ObjectMeta(name=PDB_WORKLOAD),
            spec=k8s.V1PodDisruptionBudgetSpec(min_available=2, selector=k8s.V1LabelSelector(match_labels=labels))))


def remove_blocking_pdb(api: k8s.ApiClient) -> None:
    """Delete the drill's PDB and Deployment (idempotent)."""
    for call in (lambda: k8s.PolicyV1Api(api).delete_namespaced_pod_disruption_budget(PDB_WORKLOAD, NAMESPACE),
                 lambda: k8s.AppsV1Api(api).delete_namespaced_deployment(PDB_WORKLOAD, NAMESPACE)):
        try:
            call()
        except k8s.ApiException as e:
            if e.status != 404:
                raise


def finish_or_uncordon(sb: Sandbox, api: k8s.ApiClient) -> list[str]:
    """Settle the nodes upgrade-cluster left cordoned (they carry its note); return what was done.

    A node whose surge replacement already joined is drained (nothing blocks it any more) and
    retired, as the upgrade would have done; any other is uncordoned.
    """
    st = sb.state()
    spec = ClusterSpec(**_spec_from_dict(st.spec)) if st else None
    core = k8s.CoreV1Api(api)
    out = []
    for n in core.list_node().items:
        ann = n.metadata.annotations or {}
        if not (n.spec.unschedulable and NOTE in ann):
            continue
        if ann.get(REPLACEMENT) and spec is not None:
            d = drain(api, n.metadata.name, timeout=30)
            if d.drained:
                rolling.retire(api, spec, n.metadata.name, n.spec.provider_id.rsplit("/", 1)[-1])
                out.append(f"drained and retired {n.metadata.name} (its replacement had joined)")
                continue
        uncordon(api, n.metadata.name)
        out.append(f"uncordoned {n.metadata.name}")
    return out


def undo(sb: Sandbox, api: k8s.ApiClient, entry: dict[str, Any]) -> list[str]:
    """Undo an upgrade drill: remove its workload, settle noted nodes, put the version back."""
    details = entry.get("details") or {}
    done = []
    if entry.get("scenario") == "upgrade-blocked-by-pdb":
        remove_blocking_pdb(api)
        done.append(f"deleted {NAMESPACE}/{PDB_WORKLOAD} and its PDB")
    done += finish_or_uncordon(sb, api)
    changed = set_cluster_version(api, details["version"], only_at=details["older"])
    done.append(f"{len(changed)} nodes report v{details['version']} again")
    return done
