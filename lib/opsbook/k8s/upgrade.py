"""Kubernetes side of the upgrade-cluster runbook: read, cordon, drain (Eviction API), probe.

Reads return plain dicts (the API's JSON) so the pure functions in
:mod:`opsbook.analysis.upgrade` can take them; errors are converted at :func:`boundary`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from opsbook.errors import ApiError, OpsbookError
from opsbook.k8s.client import boundary
from opsbook.k8s.inventory import get_json, list_json
from opsbook.k8s.objects import SAMPLE_COLUMNS, is_mirror_pod, node_row, selector_matches
from opsbook.report import object_id

log = logging.getLogger(__name__)

NOTE = "opsbook.io/upgrade"  # annotation on a node the upgrade cordoned: what happened, what to do
REPLACEMENT = "opsbook.io/upgrade-replacement"  # the surge instance that replaces this node
Say = Callable[[str], None]


@dataclass
class ClusterState:
    """What the preflight reads, once."""

    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    pdbs: list[dict[str, Any]]
    workloads: list[dict[str, Any]]  # Deployments and StatefulSets, each with "kind"
    daemonsets: list[dict[str, Any]]
    applied: list[dict[str, Any]]  # objects that may carry a last-applied-configuration
    server_version: str
    metrics: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    def node_frame(self) -> pd.DataFrame:
        """Columns ``name, instance_group, role, zone, kubelet_version, unschedulable, ready, instance_id``."""
        rows = []
        for n in self.nodes:
            r = node_row(n)
            rows.append({**{k: r[k] for k in ("name", "instance_group", "role", "zone", "kubelet_version",
                                               "unschedulable", "instance_id")},
                         "ready": r["ready"] == "True",
                         "note": (n["metadata"].get("annotations") or {}).get(NOTE, "")})
        return pd.DataFrame(rows, columns=["name", "instance_group", "role", "zone", "kubelet_version",
                                           "unschedulable", "ready", "instance_id", "note"])


APPLIED_PATHS = (
    "/apis/policy/v1/poddisruptionbudgets", "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets", "/apis/batch/v1/cronjobs", "/apis/networking.k8s.io/v1/ingresses",
    "/apis/autoscaling/v2/horizontalpodautoscalers", "/api/v1/services",
)


def control_plane_version(api: k8s.ApiClient, pods: Sequence[Mapping[str, Any]]) -> str:
    """The control plane's version: the kube-apiserver pods' image tag (what kops rolls), else /version."""
    tags = []
    for p in pods:
        labels = (p.get("metadata") or {}).get("labels") or {}
        if labels.get("k8s-app") == "kube-apiserver" or labels.get("component") == "kube-apiserver":
            image = str(((p.get("spec") or {}).get("containers") or [{}])[0].get("image", ""))
            if ":" in image:
                tags.append(image.rsplit(":", 1)[1])
    if tags:
        return min(tags, key=lambda t: tuple(int(x) for x in t.lstrip("v").split("-")[0].split(".")))
    with boundary("GET /version", api):
        return str(get_json(api, "/version").get("gitVersion", ""))


def read_state(api: k8s.ApiClient) -> ClusterState:
    """Read everything the preflight needs (read-only; /metrics degrades to a note)."""
    pods = list_json(api, "/api/v1/pods")
    applied: list[dict[str, Any]] = []
    by_path: dict[str, list[dict[str, Any]]] = {}
    for path in APPLIED_PATHS:
        kind = {"poddisruptionbudgets": "PodDisruptionBudget", "deployments": "Deployment",
                "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}.get(path.rsplit("/", 1)[1], "")
        items = list_json(api, path)
        for o in items:
            o.setdefault("kind", kind)
        by_path[path] = items
        applied += items
    notes: dict[str, str] = {}
    metrics = ""
    try:
        with boundary("GET /metrics", api):
            method, url, headers, _, _ = api.param_serialize("GET", "/metrics", header_params={"Accept": "text/plain"},
                                                             auth_settings=["BearerToken"])
            resp = api.call_api(method, url, header_params=headers)
            resp.read()  # type: ignore[no-untyped-call]
            metrics = (resp.data or b"").decode("utf-8", "replace")
    except OpsbookError as e:
        notes["upgrade.api.requested"] = f"skipped: /metrics unreadable ({e}); grant `get` on nonResourceURL /metrics"
    return ClusterState(
        nodes=list_json(api, "/api/v1/nodes"), pods=pods,
        pdbs=by_path["/apis/policy/v1/poddisruptionbudgets"],
        workloads=by_path["/apis/apps/v1/deployments"] + by_path["/apis/apps/v1/statefulsets"],
        daemonsets=by_path["/apis/apps/v1/daemonsets"], applied=applied,
        server_version=control_plane_version(api, pods), metrics=metrics, notes=notes)


# -- cordon and drain -------------------------------------------------------------------------------


def cordon(api: k8s.ApiClient, node: str, note: str) -> None:
    """Mark ``node`` unschedulable and say why on it (annotation ``opsbook.io/upgrade``)."""
    with boundary(f"cordon {node}", api):
        k8s.CoreV1Api(api).patch_node(node, {"spec": {"unschedulable": True},
                                             "metadata": {"annotations": {NOTE: note}}})


def annotate(api: k8s.ApiClient, node: str, values: Mapping[str, str | None]) -> None:
    """Set (or with None remove) annotations on a node."""
    with boundary(f"annotate {node}", api):
        k8s.CoreV1Api(api).patch_node(node, {"metadata": {"annotations": dict(values)}})


def uncordon(api: k8s.ApiClient, node: str) -> None:
    """Make ``node`` schedulable again and drop the upgrade note."""
    with boundary(f"uncordon {node}", api):
        k8s.CoreV1Api(api).patch_node(node, {"spec": {"unschedulable": None},
                                             "metadata": {"annotations": {NOTE: None}}})


@dataclass
class DrainResult:
    """How a drain ended.

    Attributes:
        node: the node.
        drained: every evictable pod left the node.
        evicted: ``ns/name`` of the pods evicted.
        blocked: ``ns/name`` -> the API server's reason (e.g. the PDB) for pods still there.
        pdbs: the PDBs that blocked, ``ns/name``.
        seconds: how long the drain took.
    """

    node: str
    drained: bool
    evicted: list[str]
    blocked: dict[str, str]
    pdbs: list[str]
    seconds: float


def _evictable(pods: Sequence[Mapping[str, Any]], node: str) -> list[dict[str, Any]]:
    out = []
    for p in pods:
        if (p.get("spec") or {}).get("nodeName") != node or is_mirror_pod(p):
            continue
        owners = (p.get("metadata") or {}).get("ownerReferences") or []
        if owners and owners[0].get("kind") == "DaemonSet":
            continue
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        out.append(dict(p))
    return out


def pods_on(api: k8s.ApiClient, node: str) -> list[dict[str, Any]]:
    """Evictable pods on ``node`` (not DaemonSet, not mirror, not finished), including terminating ones."""
    with boundary(f"list pods on {node}", api):
        body = get_json(api, "/api/v1/pods", [("fieldSelector", f"spec.nodeName={node}")])
    return _evictable(body.get("items") or [], node)


def blocking_pdbs(api: k8s.ApiClient, pod: Mapping[str, Any]) -> list[str]:
    """The PDBs in the pod's namespace whose selector matches it."""
    ns = pod["metadata"]["namespace"]
    with boundary(f"list PDBs in {ns}", api):
        items = get_json(api, f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets").get("items") or []
    labels = pod["metadata"].get("labels") or {}
    return [f"{ns}/{b['metadata']['name']}" for b in items
            if selector_matches((b.get("spec") or {}).get("selector"), labels)]


def drain(api: k8s.ApiClient, node: str, timeout: float, *, interval: float = 1.0,
          say: Say | None = None) -> DrainResult:
    """Evict every evictable pod of ``node`` through the Eviction API until it is empty or ``timeout``.

    The API server enforces PodDisruptionBudgets: an eviction it refuses (429) is retried every
    ``interval`` seconds. Bare pods (no controller) are refused like ``kubectl drain`` does without
    ``--force``: they are reported as blocked, not deleted.
    """
    say = say or (lambda m: log.info("%s", m))
    core = k8s.CoreV1Api(api)
    t0 = time.monotonic()
    evicted: list[str] = []
    blocked: dict[str, str] = {}
    pdbs: set[str] = set()
    while True:
        pods = pods_on(api, node)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if not pods:
            return DrainResult(node, True, evicted, {}, [], time.monotonic() - t0)
        blocked = {}
        for p in live:
            key = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            if not (p["metadata"].get("ownerReferences") or []):
                blocked[key] = "no controller (bare pod): kubectl drain refuses it without --force"
                continue
            body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=p["metadata"]["name"],
                                                            namespace=p["metadata"]["namespace"]))
            try:
                core.create_namespaced_pod_eviction(p["metadata"]["name"], p["metadata"]["namespace"], body)
                evicted.append(key)
                say(f"  evicted {key}")
            except ApiException as e:
                if e.status == 404:
                    continue
                if e.status == 429:
                    names = blocking_pdbs(api, p)
                    pdbs.update(names)
                    blocked[key] = f"disruption budget {', '.join(names) or '?'} allows no more disruptions"
                    continue
                raise ApiError(f"evict {key}: the API server answered {e.status} {e.reason}", int(e.status or 0)) from e
        if time.monotonic() - t0 >= timeout:
            still = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": blocked.get(
                f"{p['metadata']['namespace']}/{p['metadata']['name']}", "still terminating") for p in pods}
            return DrainResult(node, False, evicted, still, sorted(pdbs), time.monotonic() - t0)
        time.sleep(interval)


