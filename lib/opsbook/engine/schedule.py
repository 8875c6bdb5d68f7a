"""Scheduled reports on the cluster itself: a CronJob that runs ``opsbook run``.

``render`` returns the manifests: the read-only ClusterRole (shipped as package
data, so it is there after a plain ``pip install .``), a ServiceAccount (with
annotations such as an IRSA role ARN), its binding, a ConfigMap with the
parameters, and a CronJob (concurrencyPolicy Forbid, history limits, optional
``timeZone``, extra environment, alert URLs from an optional Secret
``opsbook-notify``). ``apply`` sends them with server-side apply under the field
manager ``opsbook``; ``list`` and ``delete`` find them by label.

Cron expressions are checked with croniter (day and month names included, as
the CronJob controller accepts them) and :func:`next_runs` previews a schedule.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from kubernetes import client as k8s
from kubernetes import dynamic
from kubernetes.client.exceptions import ApiException

from opsbook import __version__
from opsbook.errors import BadInput
from opsbook.k8s.client import api_client, boundary

NAMESPACE = "opsbook"
SERVICE_ACCOUNT = "opsbook-runner"
CLUSTER_ROLE = "opsbook-readonly"
DEFAULT_IMAGE = f"opsbook-runner:{__version__}"
FIELD_MANAGER = "opsbook"
NOTIFY_SECRET = "opsbook-notify"  # optional Secret with OPSBOOK_NOTIFY / OPSBOOK_HEARTBEAT
MANAGED = {"app.kubernetes.io/name": "opsbook", "app.kubernetes.io/managed-by": "opsbook"}
CREATED_NS = "opsbook.io/created-by"
MACROS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")


def validate_cron(expr: str) -> str:
    """Check a five-field cron expression (names such as MON-FRI and JAN allowed) or a macro like @daily.

    Raises:
        BadInput: not a schedule the CronJob controller would accept.
    """
    expr = " ".join(expr.split())
    if expr in MACROS:
        return expr
    if "TZ=" in expr or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise BadInput(
            f"--cron {expr!r} is not a five-field cron expression such as '*/10 * * * *' or '0 9 * * MON-FRI' "
            "(minute hour day-of-month month day-of-week); for a time zone use --time-zone."
        )
    return expr


def validate_time_zone(tz: str | None) -> str | None:
    """Check an IANA time zone name (``Europe/Berlin``)."""
    if not tz:
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise BadInput(f"--time-zone {tz!r} is not an IANA time zone name such as Europe/Berlin or UTC") from e
    return tz


def next_runs(cron: str, time_zone: str | None = None, count: int = 5, now: datetime | None = None) -> list[datetime]:
    """The next ``count`` times the schedule fires (in ``time_zone``, default UTC)."""
    tz = ZoneInfo(time_zone) if time_zone else UTC
    start = (now or datetime.now(UTC)).astimezone(tz)
    expr = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}.get(cron, cron)  # fmt: skip
    it = croniter(expr, start)
    return [it.get_next(datetime) for _ in range(count)]


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    """``NAME=VALUE`` pairs (``--env``, ``--service-account-annotation``) as a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise BadInput(f"{what} {pair!r}: write NAME=VALUE")
        out[k.strip()] = v
    return out


def cronjob_name(runbook: str) -> str:
    """The CronJob (and ConfigMap prefix) for a runbook."""
    return f"opsbook-{runbook}"[:52]


