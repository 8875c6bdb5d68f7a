"""Kubernetes objects as data (dicts as the API returns them), parsed into slim rows. Pure: no client.

:mod:`opsbook.k8s.inventory` fetches (paginated list calls) and reduces each page with the row
functions here into a :class:`Snapshot`; the checks (:mod:`opsbook.analysis.validate`) read the
Snapshot and the column lists without touching a client. Also: label selectors, mirror pods, and
the upgrade sampler's frame columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from opsbook.report import object_id

CRITICAL_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")

NODE_COLUMNS = ["name", "object", "instance_group", "role", "instance_type", "zone", "provider_id",
                "instance_id", "ready", "ready_reason", "pressure", "unschedulable", "created",
                "network_unavailable", "hostname", "addresses", "kops_instance_id", "control_plane_label",
                "kubelet_version"]
POD_COLUMNS = ["namespace", "name", "object", "node", "phase", "ready", "terminating", "priority_class",
               "priority", "component", "workload", "scheduled_reason", "scheduled_message",
               "waiting_reason", "waiting_message", "restarts", "oom_killed", "containers", "created",
               "host_ip", "k8s_app", "not_ready_containers"]
DEPLOYMENT_COLUMNS = ["namespace", "name", "object", "desired", "available", "ready", "updated"]
PDB_COLUMNS = ["namespace", "name", "object", "disruptions_allowed", "current_healthy", "desired_healthy",
               "expected_pods", "min_available", "max_unavailable"]
SERVICE_COLUMNS = ["namespace", "name", "object", "type", "has_selector", "ready_endpoints"]
CERT_COLUMNS = ["namespace", "object", "key", "subject", "issuer", "not_after", "fingerprint"]


@dataclass
class Snapshot:
    """What the cluster looked like at ``taken_at``: one slim DataFrame per kind.

    Attributes:
        nodes: one row per node: ``name, object, instance_group, role`` (``control-plane``|``node``),
            ``instance_type, zone, provider_id, instance_id, ready`` (``True``|``False``|``Unknown``),
            ``ready_reason, pressure`` (comma-joined true pressure conditions), ``unschedulable, created``,
            ``network_unavailable`` (its condition's status), ``hostname`` (label), ``addresses``
            (tuple), ``kops_instance_id`` (last part of the providerID, as kops reads it),
            ``control_plane_label`` (has ``node-role.kubernetes.io/control-plane``), ``kubelet_version``.
        pods: one row per pod: ``namespace, name, object, node, phase, ready, terminating,
            priority_class, priority, component`` (``k8s-app``/``component`` label), ``workload``
            (owning controller, e.g. ``deployment/ns/web``), ``scheduled_reason, scheduled_message``
            (PodScheduled=False), ``waiting_reason, waiting_message`` (first waiting container),
            ``restarts`` (sum), ``oom_killed`` (a container's last state), ``host_ip, k8s_app`` (label),
            ``not_ready_containers`` (names, as kops counts them), ``containers`` (tuple of
            ``(name, image, has_requests, has_memory_limit)``), ``created``.
        deployments: ``namespace, name, object, desired, available, ready, updated``.
        pdbs: ``namespace, name, object, disruptions_allowed, current_healthy, desired_healthy,
            expected_pods, min_available, max_unavailable``.
        services: ``namespace, name, object, type, has_selector, ready_endpoints`` (from
            EndpointSlices; NA when they could not be listed).
        certs: certificates found in secrets and configmaps: ``namespace, object, key, subject,
            issuer, not_after, fingerprint``.
        notes: kind -> why it is missing (e.g. forbidden).
        requests: Kubernetes API requests made.
        seconds: wall time of the snapshot.
    """

    nodes: pd.DataFrame
    pods: pd.DataFrame
    deployments: pd.DataFrame
    pdbs: pd.DataFrame
    services: pd.DataFrame
    certs: pd.DataFrame
    notes: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    server: str = ""



SAMPLE_COLUMNS = ["t", "workload", "kind", "replicas", "ready", "endpoints"]  # the upgrade sampler's frame


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (``matchLabels`` + ``matchExpressions``) selects ``labels``."""
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_mirror_pod(p: Mapping[str, Any]) -> bool:
    """A static pod's mirror (not evictable; kubelet owns it)."""
    return "kubernetes.io/config.mirror" in ((p.get("metadata") or {}).get("annotations") or {})


def _ts(value: str | None) -> pd.Timestamp:
    return pd.Timestamp(value) if value else pd.NaT


# -- rows -------------------------------------------------------------------------------------------

def node_row(n: dict[str, Any]) -> dict[str, Any]:
    """The slim row of one Node (see :class:`Snapshot` for the columns)."""
    meta, spec, st = n["metadata"], n.get("spec") or {}, n.get("status") or {}
    labels = meta.get("labels") or {}
    conds = {c["type"]: c for c in st.get("conditions") or []}
    ready = conds.get("Ready", {})
    pressure = [t for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
                if conds.get(t, {}).get("status") == "True"]
    provider = spec.get("providerID") or ""
    cp = ("node-role.kubernetes.io/control-plane" in labels or "node-role.kubernetes.io/master" in labels
          or labels.get("kubernetes.io/role") == "master")
    return {
        "name": meta["name"], "object": object_id("Node", meta["name"]),
        "instance_group": labels.get("kops.k8s.io/instancegroup", ""),
        "role": "control-plane" if cp else "node",
        "instance_type": labels.get("node.kubernetes.io/instance-type")
        or labels.get("beta.kubernetes.io/instance-type", ""),
        "zone": labels.get("topology.kubernetes.io/zone", ""),
        "provider_id": provider,
        "instance_id": provider.rsplit("/", 1)[-1] if provider.startswith("aws://") else "",
        "ready": ready.get("status", "Unknown"),
        "ready_reason": ready.get("reason", "") or "",
        "pressure": ",".join(pressure),
        "unschedulable": bool(spec.get("unschedulable")),
        "created": meta.get("creationTimestamp"),
        # what kops validate reads: NetworkUnavailable, the hostname label, the addresses pods'
        # hostIP is matched against, and the instance id (last part of any providerID)
        "network_unavailable": conds.get("NetworkUnavailable", {}).get("status", ""),
        "hostname": labels.get("kubernetes.io/hostname", ""),
        "addresses": tuple(a.get("address", "") for a in st.get("addresses") or []),
        "kops_instance_id": provider.rsplit("/", 1)[-1],
        "control_plane_label": "node-role.kubernetes.io/control-plane" in labels,
        "kubelet_version": (st.get("nodeInfo") or {}).get("kubeletVersion", ""),
    }


def workload_of(meta: Mapping[str, Any]) -> str:
    """The object id of a pod's owning workload, the one form every module names workloads in.

    ``deployment/ns/web`` (a ReplicaSet named ``web-<pod-template-hash>``), ``statefulset/ns/db``,
    ``daemonset/...``, or ``pod/ns/name`` for a bare or static pod.
    """
    ns, labels = meta.get("namespace", ""), meta.get("labels") or {}
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        kind, name = ref["kind"], ref["name"]
        if kind == "Node":  # a static pod's mirror: it is its own workload
            break
        h = labels.get("pod-template-hash")
        if kind == "ReplicaSet" and h and name.endswith(f"-{h}"):
            return object_id("Deployment", name[: -len(h) - 1], ns)
        return object_id(kind, name, ns)
    return object_id("Pod", meta["name"], ns)


_NOT_A_PROBLEM = (None, "", "ContainerCreating", "PodInitializing")


def pod_row(p: dict[str, Any]) -> dict[str, Any]:
    """The slim row of one Pod (see :class:`Snapshot` for the columns)."""
    meta, spec, st = p["metadata"], p.get("spec") or {}, p.get("status") or {}
    labels = meta.get("labels") or {}
    ns, name = meta.get("namespace", ""), meta["name"]
    conds = {c["type"]: c for c in st.get("conditions") or []}
    sched = conds.get("PodScheduled", {})
    statuses = (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or [])
    waiting_reason = waiting_message = ""
    restarts = 0
    oom = False
    for cs in statuses:
        restarts += int(cs.get("restartCount") or 0)
        w = (cs.get("state") or {}).get("waiting")
        if w and not waiting_reason and w.get("reason") not in _NOT_A_PROBLEM:
            waiting_reason, waiting_message = w.get("reason", ""), w.get("message", "") or ""
        if ((cs.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled":
            oom = True
    containers = []
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        containers.append((c.get("name", ""), c.get("image", ""), "cpu" in req and "memory" in req,
                           "memory" in lim))
    return {
        "namespace": ns, "name": name, "object": object_id("Pod", name, ns),
        "node": spec.get("nodeName") or "",
        "phase": st.get("phase") or "Unknown",
        "ready": conds.get("Ready", {}).get("status") == "True",
        "terminating": meta.get("deletionTimestamp") is not None,
        "priority_class": spec.get("priorityClassName") or "",
        "priority": int(spec.get("priority") or 0),
        "component": labels.get("k8s-app") or labels.get("component") or "",
        "workload": workload_of(meta),
        "scheduled_reason": sched.get("reason", "") if sched.get("status") == "False" else "",
        "scheduled_message": sched.get("message", "") if sched.get("status") == "False" else "",
        "waiting_reason": waiting_reason, "waiting_message": waiting_message,
        "restarts": restarts, "oom_killed": oom, "containers": tuple(containers),
        "created": meta.get("creationTimestamp"),
        "host_ip": st.get("hostIP") or "",
        "k8s_app": labels.get("k8s-app") or "",
        "not_ready_containers": tuple(cs.get("name", "") for cs in st.get("containerStatuses") or []
                                      if not cs.get("ready")),
    }


def deployment_row(d: dict[str, Any]) -> dict[str, Any]:
    """The slim row of one Deployment."""
    meta, spec, st = d["metadata"], d.get("spec") or {}, d.get("status") or {}
    ns, name = meta.get("namespace", ""), meta["name"]
    desired = spec.get("replicas")
    return {
        "namespace": ns, "name": name, "object": object_id("Deployment", name, ns),
        "desired": 1 if desired is None else int(desired),
        "available": int(st.get("availableReplicas") or 0),
        "ready": int(st.get("readyReplicas") or 0),
        "updated": int(st.get("updatedReplicas") or 0),
    }


def pdb_row(b: dict[str, Any]) -> dict[str, Any]:
    """The slim row of one PodDisruptionBudget."""
    meta, spec, st = b["metadata"], b.get("spec") or {}, b.get("status") or {}
    ns, name = meta.get("namespace", ""), meta["name"]
    return {
        "namespace": ns, "name": name, "object": object_id("PDB", name, ns),
        "disruptions_allowed": int(st.get("disruptionsAllowed") or 0),
        "current_healthy": int(st.get("currentHealthy") or 0),
        "desired_healthy": int(st.get("desiredHealthy") or 0),
        "expected_pods": int(st.get("expectedPods") or 0),
        "min_available": str(spec.get("minAvailable", "")),
        "max_unavailable": str(spec.get("maxUnavailable", "")),
    }


def service_row(s: dict[str, Any]) -> dict[str, Any]:
    """The slim row of one Service (``ready_endpoints`` filled in from EndpointSlices)."""
    meta, spec = s["metadata"], s.get("spec") or {}
    ns, name = meta.get("namespace", ""), meta["name"]
    return {"namespace": ns, "name": name, "object": object_id("Service", name, ns),
            "type": spec.get("type", "ClusterIP"), "has_selector": bool(spec.get("selector")),
            "ready_endpoints": 0}


def ready_endpoints(slice_: dict[str, Any]) -> tuple[str, int]:
    """``("ns/service", ready endpoint count)`` of one EndpointSlice (ready unset counts as ready)."""
    meta = slice_["metadata"]
    svc = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
    n = sum(1 for e in slice_.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False)
    return f"{meta.get('namespace', '')}/{svc}", n


# -- the snapshot -----------------------------------------------------------------------------------

def _frame(rows: list[dict[str, Any]], columns: list[str], times: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in times:
        df[c] = pd.to_datetime(df[c], utc=True)
    return df