# -- availability probe ----------------------------------------------------------------------------


def _ready(p: Mapping[str, Any]) -> bool:
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (p.get("status") or {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (p.get("status") or {}).get("conditions") or [])


class Probe:
    """Samples every Deployment's and StatefulSet's ready pods while the upgrade runs.

    A watch on pods keeps the current readiness of every pod; a sample of every workload is taken
    once a second (``interval``) and, so a short gap is not missed between two samples, also at each
    pod change that alters a workload's ready count. Ready endpoints of the services that select a
    workload are read once a second. ``ready`` counts pods that are Ready and not being deleted
    (what a PDB counts as healthy).
    """

    def __init__(self, api: k8s.ApiClient, interval: float = 1.0) -> None:
        self.api = api
        self.interval = interval
        self.rows: list[dict[str, Any]] = []
        self.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._pods: dict[str, dict[str, Any]] = {}
        self._workloads: list[dict[str, Any]] = []
        self._endpoints: dict[str, float] = {}
        self._last: dict[str, int] = {}
        self._rv = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    # workloads and endpoints, refreshed every interval
    def _refresh(self) -> None:
        wls = []
        for path, kind in (("/apis/apps/v1/deployments", "deployment"), ("/apis/apps/v1/statefulsets",
                                                                           "statefulset")):
            for o in list_json(self.api, path):
                m = o["metadata"]
                wls.append({"workload": object_id(kind, m["name"], m["namespace"]), "kind": kind,
                            "namespace": m["namespace"], "selector": (o.get("spec") or {}).get("selector"),
                            "replicas": int((o.get("spec") or {}).get("replicas", 1) or 0),
                            "template": ((o.get("spec") or {}).get("template") or {}).get("metadata", {})
                            .get("labels") or {}})
        services = list_json(self.api, "/api/v1/services")
        slices = list_json(self.api, "/apis/discovery.k8s.io/v1/endpointslices")
        ready_eps: dict[str, int] = {}
        for s in slices:
            svc = ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
            if svc:
                key = f"{s['metadata']['namespace']}/{svc}"
                ready_eps[key] = ready_eps.get(key, 0) + sum(
                    1 for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
        eps: dict[str, float] = {}
        for w in wls:
            total, any_svc = 0, False
            for s in services:
                sel = (s.get("spec") or {}).get("selector")
                if s["metadata"]["namespace"] == w["namespace"] and sel and all(
                        w["template"].get(k) == v for k, v in sel.items()):
                    any_svc = True
                    total += ready_eps.get(f"{w['namespace']}/{s['metadata']['name']}", 0)
            eps[w["workload"]] = float(total) if any_svc else float("nan")
        with self._lock:
            self._workloads, self._endpoints = wls, eps

    def _count(self, w: Mapping[str, Any]) -> int:
        return sum(1 for p in self._pods.values()
                   if p["metadata"].get("namespace") == w["namespace"]
                   and selector_matches(w["selector"], p["metadata"].get("labels") or {}) and _ready(p))

    def _sample(self, only: Sequence[Mapping[str, Any]] | None = None) -> None:
        with self._lock:  # the time is read under the lock, so rows are appended in time order
            t = time.monotonic() - self._t0  # not rounded: a drop that lasted 2 ms still has a length
            for w in only if only is not None else self._workloads:
                n = self._count(w)
                self._last[w["workload"]] = n
                self.rows.append({"t": t, "workload": w["workload"], "kind": w["kind"],
                                  "replicas": w["replicas"], "ready": n,
                                  "endpoints": self._endpoints.get(w["workload"], float("nan"))})

    def _watch(self) -> None:
        core = k8s.CoreV1Api(self.api)
        rv = self._rv
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list_pods()
                w = watch.Watch()
                for ev in w.stream(core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=5,
                                   _preload_content=False):
                    if self._stop.is_set():
                        w.stop()
                        break
                    obj = ev["raw_object"]
                    if ev["type"] == "ERROR":
                        rv = ""
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                    with self._lock:
                        if ev["type"] == "DELETED":
                            self._pods.pop(key, None)
                        else:
                            self._pods[key] = obj
                        labels = obj["metadata"].get("labels") or {}
                        hit = [wl for wl in self._workloads if wl["namespace"] == obj["metadata"]["namespace"]
                               and selector_matches(wl["selector"], labels)]
                        changed = [wl for wl in hit if self._count(wl) != self._last.get(wl["workload"])]
                    if changed:
                        self._sample(changed)
            except ApiException as e:
                rv = "" if e.status == 410 else rv
                self.errors.append(f"watch: {e.status} {e.reason}")
                time.sleep(0.5)
            except Exception as e:  # a dropped connection: list again and carry on
                self.errors.append(f"watch: {e.__class__.__name__}: {e}")
                rv = ""
                time.sleep(0.5)

    def _tick(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
                self._sample()
            except Exception as e:
                self.errors.append(f"sample: {e.__class__.__name__}: {e}")
            self._stop.wait(self.interval)

    def _list_pods(self) -> str:
        lst = k8s.CoreV1Api(self.api).list_pod_for_all_namespaces(_preload_content=False)
        body = json.loads(lst.data)
        with self._lock:
            self._pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in body.get("items") or []}
        return str(body["metadata"]["resourceVersion"])

    def start(self) -> Probe:
        """Read every pod and workload, take the first sample, then sample in background threads."""
        with boundary("probe: list pods", self.api):
            self._rv = self._list_pods()  # before any sample: an empty pod map would read as 0 ready
        self._refresh()
        self._sample()
        self._threads = [threading.Thread(target=self._watch, name="probe-watch", daemon=True),
                         threading.Thread(target=self._tick, name="probe-tick", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> pd.DataFrame:
        """Stop sampling and return the samples (columns ``t, workload, kind, replicas, ready, endpoints``)."""
        self._sample()
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        return self.samples()

    def samples(self) -> pd.DataFrame:
        """The samples so far."""
        with self._lock:
            return pd.DataFrame(list(self.rows), columns=SAMPLE_COLUMNS)


def budgets(pdbs: Sequence[Mapping[str, Any]], workloads: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Which PDB covers which workload and the ready count it guarantees (``status.desiredHealthy``).

    Returns:
        Columns ``workload, pdb, min_ready``.
    """
    rows = []
    for w in workloads:
        m = w["metadata"]
        kind = str(w.get("kind", "Deployment")).lower()
        tmpl = ((w.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        for b in pdbs:
            if b["metadata"]["namespace"] == m["namespace"] and selector_matches(
                    (b.get("spec") or {}).get("selector"), tmpl):
                rows.append({"workload": object_id(kind, m["name"], m["namespace"]),
                             "pdb": f"{b['metadata']['namespace']}/{b['metadata']['name']}",
                             "min_ready": int((b.get("status") or {}).get("desiredHealthy", 0))})
    return pd.DataFrame(rows, columns=["workload", "pdb", "min_ready"])
