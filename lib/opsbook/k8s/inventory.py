"""One read-only snapshot of a cluster, in a handful of paginated list calls.

:func:`snapshot` lists each resource kind once, cluster-wide, page by page
(``limit``/``continue``), and keeps only the fields the checks need. Pages are
read as raw JSON (``_preload_content=False``) and reduced to slim rows at once,
so neither the kubernetes client's model objects nor whole pages are kept:
memory stays proportional to the *rows*, and the number of API requests is
``sum(ceil(items_of_kind / limit))``, i.e. proportional to the kinds, not to the
nodes or pods.

Secret and ConfigMap *values* are never kept: certificates found in them are
parsed page by page (:func:`opsbook.analysis.certs.certificates_in`) and only
their metadata (subject, expiry, fingerprint) is stored.

A kind the identity may not list (HTTP 403) is left empty and explained in
``Snapshot.notes``; every other error propagates as an opsbook error.

The list calls go through ``ApiClient.param_serialize``/``call_api`` with the
resource paths below rather than the generated ``list_*`` methods: those validate
their arguments with pydantic, and building those validators costs 1-2 s on the
first call of each method, more than the whole listing of a small cluster.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsbook.analysis.certs import certificates_in
from opsbook.k8s.client import Forbidden, api_client, boundary

log = logging.getLogger(__name__)

PATHS = {  # kind -> cluster-wide list path
    "nodes": "/api/v1/nodes",
    "pods": "/api/v1/pods",
    "deployments": "/apis/apps/v1/deployments",
    "pdbs": "/apis/policy/v1/poddisruptionbudgets",
    "services": "/api/v1/services",
    "endpointslices": "/apis/discovery.k8s.io/v1/endpointslices",
    "secrets": "/api/v1/secrets",
    "configmaps": "/api/v1/configmaps",
}
KINDS = tuple(PATHS)
DEFAULT_LIMIT = 2000
CRITICAL_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")

NODE_COLUMNS = ["name", "object", "instance_group", "role", "instance_type", "zone", "provider_id",
                "instance_id", "ready", "ready_reason", "pressure", "unschedulable", "created",
                "network_unavailable", "hostname", "addresses", "kops_instance_id", "control_plane_label"]
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
            ``control_plane_label`` (has ``node-role.kubernetes.io/control-plane``).
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


class _Counter:
    def __init__(self) -> None:
        self.requests = 0


def get_json(api: k8s.ApiClient, path: str, query: list[tuple[str, Any]] | None = None) -> Any:
    """GET ``path`` and decode the JSON body (raises ApiException on a non-2xx answer)."""
    method, url, headers, _, _ = api.param_serialize(
        "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"])
    resp = api.call_api(method, url, header_params=headers)
    resp.read()  # type: ignore[no-untyped-call]
    if not 200 <= resp.status <= 299:
        raise ApiException(http_resp=resp)
    return json.loads(resp.data or b"{}")


def _pages(api: k8s.ApiClient, path: str, counter: _Counter, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Yield the items of each page of a cluster-wide list, as plain dicts."""
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", limit)]
        if token:
            query.append(("continue", token))
        body = get_json(api, path, query)
        counter.requests += 1
        yield body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


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
        "name": meta["name"], "object": f"node/{meta['name']}",
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
    }


