"""One read-only snapshot of a cluster, in a handful of paginated list calls.

:func:`snapshot` lists each resource kind once, cluster-wide, page by page
(``limit``/``continue``), and keeps only the fields the checks need. Pages are
read as raw JSON (``_preload_content=False``) and reduced to slim rows at once,
so neither the kubernetes client's model objects nor whole pages are kept:
memory stays proportional to the *rows*, and the number of API requests is
``sum(ceil(items_of_kind / limit))``, i.e. proportional to the kinds, not to the
nodes or pods.

Secret and ConfigMap *values* are never kept: certificates found in them are
parsed page by page (:func:`opsbook.k8s.certs.certificates_in`) and only
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
from typing import Any

import pandas as pd
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from opsbook.k8s.certs import certificates_in
from opsbook.k8s.client import Forbidden, api_client, boundary, continue_query, pages
from opsbook.k8s.objects import (
    CERT_COLUMNS,
    CRITICAL_PRIORITY_CLASSES,
    DEPLOYMENT_COLUMNS,
    NODE_COLUMNS,
    PDB_COLUMNS,
    POD_COLUMNS,
    SERVICE_COLUMNS,
    Snapshot,
    _frame,
    deployment_row,
    node_row,
    pdb_row,
    pod_row,
    ready_endpoints,
    service_row,
)

__all__ = [  # the rows and the Snapshot are parsed in opsbook.k8s.objects (pure); re-exported here
    "CERT_COLUMNS",
    "CRITICAL_PRIORITY_CLASSES",
    "DEPLOYMENT_COLUMNS",
    "NODE_COLUMNS",
    "PDB_COLUMNS",
    "POD_COLUMNS",
    "SERVICE_COLUMNS",
    "Snapshot",
    "deployment_row",
    "get_json",
    "list_json",
    "node_row",
    "nodes",
    "pdb_row",
    "pod_row",
    "ready_endpoints",
    "service_row",
    "snapshot",
]

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


def list_json(api: k8s.ApiClient, path: str) -> list[dict[str, Any]]:
    """Every item of a cluster-wide list (paginated), as dicts."""
    with boundary(f"GET {path}", api):
        return [i for body in pages(lambda token: get_json(api, path, continue_query(token)))
                for i in body.get("items") or []]


def nodes(api: k8s.ApiClient | None = None) -> pd.DataFrame:
    """Every Node as one slim row (:func:`opsbook.k8s.objects.node_row`, columns ``NODE_COLUMNS``)."""
    return _frame([node_row(n) for n in list_json(api or api_client(), "/api/v1/nodes")], NODE_COLUMNS,
                  ("created",))


def _pages(api: k8s.ApiClient, path: str, counter: _Counter, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Yield the items of each page of a cluster-wide list, as plain dicts."""
    for body in pages(lambda token: get_json(api, path, continue_query(token, limit))):
        counter.requests += 1
        yield body.get("items") or []


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
