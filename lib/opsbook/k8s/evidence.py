"""Evidence about an incident read from the cluster's current state (not from events).

Each ``*_evidence`` function returns a DataFrame of *timeline rows* with the columns
of :data:`ROW_COLUMNS`; the analysis merges them with events and AWS evidence
(:mod:`opsbook.analysis.timeline`). State only shows the latest transition of
each thing (a node's last Ready change, a container's last termination), which
is why events (and the events archive) are the other half of the evidence.

Sources:

- nodes: condition transitions (Ready, pressure), NoExecute/NoSchedule taints
  (``timeAdded``), cordons (``spec.unschedulable``), last heartbeat;
- pods: last terminations (reason, exit code, OOMKilled), restarts, waiting
  reasons (CrashLoopBackOff), evictions and disruption conditions, creations;
- rollouts: ReplicaSets created (revision, images) and reused by a rollback (managedFields);
- control plane: kube-system control-plane pods' restarts, the API server's
  process start time (``process_start_time_seconds`` from ``/metrics``),
  leader-election leases of kube-controller-manager and kube-scheduler;
- certificates: the API server's serving certificate's ``notAfter``.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from kubernetes import client as k8s

from opsbook.errors import OpsbookError
from opsbook.k8s.certs import certificates_in
from opsbook.k8s.client import Forbidden, api_client, boundary, list_all
from opsbook.report import ROW_COLUMNS as ROW_COLUMNS
from opsbook.report import object_id

log = logging.getLogger(__name__)

"""Columns of an evidence frame: ``time`` (UTC), ``source`` (node, pod, rollout, control-plane,
certificate ...), ``object`` (``Kind/ns/name``), ``what`` (short reason), ``detail`` (one sentence),
``severity`` (info/low/medium/high/critical), ``evidence`` (the command that shows it)."""

CONTROL_PLANE_APPS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd-manager-main",
    "etcd",
)
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def rows(records: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A frame of :data:`ROW_COLUMNS` from tuples, ``time`` parsed as UTC, sorted by time."""
    df = pd.DataFrame(records, columns=ROW_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="mixed")
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def _ts(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return v


def node_evidence(nodes: list[Any], renewals: dict[str, Any] | None = None) -> pd.DataFrame:
    """Timeline rows from Node objects: condition transitions, taints, cordons, last heartbeats.

    Args:
        nodes: ``V1Node`` objects (``CoreV1Api.list_node().items``).
        renewals: node name → ``renewTime`` of its Lease in ``kube-node-lease`` (the kubelet's heartbeat;
            the Ready condition's ``lastHeartbeatTime`` is only refreshed every few minutes).

    Returns:
        Rows with source ``node``; ``what`` is ``Ready=False``/``Ready=Unknown``/``Ready=True``,
        ``<Pressure>=True``, ``taint <key>:<effect>``, ``cordoned`` or ``heartbeat stopped``.
    """
    out: list[tuple[Any, ...]] = []
    for n in nodes:
        name = n.metadata.name
        obj = object_id("Node", name)
        ev = f"kubectl describe node {name}"
        ready_status = None
        for c in (n.status.conditions if n.status else None) or []:
            if c.type == "Ready":
                ready_status = c.status
                sev = "info" if c.status == "True" else "high"
                out.append(
                    (
                        _ts(c.last_transition_time),
                        "node",
                        obj,
                        f"Ready={c.status}",
                        f"{c.reason or ''}: {c.message or ''}".strip(": "),
                        sev,
                        ev,
                    )
                )
            elif c.type in PRESSURE and c.status == "True":
                out.append(
                    (
                        _ts(c.last_transition_time),
                        "node",
                        obj,
                        f"{c.type}=True",
                        f"{c.reason or ''}: {c.message or ''}".strip(": "),
                        "medium",
                        ev,
                    )
                )
        if ready_status not in (None, "True"):
            hb = (renewals or {}).get(name)
            how = f"last renewal of Lease kube-node-lease/{name}"
            if hb is None:
                hb = next((c.last_heartbeat_time for c in n.status.conditions if c.type == "Ready"), None)
                how = "last status the kubelet posted (Ready.lastHeartbeatTime)"
            if hb is not None:
                out.append((_ts(hb), "node", obj, "heartbeat stopped", how, "high", ev))
        for t in (n.spec.taints if n.spec else None) or []:
            if t.key.startswith("node-role.kubernetes.io/"):
                continue
            sev = "high" if t.effect == "NoExecute" else "medium"
            when = _ts(t.time_added)
            out.append(
                (
                    when,
                    "node",
                    obj,
                    f"taint {t.key}:{t.effect}",
                    f"{t.key}={t.value or ''}:{t.effect}",
                    sev,
                    ev,
                )
            )
        if n.spec is not None and n.spec.unschedulable:
            taint = next(
                (t for t in n.spec.taints or [] if t.key == "node.kubernetes.io/unschedulable"), None
            )
            out.append(
                (
                    _ts(taint.time_added) if taint else None,
                    "node",
                    obj,
                    "cordoned",
                    "spec.unschedulable=true (kubectl cordon/drain)",
                    "medium",
                    ev,
                )
            )
    return rows(out)




def pod_evidence(pods: list[Any]) -> pd.DataFrame:
    """Timeline rows from Pod objects: creations, terminations, restarts, evictions, back-offs.

    Args:
        pods: ``V1Pod`` objects.

    Returns:
        Rows with source ``pod``; ``what`` is ``created``, ``terminated <Reason>`` (with exit code;
        ``OOMKilled`` is high severity), ``restarts`` (count in detail), ``waiting CrashLoopBackOff``,
        ``evicted``, ``disruption <reason>`` or ``deleting``.
    """
    out: list[tuple[Any, ...]] = []
    for p in pods:
        ns, name = p.metadata.namespace, p.metadata.name
        obj = object_id("Pod", name, ns)
        ev = f"kubectl -n {ns} describe pod {name}"
        node = (p.spec.node_name if p.spec else None) or ""
        out.append(
            (
                _ts(p.metadata.creation_timestamp),
                "pod",
                obj,
                "created",
                f"on node {node}" if node else "not scheduled",
                "info",
                ev,
            )
        )
        st = p.status
        if st is None:
            continue
        if st.reason == "Evicted":
            out.append((_ts(st.start_time), "pod", obj, "evicted", st.message or "", "high", ev))
        for c in st.conditions or []:
            if c.type == "DisruptionTarget" and c.status == "True":
                out.append(
                    (
                        _ts(c.last_transition_time),
                        "pod",
                        obj,
                        f"disruption {c.reason}",
                        c.message or "",
                        "high",
                        ev,
                    )
                )
        if p.metadata.deletion_timestamp is not None:
            out.append(
                (_ts(p.metadata.deletion_timestamp), "pod", obj, "deleting", f"on node {node}", "medium", ev)
            )
        for cs in (st.container_statuses or []) + (st.init_container_statuses or []):
            term = cs.last_state.terminated if cs.last_state else None
            if term is not None:
                reason = term.reason or "Error"
                sev = "high" if reason == "OOMKilled" else "medium"
                out.append(
                    (
                        _ts(term.finished_at),
                        "pod",
                        obj,
                        f"terminated {reason}",
                        f"container {cs.name} exit code {term.exit_code}",
                        sev,
                        ev,
                    )
                )
            now_term = cs.state.terminated if cs.state else None
            if now_term is not None and now_term.exit_code:
                out.append(
                    (
                        _ts(now_term.finished_at),
                        "pod",
                        obj,
                        f"terminated {now_term.reason or 'Error'}",
                        f"container {cs.name} exit code {now_term.exit_code}",
                        "medium",
                        ev,
                    )
                )
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None and waiting.reason in (
                "CrashLoopBackOff",
                "ImagePullBackOff",
                "ErrImagePull",
                "CreateContainerConfigError",
            ):
                when = (term.finished_at if term is not None else None) or st.start_time
                out.append(
                    (
                        _ts(when),
                        "pod",
                        obj,
                        f"waiting {waiting.reason}",
                        f"container {cs.name}: {waiting.message or ''}".strip(": "),
                        "high",
                        ev,
                    )
                )
            if cs.restart_count:
                when = (term.finished_at if term is not None else None) or st.start_time
                out.append(
                    (
                        _ts(when),
                        "pod",
                        obj,
                        "restarts",
                        f"container {cs.name} restarted {cs.restart_count} times",
                        "medium",
                        ev,
                    )
                )
    return rows(out)


def _controller_update_time(rs: Any) -> Any:
    """When kube-controller-manager last changed the ReplicaSet's spec or annotations (not its status).

    A rollback or a re-roll to an earlier template reuses the old ReplicaSet: the deployment controller
    then rewrites its ``deployment.kubernetes.io/revision`` annotation and scales it up, and that write is
    recorded in ``metadata.managedFields`` (manager ``kube-controller-manager``, no ``subresource``).
    """
    times = [
        _ts(m.time)
        for m in rs.metadata.managed_fields or []
        if m.manager == "kube-controller-manager" and m.operation == "Update" and not m.subresource and m.time
    ]
    return max(times) if times else None


def rollout_evidence(replicasets: list[Any]) -> pd.DataFrame:
    """Timeline rows for rollouts: one per ReplicaSet at its creation, and one when it was reused.

    The creation time alone misses rollbacks (the old ReplicaSet is scaled up again, its
    ``creationTimestamp`` is old): a ReplicaSet that has replicas and whose spec/annotations the deployment
    controller changed after its creation gets a second row, ``ReplicaSet <name> scaled up``, at that change
    (``metadata.managedFields``). The deployment's ``ScalingReplicaSet`` events carry the same moment and
    are read by the detectors from the events.

    Args:
        replicasets: ``V1ReplicaSet`` objects.

    Returns:
        Rows with source ``rollout``, object ``deployment/ns/name`` (or the ReplicaSet when it has no
        owner), ``what`` = ``ReplicaSet <name> created`` or ``ReplicaSet <name> scaled up``, detail =
        revision and images (and the earlier revisions it served, ``revision-history``).
    """
    out: list[tuple[Any, ...]] = []
    for rs in replicasets:
        ns, name = rs.metadata.namespace, rs.metadata.name
        owner = next((o for o in rs.metadata.owner_references or [] if o.kind == "Deployment"), None)
        obj = object_id("Deployment", owner.name, ns) if owner else object_id("ReplicaSet", name, ns)
        annotations = rs.metadata.annotations or {}
        rev = annotations.get("deployment.kubernetes.io/revision", "?")
        history = annotations.get("deployment.kubernetes.io/revision-history")
        images = (
            ", ".join(c.image for c in rs.spec.template.spec.containers)
            if rs.spec and rs.spec.template
            else ""
        )
        ev = (
            f"kubectl -n {ns} rollout history deployment/{owner.name}"
            if owner
            else f"kubectl -n {ns} describe rs {name}"
        )
        created = _ts(rs.metadata.creation_timestamp)
        detail = f"revision {rev}: {images}" + (f" (earlier revisions {history})" if history else "")
        out.append((created, "rollout", obj, f"ReplicaSet {name} created", detail, "low", ev))
        changed = _controller_update_time(rs)
        replicas = (rs.spec.replicas if rs.spec else 0) or 0
        if (
            changed is not None
            and created is not None
            and replicas > 0
            and (pd.Timestamp(changed) - pd.Timestamp(created)).total_seconds() > 5
        ):
            out.append((changed, "rollout", obj, f"ReplicaSet {name} scaled up", detail, "low", ev))
    return rows(out)


def _metrics_start_time(api: k8s.ApiClient) -> float | None:
    method, url, headers, body, post = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    resp: Any = api.call_api(
        method, url, header_params=headers, body=body, post_params=post, _request_timeout=10
    )
    resp.read()
    if resp.status >= 400:
        from kubernetes.client.exceptions import ApiException

        raise ApiException(status=resp.status, reason=resp.reason)
    text = resp.data.decode()
    m = re.search(r"^process_start_time_seconds\s+(\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def control_plane_evidence(
    api: k8s.ApiClient, pods: list[Any] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Control-plane restarts: API server start time, leader elections, control-plane pod restarts.

    The API server's start time comes from ``process_start_time_seconds`` on ``/metrics`` (needs
    ``get`` on the non-resource URL ``/metrics``, e.g. the ``system:monitoring`` ClusterRole); behind a
    load balancer it is the start of whichever replica answered. The identity lease
    (``kube-system/apiserver-*``) only says the API server is alive: its holder is not renewed on
    restart, so it is not used for the start time. kube-controller-manager and kube-scheduler lose
    their leader lease when the API server is down longer than their renew deadline (10 s) and
    exit; the new leader's ``acquireTime`` is then the restart time.

    Args:
        api: Kubernetes client.
        pods: kube-system pods (read here when None).

    Returns:
        (rows with source ``control-plane``, notes about what could not be read).
    """
    out: list[tuple[Any, ...]] = []
    notes: list[str] = []
    try:
        with boundary("reading /metrics of the API server", api):
            started = _metrics_start_time(api)
        if started is not None:
            out.append(
                (
                    datetime.fromtimestamp(started, UTC),
                    "control-plane",
                    "Process/kube-apiserver",
                    "kube-apiserver started",
                    "process_start_time_seconds of the answering API server",
                    "high",
                    "kubectl get --raw /metrics | grep process_start_time_seconds",
                )
            )
    except (Forbidden, OpsbookError) as e:
        notes.append(f"API server start time unavailable: {e}")
    coord = k8s.CoordinationV1Api(api)
    try:
        with boundary("listing kube-system leases", api):
            leases = list_all(coord.list_namespaced_lease, "kube-system")
        for lease in leases:
            name = lease.metadata.name
            if name in ("kube-controller-manager", "kube-scheduler") and lease.spec.acquire_time:
                trans = lease.spec.lease_transitions or 0
                out.append(
                    (
                        _ts(lease.spec.acquire_time),
                        "control-plane",
                        object_id("Lease", name, "kube-system"),
                        f"{name} leader elected",
                        f"holder {lease.spec.holder_identity}, {trans} leader transitions",
                        "medium" if trans else "info",
                        f"kubectl -n kube-system get lease {name} -o yaml",
                    )
                )
    except Forbidden as e:
        notes.append(f"leader leases unavailable: {e}")
    if pods is None:
        core = k8s.CoreV1Api(api)
        try:
            with boundary("listing kube-system pods", api):
                pods = list_all(core.list_namespaced_pod, "kube-system")
        except Forbidden as e:
            notes.append(f"kube-system pods unavailable: {e}")
            pods = []
    for p in pods:
        labels = p.metadata.labels or {}
        app = labels.get("k8s-app") or labels.get("component") or ""
        if app not in CONTROL_PLANE_APPS and labels.get("tier") != "control-plane":
            continue
        obj = object_id("Pod", p.metadata.name, "kube-system")
        ev = f"kubectl -n kube-system describe pod {p.metadata.name}"
        for cs in (p.status.container_statuses if p.status else None) or []:
            term = cs.last_state.terminated if cs.last_state else None
            if term is not None:
                out.append(
                    (
                        _ts(term.finished_at),
                        "control-plane",
                        obj,
                        f"{app} terminated",
                        f"{term.reason or 'Error'} exit code {term.exit_code}",
                        "high",
                        ev,
                    )
                )
            running = cs.state.running if cs.state else None
            if running is not None and cs.restart_count:
                out.append(
                    (
                        _ts(running.started_at),
                        "control-plane",
                        obj,
                        f"{app} restarted",
                        f"restart #{cs.restart_count}",
                        "high",
                        ev,
                    )
                )
    return rows(out), notes


def certificate_evidence(api: k8s.ApiClient) -> tuple[pd.DataFrame, list[str]]:
    """The API server's serving certificate (``notAfter``), read from its TLS handshake.

    Returns:
        (one row with source ``certificate``, what ``certificate expires``, time = notAfter; notes).
    """
    from cryptography import x509

    url = urlparse(str(api.configuration.host))
    host, port = url.hostname or "127.0.0.1", url.port or 443
    try:
        pem = ssl.get_server_certificate((host, port), timeout=5)
    except OSError as e:
        return rows([]), [f"API server certificate unavailable ({host}:{port}): {e}"]
    cert = x509.load_pem_x509_certificate(pem.encode())
    subject = cert.subject.rfc4514_string()
    row = (
        cert.not_valid_after_utc,
        "certificate",
        f"Certificate/kube-apiserver/{host}:{port}",
        "certificate expires",
        f"{subject}, valid from {cert.not_valid_before_utc:%Y-%m-%d}",
        "info",
        f"openssl s_client -connect {host}:{port} </dev/null | openssl x509 -noout -dates",
    )
    return rows([row]), []


def tls_secret_evidence(
    api: k8s.ApiClient, namespaces: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Certificates in ``kubernetes.io/tls`` Secrets (``notAfter``): an expired one is a likely cause.

    Returns:
        (rows with source ``certificate``, time = notAfter; notes, e.g. when secrets are forbidden).
    """
    core = k8s.CoreV1Api(api)
    notes: list[str] = []
    selector = "type=kubernetes.io/tls"
    if namespaces:
        secrets: list[Any] = []
        for ns in namespaces:
            secrets += _safe(f"listing TLS secrets in {ns}",
                             partial(list_all, core.list_namespaced_secret, ns, field_selector=selector),
                             notes, api)
    else:
        secrets = _safe("listing TLS secrets",
                        partial(list_all, core.list_secret_for_all_namespaces, field_selector=selector),
                        notes, api)
    records = []
    for sec in secrets:
        ns, name = sec.metadata.namespace, sec.metadata.name
        for c in certificates_in(ns, object_id("Secret", name, ns), sec.data or {}, base64_values=True):
            records.append((
                pd.Timestamp(c["not_after"]), "certificate", object_id("Secret", name, ns), "certificate expires",
                f"{c['subject']} ({c['key']})", "info",
                f"kubectl -n {ns} get secret {name} -o jsonpath='{{.data.tls\\.crt}}' | base64 -d | "
                "openssl x509 -noout -enddate",
            ))
    return rows(records), notes


def _safe(what: str, fn: Callable[[], list[Any]], notes: list[str], api: k8s.ApiClient) -> list[Any]:
    try:
        with boundary(what, api):
            return fn()
    except Forbidden as e:
        notes.append(str(e))
        return []


def collect_k8s_evidence(
    api: k8s.ApiClient | None = None, namespaces: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read nodes, pods, ReplicaSets, control plane and certificates; return all rows and notes.

    Args:
        api: Kubernetes client (default: the configured cluster).
        namespaces: pods/ReplicaSets only from these (default: all). kube-system is always read for
            the control plane.

    Returns:
        (frame of :data:`ROW_COLUMNS` sorted by time, notes about sources that were unavailable).
    """
    api = api or api_client()
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    notes: list[str] = []
    nodes = _safe("listing nodes", lambda: list_all(core.list_node), notes, api)
    coord = k8s.CoordinationV1Api(api)
    leases = _safe(
        "listing node leases", lambda: list_all(coord.list_namespaced_lease, "kube-node-lease"), notes, api
    )
    renewals = {lease.metadata.name: lease.spec.renew_time for lease in leases if lease.spec}
    if namespaces:
        pods, rss = [], []
        for ns in namespaces:
            pods += _safe(
                f"listing pods in {ns}", partial(list_all, core.list_namespaced_pod, ns), notes, api
            )
            rss += _safe(
                f"listing ReplicaSets in {ns}",
                partial(list_all, apps.list_namespaced_replica_set, ns),
                notes,
                api,
            )
    else:
        pods = _safe("listing pods", lambda: list_all(core.list_pod_for_all_namespaces), notes, api)
        rss = _safe(
            "listing ReplicaSets", lambda: list_all(apps.list_replica_set_for_all_namespaces), notes, api
        )
    system_pods = (
        [p for p in pods if p.metadata.namespace == "kube-system"]
        if not namespaces or "kube-system" in namespaces
        else None
    )
    cp, n1 = control_plane_evidence(api, system_pods)
    cert, n2 = certificate_evidence(api)
    tls, n3 = tls_secret_evidence(api, namespaces)
    n2 = n2 + n3
    frames = [
        f
        for f in (node_evidence(nodes, renewals), pod_evidence(pods), rollout_evidence(rss), cp, cert, tls)
        if len(f)
    ]
    df = pd.concat(frames, ignore_index=True) if frames else rows([])
    return df.sort_values("time", kind="stable").reset_index(drop=True), notes + n1 + n2