def _workload(meta: dict[str, Any]) -> str:
    ns, labels = meta.get("namespace", ""), meta.get("labels") or {}
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        kind, name = ref["kind"], ref["name"]
        if kind == "Node":  # a static pod's mirror: it is its own workload
            break
        h = labels.get("pod-template-hash")
        if kind == "ReplicaSet" and h and name.endswith(f"-{h}"):
            return f"deployment/{ns}/{name[: -len(h) - 1]}"
        return f"{kind.lower()}/{ns}/{name}"
    return f"pod/{ns}/{meta['name']}"


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
        "namespace": ns, "name": name, "object": f"pod/{ns}/{name}",
        "node": spec.get("nodeName") or "",
        "phase": st.get("phase") or "Unknown",
        "ready": conds.get("Ready", {}).get("status") == "True",
        "terminating": meta.get("deletionTimestamp") is not None,
        "priority_class": spec.get("priorityClassName") or "",
        "priority": int(spec.get("priority") or 0),
        "component": labels.get("k8s-app") or labels.get("component") or "",
        "workload": _workload(meta),
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
        "namespace": ns, "name": name, "object": f"deployment/{ns}/{name}",
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
        "namespace": ns, "name": name, "object": f"pdb/{ns}/{name}",
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
    return {"namespace": ns, "name": name, "object": f"service/{ns}/{name}",
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


def snapshot(api: k8s.ApiClient | None = None, *, limit: int = DEFAULT_LIMIT,
             kinds: tuple[str, ...] = KINDS) -> Snapshot:
    """Take one snapshot of the cluster (read-only: list calls only).

    Args:
        api: the cluster's ApiClient (default: :func:`opsbook.k8s.client.api_client`).
        limit: page size of each list call (kubectl uses 500).
        kinds: the kinds to list (default all of :data:`KINDS`); others stay empty.

    Returns:
        The :class:`Snapshot`. A kind that is forbidden for this identity is empty and
        explained in ``notes``.

    Raises:
        ClusterUnreachable: the API server does not answer.
        OpsbookError: the API server answered with an error other than 403.
    """
    own = api is None
    api = api or api_client()
    t0 = time.monotonic()
    counter = _Counter()
    notes: dict[str, str] = {}

    def collect(kind: str, row: Callable[[dict[str, Any]], Any]) -> list[Any]:
        out: list[Any] = []
        if kind not in kinds:
            return out
        try:
            with boundary(f"list {kind}", api):
                for items in _pages(api, PATHS[kind], counter, limit):
                    out.extend(r for r in map(row, items) if r is not None)
        except Forbidden as e:
            notes[kind] = str(e)
            log.warning("snapshot: %s", e)
            out.clear()
        return out

    try:
        nodes = collect("nodes", node_row)
        pods = collect("pods", pod_row)
        deployments = collect("deployments", deployment_row)
        pdbs = collect("pdbs", pdb_row)
        services = collect("services", service_row)
        slices = collect("endpointslices", ready_endpoints)
        certs: list[dict[str, Any]] = []
        for found in collect("secrets", _secret_certs):
            certs.extend(found)
        seen_root_ca = False
        for found in collect("configmaps", _configmap_certs):
            # kube-root-ca.crt is the same cluster CA copied into every namespace: keep one copy.
            if found and found[0]["object"].endswith("/kube-root-ca.crt"):
                if seen_root_ca:
                    continue
                seen_root_ca = True
            certs.extend(found)
    finally:
        if own:
            api.close()  # type: ignore[no-untyped-call]

    svc = _frame(services, SERVICE_COLUMNS)
    if "endpointslices" in notes or "endpointslices" not in kinds:
        svc["ready_endpoints"] = pd.NA
    elif not svc.empty:
        counts: dict[str, int] = {}
        for key, n in slices:
            counts[key] = counts.get(key, 0) + n
        keys = svc["namespace"] + "/" + svc["name"]
        svc["ready_endpoints"] = [counts.get(k, 0) for k in keys]
    snap = Snapshot(
        nodes=_frame(nodes, NODE_COLUMNS, ("created",)),
        pods=_frame(pods, POD_COLUMNS, ("created",)),
        deployments=_frame(deployments, DEPLOYMENT_COLUMNS),
        pdbs=_frame(pdbs, PDB_COLUMNS),
        services=svc,
        certs=_frame(certs, CERT_COLUMNS, ("not_after",)),
        notes=notes, requests=counter.requests, seconds=time.monotonic() - t0,
        server=str(api.configuration.host),
    )
    log.info("snapshot: %d nodes, %d pods in %d requests, %.2fs", len(snap.nodes), len(snap.pods),
             snap.requests, snap.seconds)
    return snap


def _secret_certs(s: dict[str, Any]) -> list[dict[str, Any]]:
    meta = s["metadata"]
    obj = f"secret/{meta.get('namespace', '')}/{meta['name']}"
    return certificates_in(meta.get("namespace", ""), obj, s.get("data") or {}, base64_values=True)


def _configmap_certs(c: dict[str, Any]) -> list[dict[str, Any]]:
    meta = c["metadata"]
    obj = f"configmap/{meta.get('namespace', '')}/{meta['name']}"
    return certificates_in(meta.get("namespace", ""), obj, c.get("data") or {}, base64_values=False)