def render(
    runbook: str,
    cron: str,
    parameters: dict[str, Any],
    output: str,
    image: str = DEFAULT_IMAGE,
    fail_on: str = "high",
    timeout_s: int = 1800,
    namespace: str = NAMESPACE,
    env: dict[str, str] | None = None,
    service_account_annotations: dict[str, str] | None = None,
    time_zone: str | None = None,
) -> list[dict[str, Any]]:
    """Manifests that run ``opsbook run RUNBOOK`` on a schedule.

    Args:
        runbook: runbook name (already checked).
        cron: schedule.
        parameters: checked parameters, stored in a ConfigMap as params.yaml.
        output: where reports go (``s3://`` recommended in-cluster).
        image: runner image built from deploy/Dockerfile.
        fail_on: severity that fails the Job.
        timeout_s: activeDeadlineSeconds of each Job.
        namespace: namespace for the CronJob.
        env: extra environment for the runner (e.g. ``AWS_REGION``); never put secrets here.
        service_account_annotations: e.g. ``eks.amazonaws.com/role-arn`` for IRSA on kops.
        time_zone: IANA zone for the schedule (CronJob ``timeZone``), default the controller's (UTC).

    Returns:
        Kubernetes objects as dicts, the read-only ClusterRole first.
    """
    cron = validate_cron(cron)
    time_zone = validate_time_zone(time_zone)
    name = cronjob_name(runbook)
    labels = {**MANAGED, "app.kubernetes.io/component": "scheduled-runbook", "opsbook.io/runbook": runbook}
    shared = {**MANAGED, "app.kubernetes.io/component": "runner"}
    params_yaml = yaml.safe_dump(parameters, sort_keys=True)
    container_env = [{"name": k, "value": v} for k, v in sorted((env or {}).items())]
    spec: dict[str, Any] = {
        "schedule": cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 300,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 5,
    }
    if time_zone:
        spec["timeZone"] = time_zone
    container: dict[str, Any] = {
        "name": "opsbook",
        "image": image,
        "args": [
            "run",
            runbook,
            "-f",
            "/etc/opsbook/params.yaml",
            "--output",
            output,
            "--fail-on",
            fail_on,
            "--timeout",
            str(timeout_s),
            "--quiet",
        ],
        "env": container_env,
        "envFrom": [{"secretRef": {"name": NOTIFY_SECRET, "optional": True}}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "params", "mountPath": "/etc/opsbook", "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False},
    }
    spec["jobTemplate"] = {
        "metadata": {"labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout_s,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [{"name": "params", "configMap": {"name": f"{name}-params"}}],
                },
            },
        },
    }
    sa_meta: dict[str, Any] = {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": shared}
    if service_account_annotations:
        sa_meta["annotations"] = dict(service_account_annotations)
    return [
        *readonly_role_manifests(),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {CREATED_NS: "opsbook"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": sa_meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{SERVICE_ACCOUNT}-{namespace}", "labels": shared},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-params", "namespace": namespace, "labels": labels},
            "data": {"params.yaml": params_yaml},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec,
        },
    ]


def to_yaml(objs: list[dict[str, Any]]) -> str:
    """Multi-document YAML."""
    return yaml.safe_dump_all(objs, sort_keys=False)


def readonly_role_manifests() -> list[dict[str, Any]]:
    """The read-only ClusterRole shipped in the package (``opsbook/deploy/rbac-readonly.yaml``)."""
    text = resources.files("opsbook").joinpath("deploy/rbac-readonly.yaml").read_text()
    roles = [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "ClusterRole" and
             d["metadata"]["name"] == CLUSTER_ROLE]  # fmt: skip
    for r in roles:
        r["metadata"].setdefault("labels", {}).update(MANAGED)
    return roles


def iam_policy() -> dict[str, Any]:
    """The least-privilege IAM policy for the read-only runbooks (``opsbook/deploy/iam-readonly.json``)."""
    return dict(json.loads(resources.files("opsbook").joinpath("deploy/iam-readonly.json").read_text()))


def _resource(dyn: dynamic.DynamicClient, obj: dict[str, Any]) -> Any:
    return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])


def apply(objs: list[dict[str, Any]], api: k8s.ApiClient | None = None) -> list[str]:
    """Server-side apply each object (field manager ``opsbook``); return ``kind/name`` of each.

    A Namespace that already exists is left as it is (and so is never deleted by :func:`delete`).
    """
    api = api or api_client()
    dyn = dynamic.DynamicClient(api)
    done = []
    with boundary("applying the schedule", api):
        for obj in objs:
            kind, meta = obj["kind"], obj["metadata"]
            res = _resource(dyn, obj)
            if kind == "Namespace":
                try:
                    res.get(name=meta["name"])
                    done.append(f"{kind}/{meta['name']} (exists, left alone)")
                    continue
                except ApiException as e:
                    if e.status != 404:
                        raise
            res.server_side_apply(
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            done.append(f"{kind}/{meta['name']}")
    return done


def list_schedules(api: k8s.ApiClient | None = None) -> list[dict[str, Any]]:
    """Every opsbook CronJob: namespace, name, runbook, schedule, time zone, last run, next runs."""
    api = api or api_client()
    out = []
    with boundary("listing schedules", api):
        items = k8s.BatchV1Api(api).list_cron_job_for_all_namespaces(
            label_selector="app.kubernetes.io/managed-by=opsbook"
        )
    for cj in items.items:
        tz = cj.spec.time_zone
        out.append(
            {
                "namespace": cj.metadata.namespace,
                "name": cj.metadata.name,
                "runbook": (cj.metadata.labels or {}).get("opsbook.io/runbook", ""),
                "schedule": cj.spec.schedule,
                "time_zone": tz or "",
                "suspended": bool(cj.spec.suspend),
                "last_schedule": cj.status.last_schedule_time.isoformat()
                if cj.status and cj.status.last_schedule_time
                else "",
                "next_runs": [t.isoformat() for t in next_runs(cj.spec.schedule, tz, 3)],
            }
        )
    return sorted(out, key=lambda s: (s["namespace"], s["name"]))


def delete(runbook: str, namespace: str = NAMESPACE, api: k8s.ApiClient | None = None) -> list[str]:
    """Delete the runbook's CronJob, its Jobs and ConfigMap, and shared objects with the last schedule.

    When no opsbook CronJob is left in the namespace, the ServiceAccount and binding go
    too; with none left anywhere, the ClusterRole; and the namespace if opsbook created it.
    """
    api = api or api_client()
    batch, core, rbac = k8s.BatchV1Api(api), k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    name = cronjob_name(runbook)
    gone: list[str] = []

    def attempt(what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
            gone.append(what)
        except ApiException as e:
            if e.status != 404:
                raise

    with boundary(f"deleting the schedule of {runbook}", api):
        try:
            batch.read_namespaced_cron_job(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise BadInput(
                    f"no schedule for {runbook!r} in namespace {namespace} (see `opsbook schedule list`)"
                ) from e
            raise
        for job in batch.list_namespaced_job(namespace, label_selector=f"opsbook.io/runbook={runbook}").items:
            attempt(f"Job/{job.metadata.name}", batch.delete_namespaced_job, job.metadata.name, namespace,
                    propagation_policy="Background")  # fmt: skip
        attempt(f"CronJob/{name}", batch.delete_namespaced_cron_job, name, namespace, propagation_policy="Background")
        attempt(f"ConfigMap/{name}-params", core.delete_namespaced_config_map, f"{name}-params", namespace)
        if batch.list_namespaced_cron_job(namespace, label_selector="app.kubernetes.io/managed-by=opsbook").items:
            return gone
        attempt(f"ServiceAccount/{SERVICE_ACCOUNT}", core.delete_namespaced_service_account, SERVICE_ACCOUNT, namespace)
        attempt(f"ClusterRoleBinding/{SERVICE_ACCOUNT}-{namespace}", rbac.delete_cluster_role_binding,
                f"{SERVICE_ACCOUNT}-{namespace}")  # fmt: skip
        others = batch.list_cron_job_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=opsbook").items
        role = _read_or_none(rbac.read_cluster_role, CLUSTER_ROLE) if not others else None
        if role is not None and (role.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "opsbook":
            attempt(f"ClusterRole/{CLUSTER_ROLE}", rbac.delete_cluster_role, CLUSTER_ROLE)
        ns = _read_or_none(core.read_namespace, namespace)
        if ns is not None and (ns.metadata.labels or {}).get(CREATED_NS) == "opsbook":
            attempt(f"Namespace/{namespace}", core.delete_namespace, namespace)
    return gone


def _read_or_none(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
